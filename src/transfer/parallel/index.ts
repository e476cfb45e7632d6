/**
 * The seam between a pull or a push and the parallel engine. A ParallelSession starts beside the manifest round
 * trip (the box hashing its files takes seconds): it opens the first stream, measures the round trip
 * and, when the bandwidth-delay product says one ssh window cannot carry the link, opens the extra
 * streams in the background, so they are ready when the file list arrives. A short link (loopback, a
 * LAN) needs one window only: the session then opens nothing more and the pull goes the single-stream
 * way as before. Big files move as ranges over the streams while the small ones go the usual way.
 */
import { PassThrough } from "node:stream";
import type { Remote } from "../../remote/types.js";
import { setting } from "../../common/config.js";
import { openStreams, SSH2_WINDOW, type SftpStream } from "../../remote/streams.js";
import { chooseStreams } from "./plan.js";
import { parallelPull, trace, type ParallelPullOptions, type ParallelPullResult, type RangedFile } from "./pull.js";
import { parallelPush, type BoxHasher, type FinishJob, type ParallelPushOptions, type ParallelPushResult, type PreparedPush } from "./push.js";

/** files at least this big go as ranges; smaller ones stay with the single-stream transfer */
export const RANGED_MIN_FILE = 1024 * 1024;
/** below this many bytes in such files, parallel streams are not worth their handshakes */
export const RANGED_MIN_TOTAL = 64 * 1024 * 1024;
/** the rate worth aiming for: a 1 Gbit/s line */
const TARGET_BPS = 125e6;

/** Which files are worth ranging (none when there is too little to move). Pure. */
export function splitForRanges<T extends { bytes: number }>(files: T[], minFile = RANGED_MIN_FILE, minTotal = RANGED_MIN_TOTAL): { ranged: T[]; rest: T[] } {
  const ranged = files.filter((f) => f.bytes >= minFile);
  if (ranged.reduce((a, f) => a + f.bytes, 0) < minTotal) return { ranged: [], rest: files };
  return { ranged, rest: files.filter((f) => f.bytes < minFile) };
}

/**
 * the receive window each stream keeps: 8 MiB, four times ssh2's 2 MiB. Measured at 100 ms RTT on the
 * lab relay: two 8 MiB streams moved more than seven 2 MiB ones (fewer connections, less CPU each).
 */
export const STREAM_WINDOW = 8 * 1024 * 1024;

/**
 * windowBytes: what one stream carries per round trip (a push's writes are bounded by the box's 2 MiB, whatever
 * this end's window); bytes: how much is to move, when known (no more streams are opened than it needs)
 */
export interface ParallelSessionOptions { targetBps?: number; cap?: number; disabled?: boolean; windowBytes?: number; bytes?: number }

export class ParallelSession {
  private rttMs = 0;
  private spare: SftpStream[] = [];
  private opening?: Promise<void>;
  private readonly ready: Promise<boolean>;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly targetBps: number;
  private readonly cap: number;
  private readonly windowBytes: number;
  private readonly bytes: number;

  private constructor(private readonly remote: Remote, private readonly host: string, o: ParallelSessionOptions) {
    this.targetBps = o.targetBps ?? TARGET_BPS;
    this.cap = o.cap ?? setting("RGT_PARALLEL_STREAMS");
    this.windowBytes = o.windowBytes ?? STREAM_WINDOW;
    this.bytes = o.bytes ?? Infinity;
    this.ready = o.disabled || this.cap <= 1 ? Promise.resolve(false) : this.probe().catch(() => false);
  }

  /** Start probing host now (nothing is awaited; failures just mean single-stream). */
  static start(remote: Remote, host: string, o: ParallelSessionOptions = {}): ParallelSession {
    return new ParallelSession(remote, host, o);
  }

  /**
   * The round trip, measured on the pooled connection (open already, or about to be for the manifest):
   * three SFTP stats. Only when the link needs more than one window are streams of their own opened.
   */
  private async probe(): Promise<boolean> {
    const s = await this.remote.sftp(this.host);
    const t: number[] = [];
    try {
      for (let k = 0; k < 4; k++) {
        const t0 = performance.now();
        await s.stat(".");
        t.push(performance.now() - t0);
      }
    } finally {
      s.end();
    }
    // the smallest sample: queueing on a busy machine only ever adds to a round trip
    this.rttMs = Math.min(...t);
    // worth it when the link needs more than the single-stream way's one 2 MiB window (rsync over
    // OpenSSH, or ssh2's SFTP): then even one stream with a wider window beats it
    const single = chooseStreams({ rttMs: this.rttMs, windowBytes: SSH2_WINDOW, remainingBytes: Infinity, targetBps: this.targetBps, cap: this.cap });
    const c = chooseStreams({ rttMs: this.rttMs, windowBytes: this.windowBytes, remainingBytes: this.bytes, targetBps: this.targetBps, cap: this.cap });
    trace(`probe ${this.host}: ${single.streams > 1 ? `${c.streams} stream(s) of ${this.windowBytes / 2 ** 20} MiB` : "single-stream way"} (${single.reason})`);
    if (single.streams <= 1 || this.closed) return false;
    this.opening = openStreams(this.remote, this.host, c.streams, { windowBytes: this.windowBytes }).then((r) => {
      trace(`probe ${this.host}: ${r.streams.length} streams open`);
      if (this.closed) r.streams.forEach((x) => x.end());
      else this.spare.push(...r.streams);
    }, () => {});
    return true;
  }

  /** whether more streams would help on this link (false on loopback, a LAN, or when probing failed) */
  worth(): Promise<boolean> { return this.ready; }

  /** n streams, spare ones first, opening more only if the spares fall short */
  private async take(n: number): Promise<{ streams: SftpStream[]; shared: boolean }> {
    await this.opening;
    const live = this.spare.filter((s) => s.alive);
    const got = live.slice(0, n);
    this.spare = live.slice(n);
    if (got.length < n) got.push(...(await openStreams(this.remote, this.host, n - got.length, { firstId: 100, windowBytes: this.windowBytes })).streams);
    return { streams: got, shared: false };
  }

  /** Pull `files` (relative to root) into localDir over the session's streams; transfers run one at a time. */
  pull(root: string, localDir: string, files: RangedFile[], o: Omit<ParallelPullOptions, "openMore" | "rttMs" | "targetBps" | "cap"> = {}): Promise<ParallelPullResult> {
    return this.lend((first, common) => parallelPull(first, root, localDir, files, { ...o, ...common }));
  }

  /**
   * Push prepared files (parallel/push.ts preparePush) over the session's streams; each file is put in
   * place by the box (scripts/ranged_finish.sh) only once its hash there matches the one computed here.
   */
  push(prep: PreparedPush, o: Omit<ParallelPushOptions, "openMore" | "rttMs" | "targetBps" | "cap" | "finish">): Promise<ParallelPushResult> {
    const finish = async (j: FinishJob): Promise<string | undefined> => {
      const args = [j.partial, j.target, j.mode.toString(8), j.mtime, j.sha256, ...(j.hashed ? [j.hashed] : [])];
      const r = await this.remote.runScript(this.host, "ranged_finish.sh", args, {
        timeoutMs: 120_000 + Math.ceil(j.bytes / 20_000), signal: o.signal,
      });
      if (r.exitCode === 0) return undefined;
      const got = /^HASH=(\w+)/m.exec(r.stdout)?.[1];
      if (r.exitCode === 3) return `the box's sha256 of what it received (${got?.slice(0, 12)}…) is not this file's (${j.sha256.slice(0, 12)}…); sent again next time`;
      return r.timedOut ? "checking it on the box timed out" : `putting it in place on the box failed: ${/^ERR=(.*)$/m.exec(r.stdout)?.[1] ?? `exit ${r.exitCode}`}`;
    };
    // the box hashes each partial as its prefix lands (scripts/hash_growing.sh): its hash is ready with the last byte
    const boxHasher = (partial: string): BoxHasher => {
      const offsets = new PassThrough();
      const timeoutMs = Math.max(60_000, (o.deadline ?? 0) - Date.now());
      const job = this.remote.runScript(this.host, "hash_growing.sh", [partial], { stdin: offsets, timeoutMs, signal: o.signal })
        .then((r) => (r.exitCode === 0 ? /^HASH=([0-9a-f]{64})$/m.exec(r.stdout)?.[1] : undefined), () => undefined);
      return {
        feed: (end) => { if (!offsets.writableEnded) offsets.write(`${end}\n`); },
        done: () => { if (!offsets.writableEnded) offsets.end(); return job; },
      };
    };
    return this.lend((first, common) => parallelPush(first, prep, { ...o, ...common, finish, boxHasher }));
  }

  /** Run one transfer over a first stream and whatever more it asks for; streams that survive go back. */
  private lend<T>(fn: (first: SftpStream, common: Pick<ParallelPullOptions, "rttMs" | "targetBps" | "cap" | "openMore">) => Promise<T>): Promise<T> {
    const job = this.chain.then(async () => {
      if (!(await this.ready)) throw new Error("no parallel streams to this host");
      const [first] = (await this.take(1)).streams;
      if (!first) throw new Error(`no SFTP stream to ${this.host}`);
      const lent: SftpStream[] = [first];
      try {
        return await fn(first, {
          rttMs: this.rttMs, targetBps: this.targetBps, cap: this.cap,
          openMore: async (n) => { const r = await this.take(n); lent.push(...r.streams); return r; },
        });
      } finally {
        // streams that survived go back for the next transfer of this call
        this.spare.push(...lent.filter((s) => s.alive));
      }
    });
    this.chain = job.catch(() => {});
    return job;
  }

  close(): void {
    this.closed = true;
    void this.opening?.then(() => { for (const s of this.spare) s.end(); this.spare = []; });
    for (const s of this.spare) s.end();
    this.spare = [];
  }
}

export type { ParallelPullResult, RangedFile } from "./pull.js";
export { closePrepared, dropPartials, preparePush, rangeState, type ParallelPushResult, type PreparedPush, type PushRangedFile } from "./push.js";
