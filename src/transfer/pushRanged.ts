/**
 * The ranged half of a push (src/transfer/push.ts): the big files new to the box, or left half-sent there
 * by a cut ranged push, go as byte ranges over parallel streams (parallel/) when the link needs more than
 * one window, beside the single-stream transfer of the rest. Where one stream is enough (loopback, a
 * LAN, little to move) nothing goes this way, and ranged partial copies a cut push left are removed, so
 * rsync sends those files whole.
 */
import type { MoveResult } from "./mover.js";
import { dropPartials, rangeState, splitForRanges, type ParallelSession } from "./parallel/index.js";
import type { TransferContext } from "./context.js";

export interface RangedPart {
  files: Set<string>;
  /** the partial files exist on the box: the single-stream transfer may start beside */
  prepared: Promise<void>;
  result: Promise<MoveResult>;
  /** bytes covered so far */
  done(): number;
  streams: number;
}

/**
 * The big files of a push that are new to the box (or resized), as byte ranges over parallel streams, when
 * the link needs more than one window (parallel/); undefined where one stream is enough. `moverDone` is
 * what the transfer beside it covered, for one progress figure.
 */
export async function rangedPush(ctx: TransferContext, host: string, parallel: ParallelSession, localDir: string, remoteDir: string,
  files: { path: string; bytes: number; link?: string }[], o: { deadline: number; progress: (b: number) => void; moverDone: () => number },
): Promise<RangedPart | undefined> {
  const big = splitForRanges(files.filter((f) => f.link === undefined)).ranged;
  const sftp = await ctx.remote.sftp(host);
  let need: typeof big;
  try {
    const state = await rangeState(sftp, remoteDir, big);
    if (ctx.signal.aborted || !(await parallel.worth())) {
      // one stream is enough now: what a cut ranged push left goes, rsync sends those files whole
      await dropPartials(sftp, remoteDir, [...state.partial]);
      return undefined;
    }
    // a file with a ranged partial on the box goes on as ranges, however little of it is left
    const more = new Set(splitForRanges(state.need).ranged.map((f) => f.path));
    need = state.need.filter((f) => more.has(f.path) || state.partial.has(f.path));
    await dropPartials(sftp, remoteDir, [...state.partial].filter((p) => !need.some((f) => f.path === p)));
  } finally { sftp.end(); }
  if (!need.length) return undefined;
  let sent = 0;
  let ready!: () => void;
  const onProgress = (b: number) => { sent = b; o.progress(b + o.moverDone()); };
  const part: RangedPart = {
    files: new Set(need.map((f) => f.path)), prepared: new Promise<void>((r) => { ready = r; }), done: () => sent, streams: 0,
    result: parallel.push(localDir, remoteDir, need, { deadline: o.deadline, signal: ctx.signal, onPrepared: () => ready(), onProgress }).then(
      (r): MoveResult => {
        part.streams = r.streams;
        return { filesMoved: r.filesTransferred, bytesMoved: r.bytesTransferred, bytesReused: 0, resumedFiles: r.resumedFiles, failed: r.failed };
      },
      (e: Error): MoveResult => ({
        filesMoved: 0, bytesMoved: 0, bytesReused: 0, resumedFiles: 0, failed: need.map((f) => ({ path: f.path, error: e.message.slice(0, 200) })),
      }),
    ).finally(() => ready()),
  };
  return part;
}
