/**
 * The seam between a pull and the parallel engine: decide, from one round trip on a first stream,
 * whether more streams would help at all (a short link needs one window only: the pull then goes the
 * single-stream way as before), and if so move the big files as ranges over several streams while the
 * small ones go the usual way.
 */
import type { Remote } from "../../remote/types.js";
import { openFirstStream, openMoreStreams, type SftpStream } from "../../remote/streams.js";
import { chooseStreams } from "./plan.js";
import { CHANNEL_WINDOW, parallelPull, type ParallelPullOptions, type ParallelPullResult, type RangedFile } from "./pull.js";

/** files at least this big go as ranges; smaller ones stay with the single-stream transfer */
export const RANGED_MIN_FILE = 1024 * 1024;
/** below this many bytes in such files, parallel streams are not worth their handshakes */
export const RANGED_MIN_TOTAL = 64 * 1024 * 1024;

export interface ParallelPlan { ranged: RangedFile[]; rest: RangedFile[] }

/** Which files are worth ranging (none when there is too little to move). Pure. */
export function splitForRanges<T extends RangedFile>(files: T[], minFile = RANGED_MIN_FILE, minTotal = RANGED_MIN_TOTAL): { ranged: T[]; rest: T[] } {
  const ranged = files.filter((f) => f.bytes >= minFile);
  if (ranged.reduce((a, f) => a + f.bytes, 0) < minTotal) return { ranged: [], rest: files };
  return { ranged, rest: files.filter((f) => f.bytes < minFile) };
}

export interface ParallelProbe { first: SftpStream; rttMs: number; worth: boolean; reason: string }

/** Open the first stream and measure the round trip: worth is false when one window covers the link. */
export async function probeParallel(remote: Remote, host: string, root: string, bytes: number, targetBps = Number(process.env.RGT_PARALLEL_TARGET_BPS) || 125e6): Promise<ParallelProbe> {
  const first = await openFirstStream(remote, host);
  const rttMs = await first.measureRtt(root);
  const c = chooseStreams({ rttMs, windowBytes: CHANNEL_WINDOW, remainingBytes: bytes, targetBps });
  return { first, rttMs, worth: c.streams > 1 && process.env.RGT_PARALLEL !== "0", reason: c.reason };
}

/** Pull `files` (relative to root) into localDir over parallel streams, starting from the probed first stream. */
export async function pullRanged(remote: Remote, host: string, probe: ParallelProbe, root: string, localDir: string, files: RangedFile[], o: Omit<ParallelPullOptions, "openMore" | "rttMs"> = {}): Promise<ParallelPullResult> {
  try {
    return await parallelPull(probe.first, root, localDir, files, {
      ...o,
      rttMs: probe.rttMs,
      openMore: (n) => openMoreStreams(remote, host, n),
    });
  } finally {
    probe.first.end();
  }
}

export type { ParallelPullResult, RangedFile } from "./pull.js";
