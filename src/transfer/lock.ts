/**
 * Transfer locks: two servers on this machine never move files into the same place at once, and a rerun
 * never overlaps a survivor of a killed one. A lock is a small JSON file per key (a local pull directory,
 * a push destination on a box) under the temp dir: holder pid, start time, and the pids (with their
 * kernel start times) of the rsync children it spawned. A lock whose holder is dead is stale: its
 * children still alive are killed (SIGKILL) before the new holder starts, then the lock is taken over.
 * A live holder is waited for a short while, then the call is refused with TRANSFER_BUSY.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { RefusalError } from "../common/result.js";

interface LockBody { pid: number; started: string; what: string; children: { pid: number; start: string }[] }

export interface TransferLock {
  /** record a child process so a rerun after a crash can kill it if it survived */
  addChild(pid: number): void;
}

const lockDir = (): string => path.join(os.tmpdir(), `rgt-locks-${process.getuid?.() ?? "u"}`);

/** the kernel's start time of a process (field 22 of /proc/<pid>/stat), "" where unknown */
function procStart(pid: number): string {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch { return ""; }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === "EPERM"; }
}

function readLock(file: string): { raw: string; body: LockBody } | null {
  try {
    const raw = fs.readFileSync(file, "utf8");
    return { raw, body: JSON.parse(raw) as LockBody };
  } catch { return null; }
}

/** Kill what a dead holder left running (only processes whose start time still matches: pids get reused). */
async function reapSurvivors(body: LockBody): Promise<void> {
  const left = body.children.filter((c) => alive(c.pid) && (!c.start || procStart(c.pid) === c.start));
  for (const c of left) { try { process.kill(c.pid, "SIGKILL"); } catch { /* gone */ } }
  const until = Date.now() + 5000;
  while (left.some((c) => alive(c.pid) && procStart(c.pid) === c.start) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

async function acquire(key: string, what: string, waitMs: number): Promise<{ file: string; body: LockBody }> {
  fs.mkdirSync(lockDir(), { recursive: true, mode: 0o700 });
  const file = path.join(lockDir(), `${createHash("sha256").update(key).digest("hex").slice(0, 24)}.lock`);
  const body: LockBody = { pid: process.pid, started: new Date().toISOString(), what, children: [] };
  const until = Date.now() + waitMs;
  for (;;) {
    try {
      fs.writeFileSync(file, JSON.stringify(body), { flag: "wx", mode: 0o600 });
      return { file, body };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const held = readLock(file);
    if (held && held.body.pid !== process.pid && !alive(held.body.pid)) {
      await reapSurvivors(held.body);
      // take over only the stale lock we read (another taker may have replaced it meanwhile)
      if (readLock(file)?.raw === held.raw) fs.rmSync(file, { force: true });
      continue;
    }
    if (!held) { await new Promise((r) => setTimeout(r, 20)); if (!readLock(file)) fs.rmSync(file, { force: true }); continue; }
    if (Date.now() >= until) {
      const same = held.body.pid === process.pid;
      throw new RefusalError(
        "TRANSFER_BUSY",
        `${what}: ${same ? "another call in this server" : `another server (pid ${held.body.pid})`} has been ${held.body.what} since ${held.body.started}; nothing was changed by this call`,
        "Wait for that call to return, then run this one again: it skips what is already there and resumes partial files.",
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Hold the locks for `keys` (sorted, so two callers never deadlock) while fn runs. */
export async function withTransferLock<T>(keys: string[], what: string, fn: (lock: TransferLock) => Promise<T>, waitMs = 20_000): Promise<T> {
  const held: { file: string; body: LockBody }[] = [];
  try {
    for (const k of [...new Set(keys)].sort()) held.push(await acquire(k, what, waitMs));
    const lock: TransferLock = {
      addChild(pid) {
        for (const h of held) {
          h.body.children.push({ pid, start: procStart(pid) });
          h.body.children = h.body.children.filter((c) => alive(c.pid));
          try { fs.writeFileSync(h.file, JSON.stringify(h.body), { mode: 0o600 }); } catch { /* best effort */ }
        }
      },
    };
    return await fn(lock);
  } finally {
    for (const h of held) if (readLock(h.file)?.body.pid === process.pid) fs.rmSync(h.file, { force: true });
  }
}
