/** The pull half of the transfer service (see index.ts for the shape). */
import * as fs from "node:fs";
import * as path from "node:path";
import { refuse, warning, RefusalError, type Warning } from "../common/result.js";
import { remoteHashTree, type RemoteFileHash, type RemoteHashTree } from "../remote/hashes.js";
import { localRsyncFlavour, PARTIAL_DIR, shellNotClean, SHELL_NOT_CLEAN_REMEDY } from "../remote/rsync.js";
import { sha256FileQuick } from "../verify/hash.js";
import { matchRoster, transferUnits } from "../verify/roster.js";
import { secretLinkTarget } from "../verify/tree.js";
import { getRun, artifactRoot } from "../ledger/runs.js";
import { withTransferLock, type TransferLock } from "./lock.js";
import { ParallelSession, splitForRanges } from "./parallel/index.js";
import { trace } from "./parallel/pull.js";
import { fullCollection, fullStats, heapGuard } from "../common/memory.js";

/** a timestamped phase line in RGT_PARALLEL_LOG, with the server's memory then (development aid) */
const phase = (t0: number, what: string): void => {
  const m = process.memoryUsage();
  trace(`pull: ${what} ${Date.now() - t0} ms (rss ${(m.rss / 2 ** 20).toFixed(0)} heap ${(m.heapUsed / 2 ** 20).toFixed(0)}/${(m.heapTotal / 2 ** 20).toFixed(0)} ab ${(m.arrayBuffers / 2 ** 20).toFixed(0)} MiB; ${fullStats.count} full gc ${fullStats.ms.toFixed(0)} ms)`);
};
import { rsyncMover, sftpMover, type MoveFile } from "./mover.js";
import { throttled, type TransferContext, type TransferResult } from "./context.js";
import { cleanDebris } from "./debris.js";
import { judgePull, type PulledSource } from "./judge.js";
import { checkManifest, manifestPathFor, parseManifest, readManifest, sha256Text } from "./manifest.js";

export interface PullRequest {
  host: string;
  runId?: string;
  remotePath?: string;
  localDir: string;
  expect?: string[];
}

export interface Source {
  /** cell name ("" for a plain remote_path pull) */
  cell: string;
  remoteRoot: string;
  /** fallback root tried when remoteRoot does not exist (a run's output dir when no durable copy exists yet) */
  fallbackRoot?: string;
  localDir: string;
  expect: string[];
}

function sourcesOf(ctx: TransferContext, req: PullRequest, localRoot: string): Source[] {
  if (!req.runId) return [{ cell: "", remoteRoot: req.remotePath!, localDir: localRoot, expect: req.expect ?? [] }];
  const rec = getRun(ctx.ledger, req.runId);
  if (!rec) refuse("NOT_FOUND", `run_id: no run ${req.runId} in this server's ledger`, "Use the run_id launch_queue returned (run_status lists runs), or pull by remote_path.");
  const cells = rec.cells.filter((c) => c.host === req.host);
  if (!cells.length) refuse("BAD_INPUT", `host: run ${req.runId} has no cells on ${req.host} (hosts: ${rec.hosts.join(", ")})`, "Call pull_verify once per host of the run.");
  return cells.map((c) => {
    const root = artifactRoot(rec, c.name);
    return {
      cell: c.name,
      remoteRoot: req.remotePath ? path.posix.join(req.remotePath, c.name) : root,
      fallbackRoot: root !== c.output_dir ? c.output_dir : undefined,
      localDir: path.join(localRoot, c.name),
      expect: req.expect ?? rec.expect ?? [],
    };
  });
}

/** A box-side link stays inside its root when its target, resolved lexically, does (absolute targets never do). */
const linkInside = (rel: string, target: string): boolean => {
  if (target.startsWith("/")) return false;
  const r = path.posix.normalize(path.posix.join(path.posix.dirname(rel), target));
  return r !== ".." && !r.startsWith("../");
};

/** Refuse what cannot be carried or must not be: non-UTF-8 names, unreadable files, links to credentials. */
function refuseListing(host: string, t: RemoteHashTree, label: (p: string) => string): void {
  if (t.badNames.length || t.unreadable.length) {
    const names = [...t.badNames.map((n) => `${n} (name is not UTF-8)`), ...t.unreadable.map((n) => `${label(n)} (unreadable on the box)`)];
    refuse("UNCARRIABLE", `${names.length} file(s) under ${t.root} on ${host} cannot be pulled faithfully: ${names.slice(0, 5).join(", ")}. No receipt was written.`,
      "Rename non-UTF-8 names on the box (remote_exec: convmv, or mv), fix the permissions of unreadable files, then pull again.",
      { uncarriable: names.slice(0, 20) });
  }
  const secret = t.links.filter((l) => !linkInside(l.path, l.target) && secretLinkTarget(path.posix.resolve(t.root, path.posix.dirname(l.path), l.target)));
  if (secret.length) {
    refuse("SECRET_FILE", `${secret.length} symlink(s) under ${t.root} on ${host} point at credentials: ${secret.slice(0, 5).map((l) => `${label(l.path)} -> ${l.target}`).join(", ")}. Nothing was pulled through them.`,
      "Remove the link on the box, or pull a narrower remote_path; credentials never travel through pull_verify.");
  }
}

/**
 * hash_tree.sh on one root: `listing` as soon as the box has listed it (files with sha256 "", not hashed
 * yet; the whole tree when the listing record never came), `full` when it has hashed everything.
 */
async function stagedHashTree(ctx: TransferContext, host: string, root: string): Promise<{ listing: RemoteHashTree; full: Promise<RemoteHashTree> }> {
  let listed: (t: RemoteHashTree) => void = () => {};
  const listing = new Promise<RemoteHashTree>((r) => { listed = r; });
  const full = remoteHashTree(ctx.remote, host, root, undefined, { signal: ctx.signal, onListing: (t) => listed(t) });
  full.catch(() => {}); // awaited later, where its failure is reported
  return { listing: await Promise.race([listing, full]), full };
}

/** Remove the files and links at these relative paths (never directories); the paths removed. */
function removeExtras(root: string, rels: string[]): string[] {
  const out: string[] = [];
  for (const rel of rels) {
    const abs = path.join(root, rel);
    if (path.relative(root, abs).startsWith("..")) continue;
    try {
      if (fs.lstatSync(abs).isDirectory()) continue;
      fs.unlinkSync(abs);
      out.push(rel);
    } catch { /* already gone */ }
  }
  return out;
}

export async function pull(ctx: TransferContext, req: PullRequest): Promise<TransferResult> {
  const t0 = Date.now();
  const warnings: Warning[] = [];
  if (!req.runId && !req.remotePath) refuse("BAD_INPUT", "remote_path or run_id: one of them is required", "Pass remote_path (a directory on the box) or the run_id launch_queue returned.");
  for (const e of req.expect ?? []) {
    if (/[\0\n\r]/.test(e) || e.startsWith("/") || e.split("/").includes("..")) refuse("BAD_INPUT", `expect: "${e.slice(0, 80)}" must be a relative path inside the pulled directory`, "List paths relative to remote_path (or to each cell's output dir).");
  }
  const localRoot = path.resolve(req.localDir);
  try { fs.mkdirSync(localRoot, { recursive: true }); } catch (e) {
    refuse("BAD_INPUT", `local_dir: cannot create ${req.localDir} (${(e as NodeJS.ErrnoException).code})`, "Pick a writable local directory.");
  }
  const sources = sourcesOf(ctx, req, localRoot);
  const hostKey = await ctx.remote.resolve(req.host).then((h) => h.key, () => undefined);
  const startedAt = new Date().toISOString();
  return withTransferLock([`pull:${fs.realpathSync(localRoot)}`], `pulling into ${localRoot}`, async (lock) => {
    // parallel streams get ready while the box hashes; used only where the link needs them (parallel/)
    const parallel = ParallelSession.start(ctx.remote, req.host);
    try {
      return await pullLocked(ctx, req, localRoot, sources, lock, parallel, t0, warnings, { hostKey, startedAt });
    } finally {
      parallel.close();
      // thousands of files leave a heap V8 grew for them: handed back before the next call, once this
      // one's answer is on its way
      setTimeout(fullCollection, 20).unref();
    }
  });
}

async function pullLocked(
  ctx: TransferContext, req: PullRequest, localRoot: string, sources: Source[], lock: TransferLock, parallel: ParallelSession, t0: number,
  warnings: Warning[], stamp: { hostKey?: string; startedAt: string },
): Promise<TransferResult> {
  {
    // 1. the box lists and hashes its own files (one round trip per source). Where rsync carries the tree
    // and no manifest beside it must be checked first, the transfer starts on the listing while the box
    // still hashes: the hashes are only needed to judge what arrived.
    const trees: PulledSource[] = [];
    const fulls: Promise<RemoteHashTree>[] = [];
    const flavour = localRsyncFlavour();
    for (const src of sources) {
      let staged = await stagedHashTree(ctx, req.host, src.remoteRoot);
      if (!staged.listing.exists && src.fallbackRoot) staged = await stagedHashTree(ctx, req.host, src.fallbackRoot);
      let tree = staged.listing;
      if (tree.siblingManifest !== undefined || !tree.hasRsync || !flavour.usable) tree = await staged.full;
      fulls.push(staged.full);
      const label = (p: string): string => (src.cell ? `${src.cell}/${p}` : p);
      refuseListing(req.host, tree, label);
      const carried = tree.siblingManifest !== undefined ? parseManifest(tree.siblingManifest) : undefined;
      if (tree.siblingManifest !== undefined && !carried) {
        warnings.push(warning("MANIFEST_UNREADABLE", "warn", `${manifestPathFor(tree.root)} on the box is not a manifest this server can read; the tree was not checked against it`));
      }
      trees.push({
        src, tree, links: tree.links.filter((l) => linkInside(l.path, l.target)), outside: tree.links.filter((l) => !linkInside(l.path, l.target)),
        ...(carried ? { carried, carriedSha: sha256Text(tree.siblingManifest!) } : {}),
      });
    }
    phase(t0, `listed on box`);
    const prefix = (src: Source, p: string): string => (src.cell ? `${src.cell}/${p}` : p);
    // a tree that has a manifest beside it on the box is checked against it before anything moves
    const differs = trees.flatMap((t) => (t.carried ? checkManifest(t.carried, t.tree.files).differs.map((p) => prefix(t.src, p)) : []));
    if (differs.length) {
      refuse("HASH_MISMATCH", `${differs.length} file(s) on ${req.host} differ from the manifest the tree carries: ${differs.slice(0, 5).join(", ")}. Nothing was pulled.`,
        "Treat them as tampered or rewritten: find out why before trusting them. If the run legitimately rewrote them, remove or replace the stale manifest beside the tree.",
        { receipt_id: null, mismatched: differs.slice(0, 50), local_dir: localRoot });
    }
    const gone = trees.flatMap((t) => (t.carried ? checkManifest(t.carried, t.tree.files).gone.map((p) => prefix(t.src, p)) : []));
    if (gone.length) {
      refuse("ROSTER_MISMATCH", `${gone.length} file(s) the tree's manifest lists are not on ${req.host}: ${gone.slice(0, 8).join(", ")}. Nothing was pulled.`,
        "Find out where they went before trusting the copy; the box still holds whatever exists.", { receipt_id: null, missing: gone.slice(0, 50), local_dir: localRoot });
    }
    const totalFiles = trees.reduce((a, t) => a + t.tree.files.length, 0);
    // thousands of names make garbage (parsed listings, rsync's lines, hashes): the transfer's loops keep it
    // bounded (heapGuard), and it is collected once the box's hashes are parsed, before the verdict
    const settle = (): void => { if (totalFiles >= 2000) fullCollection(); };
    const bytesTotal = trees.reduce((a, t) => a + t.tree.files.reduce((b, f) => b + f.bytes, 0), 0);
    if (totalFiles === 0) {
      const where = trees.map((t) => (t.tree.root ? `${t.tree.root} (empty)` : `${t.src.remoteRoot} (does not exist)`)).join(", ");
      refuse("EMPTY_ARTIFACT_SET", `nothing to pull from ${req.host}: ${where}`, "Check the run finished and wrote its outputs (run_status), or point remote_path at the directory that holds them. Never tear down on an empty pull.", {
        receipt_id: null, complete: false, files: [], missing: trees.flatMap((t) => t.src.expect.map((e) => prefix(t.src, e))), mismatched: [],
          bytes_transferred: 0, elapsed_ms: Date.now() - t0,
      });
    }
    const outside = trees.flatMap((t) => t.outside.map((l) => `${prefix(t.src, l.path)} -> ${l.target}`));
    if (outside.length) warnings.push(warning("LINK_OUTSIDE", "warn", `${outside.length} symlink(s) on the box lead out of the pulled directory and were not followed: ${outside.slice(0, 5).join(", ")}`));
    const others = trees.flatMap((t) => t.tree.others.map((o) => prefix(t.src, o.path)));
    if (others.length) warnings.push(warning("NOT_A_FILE", "info", `${others.length} entr(ies) are neither files nor links (fifo, socket, device) and were not pulled: ${others.slice(0, 5).join(", ")}`));

    // 2. transfer per unit, hashing each finished unit locally while the next one moves
    // the box's sha256 of each file of tree i, once it has hashed them
    const boxSha = fulls.map((f) => f.then((t) => new Map(t.files.map((x) => [x.path, x.sha256] as [string, string])), () => new Map<string, string>()));
    const localHash = new Map<string, { bytes: number; sha256: string } | null>();
    const guard = heapGuard();
    const hashLocal = async (src: Source, f: RemoteFileHash): Promise<void> => {
      guard();
      const key = prefix(src, f.path);
      try { localHash.set(key, await sha256FileQuick(path.join(src.localDir, f.path), f.bytes)); } catch { localHash.set(key, null); }
    };
    // small files hash synchronously; give the event loop (progress, the ssh connection) a turn every 20 ms
    const hashAll = async (src: Source, files: RemoteFileHash[]): Promise<void> => {
      let since = Date.now();
      for (const f of files) {
        await hashLocal(src, f);
        if (Date.now() - since > 20) { await new Promise((r) => setImmediate(r)); since = Date.now(); }
      }
    };
    const hashJobs: Promise<void>[] = [];
    const failedUnits: { label: string; error: string; shellNoise?: boolean }[] = [];
    let bytesTransferred = 0;
    let bytesReused = 0;
    let doneBytes = 0;
    const deadline = Date.now() + 600_000 + Math.ceil(bytesTotal / 1000);
    let rangedDone = 0;
    let parallelStreams = 0;
    const rangedJobs: Promise<void>[] = [];
    const tick = throttled(ctx, bytesTotal, "pulling", () => doneBytes + rangedDone);
    await ctx.progress(0, bytesTotal, `pulling ${totalFiles} files`);
    let usedSftp = false;
    for (const [ti, t] of trees.entries()) {
      if (!t.tree.files.length && !t.links.length) continue;
      fs.mkdirSync(t.src.localDir, { recursive: true });
      cleanDebris(t.src.localDir, t.tree.files.map((f) => f.path));
      const useRsync = t.tree.hasRsync && flavour.usable;
      if (!useRsync) usedSftp = true;
      const mover = useRsync ? rsyncMover(ctx.remote, req.host, t.tree.rsyncVersion) : sftpMover(ctx.remote, req.host);
      // big files over a long link: byte ranges over parallel streams, beside the single-stream units
      const split = splitForRanges(t.tree.files);
      let unitFiles: RemoteFileHash[] = t.tree.files;
      if (split.ranged.length && !ctx.signal.aborted && (await parallel.worth())) {
        unitFiles = split.rest;
        const src = t.src;
        const onProgress = (b: number) => { rangedDone = b; tick(0); };
        rangedJobs.push(parallel.pull(t.tree.root, src.localDir, split.ranged, { deadline, signal: ctx.signal, onProgress, boxSha: boxSha[ti] }).then((r) => {
          bytesTransferred += r.bytesTransferred;
          parallelStreams = Math.max(parallelStreams, r.streams);
          for (const [p, h] of r.hashes) localHash.set(prefix(src, p), h);
          if (r.failed.length) failedUnits.push({ label: prefix(src, "(ranged)"), error: r.failed.slice(0, 2).map((f) => `${f.path}: ${f.error}`).join("; ") });
          for (const f of split.ranged) if (!r.hashes.has(f.path)) hashJobs.push(hashLocal(src, f));
        }, (e: Error) => { failedUnits.push({ label: prefix(src, "(ranged)"), error: e.message.slice(0, 200) }); }));
      }
      const items: (MoveFile & { isLink?: boolean })[] = [...unitFiles, ...t.links.map((l) => ({ path: l.path, bytes: 0, link: l.target }))];
      // one rsync for up to 50,000 files (each rsync start costs more than the overlap it buys); files are
      // hashed as rsync reports them done, so hashing overlaps the transfer inside the unit too
      const units = transferUnits(items, { minFiles: 50_000 });
      // one rsync over the whole tree walks it itself (a --files-from list of 20,000 names cost rsync 2-3×
      // its own walk); not when a link leads out of the tree (rsync would carry it) or big files went ranged
      const wholeTree = useRsync && units.length === 1 && unitFiles.length === t.tree.files.length && !t.outside.length;
      const listed = wholeTree ? new Set(items.map((f) => f.path)) : undefined;
      const extras: string[] = [];
      for (const unit of units) {
        const label = prefix(t.src, unit.label);
        if (ctx.signal.aborted) { failedUnits.push({ label, error: "cancelled" }); continue; }
        const byPath = new Map(unit.files.filter((f) => f.link === undefined).map((f) => [f.path, f as RemoteFileHash]));
        const early: RemoteFileHash[] = [];
        let wake: (() => void) | undefined;
        let moving = true;
        const earlyJob = (async () => {
          let since = Date.now();
          for (let i = 0; ; ) {
            if (i < early.length) {
              await hashLocal(t.src, early[i++]);
              if (Date.now() - since > 20) { await new Promise((r) => setImmediate(r)); since = Date.now(); }
            } else if (moving) await new Promise<void>((r) => { wake = r; });
            else break;
          }
        })();
        const r = await mover.move({
          direction: "pull", localDir: t.src.localDir, remoteDir: t.tree.root, files: unit.files, deadline, signal: ctx.signal,
          onProgress: tick, onChild: (pid) => lock.addChild(pid),
          onFile: (rel) => {
            guard();
            const f = byPath.get(rel);
            if (f) { early.push(f); wake?.(); wake = undefined; } else if (listed && !listed.has(rel)) extras.push(rel);
          },
          wholeTree,
        });
        moving = false;
        wake?.();
        phase(t0, `unit ${label.slice(0, 40)} moved`);
        bytesTransferred += r.bytesMoved;
        bytesReused += r.bytesReused;
        if (r.error) failedUnits.push({ label, error: r.error, shellNoise: r.shellNoise });
        else if (r.failed.length) failedUnits.push({ label, error: r.failed.slice(0, 2).map((f) => `${f.path}: ${f.error}`).join("; ") });
        doneBytes += unit.bytes;
        // after the unit: what was not hashed early (rsync found it current), and what was hashed early but
        // does not match (read before rsync put it in place), hashed now
        hashJobs.push(earlyJob.then(async () => {
          const sha = await boxSha[ti];
          await hashAll(t.src, [...byPath.values()].filter((f) => localHash.get(prefix(t.src, f.path))?.sha256 !== sha.get(f.path)));
        }));
      }
      // what the whole-tree rsync carried beyond the listing appeared on the box after it was hashed: never
      // left beside verified files as if it were one of them
      const removed = removeExtras(t.src.localDir, extras);
      if (removed.length) {
        warnings.push(warning("APPEARED_AFTER_LISTING", "info", `${removed.length} entr(ies) appeared on the box after it was listed and hashed; not pulled (pull again to include them): ${removed.slice(0, 5).map((p) => prefix(t.src, p)).join(", ")}`));
      }
    }
    await Promise.all(rangedJobs);
    await Promise.all(hashJobs);
    phase(t0, `hashed locally`);
    // the box's hashes (already there where nothing overlapped): what the rest is judged against
    for (const [ti, t] of trees.entries()) {
      t.tree = await fulls[ti];
      refuseListing(req.host, t.tree, (p) => prefix(t.src, p));
    }
    phase(t0, `box hashes in`);
    settle();
    // what changed on the box since an earlier verified pull of this same source (a rewrite is allowed, never silent)
    // (read only now: for a big tree it is a big object, not worth holding through the transfer)
    const changed = trees.flatMap((t) => {
      // the manifest an earlier pull of this same source left beside the local tree
      const prior = readManifest(manifestPathFor(t.src.localDir));
      const same = prior && prior.source.remote_dir === t.tree.root
        && (prior.source.host_key && stamp.hostKey ? prior.source.host_key === stamp.hostKey : prior.source.host === req.host);
      return same ? checkManifest(prior, t.tree.files).differs.map((p) => prefix(t.src, p)) : [];
    });
    if (changed.length) {
      warnings.push(warning("CHANGED_SINCE_LAST_PULL", "warn", `${changed.length} file(s) differ from what the last verified pull into local_dir recorded (rewritten on the box since): ${changed.slice(0, 5).join(", ")}`));
    }

    // 3. one repair pass. rsync's quick check trusts size + mtime: a local copy with the box's size and
    // mtime but other bytes (a box rsync older than 3.1.3 and a same-second rewrite there, or a local copy
    // edited or corrupted with its mtime kept) is never re-sent. Those files, and only those (a size that
    // differs means the file changed on the box mid-pull, which a re-send cannot fix), go again with
    // --ignore-times, and are hashed again.
    const repaired: string[] = [];
    for (const t of trees) {
      if (!t.tree.hasRsync || !flavour.usable || ctx.signal.aborted) continue;
      const stale = t.tree.files.filter((f) => {
        const h = localHash.get(prefix(t.src, f.path));
        return !!h && h.bytes === f.bytes && h.sha256 !== f.sha256;
      });
      if (!stale.length) continue;
      const r = await rsyncMover(ctx.remote, req.host, t.tree.rsyncVersion).move({
        direction: "pull", localDir: t.src.localDir, remoteDir: t.tree.root, files: stale, force: new Set(stale.map((f) => f.path)),
        deadline, signal: ctx.signal, onChild: (pid) => lock.addChild(pid),
      });
      bytesTransferred += r.bytesMoved;
      for (const f of stale) {
        await hashLocal(t.src, f);
        if (localHash.get(prefix(t.src, f.path))?.sha256 === f.sha256) repaired.push(prefix(t.src, f.path));
      }
    }
    if (repaired.length) {
      warnings.push(warning("REPULLED", "info", `${repaired.length} file(s) had the box's size and mtime locally but other bytes, so rsync skipped them; re-sent in full and now match: ${repaired.slice(0, 5).join(", ")}`));
    }
    for (const t of trees) cleanDebris(t.src.localDir, t.tree.files.map((f) => f.path), { partialDirs: failedUnits.length ? "empty" : "all" });
    if (usedSftp) {
      warnings.push(warning("NO_RSYNC", "info", trees.some((t) => t.tree.hasRsync) && !flavour.usable
        ? `Pulled over SFTP (${flavour.why}): resumable per file, slower on many small files.`
        : "Pulled over SFTP (no rsync on the box): resumable per file, slower on many small files."));
    }
    const shellNoise = failedUnits.some((u) => u.shellNoise || shellNotClean(u.error));
    if (shellNoise) {
      throw new RefusalError("SHELL_NOT_CLEAN", `pulling from ${req.host} could not start: the box's login shell printed text into the transfer stream`, SHELL_NOT_CLEAN_REMEDY, { receipt_id: null, local_dir: localRoot });
    }

    // 4. compare, load-check, receipt
    const out = await judgePull(ctx, {
      req, localRoot, trees, localHash, failedUnits, bytesTransferred, bytesReused, bytesTotal, warnings, t0,
      hostKey: stamp.hostKey, startedAt: stamp.startedAt,
    });
    phase(t0, `judged`);
    return parallelStreams > 0 ? { ...out, streams: parallelStreams } : out;
  }
}

export { PARTIAL_DIR };
