/**
 * The transfer service: push a project tree to a box, pull a run's outputs back and prove they
 * arrived whole, and say which files a push would change under a live run. Tools (push_code,
 * pull_verify) are thin adapters over `push` / `pull`; everything about HOW files move lives here.
 *
 *   push(ctx, req)   scan (rsync's own filter rules) → refuse what must not go (SECRET_FILE, also
 *                    through links; CRLF_SCRIPT; names that cannot be carried) → prepare the
 *                    destination (one round trip) → lock it → live-run guard (changedUnder) →
 *                    mover → record the push (git commit + dirty state) in the ledger.
 *   pull(ctx, req)   the box lists + hashes its own tree (NUL-separated, one round trip) → refuse
 *                    what cannot be carried → lock local_dir → clean debris of a killed run →
 *                    mover per unit, hashing each finished unit while the next moves → repair pass
 *                    (rsync's size+mtime quick check fooled) → debris again → judge (compare, roster,
 *                    load-check) → receipt.
 *   changedUnder     which of a push's files would overwrite different content on the box.
 *
 * THE MOVER SEAM (src/transfer/mover.ts). A `Mover` moves the bytes of one file list between one
 * local directory and one box directory — `move(job: MoveJob): Promise<MoveResult>` — and nothing
 * else: it does not choose files, hash, judge or write receipts. The service picks one per source:
 * `rsyncMover` when both ends have a usable rsync (local flavour/version detected, see
 * localRsyncFlavour), else `sftpMover`. A job carries the files (with the box's sha256 for pulls and
 * link targets for links), `force` (re-send despite size+mtime), a deadline, the abort signal, a
 * cumulative-bytes progress callback and `onChild` (pids for the transfer lock). Resumability is the
 * mover's contract: a rerun of the same job after a cut continues partial files (rsync --partial-dir,
 * SFTP's .rgt-partial/). A parallel mover (several streams, or one big file as byte ranges joined
 * locally) implements the same interface by splitting `job.files` (and for ranges, using
 * `pipelined()` from src/remote/sftp.ts at offsets over several SftpSessions) and `combine()`-ing the
 * results; the service then needs no change beyond choosing it.
 */
export { push, type PushRequest } from "./push.js";
export { pull, type PullRequest } from "./pull.js";
export { changedUnder } from "./live.js";
export type { TransferContext } from "./context.js";
export type { Mover, MoveJob, MoveResult, MoveFile } from "./mover.js";
