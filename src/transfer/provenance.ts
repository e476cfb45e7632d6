/**
 * What a push knew about the tree it sent: the git commit and whether the work tree was dirty, recorded
 * in the ledger per destination (pushes/<key>) so a later pull's manifest can say what code produced it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import type { Ledger } from "../ledger/store.js";

export interface PushRecord {
  host: string;
  host_key: string;
  remote_dir: string;
  local_dir: string;
  /** HEAD commit of the pushed tree, when it is a git work tree */
  git_commit?: string;
  /** true when the work tree had uncommitted changes (tracked or untracked, ignored files aside) */
  git_dirty?: boolean;
  files: number;
  bytes: number;
  pushed_at: string;
}

const keyOf = (hostKey: string, remoteDir: string): string => `pushes/${createHash("sha256").update(`${hostKey}\0${remoteDir}`).digest("hex").slice(0, 24)}`;

/** HEAD and dirty state of a local tree, or {} when git is absent or the tree is not a work tree. */
export function gitState(dir: string): { git_commit?: string; git_dirty?: boolean } {
  const head = spawnSync("git", ["-C", dir, "rev-parse", "--verify", "-q", "HEAD"], { encoding: "utf8", timeout: 15_000 });
  if (head.status !== 0 || !/^[0-9a-f]{40,64}$/.test(head.stdout.trim())) return {};
  const st = spawnSync("git", ["-C", dir, "status", "--porcelain", "-z", "--untracked-files=normal"], { encoding: "buffer", timeout: 30_000, maxBuffer: 64 * 1024 * 1024 });
  return { git_commit: head.stdout.trim(), ...(st.status === 0 ? { git_dirty: st.stdout.length > 0 } : {}) };
}

export async function recordPush(ledger: Ledger, p: { host: string; hostKey: string; remoteDir: string; localDir: string; files: number;
  bytes: number }): Promise<PushRecord> {
  const rec: PushRecord = {
    host: p.host, host_key: p.hostKey, remote_dir: p.remoteDir, local_dir: p.localDir, ...gitState(p.localDir),
    files: p.files, bytes: p.bytes, pushed_at: new Date().toISOString(),
  };
  ledger.write(keyOf(p.hostKey, p.remoteDir), rec);
  return rec;
}

/** The push recorded for a box directory (or the nearest enclosing pushed directory), if any. */
export function pushFor(ledger: Ledger, hostKey: string, remoteDir: string): PushRecord | undefined {
  for (let d = remoteDir.replace(/\/+$/, ""); d; d = d.slice(0, Math.max(0, d.lastIndexOf("/")))) {
    const r = ledger.read<PushRecord | null>(keyOf(hostKey, d), null);
    if (r) return r;
  }
  return ledger.read<PushRecord | null>(keyOf(hostKey, "/"), null) ?? undefined;
}

const MAX_SCRIPT = 512 * 1024;

/**
 * For the input guard: the local text of a file of a tree pushed to `host` (by the name it was pushed
 * under), by its absolute path on the box — the deepest recorded push that holds the path answers —
 * or undefined (not from a push, not a regular file, too big, unreadable). Scripts a cell or
 * remote_exec runs from the pushed tree are judged by what they say.
 */
export function pushedFileLookup(ledger: Ledger, host: string): ((remotePath: string) => string | undefined) | undefined {
  let recs: PushRecord[] = [];
  try {
    const dir = path.join(ledger.dir, "pushes");
    for (const f of fs.readdirSync(dir)) {
      if (!f.endsWith(".json")) continue;
      const r = ledger.read<PushRecord | null>(`pushes/${f.slice(0, -5)}`, null);
      if (r && r.host === host && r.remote_dir && r.local_dir) recs.push(r);
    }
  } catch { return undefined; }
  if (recs.length === 0) return undefined;
  recs = recs.sort((a, b) => b.remote_dir.length - a.remote_dir.length);
  return (remotePath) => {
    const r = recs.find((x) => remotePath.startsWith(x.remote_dir.replace(/\/+$/, "") + "/"));
    if (!r) return undefined;
    const rel = remotePath.slice(r.remote_dir.replace(/\/+$/, "").length + 1);
    if (rel.split("/").includes("..")) return undefined;
    try {
      const local = path.join(r.local_dir, rel);
      const st = fs.statSync(local);
      return st.isFile() && st.size <= MAX_SCRIPT ? fs.readFileSync(local, "utf8") : undefined;
    } catch {
      return undefined;
    }
  };
}
