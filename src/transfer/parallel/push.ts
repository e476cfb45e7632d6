/**
 * Push big files over several SFTP streams at once: the mirror of pull.ts. Each file's missing bytes are
 * cut into pieces (plan.ts); every stream keeps a window of write requests in flight and takes the next
 * piece as soon as the current one is fully issued. Bytes land at their offsets in a partial file on the
 * box (<dir>/.rgt-partial/<name>.prange); each piece whose writes the box acknowledged is appended to a
 * range record beside it (sidecar.ts, over SFTP in append mode), so a push cut mid-way re-sends only what
 * is missing. The local file is hashed (sha256) as it is sent; when the last piece has landed the box
 * hashes what it assembled and, only when the two agree, renames it into place with the local mode and
 * mtime (`finish`, scripts/ranged_finish.sh). A piece whose stream dies goes back to the others.
 * The streams a box acknowledges writes on are bounded by the box's receive window (OpenSSH's 2 MiB per
 * channel), so the stream count is chosen from that window and what the first stream measured.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { Worker } from "node:worker_threads";
import { PARTIAL_DIR } from "../../remote/rsync.js";
import { rmkdirp } from "../../remote/sftp.js";
import type { SftpStream } from "../../remote/streams.js";
import type { SftpFile, SftpSession } from "../../remote/types.js";
import { coveredBytes, mergeRanges, planPieces, type Piece, type Range, type StreamChoice } from "./plan.js";
import { driveStreams } from "./drive.js";
import { parseSidecar, rangeLine, sidecarHead, RANGED_SUFFIX, SIDECAR_SUFFIX, type SidecarId } from "./sidecar.js";
import { CHANNEL_WINDOW, trace, type ParallelPullOptions } from "./pull.js";

export interface PushRangedFile { path: string; bytes: number }

/** what the box is asked to check and put in place once every byte of a file has landed */
export interface FinishJob {
  path: string; bytes: number; partial: string; target: string; sha256: string; mode: number; mtime: string;
  /** the box's sha256 of the partial, computed there as its prefix landed (absent: the box hashes it now) */
  hashed?: string;
}

/** a hash the box computes of a partial as it grows: told how far the landed prefix reaches, then done */
export interface BoxHasher { feed(end: number): void; done(): Promise<string | undefined> }

/** the pull's stream options (the first stream's round trip, how to open more, pieces, limits), and the box's part */
export interface ParallelPushOptions extends ParallelPullOptions {
  /** the box hashes the partial and, when it matches, renames it into place: undefined, or why not */
  finish: (job: FinishJob) => Promise<string | undefined>;
  /** starts the box hashing a partial as its prefix lands, so its hash is ready with the last byte */
  boxHasher?: (partial: string) => BoxHasher;
}

export interface ParallelPushResult {
  filesTransferred: number;
  bytesTransferred: number;
  resumedFiles: number;
  failed: { path: string; error: string }[];
  /** sha256 of each file now in place, agreed by both ends */
  hashes: Map<string, { bytes: number; sha256: string }>;
  streams: number;
  choice: StreamChoice;
}

const HASH_CHUNK = 1024 * 1024;
const RECORD_MAX = 4 * 1024 * 1024;
const FEED_STEP = 8 * 1024 * 1024;
const MAX_HASHERS = 4;

interface FileState {
  f: PushRangedFile;
  fd: number;
  partial: string;
  record: string;
  target: string;
  mode: number;
  mtime: string;
  id: SidecarId;
  left: number;
  /** what has landed on the box, merged (its first range, from 0, is the prefix the box may hash) */
  landed: Range[];
  fedTo: number;
  hasher?: BoxHasher;
  sha?: Promise<string>;
  stopHash?: () => void;
  failed?: string;
  finished?: Promise<void>;
}

/** what identifies this version of the local file (its hash is only known once it was read) */
function localVersion(st: fs.BigIntStats): { source: string; mtime: string } {
  const ns = st.mtimeNs;
  const mtime = `${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, "0")}`;
  return { source: `${st.dev}:${st.ino}:${mtime}`, mtime };
}

/** a worker's body: sha256 of [0, size) of an open descriptor, read at offsets (the transfer reads at offsets too) */
const HASH_WORKER = `
const { workerData, parentPort } = require("node:worker_threads");
const fs = require("node:fs");
const h = require("node:crypto").createHash("sha256");
const b = Buffer.allocUnsafe(${HASH_CHUNK});
for (let at = 0; at < workerData.size; ) {
  const n = fs.readSync(workerData.fd, b, 0, Math.min(b.length, workerData.size - at), at);
  if (n <= 0) throw new Error("short local read at " + at);
  h.update(b.subarray(0, n));
  at += n;
}
parentPort.postMessage(h.digest("hex"));
`;

/**
 * The local file's sha256, computed beside the transfer from the very descriptor being sent, in a worker
 * thread: OpenSSL's sha256 (a sixth of coreutils sha256sum's CPU here) on another core than this event
 * loop, which the streams keep busy. Where a worker cannot start: hashed here, between the streams' turns.
 */
function hashBeside(st: { fd: number; f: PushRangedFile; stopHash?: () => void }): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    if (st.fd < 0) { reject(new Error("closed")); return; }
    const w = new Worker(HASH_WORKER, { eval: true, workerData: { fd: st.fd, size: st.f.bytes } });
    st.stopHash = () => { void w.terminate(); };
    w.once("message", (m: string) => resolve(m));
    w.once("error", reject);
    w.once("exit", (code) => reject(new Error(`hash worker exit ${code}`)));
  }).catch(() => hashHere(st));
}

/** The local file's sha256, read in order here (yielding between chunks; stops once its fd is closed). */
async function hashHere(st: { fd: number; f: PushRangedFile }): Promise<string> {
  const h = createHash("sha256");
  const buf = Buffer.allocUnsafe(HASH_CHUNK);
  for (let at = 0, size = st.f.bytes; at < size; ) {
    if (st.fd < 0) throw new Error("closed");
    const n = fs.readSync(st.fd, buf, 0, Math.min(HASH_CHUNK, size - at), at);
    if (n <= 0) throw new Error(`short local read at ${at}`);
    h.update(buf.subarray(0, n));
    at += n;
    await new Promise<void>((r) => setImmediate(r));
  }
  return h.digest("hex");
}

/** A small box file's text over SFTP ("" when absent or unreadable). */
async function readSmall(sftp: SftpSession, p: string): Promise<string> {
  const st = await sftp.stat(p);
  if (!st?.isFile || st.size > RECORD_MAX) return "";
  const f = await sftp.open(p, "r").catch(() => undefined);
  if (!f) return "";
  try {
    const buf = Buffer.alloc(st.size);
    for (let at = 0; at < st.size; ) {
      const n = await f.read(buf, at, Math.min(64 * 1024, st.size - at), at);
      if (n <= 0) break;
      at += n;
    }
    return buf.toString("utf8");
  } finally { await f.close().catch(() => {}); }
}

/** where a file's partial copy and its range record sit on the box */
function partialPaths(remoteRoot: string, rel: string): { target: string; pdir: string; partial: string; record: string } {
  const target = path.posix.join(remoteRoot, rel);
  const pdir = path.posix.join(path.posix.dirname(target), PARTIAL_DIR);
  const base = path.posix.basename(target);
  return { target, pdir, partial: path.posix.join(pdir, base + RANGED_SUFFIX), record: path.posix.join(pdir, base + SIDECAR_SUFFIX) };
}

/**
 * For a push's big files: which are absent on the box or of another size there (`need`: a file of the same
 * size is left to rsync's quick check and delta, which may find it current), and which have a ranged
 * partial copy there from a cut push (`partial`). The stats are pipelined on one session.
 */
export async function rangeState<T extends PushRangedFile>(sftp: SftpSession, remoteRoot: string, files: T[]): Promise<{ need: T[]; partial: Set<string> }> {
  const there = await Promise.all(files.map(async (f) => {
    const p = partialPaths(remoteRoot, f.path);
    return Promise.all([sftp.lstat(p.target), sftp.lstat(p.partial)]);
  }));
  return {
    need: files.filter((f, i) => !there[i][0]?.isFile || there[i][0]!.size !== f.bytes),
    partial: new Set(files.filter((f, i) => there[i][1]?.isFile).map((f) => f.path)),
  };
}

/** Remove the ranged partial copies (and records) of files that go another way now. */
export async function dropPartials(sftp: SftpSession, remoteRoot: string, rels: string[]): Promise<void> {
  await Promise.all(rels.map(async (rel) => {
    const p = partialPaths(remoteRoot, rel);
    await Promise.all([sftp.unlink(p.partial).catch(() => {}), sftp.unlink(p.record).catch(() => {})]);
    await sftp.rmdir(p.pdir).catch(() => { /* rsync's partials or another file's */ });
  }));
}

/** A push's big files, ready on the box: a partial for each (kept from a cut push when its record is for this version). */
export interface PreparedPush { states: FileState[]; done: Range[][]; failed: { path: string; error: string }[]; resumed: number; covered: number }

/**
 * Each file's local version, and a partial copy on the box with a record for that version (a new, empty one,
 * or the one a cut push left). Pipelined on one session (the pooled one, while the streams are opening).
 */
export async function preparePush(sftp: SftpSession, localDir: string, remoteRoot: string, files: PushRangedFile[]): Promise<PreparedPush> {
  const t0 = performance.now();
  const made = new Set<string>();
  const out: PreparedPush = { states: [], done: [], failed: [], resumed: 0, covered: 0 };
  await Promise.all(files.map(async (f) => {
    let fd = -1;
    try {
      fd = fs.openSync(path.join(localDir, f.path), fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0));
      const st = fs.fstatSync(fd, { bigint: true });
      if (!st.isFile() || Number(st.size) !== f.bytes) throw new Error("changed here since it was listed");
      const v = localVersion(st);
      const { target, pdir, partial, record } = partialPaths(remoteRoot, f.path);
      const id: SidecarId = { size: f.bytes, source: v.source };
      const [, part, text] = await Promise.all([rmkdirp(sftp, pdir, made), sftp.stat(partial), readSmall(sftp, record)]);
      let have = part?.isFile ? parseSidecar(text, id) : [];
      if (have.length && part!.size < Math.max(...have.map((r) => r.end))) have = [];
      if (have.length) out.resumed++;
      else {
        const head = Buffer.from(sidecarHead(id));
        await Promise.all([
          sftp.open(partial, "w").then((h) => h.close()),
          sftp.open(record, "w").then((h) => h.write(head, 0, head.length, 0).finally(() => h.close().catch(() => {}))),
        ]);
      }
      const covered = coveredBytes(have);
      out.states.push({
        f, fd, partial, record, target, mode: Number(st.mode) & 0o7777, mtime: v.mtime, id, left: f.bytes - covered, landed: mergeRanges(have), fedTo: 0,
      });
      out.done.push(have);
      out.covered += covered;
    } catch (e) {
      if (fd >= 0) fs.closeSync(fd);
      out.failed.push({ path: f.path, error: (e as Error).message.slice(0, 200) });
    }
  }));
  trace(`push: ${out.states.length} file(s) prepared on the box in ${(performance.now() - t0).toFixed(0)} ms`);
  return out;
}

/** Close the local files of a preparation that never ran (parallelPush closes them itself). */
export function closePrepared(prep: PreparedPush): void {
  for (const st of prep.states) {
    st.stopHash?.();
    if (st.fd >= 0) { try { fs.closeSync(st.fd); } catch { /* closed */ } st.fd = -1; }
  }
}

export async function parallelPush(first: SftpStream, prep: PreparedPush, o: ParallelPushOptions): Promise<ParallelPushResult> {
  const pieceBytes = o.pieceBytes ?? 2 ** 20;
  const chunk = o.chunkBytes ?? 128 * 1024;
  // the box's window bounds what is unacknowledged; a little more queued keeps it full as it refills
  const inFlight = o.inFlight ?? Math.ceil((1.5 * CHANNEL_WINDOW) / chunk);
  const measureBytes = o.measureBytes ?? 4 * CHANNEL_WINDOW;
  const res: ParallelPushResult = { filesTransferred: 0, bytesTransferred: 0, resumedFiles: 0, failed: [], hashes: new Map(), streams: 1, choice: { streams: 1, reason: "" } };
  let doneBytes = 0;
  const progress = (n: number) => { doneBytes += n; o.onProgress?.(doneBytes); };
  const stopped = (): string | undefined =>
    o.signal?.aborted ? "cancelled" : o.deadline && Date.now() > o.deadline ? "ran past its time limit" : undefined;

  const { states, done } = prep;
  res.failed.push(...prep.failed);
  res.resumedFiles = prep.resumed;
  progress(prep.covered);
  // in file order (the order they are sent in), two at a time
  const lanes: Promise<unknown>[] = [Promise.resolve(), Promise.resolve()];
  states.forEach((st, i) => {
    st.sha = lanes[i % 2].then(() => hashBeside(st));
    st.sha.catch(() => {});
    lanes[i % 2] = st.sha.catch(() => {});
  });
  /**
   * tell the box's hasher how far the landed prefix reaches now (every 8 MiB, and at the end); a few files
   * at once get one (each holds a channel of the pooled connection), the others are hashed when whole
   */
  let hashers = 0;
  const feed = (st: FileState) => {
    const prefix = st.landed[0]?.start === 0 ? st.landed[0].end : 0;
    if (!st.hasher && o.boxHasher && prefix > 0 && hashers < MAX_HASHERS) {
      hashers++;
      st.hasher = o.boxHasher(st.partial);
    }
    if (!st.hasher) return;
    if (prefix >= st.fedTo + FEED_STEP || (prefix === st.f.bytes && prefix > st.fedTo)) { st.hasher.feed(prefix); st.fedTo = prefix; }
  };
  for (const st of states) feed(st);
  const queue: Piece[] = [];
  states.forEach((st, i) => { for (const p of planPieces([st.f], pieceBytes, [done[i]])) queue.push({ ...p, file: i }); });

  const finish = (st: FileState): Promise<void> => {
    st.finished ??= (async () => {
      const sha = await st.sha!;
      const tBox = performance.now();
      const now = localVersion(fs.fstatSync(st.fd, { bigint: true }));
      if (now.source !== st.id.source) throw new Error("changed here during the push (sent again next time)");
      const hashed = st.hasher ? await st.hasher.done().finally(() => { hashers--; }) : undefined;
      const why = await o.finish({
        path: st.f.path, bytes: st.f.bytes, partial: st.partial, target: st.target, sha256: sha, mode: st.mode, mtime: st.mtime, hashed,
      });
      trace(`push: ${st.f.path} checked and put in place on the box in ${(performance.now() - tBox).toFixed(0)} ms${why ? `: ${why}` : ""}`);
      if (why) throw new Error(why);
      res.hashes.set(st.f.path, { bytes: st.f.bytes, sha256: sha });
      res.filesTransferred++;
    })().catch((e: Error) => { st.failed ??= e.message.slice(0, 200); });
    return st.finished;
  };
  for (const st of states) if (st.left === 0) void finish(st);

  // 2. one worker per stream
  let measured: ((bps: number) => void) | undefined;
  const firstRate = new Promise<number>((r) => { measured = r; });
  const worker = async (s: SftpStream, measure: boolean): Promise<void> => {
    const parts = new Map<number, Promise<SftpFile>>();
    const records = new Map<number, Promise<SftpFile>>();
    const handle = (m: Map<number, Promise<SftpFile>>, fi: number, p: string, flags: "r+" | "a"): Promise<SftpFile> => {
      let h = m.get(fi);
      if (!h) { h = s.sftp.open(p, flags); m.set(fi, h); h.catch(() => {}); }
      return h;
    };
    /** pieces this stream holds: how many of its writes are unacknowledged, and whether all are issued */
    const mine = new Map<Piece, { pending: number; issued: boolean }>();
    const spare: Buffer[] = [];
    let cur: { piece: Piece; at: number } | undefined;
    let inflight = 0;
    let lost: Error | undefined;
    let wake: (() => void) | undefined;
    let moved = 0;
    let t0 = 0;
    let got = 0;
    const tStart = performance.now();
    const landed = (p: Piece) => {
      mine.delete(p);
      const st = states[p.file];
      if (st.failed) return;
      st.left -= p.end - p.start;
      st.landed = mergeRanges([...st.landed, { start: p.start, end: p.end }]);
      feed(st);
      const line = Buffer.from(rangeLine({ start: p.start, end: p.end }));
      // the record is an optimisation for a resume: the hashes still decide
      void handle(records, p.file, st.record, "a").then((r) => r.write(line, 0, line.length, 0)).catch(() => {});
      if (st.left === 0) void finish(st);
    };
    const one = async (p: Piece, at: number, len: number): Promise<void> => {
      const st = states[p.file];
      const buf = spare.pop() ?? Buffer.allocUnsafe(chunk);
      try {
        const n = fs.readSync(st.fd, buf, 0, len, at);
        if (n !== len) throw Object.assign(new Error(`short local read at ${at}: ${n} of ${len} bytes (file changing here?)`), { fileFault: true });
        await (await handle(parts, p.file, st.partial, "r+")).write(buf, 0, n, at);
      } finally { spare.push(buf); }
      res.bytesTransferred += len;
      moved += len;
      progress(len);
      if (measure && measured) {
        if (!t0) t0 = performance.now();
        else got += len;
        const dt = (performance.now() - t0) / 1000;
        if (got >= measureBytes || (dt > 3 && got > 0)) { measured(got / dt); measured = undefined; }
      }
    };
    try {
      for (;;) {
        if (lost || stopped() || !s.alive) break;
        if (inflight >= inFlight) { await new Promise<void>((r) => { wake = r; }); continue; }
        if (!cur) {
          const p = queue.shift();
          if (!p) { if (inflight === 0) break; await new Promise<void>((r) => { wake = r; }); continue; }
          if (states[p.file].failed) continue;
          mine.set(p, { pending: 0, issued: false });
          cur = { piece: p, at: p.start };
        }
        const { piece, at } = cur;
        const len = Math.min(chunk, piece.end - at);
        const m = mine.get(piece)!;
        cur = at + len >= piece.end ? undefined : { piece, at: at + len };
        if (!cur) m.issued = true;
        m.pending++;
        inflight++;
        one(piece, at, len).then(
          () => { if (--m.pending === 0 && m.issued) landed(piece); },
          (e: Error & { fileFault?: boolean }) => { if (e.fileFault) states[piece.file].failed ??= e.message; else lost ??= e; },
        ).finally(() => { inflight--; wake?.(); wake = undefined; });
      }
      while (inflight > 0) await new Promise<void>((r) => { wake = r; });
    } finally {
      // what this stream did not see acknowledged goes back to the others, in offset order
      const back = [...mine.keys()].filter((p) => !states[p.file].failed);
      queue.unshift(...back.sort((a, b) => a.file - b.file || a.start - b.start));
      for (const h of [...parts.values(), ...records.values()]) void h.then((x) => x.close()).catch(() => {});
      if (measure && measured) { measured(0); measured = undefined; }
      trace(`push stream ${s.id}${s.dedicated ? " (own connection)" : ""}: ${(moved / 2 ** 20).toFixed(1)} MiB in ${((performance.now() - tStart) / 1000).toFixed(2)} s${lost ? `, lost: ${lost.message}` : ""}`);
    }
  };

  // writes are acknowledged within the box's window, whatever this end's receive window is
  const driven = await driveStreams({
    first, queuedBytes: () => queue.reduce((a, p) => a + p.end - p.start, 0), worker, firstRate, rttMs: o.rttMs,
    windowBytes: CHANNEL_WINDOW, targetBps: o.targetBps, cap: o.cap, openMore: o.openMore, stopped, trace: (m) => trace(`push ${m}`),
  });
  if (driven.choice) res.choice = driven.choice;
  const streams = driven.streams;
  res.streams = streams.length;
  await Promise.all(states.map((st) => st.finished));
  const why = stopped() ?? "the connection was lost mid-transfer (a re-run resumes from the ranges recorded on the box)";
  closePrepared(prep);
  for (const st of states) {
    void st.hasher?.done().catch(() => {});
    if (st.finished && !st.failed) continue;
    res.failed.push({ path: st.f.path, error: st.failed ?? why });
  }
  return res;
}
