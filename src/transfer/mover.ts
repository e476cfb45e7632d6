/**
 * Movers: how the bytes of a file list travel between this machine and one directory on a box.
 * The transfer service (src/transfer/index.ts) decides WHAT moves and judges the result; a mover only
 * moves. Two exist: rsync (one local rsync over the pool's OpenSSH settings) and SFTP (over the pooled
 * ssh2 connection). A parallel mover splits a job into several and runs them side by side.
 */
import { RefusalError } from "../common/result.js";
import type { Remote } from "../remote/types.js";
import { runRsync } from "../remote/rsync.js";
import { sftpPull, sftpPush } from "../remote/sftp.js";

export interface MoveFile {
  path: string;
  bytes: number;
  /** the box's sha256 when known (pull): a local copy equal on size + whole-second mtime is hashed before it is kept */
  sha256?: string;
  /** a symbolic link carried as a link with this target text */
  link?: string;
}

export interface MoveJob {
  direction: "push" | "pull";
  /** local directory: the source of a push, the destination of a pull */
  localDir: string;
  /** absolute directory on the box */
  remoteDir: string;
  files: MoveFile[];
  /** send these even when size and mtime say the copy is current (same-second same-size edits, the repair pass) */
  force?: Set<string>;
  /** absolute ms epoch after which the mover gives up */
  deadline: number;
  signal: AbortSignal;
  /** cumulative payload bytes this job has covered (moved or found current) */
  onProgress?: (bytesDone: number) => void;
  /** pid of a local child process the mover started (recorded in the transfer lock) */
  onChild?: (pid: number) => void;
  /** a file rsync reports done (a hint for early hashing: the caller re-checks what does not match) */
  onFile?: (rel: string) => void;
  /**
   * `files` is everything the box listed under remoteDir: rsync walks the tree itself instead of reading
   * a --files-from list (several times faster on many small files). Whatever it reports beyond `files`
   * (created on the box after the listing) is the caller's to undo.
   */
  wholeTree?: boolean;
}

export interface MoveResult {
  filesMoved: number;
  bytesMoved: number;
  /** bytes rsync's delta algorithm found already on the other side */
  bytesReused: number;
  resumedFiles: number;
  /** per-file failures (SFTP); the other files went on */
  failed: { path: string; error: string }[];
  /** the whole job failed (rsync exit, time limit): one line */
  error?: string;
  /** the box's login shell printed into the stream: re-running cannot help */
  shellNoise?: boolean;
}

export interface Mover {
  readonly name: "rsync" | "sftp";
  move(job: MoveJob): Promise<MoveResult>;
}

/** One local rsync per job; `force` becomes --ignore-times over exactly those files. */
export function rsyncMover(remote: Remote, host: string, remoteVersion: string): Mover {
  return {
    name: "rsync",
    async move(job) {
      const transport = await remote.sshTransport(host);
      const forced = job.force?.size ? job.files.filter((f) => job.force!.has(f.path)) : [];
      const runOnce = async (files: MoveFile[], extraArgs: string[] = []): Promise<MoveResult> => {
        const r = await runRsync({
          transport, direction: job.direction, localDir: job.localDir, remoteDir: job.remoteDir, remoteVersion,
          // the whole tree only when this run is the whole job (not the forced subset or the rest beside it)
          files: job.wholeTree && files === job.files ? undefined : files.map((f) => f.path),
          extraArgs, timeoutMs: Math.max(10_000, job.deadline - Date.now()), signal: job.signal,
          onProgress: (b) => job.onProgress?.(b), onSpawn: job.onChild, onFile: job.onFile,
        });
        return {
          filesMoved: r.filesTransferred,
          bytesMoved: r.haveStats ? (job.direction === "push" ? r.bytesSent : r.bytesReceived) : 0,
          bytesReused: r.matchedData,
          resumedFiles: 0,
          failed: [],
          ...(r.ok ? {} : { error: `rsync exit ${r.exitCode}${r.timedOut ? " (timed out)" : ""}: ${r.stderrTail.slice(-300) || "no message"}`, shellNoise: r.shellNoise }),
        };
      };
      const rest = forced.length ? job.files.filter((f) => !job.force!.has(f.path)) : job.files;
      const a = rest.length ? await runOnce(rest) : undefined;
      const b = forced.length ? await runOnce(forced, ["--ignore-times"]) : undefined;
      return combine([a, b].filter((x): x is MoveResult => !!x));
    },
  };
}

/** SFTP over the pooled connection; one session per job. */
export function sftpMover(remote: Remote, host: string): Mover {
  return {
    name: "sftp",
    async move(job) {
      const sftp = await remote.sftp(host);
      try {
        const o = {
          deadline: job.deadline, signal: job.signal, force: job.force, onProgress: job.onProgress,
          remoteSha256: new Map(job.files.filter((f) => f.sha256).map((f) => [f.path, f.sha256!] as [string, string])),
        };
        const r = job.direction === "push"
          ? await sftpPush(sftp, job.localDir, job.remoteDir, job.files, o)
          : await sftpPull(sftp, job.remoteDir, job.localDir, job.files, o);
        return { filesMoved: r.filesTransferred, bytesMoved: r.bytesTransferred, bytesReused: 0, resumedFiles: r.resumedFiles, failed: r.failed };
      } catch (e) {
        if (e instanceof RefusalError) throw e;
        return { filesMoved: 0, bytesMoved: 0, bytesReused: 0, resumedFiles: 0, failed: [], error: (e as Error).message.slice(0, 300) };
      } finally {
        sftp.end();
      }
    },
  };
}

/** Sum of several results (a split job). */
export function combine(rs: MoveResult[]): MoveResult {
  const out: MoveResult = { filesMoved: 0, bytesMoved: 0, bytesReused: 0, resumedFiles: 0, failed: [] };
  for (const r of rs) {
    out.filesMoved += r.filesMoved;
    out.bytesMoved += r.bytesMoved;
    out.bytesReused += r.bytesReused;
    out.resumedFiles += r.resumedFiles;
    out.failed.push(...r.failed);
    if (r.error) out.error = out.error ? `${out.error}; ${r.error}` : r.error;
    if (r.shellNoise) out.shellNoise = true;
  }
  return out;
}
