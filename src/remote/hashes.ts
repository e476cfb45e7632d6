/**
 * The box hashes its own files: one round trip running scripts/hash_tree.sh, JSON lines back.
 * Used by pull_verify (compare with the local copies) and by request_teardown (do the receipt's hashes still hold?).
 */
import { RefusalError } from "../common/result.js";
import type { Remote } from "./types.js";

export interface RemoteFileHash {
  path: string;
  bytes: number;
  sha256: string;
}

export interface RemoteHashTree {
  /** the root as the box resolved it (absolute, symlinks resolved); "" when it does not exist */
  root: string;
  exists: boolean;
  /** whether the box has rsync on PATH */
  hasRsync: boolean;
  /** the box's rsync version ("3.2.7"), "" when unknown */
  rsyncVersion: string;
  files: RemoteFileHash[];
  /** requested paths that are not regular files on the box */
  missing: string[];
}

/** Parse hash_tree.sh output. Throws when the closing {"done":true} line is absent (output cut short). */
export function parseHashTree(stdout: string): RemoteHashTree {
  const out: RemoteHashTree = { root: "", exists: false, hasRsync: false, rsyncVersion: "", files: [], missing: [] };
  let done = false;
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    let o: Record<string, unknown>;
    try { o = JSON.parse(line) as Record<string, unknown>; } catch { continue; }
    if (typeof o.root === "string") {
      out.exists = o.exists === true;
      out.hasRsync = o.rsync === true;
      out.rsyncVersion = typeof o.rsync_version === "string" ? o.rsync_version : "";
      out.root = out.exists ? o.root : "";
    } else if (o.done === true) {
      done = true;
    } else if (typeof o.path === "string") {
      if (o.missing === true) out.missing.push(o.path);
      else if (typeof o.sha256 === "string" && /^[0-9a-f]{64}$/.test(o.sha256)) {
        out.files.push({ path: o.path, bytes: Number(o.bytes ?? 0), sha256: o.sha256 });
      }
    }
  }
  if (!done) throw new Error("hash_tree.sh output ended early (no done line)");
  out.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

export async function remoteHashTree(
  remote: Remote,
  host: string,
  root: string,
  paths?: string[],
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<RemoteHashTree> {
  const env: Record<string, string> = {};
  if (paths && paths.length) env.RGT_HASH_PATHS = paths.join("\n");
  const r = await remote.runScript(host, "hash_tree.sh", [root], {
    env,
    timeoutMs: opts.timeoutMs ?? 600_000,
    maxOutputBytes: 256 * 1024 * 1024,
    signal: opts.signal,
  });
  if (r.timedOut) throw new RefusalError("TIMEOUT", `hashing ${root} on ${host} ran past its time limit`, "Hash a smaller directory, or retry when the box is less busy.");
  if (r.truncated) throw new RefusalError("INTERNAL", `hash listing of ${root} on ${host} was too large to read back`, "Pull a narrower remote_path.");
  try {
    return parseHashTree(r.stdout);
  } catch (e) {
    throw new RefusalError(
      "INTERNAL",
      `the box could not hash ${root}: ${(e as Error).message}; exit ${r.exitCode}; ${r.stderr.trim().slice(-300)}`,
      "Check that bash 4+, coreutils (sha256sum) and findutils exist on the box; run probe_env.",
    );
  }
}

/** The shared signature: the box's sha256 of every file under root (or of the listed relative paths). */
export async function remoteHashes(remote: Remote, host: string, root: string, paths?: string[]): Promise<RemoteFileHash[]> {
  return (await remoteHashTree(remote, host, root, paths)).files;
}
