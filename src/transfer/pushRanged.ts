/**
 * The ranged half of a push (src/transfer/push.ts): the big files new to the box, or left half-sent there
 * by a cut ranged push, go as byte ranges over parallel streams (parallel/) when the link needs more than
 * one window, beside the single-stream transfer of the rest. Where one stream is enough (loopback, a
 * LAN, little to move) nothing goes this way, and ranged partial copies a cut push left are removed, so
 * rsync sends those files whole.
 */
import type { MoveResult } from "./mover.js";
import { closePrepared, dropPartials, preparePush, rangeState, splitForRanges, type ParallelSession, type PreparedPush } from "./parallel/index.js";
import type { TransferContext } from "./context.js";

export interface RangedPart {
  files: Set<string>;
  result: Promise<MoveResult>;
  /** bytes covered so far */
  done(): number;
  streams: number;
}

/**
 * The big files of a push that are new to the box (or resized), as byte ranges over parallel streams, when
 * the link needs more than one window (parallel/); undefined where one stream is enough. Resolves once their
 * partial copies exist on the box (so the transfer beside may start: the partial dirs are not empty);
 * `moverDone` is what that transfer covered, for one progress figure.
 */
export async function rangedPush(ctx: TransferContext, host: string, parallel: ParallelSession, localDir: string, remoteDir: string,
  files: { path: string; bytes: number; link?: string }[], o: { deadline: number; progress: (b: number) => void; moverDone: () => number },
): Promise<RangedPart | undefined> {
  const big = splitForRanges(files.filter((f) => f.link === undefined)).ranged;
  const worth = !ctx.signal.aborted && (await parallel.worth());
  // no SFTP on the box (the probe failed too, so not worth it): nothing can have been left this way either
  const sftp = await ctx.remote.sftp(host).catch(() => undefined);
  if (!sftp) return undefined;
  let prep: PreparedPush;
  try {
    const state = await rangeState(sftp, remoteDir, big);
    if (!worth) {
      // one stream is enough now: what a cut ranged push left goes, rsync sends those files whole
      await dropPartials(sftp, remoteDir, [...state.partial]);
      return undefined;
    }
    // a file with a ranged partial on the box goes on as ranges, however little of it is left
    const more = new Set(splitForRanges(state.need).ranged.map((f) => f.path));
    const need = state.need.filter((f) => more.has(f.path) || state.partial.has(f.path));
    await dropPartials(sftp, remoteDir, [...state.partial].filter((p) => !need.some((f) => f.path === p)));
    if (!need.length) return undefined;
    // on the pooled session while the streams are still opening
    prep = await preparePush(sftp, localDir, remoteDir, need);
  } finally { sftp.end(); }
  let sent = 0;
  const onProgress = (b: number) => { sent = b; o.progress(b + o.moverDone()); };
  const part: RangedPart = {
    files: new Set([...prep.states.map((s) => s.f.path), ...prep.failed.map((f) => f.path)]), done: () => sent, streams: 0,
    result: parallel.push(prep, { deadline: o.deadline, signal: ctx.signal, onProgress }).then(
      (r): MoveResult => {
        part.streams = r.streams;
        return { filesMoved: r.filesTransferred, bytesMoved: r.bytesTransferred, bytesReused: 0, resumedFiles: r.resumedFiles, failed: r.failed };
      },
      (e: Error): MoveResult => {
        closePrepared(prep);
        const failed = [...prep.failed, ...prep.states.map((s) => ({ path: s.f.path, error: e.message.slice(0, 200) }))];
        return { filesMoved: 0, bytesMoved: 0, bytesReused: 0, resumedFiles: 0, failed };
      },
    ),
  };
  return part;
}
