/**
 * Where push_code put which local tree: host → remote dir (resolved on the box) → local dir. The input
 * guard reads the scripts a cell or remote_exec runs from the pushed tree (their local text), so what
 * the server itself pushed is judged too. The last push to a host/remote_dir wins.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Ledger } from "./store.js";

interface PushRecord { host: string; remote_dir: string; local_dir: string; at: string }
interface PushesDoc { pushes: PushRecord[] }

const DOC = "pushes";
const MAX_FILE = 512 * 1024;

export function recordPush(ledger: Ledger, host: string, remoteDir: string, localDir: string): void {
  const doc = ledger.read<PushesDoc>(DOC, { pushes: [] });
  const rest = doc.pushes.filter((p) => !(p.host === host && p.remote_dir === remoteDir));
  rest.push({ host, remote_dir: remoteDir.replace(/\/+$/, "") || "/", local_dir: localDir, at: new Date().toISOString() });
  ledger.write(DOC, { pushes: rest.slice(-200) });
}

/**
 * A lookup for the guard: the local text of the pushed file at an absolute remote path on `host`, or
 * undefined (not from a push, not a regular file, too big, unreadable).
 */
export function pushedFileLookup(ledger: Ledger, host: string): ((remotePath: string) => string | undefined) | undefined {
  let pushes: PushRecord[];
  try { pushes = ledger.read<PushesDoc>(DOC, { pushes: [] }).pushes.filter((p) => p.host === host); } catch { return undefined; }
  if (pushes.length === 0) return undefined;
  // the deepest remote dir that holds the path answers
  pushes.sort((a, b) => b.remote_dir.length - a.remote_dir.length);
  return (remotePath) => {
    const p = pushes.find((x) => remotePath.startsWith(x.remote_dir + "/"));
    if (!p) return undefined;
    const rel = remotePath.slice(p.remote_dir.length + 1);
    if (rel.split("/").includes("..")) return undefined;
    const local = path.join(p.local_dir, rel);
    try {
      const st = fs.statSync(local);
      if (!st.isFile() || st.size > MAX_FILE) return undefined;
      return fs.readFileSync(local, "utf8");
    } catch {
      return undefined;
    }
  };
}
