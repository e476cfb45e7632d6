/** The push half of the transfer service (see index.ts for the shape). */
import * as fs from "node:fs";
import * as path from "node:path";
import { refuse, warning, RefusalError, type Warning } from "../common/result.js";
import { localRsyncFlavour, prepareRemoteDir, SHELL_NOT_CLEAN_REMEDY, type RsyncFlavour } from "../remote/rsync.js";
import { crlfScripts, scanPushTree, secretFiles, PROJECT_IGNORE, type PushScan } from "../verify/tree.js";
import { differingOnBox, guardLiveRuns } from "./live.js";
import { withTransferLock } from "./lock.js";
import { combine, rsyncMover, sftpMover, type Mover } from "./mover.js";
import { ParallelSession, splitForRanges } from "./parallel/index.js";
import { rangedPush } from "./pushRanged.js";
import { trace } from "./parallel/pull.js";
import { SSH2_WINDOW } from "../remote/streams.js";
import { recordPush } from "./provenance.js";
import { throttled, type TransferContext, type TransferResult } from "./context.js";

const HUGE_FILES = 20_000;
const HUGE_BYTES = 5 * 1024 ** 3;

export interface PushRequest {
  host: string;
  localDir: string;
  remoteDir: string;
  exclude?: string[];
  allowSecretFiles?: string[];
  dryRun?: boolean;
}

const quoteSh = (f: string): string => `'${f.replace(/'/g, "'\\''")}'`;

/** Stop before a byte leaves: names that cannot be carried, credentials (also behind links), CRLF scripts. */
function refuseUnsafe(localDir: string, scan: PushScan, allow: string[]): void {
  if (scan.badNames.length) {
    refuse("BAD_INPUT", `local_dir: ${scan.badNames.length} name(s) are not valid UTF-8 and cannot be carried faithfully: ${scan.badNames.slice(0, 5).join(", ")}. Nothing was sent.`,
      `Rename them (e.g. convmv -f latin1 -t utf8), or exclude them.`, { bad_names: scan.badNames.slice(0, 20) });
  }
  const secrets = [...secretFiles(scan.files, allow), ...scan.outside.filter((l) => l.secret && !allow.includes(l.path)).map((l) => ({ path: `${l.path} -> ${l.target}`, rule: l.secret! }))];
  if (secrets.length) {
    const shown = secrets.slice(0, 6).map((s) => `${s.path} (${s.rule})`).join(", ");
    refuse(
      "SECRET_FILE",
      `local_dir holds ${secrets.length} credential file(s) or link(s) to one that would be uploaded: ${shown}${secrets.length > 6 ? ", …" : ""}. Nothing was sent.`,
      `Keep credentials out of the code push: add them to ${PROJECT_IGNORE} or exclude, and send each one with push_secret (stdin, 0600, per-instance disk). ` +
        "Only if the user explicitly wants the file on the box, list it in allow_secret_files.",
      { secret_files: secrets.slice(0, 20).map((s) => s.path) },
    );
  }
  const crlf = crlfScripts(localDir, scan.files);
  if (crlf.length) {
    const q = crlf.slice(0, 6).map(quoteSh).join(" ");
    refuse(
      "CRLF_SCRIPT",
      `${crlf.length} shell script(s) have Windows (CRLF) line endings and would fail on the box with "$'\\r': command not found": ${crlf.slice(0, 6).join(", ")}. Nothing was sent.`,
      `Convert them to LF first, e.g. in ${localDir}: sed -i 's/\\r$//' ${q}  (or dos2unix ${q}); set git config core.autocrlf input to keep it fixed.`,
      { crlf_scripts: crlf.slice(0, 20) },
    );
  }
}

function sizeWarnings(files: { path: string; bytes: number }[], bytesTotal: number): Warning[] {
  const out: Warning[] = [];
  const gitBytes = files.filter((f) => f.path === ".git" || f.path.startsWith(".git/")).reduce((a, f) => a + f.bytes, 0);
  if (files.length > HUGE_FILES) out.push(warning("HUGE_TREE", "warn", `${files.length} files to push; many-small-file trees are slow and eat inodes on capped disks. Add data/cache dirs to ${PROJECT_IGNORE}.`));
  if (bytesTotal > HUGE_BYTES) out.push(warning("HUGE_TREE", "warn", `${(bytesTotal / 1024 ** 3).toFixed(1)} GiB to push; datasets and checkpoints usually belong on the box's data disk, not in the code push.`));
  if (gitBytes > 10 * 1024 * 1024 && gitBytes > bytesTotal / 2) {
    out.push(warning("GIT_DOMINATES", "warn", `.git is ${Math.round((100 * gitBytes) / bytesTotal)}% of the push (${(gitBytes / 1024 ** 2).toFixed(0)} MiB); pass exclude: [".git"] unless the box needs the history.`));
  }
  return out;
}

export async function push(ctx: TransferContext, req: PushRequest): Promise<TransferResult> {
  const t0 = Date.now();
  const warnings: Warning[] = [];
  const localDir = path.resolve(req.localDir);
  let st: fs.Stats;
  try { st = fs.statSync(localDir); } catch {
    return refuse("BAD_INPUT", `local_dir: ${req.localDir} does not exist`, "Pass an existing local directory as local_dir.");
  }
  if (!st.isDirectory()) refuse("BAD_INPUT", `local_dir: ${req.localDir} is not a directory`, "Pass the project directory, not a file.");

  // the connections the push will need open while the tree is scanned (nothing is sent before the refusals)
  if (!req.dryRun) ctx.remote.warm?.(req.host, { transport: localRsyncFlavour().usable });
  trace(`push ${req.host}: start`);
  // 1. scan: exactly the files that would go, evaluated before anything leaves this machine
  const scan = await scanPushTree(localDir, req.exclude ?? []);
  const flavour = localRsyncFlavour();
  if (scan.via === "walk") warnings.push(warning("NO_LOCAL_RSYNC", "warn", `${flavour.why ?? "no usable local rsync"}: SFTP is used; .gitignore applied through git where git is installed, .rgtignore and exclude patterns were not applied.`));
  refuseUnsafe(localDir, scan, req.allowSecretFiles ?? []);
  const files = scan.files;
  if (scan.outside.length) {
    warnings.push(warning("LINK_OUTSIDE", "warn", `${scan.outside.length} symlink(s) lead out of local_dir (or name an absolute target) and were not sent (never followed): ${scan.outside.slice(0, 5).map((l) => `${l.path} -> ${l.target}`).join(", ")}`));
  }
  const bytesTotal = files.reduce((a, f) => a + f.bytes, 0);
  warnings.push(...sizeWarnings(files, bytesTotal));
  const base = { files_total: files.length, bytes_total: bytesTotal, ...(scan.outside.length ? { links_outside: scan.outside.slice(0, 20).map((l) => `${l.path} -> ${l.target}`) } : {}) };
  if (req.dryRun) return { ok: true, method: "dry_run", files_sent: 0, bytes_sent: 0, ...base, elapsed_ms: Date.now() - t0, warnings };
  if (files.length === 0) warnings.push(warning("EMPTY_PUSH", "info", "No files to push after ignore rules; only the destination directory was created."));

  // enough in big files: parallel streams get ready (round trip measured) while the destination is prepared
  // (a push's writes are acknowledged within the box's 2 MiB window, so that is what decides how many)
  const big = splitForRanges(files.filter((f) => f.link === undefined)).ranged;
  const parallel = big.length
    ? ParallelSession.start(ctx.remote, req.host, { windowBytes: SSH2_WINDOW, bytes: big.reduce((a, f) => a + f.bytes, 0) })
    : undefined;
  try {
    return await pushLocked(ctx, req, localDir, files, bytesTotal, base, warnings, flavour, parallel, t0);
  } finally {
    parallel?.close();
  }
}

async function pushLocked(ctx: TransferContext, req: PushRequest, localDir: string, files: PushScan["files"], bytesTotal: number,
  base: Record<string, unknown>, warnings: Warning[], flavour: RsyncFlavour, parallel: ParallelSession | undefined, t0: number): Promise<TransferResult> {
  trace(`push ${req.host}: scanned ${files.length} files`);
  // 2. one round trip: create + resolve the destination, learn whether the box has rsync
  const prep = await prepareRemoteDir(ctx.remote, req.host, req.remoteDir, "remote_dir");
  const hostKey = await ctx.remote.resolve(req.host).then((h) => h.key, () => req.host);
  return withTransferLock([`push:${hostKey}:${prep.dir}`], `pushing into ${req.host}:${prep.dir}`, async (lock) => {
    if (lock.box?.state === "unsupported") warnings.push(warning("BOX_LOCK_UNAVAILABLE", "info", `no box-side lock (${lock.box.why}): a push from another machine into ${prep.dir} at the same time is not stopped`));
    // 3. never change a file under a live run; refused before a byte is sent
    const useRsync = prep.hasRsync && flavour.usable;
    if (files.length) await guardLiveRuns(ctx, req.host, req.remoteDir, prep.dir, localDir, files, useRsync);
    if (!prep.hasRsync) warnings.push(warning("NO_RSYNC", "info", "The box has no rsync; pushed over SFTP with per-file resume (slower on many small files).", "rgt://references/ssh-transport"));
    else if (!flavour.usable && flavour.flavour !== "absent") warnings.push(warning("LOCAL_RSYNC_UNUSABLE", "info", `${flavour.why}; pushed over SFTP instead.`));

    trace(`push ${req.host}: prepared and guarded`);
    await ctx.progress(0, bytesTotal, `pushing ${files.length} files`);
    const mover: Mover = useRsync ? rsyncMover(ctx.remote, req.host, prep.rsyncVersion) : sftpMover(ctx.remote, req.host);
    const deadline = Date.now() + 600_000 + Math.ceil(bytesTotal / 1000);
    const onProgress = throttled(ctx, bytesTotal);
    // big files new to the box, over a long link: byte ranges over parallel streams, beside the rest
    let moverDone = 0;
    const ranged = parallel
      ? await rangedPush(ctx, req.host, parallel, localDir, prep.dir, files, { deadline, progress: onProgress, moverDone: () => moverDone })
      : undefined;
    const rest = ranged ? files.filter((f) => !ranged.files.has(f.path)) : files;
    // SFTP times are whole seconds: a same-size edit within the second is found by the box's hashes
    const force = rest.length && !useRsync ? new Set((await differingOnBox(ctx, req.host, localDir, prep.dir,
      rest)).filter((d) => d.sameSize).map((d) => d.path)) : undefined;
    const moved = rest.length
      ? await mover.move({
        direction: "push", localDir, remoteDir: prep.dir, files: rest, force, deadline,
        signal: ctx.signal, onProgress: (b) => { moverDone = b; onProgress(b + (ranged?.done() ?? 0)); }, onChild: (pid) => lock.addChild(pid),
      })
      : { filesMoved: 0, bytesMoved: 0, bytesReused: 0, resumedFiles: 0, failed: [] };
    trace(`push ${req.host}: single-stream part done`);
    const r = ranged ? combine([moved, await ranged.result]) : moved;
    trace(`push ${req.host}: ranged part done`);
    const out = {
      ...(ranged?.streams ? { streams: ranged.streams } : {}),
      method: mover.name, files_sent: r.filesMoved, bytes_sent: r.bytesMoved, ...(mover.name === "rsync" ? { bytes_reused: r.bytesReused } : { resumed_files: r.resumedFiles }),
      ...base, remote_dir: prep.dir, elapsed_ms: Date.now() - t0,
    };
    if (r.shellNoise) {
      throw new RefusalError("SHELL_NOT_CLEAN", `${mover.name} to ${req.host} could not start: the box's login shell printed text into the transfer stream (${(r.error ?? "").split("\n")[0].slice(0, 160)})`, SHELL_NOT_CLEAN_REMEDY, { ...out, files_sent: 0, bytes_sent: 0 });
    }
    if (r.error || r.failed.length) {
      throw new RefusalError(
        "TRANSFER_INTERRUPTED",
        r.error ? `${mover.name} to ${req.host}:${prep.dir} stopped: ${r.error}` : `${r.failed.length} file(s) did not reach ${req.host}: ${r.failed.slice(0, 3).map((f) => `${f.path}: ${f.error}`).join("; ")}`,
        "Run the same push_code call again: finished files are skipped and a cut file resumes from its partial copy.",
        { ...out, ...(r.failed.length ? { failed_files: r.failed.slice(0, 20).map((f) => f.path) } : {}) },
      );
    }
    await recordPush(ctx.ledger, { host: req.host, hostKey, remoteDir: prep.dir, localDir, files: files.length, bytes: bytesTotal });
    await ctx.progress(bytesTotal, bytesTotal, "done");
    return { ok: true, ...out, warnings };
  }, undefined, files.length ? { remote: ctx.remote, host: req.host, dir: prep.dir } : undefined);
}
