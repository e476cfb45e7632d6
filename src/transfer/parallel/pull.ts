/**
 * Pull big files over several SFTP streams at once. Each file's missing bytes are cut into pieces
 * (plan.ts); every stream keeps its own window of read requests in flight and takes the next piece
 * as soon as the current one is fully requested, so no stream idles between pieces. Bytes land at their
 * offsets in a preallocated partial file (<dir>/.rgt-partial/<name>.prange); each finished piece is
 * appended to a sidecar record, so a cut transfer re-requests only what is missing. A file is hashed
 * (sha256) in order as its contiguous prefix lands, so the hash is ready when the last piece is; the
 * finished file is renamed into place with the box's mtime.
 * The first stream measures the round trip and its own throughput; chooseStreams decides how many more
 * to open. A stream that dies hands its unfinished pieces back to the others.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash, type Hash } from "node:crypto";
import { setting } from "../../common/config.js";
import { collector } from "../../common/memory.js";
import { PARTIAL_DIR } from "../../remote/rsync.js";
import type { SftpStream } from "../../remote/streams.js";
import type { SftpFile } from "../../remote/types.js";
import { coveredBytes, mergeRanges, missingRanges, planPieces, type Piece, type Range, type StreamChoice } from "./plan.js";
import { driveStreams } from "./drive.js";
import { createSidecar, loadSidecar, recordRange, RANGED_SUFFIX, SIDECAR_SUFFIX } from "./sidecar.js";

/** a file to pull; sha256 is "" while the box is still hashing it (see boxSha) */
export interface RangedFile { path: string; bytes: number; sha256: string }

export interface ParallelPullOptions {
  /** opens up to n more streams (after the first has been measured) */
  openMore: (n: number) => Promise<{ streams: SftpStream[]; shared: boolean }>;
  /** round trip already measured on the first stream (ms) */
  rttMs: number;
  cap?: number;
  /** rate worth aiming for, bytes/s (default 125 MB/s, a 1 Gbit/s line) */
  targetBps?: number;
  pieceBytes?: number;
  chunkBytes?: number;
  /** requests in flight per stream (chunkBytes × inFlight should fill the ssh channel window) */
  inFlight?: number;
  /** bytes the first stream moves before the stream count is decided */
  measureBytes?: number;
  signal?: AbortSignal;
  deadline?: number;
  onProgress?: (bytesDone: number) => void;
  /** the box's sha256 of each file, when the box has hashed them (asked only to keep a local copy without pulling it again) */
  boxSha?: Promise<Map<string, string>>;
}

export interface ParallelPullResult {
  filesTransferred: number;
  bytesTransferred: number;
  resumedFiles: number;
  /** files whose local copy already matched (size, mtime and sha256) */
  reusedFiles: number;
  failed: { path: string; error: string }[];
  /** sha256 of each file that is now in place, computed as its bytes landed */
  hashes: Map<string, { bytes: number; sha256: string }>;
  streams: number;
  choice: StreamChoice;
}

/** ssh2's and OpenSSH's channel window */
export const CHANNEL_WINDOW = 2 * 1024 * 1024;
const HASH_CHUNK = 1024 * 1024;
/** RGT_PARALLEL_LOG=<file>: a line per decision and per stream (development aid) */
export const trace = (msg: string): void => { const f = setting("RGT_PARALLEL_LOG"); if (f) fs.appendFileSync(f, `${new Date().toISOString()} ${msg}\n`); };

interface FileState {
  f: RangedFile;
  target: string;
  partial: string;
  sidecar: string;
  mtime: number;
  fd: number;
  done: Range[];
  left: number;
  hash: Hash;
  hashed: number;
  hashing?: Promise<void>;
  hashBuf?: Buffer;
  failed?: string;
  finished?: Promise<void>;
}

function prefixEnd(st: FileState): number {
  const gap = missingRanges(st.f.bytes, st.done)[0];
  return gap ? gap.start : st.f.bytes;
}

/** Feed the hash with whatever contiguous prefix has landed since it last ran. */
function advanceHash(st: FileState): Promise<void> {
  if (st.hashing) return st.hashing;
  st.hashing = (async () => {
    // one buffer per file, kept between calls (a fresh 1 MiB per landed piece was most of the garbage)
    const buf = (st.hashBuf ??= Buffer.allocUnsafe(HASH_CHUNK));
    for (let end = prefixEnd(st); st.hashed < end; end = prefixEnd(st)) {
      const n = fs.readSync(st.fd, buf, 0, Math.min(HASH_CHUNK, end - st.hashed), st.hashed);
      if (n <= 0) throw new Error(`short local read at ${st.hashed}`);
      st.hash.update(buf.subarray(0, n));
      st.hashed += n;
      // let the streams' replies in between chunks
      await new Promise<void>((r) => setImmediate(r));
    }
  })().finally(() => { st.hashing = undefined; });
  return st.hashing;
}

export async function parallelPull(
  first: SftpStream, remoteRoot: string, localDir: string, files: RangedFile[], o: ParallelPullOptions,
): Promise<ParallelPullResult> {
  const pieceBytes = o.pieceBytes ?? 2 ** 20;
  const chunk = o.chunkBytes ?? 128 * 1024;
  // two windows: the first one is the ramp
  const measureBytes = o.measureBytes ?? Math.max(4 * 2 ** 20, 2 * first.windowBytes);
  const inFlight = o.inFlight ?? Math.max(1, Math.floor(first.windowBytes / chunk));
  const res: ParallelPullResult = { filesTransferred: 0, bytesTransferred: 0, resumedFiles: 0, reusedFiles: 0, failed: [], hashes: new Map(), streams: 1, choice: { streams: 1, reason: "" } };
  const states: FileState[] = [];
  let doneBytes = 0;
  const progress = (n: number) => { doneBytes += n; o.onProgress?.(doneBytes); };
  // the packet buffers behind every landed chunk are garbage at once: collected as the bytes move
  const collect = collector(setting("RGT_PARALLEL_GC_MB") * 2 ** 20);

  // 1. what each file needs: the box's mtime, any partial copy and its record
  // the box's mtime of every file, asked all at once (SFTP pipelines the requests on one channel)
  const stats = await Promise.all(files.map((f) => first.sftp.stat(path.posix.join(remoteRoot, f.path))));
  for (const [fi, f] of files.entries()) {
    const target = path.join(localDir, f.path);
    const pdir = path.join(path.dirname(target), PARTIAL_DIR);
    const partial = path.join(pdir, path.basename(target) + RANGED_SUFFIX);
    const sidecar = path.join(pdir, path.basename(target) + SIDECAR_SUFFIX);
    const rst = stats[fi];
    if (!rst) { res.failed.push({ path: f.path, error: "vanished on the box" }); continue; }
    if (rst.size !== f.bytes) { res.failed.push({ path: f.path, error: `changed on the box since it was hashed (${f.bytes} → ${rst.size} bytes)` }); continue; }
    let cur: fs.Stats | null = null;
    try { cur = fs.statSync(target); } catch { /* absent */ }
    if (cur && cur.size === f.bytes && Math.floor(cur.mtimeMs / 1000) === rst.mtime) {
      const h = createHash("sha256");
      const fd = fs.openSync(target, "r");
      try {
        const b = Buffer.allocUnsafe(HASH_CHUNK);
        for (let n; (n = fs.readSync(fd, b, 0, b.length, null)) > 0; ) h.update(b.subarray(0, n));
      } finally { fs.closeSync(fd); }
      const sha = h.digest("hex");
      if (sha === (f.sha256 || (await o.boxSha)?.get(f.path))) {
        res.reusedFiles++;
        res.hashes.set(f.path, { bytes: f.bytes, sha256: sha });
        progress(f.bytes);
        continue;
      }
    }
    fs.mkdirSync(pdir, { recursive: true });
    // the version is told by size and the box's mtime: its hash may not be known yet, and the final hash decides anyway
    const id = { size: f.bytes, source: `mtime ${rst.mtime}` };
    let done: Range[] = [];
    let partSize = -1;
    try { partSize = fs.statSync(partial).size; } catch { /* none */ }
    if (partSize === f.bytes) done = loadSidecar(sidecar, id);
    let fd: number;
    if (done.length) {
      fd = fs.openSync(partial, "r+");
      res.resumedFiles++;
    } else {
      fd = fs.openSync(partial, "w+", 0o644);
      fs.ftruncateSync(fd, f.bytes);
      createSidecar(sidecar, id);
    }
    const have = coveredBytes(done);
    progress(have);
    states.push({ f, target, partial, sidecar, mtime: rst.mtime, fd, done, left: f.bytes - have, hash: createHash("sha256"), hashed: 0 });
  }

  const queue: Piece[] = [];
  states.forEach((st, i) => { for (const p of planPieces([st.f], pieceBytes, [st.done])) queue.push({ ...p, file: i }); });

  const finish = (st: FileState): Promise<void> => {
    st.finished ??= (async () => {
      while (st.hashed < st.f.bytes) await advanceHash(st);
      fs.closeSync(st.fd);
      st.fd = -1;
      st.hashBuf = undefined;
      fs.utimesSync(st.partial, st.mtime, st.mtime);
      fs.renameSync(st.partial, st.target);
      fs.rmSync(st.sidecar, { force: true });
      try { fs.rmdirSync(path.dirname(st.partial)); } catch { /* not empty */ }
      res.hashes.set(st.f.path, { bytes: st.f.bytes, sha256: st.hash.digest("hex") });
      res.filesTransferred++;
    })().catch((e: Error) => { st.failed ??= `finishing: ${e.message}`; });
    return st.finished;
  };
  // files the record says are already whole (cut after the last range landed, before the rename)
  for (const st of states) if (st.left === 0) void finish(st);

  const stopped = (): string | undefined =>
    o.signal?.aborted ? "cancelled" : o.deadline && Date.now() > o.deadline ? "ran past its time limit" : undefined;

  // 2. one worker per stream
  let measured: ((bps: number) => void) | undefined;
  const firstRate = new Promise<number>((r) => { measured = r; });
  const worker = async (s: SftpStream, measure: boolean): Promise<void> => {
    const handles = new Map<number, Promise<SftpFile>>();
    const mine = new Set<Piece>();
    /** the chunks of each unfinished piece that are already written locally */
    const landed = new Map<Piece, Range[]>();
    const spare: Buffer[] = [];
    const outstanding = new Map<Piece, number>();
    let issuedIn: { piece: Piece; at: number } | undefined;
    let inflight = 0;
    let lost: Error | undefined;
    let t0 = 0;
    let got = 0;
    let wake: (() => void) | undefined;
    const handle = (fi: number): Promise<SftpFile> => {
      let h = handles.get(fi);
      if (!h) { h = s.sftp.open(path.posix.join(remoteRoot, states[fi].f.path), "r"); handles.set(fi, h); h.catch(() => {}); }
      return h;
    };
    /** ranges of a file now on disk: recorded, counted, hashed as the prefix grows, finished when whole */
    const have = (st: FileState, ranges: Range[]) => {
      if (st.failed || !ranges.length) return;
      for (const r of ranges) {
        st.done.push(r);
        try { recordRange(st.sidecar, r); } catch { /* the record is an optimisation; the hash still decides */ }
        st.left -= r.end - r.start;
      }
      void advanceHash(st).catch(() => {});
      if (st.left === 0) void finish(st);
    };
    const pieceLanded = (p: Piece) => {
      mine.delete(p);
      landed.delete(p);
      have(states[p.file], [{ start: p.start, end: p.end }]);
    };
    const one = async (p: Piece, at: number, len: number): Promise<void> => {
      const st = states[p.file];
      // one buffer per request slot, reused: memory stays at a window per stream whatever is moved
      const buf = spare.pop() ?? Buffer.allocUnsafe(chunk);
      try {
        await readInto(buf, p, st, at, len);
      } finally {
        spare.push(buf);
      }
    };
    const readInto = async (buf: Buffer, p: Piece, st: FileState, at: number, len: number): Promise<void> => {
      const n = await (await handle(p.file)).read(buf, 0, len, at);
      if (n !== len) throw Object.assign(new Error(`short read at ${at}: ${n} of ${len} bytes (file changing on the box?)`), { fileFault: true });
      if (st.fd < 0 || st.failed) return;
      fs.writeSync(st.fd, buf, 0, n, at);
      landed.get(p)?.push({ start: at, end: at + n });
      res.bytesTransferred += n;
      collect(n);
      moved += n;
      progress(n);
      if (measure && measured) {
        if (!t0) t0 = performance.now();
        else got += n;
        const dt = (performance.now() - t0) / 1000;
        if (got >= measureBytes || (dt > 3 && got > 0)) { measured(got / dt); measured = undefined; }
      }
    };
    const tStart = performance.now();
    let moved = 0;
    try {
      for (;;) {
        if (lost || stopped() || !s.alive) break;
        if (inflight >= inFlight) { await new Promise<void>((r) => { wake = r; }); continue; }
        if (!issuedIn) {
          const p = queue.shift();
          if (!p) { if (inflight === 0) break; await new Promise<void>((r) => { wake = r; }); continue; }
          if (states[p.file].failed) continue;
          mine.add(p);
          landed.set(p, []);
          outstanding.set(p, 0);
          issuedIn = { piece: p, at: p.start };
        }
        const { piece, at } = issuedIn;
        const len = Math.min(chunk, piece.end - at);
        issuedIn = at + len >= piece.end ? undefined : { piece, at: at + len };
        outstanding.set(piece, (outstanding.get(piece) ?? 0) + 1);
        inflight++;
        one(piece, at, len).then(
          () => {
            const left = outstanding.get(piece)! - 1;
            outstanding.set(piece, left);
            if (left === 0 && issuedIn?.piece !== piece) { outstanding.delete(piece); pieceLanded(piece); }
          },
          (e: Error & { fileFault?: boolean }) => {
            if (e.fileFault && s.alive) { states[piece.file].failed ??= e.message; }
            else lost ??= e;
          },
        ).finally(() => { inflight--; wake?.(); wake = undefined; });
      }
      while (inflight > 0) await new Promise<void>((r) => { wake = r; });
    } finally {
      // what this stream did not finish: the chunks that landed are kept (and recorded, so a re-run after
      // a cut skips them too), the rest goes back to the others, in offset order
      const back: Piece[] = [];
      for (const p of mine) {
        const st = states[p.file];
        if (st.failed) continue;
        const got = mergeRanges(landed.get(p) ?? []);
        have(st, got);
        for (const g of missingRanges(p.end, [{ start: 0, end: p.start }, ...got])) back.push({ file: p.file, start: g.start, end: g.end });
      }
      queue.unshift(...back.sort((a, b) => a.file - b.file || a.start - b.start));
      for (const h of handles.values()) void h.then((x) => x.close()).catch(() => {});
      if (measure && measured) { measured(0); measured = undefined; }
      trace(`stream ${s.id}${s.dedicated ? " (own connection)" : ""}: ${(moved / 2 ** 20).toFixed(1)} MiB in ${((performance.now() - tStart) / 1000).toFixed(2)} s${lost ? `, lost: ${lost.message}` : ""}`);
    }
  };

  const memTimer = setting("RGT_PARALLEL_LOG") ? setInterval(() => {
    const m = process.memoryUsage();
    trace(`mem rss ${(m.rss / 2 ** 20).toFixed(0)} heap ${(m.heapUsed / 2 ** 20).toFixed(0)}/${(m.heapTotal / 2 ** 20).toFixed(0)} ext ${(m.external / 2 ** 20).toFixed(0)} ab ${(m.arrayBuffers / 2 ** 20).toFixed(0)} MiB`);
  }, 1000) : undefined;
  const driven = await driveStreams({
    first, queuedBytes: () => queue.reduce((a, p) => a + p.end - p.start, 0), worker, firstRate, rttMs: o.rttMs,
    windowBytes: first.windowBytes, targetBps: o.targetBps, cap: o.cap, openMore: o.openMore, stopped, trace,
  });
  if (driven.choice) res.choice = driven.choice;
  const streams = driven.streams;
  res.streams = streams.length;
  if (memTimer) clearInterval(memTimer);

  const tHash = performance.now();
  await Promise.all(states.map((st) => st.finished));
  trace(`hash tail ${(performance.now() - tHash).toFixed(0)} ms`);
  const why = stopped() ?? "the connection was lost mid-transfer (re-run resumes from the ranges recorded)";
  for (const st of states) {
    if (st.finished && !st.failed) continue;
    if (st.fd >= 0) { try { fs.closeSync(st.fd); } catch { /* closed */ } st.fd = -1; }
    if (st.failed) { fs.rmSync(st.partial, { force: true }); fs.rmSync(st.sidecar, { force: true }); }
    res.failed.push({ path: st.f.path, error: st.failed ?? why });
  }
  return res;
}
