/**
 * SFTP, the fallback when a box has no rsync (or this machine's rsync lacks a flag we need).
 * `wrapSftp` puts ssh2's client behind the project's own SftpSession (src/remote/types.ts): nothing
 * above src/remote/ sees ssh2. `sftpPush` / `sftpPull` move a file list with per-file resume: each file
 * is written to <dir>/.rgt-partial/<name> (the partial dir rsync uses) and renamed into place when
 * complete; the partial dirs are removed once empty. Writes are pipelined (several requests in flight)
 * so throughput does not collapse on a high-latency link. Symbolic links in the list are carried as
 * links (their target text), never followed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { SFTPWrapper, Stats } from "ssh2";
import { sha256FileSync } from "../verify/hash.js";
import { PARTIAL_DIR } from "./rsync.js";
import type { SftpAttrs, SftpFile, SftpSession } from "./types.js";

const CHUNK = 32 * 1024;
const IN_FLIGHT = 16;
/** bytes at the end of a partial file not trusted on resume (the requests that may have been in flight) */
const RESUME_BACKOFF = CHUNK * IN_FLIGHT;

const cb = <T>(fn: (done: (err: Error | null | undefined, v: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
const cb0 = (fn: (done: (err?: Error | null) => void) => void): Promise<void> =>
  new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));

const attrs = (s: Stats): SftpAttrs => ({
  size: s.size, mtime: s.mtime, mode: s.mode, isFile: s.isFile(), isDirectory: s.isDirectory(), isSymlink: s.isSymbolicLink(),
});

/** ssh2's SFTP client behind the project's SftpSession. */
export function wrapSftp(w: SFTPWrapper): SftpSession {
  const ext = (w as unknown as { ext_openssh_rename?: (a: string, b: string, cb: (e?: Error) => void) => void }).ext_openssh_rename;
  return {
    stat: (p) => cb<Stats>((d) => w.stat(p, d)).then(attrs, () => null),
    lstat: (p) => cb<Stats>((d) => w.lstat(p, d)).then(attrs, () => null),
    mkdir: (p) => cb0((d) => w.mkdir(p, d)),
    rmdir: (p) => cb0((d) => w.rmdir(p, d)),
    unlink: (p) => cb0((d) => w.unlink(p, d)),
    async rename(from, to) {
      if (ext) {
        try { await cb0((d) => ext.call(w, from, to, d)); return; } catch { /* fall through */ }
      }
      await cb0((d) => w.unlink(to, d)).catch(() => {});
      await cb0((d) => w.rename(from, to, d));
    },
    utimes: (p, a, m) => cb0((d) => w.utimes(p, a, m, d)),
    readlink: (p) => cb<string>((d) => w.readlink(p, d)),
    symlink: (target, linkPath) => cb0((d) => w.symlink(target, linkPath, d)),
    async open(p, flags, mode = 0o644): Promise<SftpFile> {
      const h = await cb<Buffer>((d) => w.open(p, flags, mode, d));
      return {
        read: (buf, off, len, pos) => cb<number>((d) => w.read(h, buf, off, len, pos, (e, n) => d(e, n))),
        write: (buf, off, len, pos) => cb0((d) => w.write(h, buf, off, len, pos, d)),
        close: () => cb0((d) => w.close(h, d)),
      };
    },
    end: () => w.end(),
  };
}

export interface SftpTransferFile {
  path: string;
  bytes: number;
  /** a symbolic link: carried as a link with this target text */
  link?: string;
}

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
  signal?: AbortSignal;
  /**
   * SFTP times are whole seconds, so size + mtime cannot tell a same-size edit made within the same second.
   * Push: paths in `force` are sent even when size and mtime match (the caller found their content differs).
   * Pull: where `remoteSha256` knows a file, a local copy that matches on size + mtime is hashed before it is kept.
   */
  force?: Set<string>;
  remoteSha256?: Map<string, string>;
}

export async function rmkdirp(sftp: SftpSession, dir: string, made: Set<string>): Promise<void> {
  if (made.has(dir) || dir === "/" || dir === ".") return;
  const st = await sftp.stat(dir);
  if (!st) {
    await rmkdirp(sftp, path.posix.dirname(dir), made);
    try { await sftp.mkdir(dir); } catch (e) {
      if (!(await sftp.stat(dir))) throw e;
    }
  }
  made.add(dir);
}

function checkDeadline(o: SftpOptions): void {
  if (o.signal?.aborted) throw new Error("cancelled");
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
    try {
      checkDeadline(o);
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
export async function pipelined(from: number, size: number, o: SftpOptions, chunk: (at: number, len: number) => Promise<number>,
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
export async function sftpPush(sftp: SftpSession, localDir: string, remoteDir: string, files: SftpTransferFile[],
  o: SftpOptions = {}): Promise<SftpTransferResult> {
  const made = new Set<string>();
  const partialDirs = new Set<string>();
  let done = 0;
  try {
    return await eachFile(files, o, async (f, res) => {
      const local = path.join(localDir, f.path);
      const target = path.posix.join(remoteDir, f.path);
      const dir = path.posix.dirname(target);
      if (f.link !== undefined) {
        const cur = await sftp.lstat(target);
        if (cur?.isSymlink && (await sftp.readlink(target).catch(() => "")) === f.link) return 0;
        await rmkdirp(sftp, dir, made);
        if (cur) await sftp.unlink(target);
        await sftp.symlink(f.link, target);
        return null;
      }
      const pdir = path.posix.join(dir, PARTIAL_DIR);
      const partial = path.posix.join(pdir, path.posix.basename(target));
      const lst = fs.lstatSync(local);
      if (!lst.isFile()) throw new Error("not a regular file here any more");
      const mtime = Math.floor(lst.mtimeMs / 1000);
      const cur = await sftp.lstat(target);
      if (cur?.isFile && cur.size === lst.size && cur.mtime === mtime && !o.force?.has(f.path)) { done += lst.size; o.onProgress?.(done); return lst.size; }
      await rmkdirp(sftp, pdir, made);
      partialDirs.add(pdir);
      const part = await sftp.stat(partial);
      let offset = 0;
      if (part && part.size > 0 && part.size <= lst.size) { offset = Math.max(0, part.size - RESUME_BACKOFF); res.resumedFiles++; }
      const handle = await sftp.open(partial, offset > 0 ? "r+" : "w", 0o644);
      const fd = fs.openSync(local, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0));
      try {
        await pipelined(offset, lst.size, o, async (at, len) => {
          const buf = Buffer.allocUnsafe(len);
          const n = fs.readSync(fd, buf, 0, len, at);
          if (n !== len) throw new Error(`short read at ${at}: ${n} of ${len} bytes (file changing here?)`);
          await handle.write(buf, 0, n, at);
          return n;
        }, (n) => { res.bytesTransferred += n; done += n; o.onProgress?.(done); });
      } finally {
        fs.closeSync(fd);
        await handle.close().catch(() => {});
      }
      await sftp.utimes(partial, mtime, mtime);
      if (cur?.isSymlink || cur?.isDirectory) await sftp.unlink(target).catch(() => {});
      await sftp.rename(partial, target);
      return null;
    });
  } finally {
    // a partial dir that still holds a cut file stays for the resume; empty ones go
    for (const d of partialDirs) await sftp.rmdir(d).catch(() => {});
  }
}

/** Pull remote files (relative to remoteDir, absolute) into localDir. */
export async function sftpPull(sftp: SftpSession, remoteDir: string, localDir: string, files: SftpTransferFile[],
  o: SftpOptions = {}): Promise<SftpTransferResult> {
  let done = 0;
  return eachFile(files, o, async (f, res) => {
    const src = path.posix.join(remoteDir, f.path);
    const target = path.join(localDir, f.path);
    if (f.link !== undefined) {
      let cur: string | undefined;
      try { cur = fs.readlinkSync(target); } catch { /* absent or not a link */ }
      if (cur === f.link) return 0;
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.rmSync(target, { force: true });
      fs.symlinkSync(f.link, target);
      return null;
    }
    const partialDir = path.join(path.dirname(target), PARTIAL_DIR);
    const partial = path.join(partialDir, path.basename(target));
    const rst = await sftp.lstat(src);
    if (!rst || !rst.isFile) throw new Error("vanished on the box");
    let cur: fs.Stats | null = null;
    try { cur = fs.lstatSync(target); } catch { /* absent */ }
    const want = o.remoteSha256?.get(f.path);
    if (cur?.isFile() && cur.size === rst.size && Math.floor(cur.mtimeMs / 1000) === rst.mtime && (!want || sha256FileSync(target) === want)) {
      done += rst.size; o.onProgress?.(done); return rst.size;
    }
    fs.mkdirSync(partialDir, { recursive: true });
    let offset = 0;
    let partSize = -1;
    try { partSize = fs.statSync(partial).size; } catch { /* none */ }
    if (partSize > 0 && partSize <= rst.size) { offset = Math.max(0, partSize - RESUME_BACKOFF); res.resumedFiles++; }
    const fd = fs.openSync(partial, offset > 0 ? "r+" : "w", 0o644);
    const handle = await sftp.open(src, "r");
    try {
      await pipelined(offset, rst.size, o, async (at, len) => {
        const buf = Buffer.allocUnsafe(len);
        const n = await handle.read(buf, 0, len, at);
        if (n !== len) throw new Error(`short read at ${at}: ${n} of ${len} bytes (file changing on the box?)`);
        fs.writeSync(fd, buf, 0, n, at);
        return n;
      }, (n) => { res.bytesTransferred += n; done += n; o.onProgress?.(done); });
      fs.ftruncateSync(fd, rst.size);
    } finally {
      fs.closeSync(fd);
      await handle.close().catch(() => {});
    }
    fs.utimesSync(partial, rst.mtime, rst.mtime);
    if (cur && !cur.isFile()) fs.rmSync(target, { recursive: false, force: true });
    fs.renameSync(partial, target);
    try { fs.rmdirSync(partialDir); } catch { /* not empty */ }
    return null;
  });
}
