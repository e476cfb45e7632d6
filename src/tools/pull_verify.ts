/**
 * pull_verify — get artifacts off a box and prove they arrived whole.
 * Per source (a remote_path, or each cell of a run on this host):
 *   1. the box hashes its own files (one round trip, scripts/hash_tree.sh) → the remote manifest
 *   2. the roster (expect) is checked against that manifest
 *   3. files come over in per-directory units (rsync --partial, or SFTP with per-file resume); each
 *      finished unit is hashed locally while the next one is still transferring
 *   4. every local sha256 is compared with the box's; checkpoints are load-checked
 * A complete, matching, loadable pull writes a receipt (src/ledger/receipts.ts) that request_teardown requires.
 */
// TODO(issue 10): the transfer service (src/transfer/) takes this file's fs/child_process work; then drop this disable.
/* eslint-disable @typescript-eslint/no-restricted-imports */
import * as fs from "node:fs";
import * as path from "node:path";
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { refuse, warning, RefusalError, type Warning } from "../common/result.js";
import { remoteHashTree, type RemoteFileHash } from "../remote/hashes.js";
import { runRsync, localRsyncAvailable, PARTIAL_DIR, shellNotClean, SHELL_NOT_CLEAN_REMEDY } from "../remote/rsync.js";
import { sftpPull } from "../remote/sftp.js";
import { sha256File, manifestSha256 } from "../verify/hash.js";
import { loadCheckFiles, type LoadCheck } from "../verify/checkpoint.js";
import { matchRoster, transferUnits } from "../verify/roster.js";
import { getRun, artifactRoot } from "../ledger/runs.js";
import { newReceiptId, saveReceipt, type Receipt } from "../ledger/receipts.js";
import { hostText, nameText, pathText } from "./fields.js";

const LIST_CAP = 20;

interface Source {
  /** cell name ("" for a plain remote_path pull) */
  cell: string;
  remoteRoot: string;
  /** fallback root tried when remoteRoot does not exist (a run's output dir when no durable copy exists yet) */
  fallbackRoot?: string;
  localDir: string;
  expect: string[];
}

interface FileOut {
  path: string;
  bytes: number;
  sha256: string | null;
  remote_sha256: string;
  match: boolean;
  load_check: LoadCheck | null;
}


export const pullVerify = defineTool({
  name: "pull_verify",
  title: "Pull artifacts and verify them (hash both ends, load-check)",
  description:
    "Pull a dir or a run's outputs, resumably; hash both ends, load-check checkpoints, check the expect roster. A full match writes the receipt teardown needs.",
  input: {
    host: hostText(),
    run_id: nameText().optional(),
    remote_path: pathText("remote_path").optional(),
    local_dir: pathText("local_dir"),
    expect: z.array(z.string().min(1).max(1024)).max(500).optional().describe("roster (globs ok)"),
  },
  output: {
    receipt_id: z.string().nullable().optional(),
    complete: z.boolean().optional(),
    files: z.array(z.looseObject({ path: z.string(), bytes: z.number(), sha256: z.string().nullable(), remote_sha256: z.string(), match: z.boolean(),
        load_check: z.unknown() })).optional(),
    files_total: z.number().optional(),
    missing: z.array(z.string()).optional(),
    mismatched: z.array(z.string()).optional(),
    bytes_transferred: z.number().optional(),
    bytes_total: z.number().optional(),
    bytes_reused: z.number().optional(),
    manifest_sha256: z.string().optional(),
    local_dir: z.string().optional(),
    failed_units: z.array(z.string()).optional(),
    elapsed_ms: z.number().optional(),
  },
  // write: it adds local copies and a receipt; nothing on the box changes
  effect: "write",
  async handler(args, ctx) {
    const t0 = Date.now();
    const warnings: Warning[] = [];
    if (!args.run_id && !args.remote_path) refuse("BAD_INPUT", "remote_path or run_id: one of them is required", "Pass remote_path (a directory on the box) or the run_id launch_queue returned.");
    for (const e of args.expect ?? []) if (/[\0\n\r]/.test(e) || e.startsWith("/") || e.split("/").includes("..")) refuse("BAD_INPUT", `expect: "${e.slice(0, 80)}" must be a relative path inside the pulled directory`, "List paths relative to remote_path (or to each cell's output dir).");
    const localRoot = path.resolve(args.local_dir);
    try {
      fs.mkdirSync(localRoot, { recursive: true });
    } catch (e) {
      refuse("BAD_INPUT", `local_dir: cannot create ${args.local_dir} (${(e as NodeJS.ErrnoException).code})`, "Pick a writable local directory.");
    }

    // what to pull
    const sources: Source[] = [];
    if (args.run_id) {
      const rec = getRun(ctx.ledger, args.run_id);
      if (!rec) refuse("NOT_FOUND", `run_id: no run ${args.run_id} in this server's ledger`, "Use the run_id launch_queue returned (run_status lists runs), or pull by remote_path.");
      const cells = rec.cells.filter((c) => c.host === args.host);
      if (!cells.length) refuse("BAD_INPUT", `host: run ${args.run_id} has no cells on ${args.host} (hosts: ${rec.hosts.join(", ")})`, "Call pull_verify once per host of the run.");
      for (const c of cells) {
        const root = artifactRoot(rec, c.name);
        const cellDir = path.join(localRoot, c.name);
        sources.push({
          cell: c.name,
          remoteRoot: args.remote_path ? path.posix.join(args.remote_path, c.name) : root,
          fallbackRoot: root !== c.output_dir ? c.output_dir : undefined,
          localDir: cellDir,
          expect: args.expect ?? rec.expect ?? [],
        });
      }
    } else {
      sources.push({ cell: "", remoteRoot: args.remote_path!, localDir: localRoot, expect: args.expect ?? [] });
    }

    // 1. the box hashes its own files (one round trip per source)
    const trees: { src: Source; root: string; files: RemoteFileHash[]; hasRsync: boolean; rsyncVersion: string }[] = [];
    for (const src of sources) {
      let tree = await remoteHashTree(ctx.remote, args.host, src.remoteRoot, undefined, { signal: ctx.signal });
      if (!tree.exists && src.fallbackRoot) tree = await remoteHashTree(ctx.remote, args.host, src.fallbackRoot, undefined, { signal: ctx.signal });
      trees.push({ src, root: tree.root, files: tree.files, hasRsync: tree.hasRsync, rsyncVersion: tree.rsyncVersion });
    }
    const prefix = (src: Source, p: string): string => (src.cell ? `${src.cell}/${p}` : p);
    const totalFiles = trees.reduce((a, t) => a + t.files.length, 0);
    const bytesTotal = trees.reduce((a, t) => a + t.files.reduce((b, f) => b + f.bytes, 0), 0);
    if (totalFiles === 0) {
      const where = trees.map((t) => (t.root ? `${t.root} (empty)` : `${t.src.remoteRoot} (does not exist)`)).join(", ");
      refuse("EMPTY_ARTIFACT_SET", `nothing to pull from ${args.host}: ${where}`, "Check the run finished and wrote its outputs (run_status), or point remote_path at the directory that holds them. Never tear down on an empty pull.", {
        receipt_id: null, complete: false, files: [], missing: trees.flatMap((t) => t.src.expect.map((e) => prefix(t.src, e))), mismatched: [],
            bytes_transferred: 0, elapsed_ms: Date.now() - t0,
      });
    }

    // 2. roster against the box's manifest
    const missing: string[] = [];
    const rosterPaths = new Set<string>();
    for (const t of trees) {
      const r = matchRoster(t.src.expect, t.files.map((f) => f.path));
      missing.push(...r.missing.map((m) => prefix(t.src, m)));
      for (const hits of Object.values(r.matched)) hits.forEach((h) => rosterPaths.add(prefix(t.src, h)));
    }

    // 3. transfer per unit, hashing each finished unit locally while the next one moves
    let bytesTransferred = 0;
    let bytesMatched = 0;
    let doneBytes = 0;
    const failedUnits: { label: string; error: string; shellNoise?: boolean }[] = [];
    const localHash = new Map<string, { bytes: number; sha256: string } | null>();
    const hashJobs: Promise<void>[] = [];
    const hashLocal = async (src: Source, f: RemoteFileHash): Promise<void> => {
      try { localHash.set(prefix(src, f.path), await sha256File(path.join(src.localDir, f.path))); } catch { localHash.set(prefix(src, f.path), null); }
    };
    const hashUnit = (src: Source, files: RemoteFileHash[]): void => {
      hashJobs.push((async () => { for (const f of files) await hashLocal(src, f); })());
    };
    const timeoutMs = 600_000 + Math.ceil(bytesTotal / 1000);
    const deadline = Date.now() + timeoutMs;
    let lastTick = 0;
    const tick = (extra: number): void => {
      const now = Date.now();
      if (now - lastTick < 500) return;
      lastTick = now;
      void ctx.progress(Math.min(bytesTotal, doneBytes + extra), bytesTotal, "pulling");
    };
    await ctx.progress(0, bytesTotal, `pulling ${totalFiles} files`);
    let usedSftp = false;
    for (const t of trees) {
      if (!t.files.length) continue;
      fs.mkdirSync(t.src.localDir, { recursive: true });
      const useRsync = t.hasRsync && localRsyncAvailable();
      if (!useRsync) usedSftp = true;
      const transport = useRsync ? await ctx.remote.sshTransport(args.host) : undefined;
      for (const unit of transferUnits(t.files)) {
        if (ctx.signal.aborted) { failedUnits.push({ label: unit.label, error: "cancelled" }); continue; }
        const label = prefix(t.src, unit.label);
        if (transport) {
          const r = await runRsync({
            transport, direction: "pull", localDir: t.src.localDir, remoteDir: t.root, remoteVersion: t.rsyncVersion,
            files: unit.files.map((f) => f.path), timeoutMs: Math.max(10_000, deadline - Date.now()), signal: ctx.signal,
            onProgress: (b) => tick(b),
          });
          bytesTransferred += r.haveStats ? r.bytesReceived : 0;
          bytesMatched += r.matchedData;
          if (!r.ok) failedUnits.push({ label, error: `rsync exit ${r.exitCode}${r.timedOut ? " (timed out)" : ""}: ${r.stderrTail.slice(-200)}`, shellNoise: r.shellNoise });
        } else {
          const sftp = await ctx.remote.sftp(args.host);
          try {
            const r = await sftpPull(sftp, t.root, t.src.localDir, unit.files, { deadline, remoteSha256: new Map(unit.files.map((f) => [f.path,
                f.sha256])), onProgress: (b) => tick(b) });
            bytesTransferred += r.bytesTransferred;
            if (r.failed.length) failedUnits.push({ label, error: r.failed.slice(0, 2).map((f) => `${f.path}: ${f.error}`).join("; ") });
          } finally {
            sftp.end();
          }
        }
        doneBytes += unit.bytes;
        hashUnit(t.src, unit.files);
      }
    }
    await Promise.all(hashJobs);

    // 3b. one repair pass. rsync's quick check trusts size + mtime: a local copy with the box's size and
    // mtime but other bytes (a box rsync older than 3.1.3 and a same-second rewrite there, or a local copy
    // edited or corrupted with its mtime kept) is never re-sent. Those files, and only those (a size that
    // differs means the file changed on the box mid-pull, which a re-send cannot fix), go again with
    // --ignore-times, and are hashed again.
    const repaired: string[] = [];
    for (const t of trees) {
      if (!t.hasRsync || !localRsyncAvailable() || ctx.signal.aborted) continue;
      const stale = t.files.filter((f) => {
        const h = localHash.get(prefix(t.src, f.path));
        return !!h && h.bytes === f.bytes && h.sha256 !== f.sha256;
      });
      if (!stale.length) continue;
      const r = await runRsync({
        transport: await ctx.remote.sshTransport(args.host), direction: "pull", localDir: t.src.localDir, remoteDir: t.root, remoteVersion: t.rsyncVersion,
        files: stale.map((f) => f.path), extraArgs: ["--ignore-times"], timeoutMs: Math.max(10_000, deadline - Date.now()), signal: ctx.signal,
      });
      bytesTransferred += r.haveStats ? r.bytesReceived : 0;
      for (const f of stale) {
        await hashLocal(t.src, f);
        if (localHash.get(prefix(t.src, f.path))?.sha256 === f.sha256) repaired.push(prefix(t.src, f.path));
      }
    }
    if (repaired.length) {
      warnings.push(warning("REPULLED", "info", `${repaired.length} file(s) had the box's size and mtime locally but other bytes, so rsync skipped them; re-sent in full and now match: ${repaired.slice(0, 5).join(", ")}`));
    }
    for (const t of trees) cleanPartialDirs(t.src.localDir);
    if (usedSftp) warnings.push(warning("NO_RSYNC", "info", "Pulled over SFTP (no rsync on the box): resumable per file, slower on many small files."));

    // 4. compare, load-check
    const files: FileOut[] = [];
    const mismatched: string[] = [];
    const absent: string[] = [];
    for (const t of trees) {
      for (const f of t.files) {
        const p = prefix(t.src, f.path);
        const h = localHash.get(p) ?? null;
        const match = !!h && h.sha256 === f.sha256 && h.bytes === f.bytes;
        if (!h) absent.push(p);
        else if (!match) mismatched.push(p);
        files.push({ path: p, bytes: f.bytes, sha256: h?.sha256 ?? null, remote_sha256: f.sha256, match, load_check: null });
      }
    }
    const absPath = (p: string): string => {
      const t = trees.find((x) => x.src.cell && p.startsWith(`${x.src.cell}/`));
      return t ? path.join(t.src.localDir, p.slice(t.src.cell.length + 1)) : path.join(localRoot, p);
    };
    // torch.load costs seconds: only worth it when the pull is otherwise sound (structure checks always run)
    const sound = absent.length === 0 && mismatched.length === 0 && missing.length === 0 && failedUnits.length === 0;
    const shaOf = new Map(files.filter((f) => f.match).map((f) => [absPath(f.path), f.sha256!] as [string, string]));
    const checks = await loadCheckFiles([...shaOf.keys()], { torch: sound, sha256: shaOf });
    const loadFailed: string[] = [];
    for (const f of files) {
      const c = checks.get(absPath(f.path));
      if (c) { f.load_check = c; if (c.ok === false) loadFailed.push(f.path); }
    }
    if ([...checks.values()].some((c) => c.torch_load === "unavailable")) {
      warnings.push(warning("NO_LOCAL_TORCH", "info", "No local Python with torch: torch checkpoints got a structural check only (set RGT_PYTHON to one that has torch)."));
    }

    // compact listing: problems first, then roster hits and checkpoints, then the rest
    const rank = (f: FileOut): number => (!f.match ? 0 : f.load_check?.ok === false ? 1 : rosterPaths.has(f.path) ? 2 : f.load_check ? 3 : 4);
    const listed = [...files].sort((a, b) => rank(a) - rank(b) || (a.path < b.path ? -1 : 1)).slice(0, LIST_CAP);
    const complete = absent.length === 0 && mismatched.length === 0 && missing.length === 0;
    const base = {
      complete,
      files: listed,
      files_total: files.length,
      missing: [...missing, ...absent].slice(0, 50),
      mismatched: mismatched.slice(0, 50),
      bytes_transferred: bytesTransferred,
      bytes_reused: bytesMatched,
      bytes_total: bytesTotal,
      local_dir: localRoot,
      elapsed_ms: Date.now() - t0,
    };

    if (failedUnits.some((u) => u.shellNoise || shellNotClean(u.error))) {
      throw new RefusalError("SHELL_NOT_CLEAN", `pulling from ${args.host} could not start: the box's login shell printed text into the transfer stream`, SHELL_NOT_CLEAN_REMEDY, { ...base, receipt_id: null });
    }
    if (failedUnits.length || absent.length) {
      throw new RefusalError(
        "TRANSFER_INTERRUPTED",
        `${absent.length} of ${files.length} files did not arrive (${failedUnits.slice(0, 3).map((u) => `${u.label}: ${u.error}`).join("; ") || "local copy unreadable"})`,
        "Run the same pull_verify call again: finished files are kept and partial ones resume.",
        { ...base, receipt_id: null, failed_units: failedUnits.slice(0, 10).map((u) => u.label) },
      );
    }
    if (mismatched.length) {
      throw new RefusalError(
        "HASH_MISMATCH",
        `${mismatched.length} file(s) differ from the box's copy: ${mismatched.slice(0, 5).join(", ")} (a file still being written, or corrupted in transit)`,
        "If the run is still writing, wait for it (run_status) and pull again; otherwise re-run pull_verify. Do not tear down.",
        { ...base, receipt_id: null },
      );
    }
    if (missing.length) {
      throw new RefusalError(
        "ROSTER_MISMATCH",
        `${missing.length} expected artifact(s) are not on the box: ${missing.slice(0, 8).join(", ")}`,
        "Check the run's outputs (run_status) and the roster; the box still holds whatever exists. Do not tear down until the roster is satisfied.",
        { ...base, receipt_id: null },
      );
    }
    if (loadFailed.length) {
      const why = files.find((f) => f.path === loadFailed[0])?.load_check?.detail ?? "";
      throw new RefusalError(
        "LOAD_CHECK_FAILED",
        `${loadFailed.length} checkpoint(s) match the box byte for byte but do not load: ${loadFailed.slice(0, 4).join(", ")} — ${why.slice(0, 200)}`,
        "The copy on the box is itself broken (killed mid-save?). Re-save it from the training (or an earlier checkpoint) before trusting or tearing down.",
        { ...base, receipt_id: null },
      );
    }

    const receiptFiles = files.map((f) => ({ path: f.path, bytes: f.bytes, sha256: f.sha256! }));
    const receipt: Receipt = {
      receipt_id: newReceiptId(),
      host: args.host,
      remote_path: args.remote_path ?? trees.map((t) => t.root).join(","),
      ...(args.run_id ? { run_id: args.run_id } : {}),
      local_dir: localRoot,
      files: receiptFiles,
      manifest_sha256: manifestSha256(receiptFiles),
      created_at: new Date().toISOString(),
      expect: args.expect ?? (sources[0]?.expect.length ? sources[0].expect : undefined),
      ...(args.run_id ? { cells: trees.map((t) => ({ name: t.src.cell, remote_dir: t.root, local_dir: t.src.localDir })) } : {}),
    };
    await saveReceipt(ctx.ledger, receipt);
    await ctx.progress(bytesTotal, bytesTotal, "verified");
    if (!rosterPaths.size && !(args.expect ?? []).length && !args.run_id) {
      warnings.push(warning("NO_ROSTER", "info", "No expect roster given: the receipt proves these files arrived intact, not that every artifact the run should produce exists."));
    }
    return { ok: true, receipt_id: receipt.receipt_id, manifest_sha256: receipt.manifest_sha256, ...base, elapsed_ms: Date.now() - t0, warnings };
  },
});

/** Remove empty rsync/SFTP partial dirs left in the local tree. */
function cleanPartialDirs(root: string): void {
  const walk = (d: string): void => {
    let ents: fs.Dirent[];
    try { ents = fs.readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      if (!e.isDirectory()) continue;
      const p = path.join(d, e.name);
      if (e.name === PARTIAL_DIR) { try { fs.rmdirSync(p); } catch { /* holds a partial: keep for resume */ } }
      else walk(p);
    }
  };
  walk(root);
}
