/**
 * The part a parallel pull and a parallel push share: the first stream works and measures itself, the
 * count of streams is chosen from that (chooseStreams), the others are opened and set to work, and a
 * worker that ended while pieces are still queued (its stream died, others handed pieces back) is run
 * again on the streams still alive. What a worker does with a piece is the caller's.
 */
import type { SftpStream } from "../../remote/streams.js";
import { chooseStreams, type StreamChoice } from "./plan.js";

export interface DriveOptions {
  first: SftpStream;
  /** bytes still queued (0 = nothing left) */
  queuedBytes: () => number;
  /** works pieces off the queue on one stream; `measure` on the first, which resolves firstRate */
  worker: (s: SftpStream, measure: boolean) => Promise<void>;
  /** the first stream's throughput in bytes/s once it knows (0 when it ended first) */
  firstRate: Promise<number>;
  rttMs: number;
  /** the ssh window one stream lives in */
  windowBytes: number;
  targetBps?: number;
  cap?: number;
  openMore: (n: number) => Promise<{ streams: SftpStream[] }>;
  stopped: () => unknown;
  /** a line for the trace log */
  trace: (msg: string) => void;
}

export async function driveStreams(o: DriveOptions): Promise<{ choice?: StreamChoice; streams: SftpStream[] }> {
  const streams: SftpStream[] = [o.first];
  if (!o.queuedBytes()) return { streams };
  const workers: Promise<void>[] = [o.worker(o.first, true)];
  const bps = await Promise.race([o.firstRate, Promise.all(workers).then(() => 0)]);
  const choice = chooseStreams({
    rttMs: o.rttMs, firstStreamBps: bps > 0 ? bps : undefined, windowBytes: o.windowBytes, remainingBytes: o.queuedBytes(),
    targetBps: o.targetBps ?? 125e6, cap: o.cap,
  });
  o.trace(`rtt ${o.rttMs.toFixed(1)} ms, first stream ${(bps / 2 ** 20).toFixed(1)} MiB/s: ${choice.streams} streams (${choice.reason})`);
  if (choice.streams > 1 && o.queuedBytes() && !o.stopped()) {
    const t = performance.now();
    const more = await o.openMore(choice.streams - 1);
    o.trace(`opened ${more.streams.length} more in ${(performance.now() - t).toFixed(0)} ms`);
    for (const s of more.streams) { streams.push(s); workers.push(o.worker(s, false)); }
  }
  for (;;) {
    await Promise.all(workers);
    const live = streams.filter((s) => s.alive);
    if (!o.queuedBytes() || !live.length || o.stopped()) break;
    workers.length = 0;
    for (const s of live) workers.push(o.worker(s, false));
  }
  return { choice, streams };
}
