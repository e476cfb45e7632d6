/**
 * Local artifact hashing: streaming sha256 of files on this machine (the server's side of a pull).
 * Reads in 256 KiB chunks so memory stays flat whatever the file size.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";

export interface FileHash {
  path: string;
  bytes: number;
  sha256: string;
}

const CHUNK = 256 * 1024;

/** sha256 + size of one file, streamed. */
export async function sha256File(file: string): Promise<{ bytes: number; sha256: string }> {
  const h = createHash("sha256");
  let bytes = 0;
  const stream = fs.createReadStream(file, { highWaterMark: CHUNK });
  for await (const chunk of stream) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: h.digest("hex") };
}

const SMALL = 1024 * 1024;

/**
 * sha256 + size of a file expected to be small: one synchronous read, about 3× cheaper than a stream
 * per file when there are thousands (and no 256 KiB stream buffer each). A file that turns out larger
 * than 1 MiB is streamed instead.
 */
export async function sha256FileQuick(file: string, bytesHint: number): Promise<{ bytes: number; sha256: string }> {
  if (bytesHint > SMALL) return sha256File(file);
  const fd = fs.openSync(file, "r");
  let buf: Buffer;
  try {
    const size = fs.fstatSync(fd).size;
    if (size > SMALL) return await sha256File(file);
    buf = Buffer.allocUnsafe(size + 1);
    let n = 0;
    for (let r; n < buf.length && (r = fs.readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += r;
    if (n > size) return await sha256File(file); // grew while read: take it whole
    buf = buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
  return { bytes: buf.length, sha256: createHash("sha256").update(buf).digest("hex") };
}

/** sha256 of one file, read synchronously in chunks (for the few small files a quick check doubts). */
export function sha256FileSync(file: string): string {
  const h = createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest("hex");
}

/** Every regular file under root (relative, "/"-separated, sorted). Symlinks are not followed. */
export function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const abs = rel ? path.join(root, rel) : root;
    let entries: fs.Dirent[];
    try { entries = fs.readdirSync(abs, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) out.push(r);
    }
  };
  walk("");
  return out.sort();
}

/** Hash the given relative paths under root with a small concurrency; absent files come back as null. */
export async function hashLocal(root: string, rels: string[], concurrency = 2): Promise<Map<string, FileHash | null>> {
  const out = new Map<string, FileHash | null>();
  let i = 0;
  const worker = async (): Promise<void> => {
    while (i < rels.length) {
      const rel = rels[i++];
      try {
        const h = await sha256File(path.join(root, rel));
        out.set(rel, { path: rel, ...h });
      } catch {
        out.set(rel, null);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  return out;
}

/**
 * The manifest hash of a file set: sha256 over sorted "sha256  bytes  path\n" lines.
 * Order-independent and changes if any file's content, size or name changes.
 */
export function manifestSha256(files: { path: string; bytes: number; sha256: string }[]): string {
  const lines = files
    .map((f) => `${f.sha256}  ${f.bytes}  ${f.path}\n`)
    .sort();
  const h = createHash("sha256");
  for (const l of lines) h.update(l);
  return h.digest("hex");
}
