/**
 * SFTP transfer, the fallback when a box has no rsync. Per-file resume: each file is written to
 * <dir>/.rgt-partial/<name> (the same partial dir rsync uses) and renamed into place when complete;
 * a re-run continues a partial file from where it stopped instead of starting over. Writes are pipelined
 * (several requests in flight) so throughput does not collapse on a high-latency link.
 */
import * as fs from "node:fs";
import { sha256FileSync } from "../verify/hash.js";
import * as path from "node:path";
import type { SFTPWrapper, Stats } from "ssh2";
import { PARTIAL_DIR } from "./rsync.js";

const CHUNK = 32 * 1024;
const IN_FLIGHT = 16;
/** bytes at the end of a partial file not trusted on resume (the requests that may have been in flight) */
const RESUME_BACKOFF = CHUNK * IN_FLIGHT;

export interface SftpTransferFile { path: string; bytes: number; mtimeMs?: number }

export interface SftpTransferResult {
  filesTransferred: number;
  /** payload bytes actually moved this call (resumed bytes not counted) */
  bytesTransferred: number;
  resumedFiles: number;
  failed: { path: string; error: string }[];
}

export interface SftpOptions {
  onProgress?: (bytesDone: number) => void;
  onFile?: (rel: string) => void;
  /** a file failing stops the whole call (default false: record it and go on) */
  stopOnError?: boolean;
  deadline?: number;
  /**
   * SFTP times are whole seconds, so size + mtime cannot tell a same-size edit made within the same second.
   * Push: paths in `force` are sent even when size and mtime match (the caller found their content differs).
   * Pull: where `remoteSha256` knows a file, a local copy that matches on size + mtime is hashed before it is kept.
   */
  force?: Set<string>;
  remoteSha256?: Map<string, string>;
}


const p = <T>(fn: (cb: (err: Error | null | undefined, v: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));

async function rstat(sftp: SFTPWrapper, file: string): Promise<Stats | null> {
  try { return await p<Stats>((cb) => sftp.stat(file, cb)); } catch { return null; }
}

async function rmkdirp(sftp: SFTPWrapper, dir: string, made: Set<string>): Promise<void> {
  if (made.has(dir) || dir === "/" || dir === ".") return;
  const st = await rstat(sftp, dir);
  if (!st) {
    await rmkdirp(sftp, path.posix.dirname(dir), made);
    try { await p<void>((cb) => sftp.mkdir(dir, (e) => cb(e, undefined))); } catch (e) {
      if (!(await rstat(sftp, dir))) throw e;
    }
  }
  made.add(dir);
}

async function rrename(sftp: SFTPWrapper, from: string, to: string): Promise<void> {
  const ext = (sftp as unknown as { ext_openssh_rename?: (a: string, b: string, cb: (e?: Error) => void) => void }).ext_openssh_rename;
  if (ext) {
    try { await p<void>((cb) => ext.call(sftp, from, to, (e) => cb(e, undefined))); return; } catch { /* fall through */ }
  }
  try { await p<void>((cb) => sftp.unlink(to, (e) => cb(e, undefined))); } catch { /* absent */ }
  await p<void>((cb) => sftp.rename(from, to, (e) => cb(e, undefined)));
}

function checkDeadline(o: SftpOptions): void {
  if (o.deadline && Date.now() > o.deadline) throw new Error("transfer ran past its time limit");
}

/**
 * The per-file loop both directions share: each file is one attempt; a failure is recorded against that
 * file (or ends the call with stopOnError) and the rest go on. `one` returns the file's size when the
 * copy already matched and nothing moved, or null when it sent the file.
 */
async function eachFile(files: SftpTransferFile[], o: SftpOptions, one: (f: SftpTransferFile,
    res: SftpTransferResult) => Promise<number | null>): Promise<SftpTransferResult> {
  const res: SftpTransferResult = { filesTransferred: 0, bytesTransferred: 0, resumedFiles: 0, failed: [] };
  for (const f of files) {
    checkDeadline(o);
    try {
      if ((await one(f, res)) === null) res.filesTransferred++;
      o.onFile?.(f.path);
    } catch (e) {
      res.failed.push({ path: f.path, error: (e as Error).message.slice(0, 200) });
      if (o.stopOnError) break;
    }
  }
  return res;
}

/**
 * Move the byte range [from, size) in CHUNK pieces with up to IN_FLIGHT requests outstanding (SFTP's
 * round trips otherwise dominate); `chunk` moves one piece and returns how many bytes it moved. The
 * first failure stops new requests and is thrown once the outstanding ones settle.
 */
async function pipelined(from: number, size: number, o: SftpOptions, chunk: (at: number, len: number) => Promise<number>,
    moved: (n: number) => void): Promise<void> {
  const inflight = new Set<Promise<void>>();
  let failure: Error | undefined;
  for (let pos = from; pos < size && !failure; pos += CHUNK) {
    checkDeadline(o);
    const at = pos;
    const len = Math.min(CHUNK, size - pos);
    const tracked: Promise<void> = chunk(at, len).then(moved, (e: Error) => { failure = e; }).finally(() => inflight.delete(tracked));
    inflight.add(tracked);
    if (inflight.size >= IN_FLIGHT) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  if (failure) throw failure;
}

/** Push local files (relative to localDir) into remoteDir (absolute). */
export async function sftpPush(sftp: SFTPWrapper, localDir: string, remoteDir: string, files: SftpTransferFile[],
    o: SftpOptions = {}): Promise<SftpTransferResult> {
  const made = new Set<string>();
  let done = 0;
  return eachFile(files, o, async (f, res) => {
    const local = path.join(localDir, f.path);
    const target = path.posix.join(remoteDir, f.path);
    const dir = path.posix.dirname(target);
    const partial = path.posix.join(dir, PARTIAL_DIR, path.posix.basename(target));
    const lst = fs.statSync(local);
    const mtime = Math.floor(lst.mtimeMs / 1000);
    const cur = await rstat(sftp, target);
    if (cur && cur.size === lst.size && cur.mtime === mtime && !o.force?.has(f.path)) { done += lst.size; o.onProgress?.(done); return lst.size; }
    await rmkdirp(sftp, path.posix.join(dir, PARTIAL_DIR), made);
    const part = await rstat(sftp, partial);
    let offset = 0;
    if (part && part.size > 0 && part.size <= lst.size) { offset = Math.max(0, part.size - RESUME_BACKOFF); res.resumedFiles++; }
    const handle = await p<Buffer>((cb) => sftp.open(partial, offset > 0 ? "r+" : "w", 0o644, cb));
    const fd = fs.openSync(local, "r");
    try {
      await pipelined(offset, lst.size, o, async (at, len) => {
        const buf = Buffer.allocUnsafe(len);
        const n = fs.readSync(fd, buf, 0, len, at);
        if (n !== len) throw new Error(`short read at ${at}: ${n} of ${len} bytes (file changing here?)`);
        await p<void>((cb) => sftp.write(handle, buf, 0, n, at, (e) => cb(e, undefined)));
        return n;
      }, (n) => { res.bytesTransferred += n; done += n; o.onProgress?.(done); });
    } finally {
      fs.closeSync(fd);
      await p<void>((cb) => sftp.close(handle, (e) => cb(e, undefined))).catch(() => {});
    }
    await p<void>((cb) => sftp.utimes(partial, mtime, mtime, (e) => cb(e, undefined)));
    await rrename(sftp, partial, target);
    return null;
  });
}

/** Pull remote files (relative to remoteDir, absolute) into localDir. */
export async function sftpPull(sftp: SFTPWrapper, remoteDir: string, localDir: string, files: SftpTransferFile[],
    o: SftpOptions = {}): Promise<SftpTransferResult> {
  let done = 0;
  return eachFile(files, o, async (f, res) => {
    const src = path.posix.join(remoteDir, f.path);
    const target = path.join(localDir, f.path);
    const partialDir = path.join(path.dirname(target), PARTIAL_DIR);
    const partial = path.join(partialDir, path.basename(target));
    const rst = await rstat(sftp, src);
    if (!rst) throw new Error("vanished on the box");
    let cur: fs.Stats | null = null;
    try { cur = fs.statSync(target); } catch { /* absent */ }
    const want = o.remoteSha256?.get(f.path);
    if (cur && cur.size === rst.size && Math.floor(cur.mtimeMs / 1000) === rst.mtime && (!want || sha256FileSync(target) === want)) {
      done += rst.size; o.onProgress?.(done); return rst.size;
    }
    fs.mkdirSync(partialDir, { recursive: true });
    let offset = 0;
    let partSize = -1;
    try { partSize = fs.statSync(partial).size; } catch { /* none */ }
    if (partSize > 0 && partSize <= rst.size) { offset = Math.max(0, partSize - RESUME_BACKOFF); res.resumedFiles++; }
    const fd = fs.openSync(partial, offset > 0 ? "r+" : "w", 0o644);
    const handle = await p<Buffer>((cb) => sftp.open(src, "r", cb));
    try {
      await pipelined(offset, rst.size, o, async (at, len) => {
        const buf = Buffer.allocUnsafe(len);
        const n = await p<number>((cb) => sftp.read(handle, buf, 0, len, at, (e, k) => cb(e, k)));
        if (n !== len) throw new Error(`short read at ${at}: ${n} of ${len} bytes (file changing on the box?)`);
        fs.writeSync(fd, buf, 0, n, at);
        return n;
      }, (n) => { res.bytesTransferred += n; done += n; o.onProgress?.(done); });
      fs.ftruncateSync(fd, rst.size);
    } finally {
      fs.closeSync(fd);
      await p<void>((cb) => sftp.close(handle, (e) => cb(e, undefined))).catch(() => {});
    }
    fs.utimesSync(partial, rst.mtime, rst.mtime);
    fs.renameSync(partial, target);
    try { fs.rmdirSync(partialDir); } catch { /* not empty */ }
    return null;
  });
}
