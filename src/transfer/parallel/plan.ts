/**
 * Pure planning for parallel transfers (no I/O): how many streams (chooseStreams), which byte ranges of
 * which files each piece of work covers (planPieces), what is still missing after a cut (missingRanges),
 * and a by-size split of a file list over N streams (splitBySize).
 */

/** a half-open byte range [start, end) */
export interface Range { start: number; end: number }

export interface PlanFile { path: string; bytes: number }

/** one unit of work for one stream: a byte range of one file */
export interface Piece { file: number; start: number; end: number }

/** Sort, drop empties and join overlapping or touching ranges. */
export function mergeRanges(ranges: Range[]): Range[] {
  const s = ranges.filter((r) => r.end > r.start).map((r) => ({ ...r })).sort((a, b) => a.start - b.start);
  const out: Range[] = [];
  for (const r of s) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else out.push(r);
  }
  return out;
}

/** The parts of [0, size) not covered by `done` (ranges beyond size are ignored). */
export function missingRanges(size: number, done: Range[]): Range[] {
  const out: Range[] = [];
  let at = 0;
  for (const r of mergeRanges(done.map((d) => ({ start: Math.max(0, d.start), end: Math.min(size, d.end) })))) {
    if (r.start > at) out.push({ start: at, end: r.start });
    at = Math.max(at, r.end);
  }
  if (at < size) out.push({ start: at, end: size });
  return out;
}

/** Bytes covered by a set of ranges (overlaps counted once). */
export function coveredBytes(ranges: Range[]): number {
  return mergeRanges(ranges).reduce((a, r) => a + r.end - r.start, 0);
}

/**
 * Cut what is still missing of each file into pieces of at most `pieceBytes`, in file order and offset
 * order (so each file's contiguous prefix grows steadily and can be hashed while the rest moves).
 * `done[i]` holds the ranges of file i already on disk from an earlier, cut attempt.
 */
export function planPieces(files: PlanFile[], pieceBytes: number, done: Range[][] = []): Piece[] {
  if (!(pieceBytes > 0)) throw new Error("planPieces: pieceBytes must be > 0");
  const out: Piece[] = [];
  files.forEach((f, i) => {
    for (const gap of missingRanges(f.bytes, done[i] ?? [])) {
      for (let s = gap.start; s < gap.end; s += pieceBytes) out.push({ file: i, start: s, end: Math.min(gap.end, s + pieceBytes) });
    }
  });
  return out;
}

/**
 * Split files over n streams so each carries about the same number of bytes (largest first onto the
 * least loaded stream). Returns n lists of file indexes; a stream may get none when files are few.
 */
export function splitBySize(files: PlanFile[], n: number): number[][] {
  const k = Math.max(1, Math.floor(n));
  const lanes = Array.from({ length: k }, () => ({ bytes: 0, files: [] as number[] }));
  const order = files.map((f, i) => i).sort((a, b) => files[b].bytes - files[a].bytes || a - b);
  for (const i of order) {
    let best = lanes[0];
    for (const l of lanes) if (l.bytes < best.bytes) best = l;
    best.files.push(i);
    best.bytes += files[i].bytes;
  }
  return lanes.map((l) => l.files.sort((a, b) => a - b));
}

export interface StreamChoiceInput {
  /** round trip measured on the first stream (ms) */
  rttMs: number;
  /** what the first stream carried per second over its first few MB; undefined before it was measured */
  firstStreamBps?: number;
  /** the most one stream can have in flight: the ssh channel window (OpenSSH and ssh2: 2 MiB) */
  windowBytes: number;
  /** bytes still to move */
  remainingBytes: number;
  /** the rate worth aiming for (bytes/s): more streams than this needs only add connections */
  targetBps: number;
  /** hard cap on streams (default 8) */
  cap?: number;
  /** the box's MaxSessions when the streams share one connection (each stream is a channel); undefined when each stream has its own connection */
  maxSessions?: number;
  /** the pool's channel cap per connection, with the same condition */
  poolChannels?: number;
  /** a stream is only worth opening for at least this many bytes (default 16 MiB) */
  minBytesPerStream?: number;
}

export interface StreamChoice { streams: number; reason: string }

/**
 * How many streams a transfer should use, from what the first stream measured. One stream moves at most
 * windowBytes per round trip; the bandwidth-delay product at the target rate says how many windows
 * must be in flight to reach it. When the first stream ran far below its window bound, its limit is
 * elsewhere (CPU, disk, the link itself) and more streams would only share it: stay at one.
 */
export function chooseStreams(i: StreamChoiceInput): StreamChoice {
  const cap = Math.max(1, Math.floor(i.cap ?? 8));
  const rtt = Math.max(0.05, i.rttMs) / 1000;
  const windowBound = i.windowBytes / rtt;
  const bdp = i.targetBps * rtt;
  let want = Math.ceil(bdp / i.windowBytes);
  let reason = `rtt ${i.rttMs.toFixed(1)} ms: bdp ${(bdp / 2 ** 20).toFixed(1)} MiB over a ${(i.windowBytes / 2 ** 20).toFixed(1)} MiB window`;
  if (want <= 1) return { streams: 1, reason: `${reason}: one window covers it` };
  if (i.remainingBytes === 0) return { streams: 1, reason: `${reason}: nothing left to move` };
  // the first windows include the ramp, and a CPU-starved stream still gains from a second one (measured
  // on the lab relay): only a stream far below its bound (a slow line) says more streams would not help
  if (i.firstStreamBps !== undefined && i.firstStreamBps < 0.15 * windowBound) {
    return { streams: 1, reason: `${reason}, but the first stream ran at ${(i.firstStreamBps / 2 ** 20).toFixed(1)} MiB/s, under 15 % of its window bound: not window-limited` };
  }
  const byData = Math.max(1, Math.floor(i.remainingBytes / (i.minBytesPerStream ?? 16 * 2 ** 20)));
  const limits: [number, string][] = [[cap, "cap"], [byData, "bytes left"]];
  if (i.maxSessions !== undefined) limits.push([Math.max(1, i.maxSessions - 2), "MaxSessions - 2"]);
  if (i.poolChannels !== undefined) limits.push([Math.max(1, i.poolChannels - 1), "pool channels - 1"]);
  for (const [n, why] of limits) if (n < want) { want = n; reason += `; bounded by ${why}`; }
  return { streams: Math.max(1, want), reason };
}
