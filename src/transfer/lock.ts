/**
 * Transfer locks: two servers on this machine never move files into the same place at once, and a rerun
 * never overlaps a survivor of a killed one. A lock is a small JSON file per key (a local pull directory,
 * a push destination on a box) under the temp dir: holder pid, start time, and the pids (with their
 * kernel start times) of the rsync children it spawned. A lock whose holder is dead is stale: its
 * children still alive are killed (SIGKILL) before the new holder starts, then the lock is taken over.
 * A live holder is waited for a short while, then the call is refused with TRANSFER_BUSY.
 * A push also takes the box's own lock of its destination (scripts/box_lock.sh), which stops a second
 * client machine; it lives as long as one exec channel, so a holder that died leaves nothing stale.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { PassThrough } from "node:stream";
import { RefusalError } from "../common/result.js";
import type { Remote } from "../remote/types.js";

interface LockBody { pid: number; started: string; what: string; children: { pid: number; start: string }[] }

export interface TransferLock {
  /** record a child process so a rerun after a crash can kill it if it survived */
  addChild(pid: number): void;
  /** the box's own lock, where one was asked for */
  box?: BoxLock;
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

/**
 * Hold the locks for `keys` (sorted, so two callers never deadlock) while fn runs; with `box`, the box's
 * own lock of that directory too (taken after the local ones, so callers on one machine queue here first).
 */
export async function withTransferLock<T>(keys: string[], what: string, fn: (lock: TransferLock) => Promise<T>, waitMs = 20_000,
  box?: { remote: Remote; host: string; dir: string }): Promise<T> {
  const held: { file: string; body: LockBody }[] = [];
  let boxLock: BoxLock | undefined;
  try {
    for (const k of [...new Set(keys)].sort()) held.push(await acquire(k, what, waitMs));
    if (box) boxLock = await holdBoxLock(box.remote, box.host, box.dir, what, Math.ceil(waitMs / 1000));
    const lock: TransferLock = {
      ...(boxLock ? { box: boxLock } : {}),
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
    boxLock?.release();
    for (const h of held) if (readLock(h.file)?.body.pid === process.pid) fs.rmSync(h.file, { force: true });
  }
}

/** The box-side lock of one destination, held until released (or until this process or its connection ends). */
export interface BoxLock {
  /** "held": this call has it; "unsupported": the box cannot lock (no flock), the call goes on unlocked */
  state: "held" | "unsupported";
  why?: string;
  release(): void;
}

/** the lock script's answer line, found past whatever a talkative login shell printed first */
const MARK = /^RGT_LOCK ((?:LOCKED|BUSY|NOLOCK)[^\n]*)\n/m;

/** how long a box lock may be held at most: far longer than any push, still a bound */
const BOX_LOCK_MAX_MS = 12 * 3600_000;

/**
 * Take the box's own lock for `dir` (scripts/box_lock.sh: an flock held while one exec channel stays
 * open), so a push from another machine into the same directory waits, then is refused with
 * TRANSFER_BUSY naming that machine. The local lock (withTransferLock) covers callers on this machine;
 * this one covers every client of the box.
 */
export async function holdBoxLock(remote: Remote, host: string, dir: string, what: string, waitS = 20): Promise<BoxLock> {
  const key = createHash("sha256").update(dir).digest("hex").slice(0, 32);
  const holder = `${os.hostname()} pid ${process.pid}, ${what}, since ${new Date().toISOString()}`;
  const hold = new PassThrough();
  let answer: (line: string) => void = () => undefined;
  const first = new Promise<string>((resolve) => { answer = resolve; });
  let buf = "";
  const run = remote.runScript(host, "box_lock.sh", [key, String(waitS), holder], {
    stdin: hold, timeoutMs: BOX_LOCK_MAX_MS, maxOutputBytes: 4096,
    onStdout: (b) => { buf += b.toString("utf8"); const m = MARK.exec(buf); if (m) answer(m[1]); },
  });
  run.then((r) => answer(MARK.exec(r.stdout)?.[1] ?? `NOLOCK the lock script ended (exit ${r.exitCode}) without an answer`), (e) => answer(`ERROR ${(e as Error).message}`));
  const release = () => { hold.end(); };
  const bound = new Promise<string>((resolve) => { setTimeout(() => resolve("TIMEOUT"), (waitS + 15) * 1000).unref(); });
  const line = await Promise.race([first, bound]);
  if (line === "LOCKED") return { state: "held", release };
  release();
  if (line.startsWith("BUSY")) {
    throw new RefusalError("TRANSFER_BUSY", `${what}: another client holds the box's lock on ${dir} (${line.slice(5).trim() || "holder unknown"}); nothing was changed by this call`,
      "Wait for that push to finish (or stop it on that machine), then run this one again: it skips what is already there.");
  }
  if (line.startsWith("NOLOCK")) return { state: "unsupported", why: line.slice(7).trim(), release };
  if (line === "TIMEOUT") throw new RefusalError("TIMEOUT", `${what}: the box did not answer its lock check within ${waitS + 15} s; nothing was sent`, "Check the box with probe_env, then retry.");
  throw new RefusalError("UNREACHABLE", `${what}: the box's lock check failed (${line.slice(6, 200)}); nothing was sent`, "Check the connection (probe_env), then retry.");
}
