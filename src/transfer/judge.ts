/**
 * The verdict on a pull: every file the box listed compared with its local copy, the roster checked,
 * checkpoints load-checked; a receipt only when nothing is missing, different or broken — and the
 * receipt always lists every file the box listed.
 */
import * as path from "node:path";
import { refuse, warning, RefusalError, type Warning } from "../common/result.js";
import type { RemoteHashTree, RemoteLink } from "../remote/hashes.js";
import { manifestSha256 } from "../verify/hash.js";
import { isCheckpointName, loadCheckFiles, type LoadCheck } from "../verify/checkpoint.js";
import { matchRoster } from "../verify/roster.js";
import { newReceiptId, saveReceipt, type Receipt } from "../ledger/receipts.js";
import type { TransferContext, TransferResult } from "./context.js";
import type { PullRequest, Source } from "./pull.js";
import { buildManifest, writeManifest, type Manifest } from "./manifest.js";

const LIST_CAP = 20;

export interface PulledSource {
  src: Source;
  tree: RemoteHashTree;
  /** links inside the root, carried as links */
  links: RemoteLink[];
  /** links leading out of the root: reported, not followed */
  outside: RemoteLink[];
  /** the manifest beside the tree on the box, and the sha256 of its text */
  carried?: Manifest;
  carriedSha?: string;
}

interface FileOut {
  path: string;
  bytes: number;
  sha256: string | null;
  remote_sha256: string;
  match: boolean;
  load_check: LoadCheck | null;
}

export interface PullState {
  req: PullRequest;
  localRoot: string;
  trees: PulledSource[];
  localHash: Map<string, { bytes: number; sha256: string } | null>;
  failedUnits: { label: string; error: string }[];
  bytesTransferred: number;
  bytesReused: number;
  bytesTotal: number;
  warnings: Warning[];
  t0: number;
  hostKey?: string;
  startedAt: string;
}

export async function judgePull(ctx: TransferContext, s: PullState): Promise<TransferResult> {
  const { req, trees, warnings } = s;
  const prefix = (src: Source, p: string): string => (src.cell ? `${src.cell}/${p}` : p);
  // roster against the box's listing (files and carried links)
  const missing: string[] = [];
  const rosterPaths = new Set<string>();
  for (const t of trees) {
    const r = matchRoster(t.src.expect, [...t.tree.files.map((f) => f.path), ...t.links.map((l) => l.path)]);
    missing.push(...r.missing.map((m) => prefix(t.src, m)));
    for (const hits of Object.values(r.matched)) hits.forEach((h) => rosterPaths.add(prefix(t.src, h)));
  }
  const files: FileOut[] = [];
  const mismatched: string[] = [];
  const absent: string[] = [];
  const absPath = new Map<string, string>();
  for (const t of trees) {
    for (const f of t.tree.files) {
      const p = prefix(t.src, f.path);
      // only names a load check looks at (20,000 absolute paths of logs were megabytes for nothing)
      if (isCheckpointName(f.path)) absPath.set(p, path.join(t.src.localDir, f.path));
      const h = s.localHash.get(p) ?? null;
      const match = !!h && h.sha256 === f.sha256 && h.bytes === f.bytes;
      if (!h) absent.push(p);
      else if (!match) mismatched.push(p);
      files.push({ path: p, bytes: f.bytes, sha256: h?.sha256 ?? null, remote_sha256: f.sha256, match, load_check: null });
    }
  }
  // torch.load costs seconds: only worth it when the pull is otherwise sound (structure checks always run)
  const sound = absent.length === 0 && mismatched.length === 0 && missing.length === 0 && s.failedUnits.length === 0;
  const shaOf = new Map(files.filter((f) => f.match && absPath.has(f.path)).map((f) => [absPath.get(f.path)!, f.sha256!] as [string, string]));
  const checks = await loadCheckFiles([...shaOf.keys()], { torch: sound, sha256: shaOf });
  const loadFailed: string[] = [];
  for (const f of files) {
    const abs = absPath.get(f.path);
    const c = abs ? checks.get(abs) : undefined;
    if (c) { f.load_check = c; if (c.ok === false) loadFailed.push(f.path); }
  }
  if ([...checks.values()].some((c) => c.torch_load === "unavailable")) {
    warnings.push(warning("NO_LOCAL_TORCH", "info", "No local Python with torch: torch checkpoints got a structural check only (set RGT_PYTHON to one that has torch)."));
  }

  // compact listing: problems first, then roster hits and checkpoints, then the rest
  const rank = (f: FileOut): number => (!f.match ? 0 : f.load_check?.ok === false ? 1 : rosterPaths.has(f.path) ? 2 : f.load_check ? 3 : 4);
  const listed = [...files].sort((a, b) => rank(a) - rank(b) || (a.path < b.path ? -1 : 1)).slice(0, LIST_CAP);
  const links = trees.reduce((a, t) => a + t.links.length, 0);
  const base = {
    complete: absent.length === 0 && mismatched.length === 0 && missing.length === 0,
    files: listed,
    files_total: files.length,
    ...(links ? { links_total: links } : {}),
    ...(trees.some((t) => t.outside.length) ? { links_outside: trees.flatMap((t) => t.outside.map((l) => `${prefix(t.src, l.path)} -> ${l.target}`)).slice(0, 20) } : {}),
    missing: [...missing, ...absent].slice(0, 50),
    mismatched: mismatched.slice(0, 50),
    bytes_transferred: s.bytesTransferred,
    bytes_reused: s.bytesReused,
    bytes_total: s.bytesTotal,
    local_dir: s.localRoot,
    elapsed_ms: Date.now() - s.t0,
  };
  if (s.failedUnits.length || absent.length) {
    throw new RefusalError(
      "TRANSFER_INTERRUPTED",
      `${absent.length} of ${files.length} files did not arrive (${s.failedUnits.slice(0, 3).map((u) => `${u.label}: ${u.error}`).join("; ") || "local copy unreadable"})`,
      "Run the same pull_verify call again: finished files are kept and partial ones resume.",
      { ...base, receipt_id: null, failed_units: s.failedUnits.slice(0, 10).map((u) => u.label) },
    );
  }
  if (mismatched.length) {
    refuse(
      "HASH_MISMATCH",
      `${mismatched.length} file(s) differ from the box's copy: ${mismatched.slice(0, 5).join(", ")} (a file still being written, or corrupted in transit)`,
      "If the run is still writing, wait for it (run_status) and pull again; otherwise re-run pull_verify. Do not tear down.",
      { ...base, receipt_id: null },
    );
  }
  if (missing.length) {
    refuse(
      "ROSTER_MISMATCH",
      `${missing.length} expected artifact(s) are not on the box: ${missing.slice(0, 8).join(", ")}`,
      "Check the run's outputs (run_status) and the roster; the box still holds whatever exists. Do not tear down until the roster is satisfied.",
      { ...base, receipt_id: null },
    );
  }
  if (loadFailed.length) {
    const why = files.find((f) => f.path === loadFailed[0])?.load_check?.detail ?? "";
    refuse(
      "LOAD_CHECK_FAILED",
      `${loadFailed.length} checkpoint(s) match the box byte for byte but do not load: ${loadFailed.slice(0, 4).join(", ")} — ${why.slice(0, 200)}`,
      "The copy on the box is itself broken (killed mid-save?). Re-save it from the training (or an earlier checkpoint) before trusting or tearing down.",
      { ...base, receipt_id: null },
    );
  }

  const receiptFiles = files.map((f) => ({ path: f.path, bytes: f.bytes, sha256: f.sha256! }));
  // never a receipt for fewer files than the box listed
  const listedCount = trees.reduce((a, t) => a + t.tree.files.length, 0);
  if (receiptFiles.length !== listedCount) throw new Error(`receipt would cover ${receiptFiles.length} of ${listedCount} listed files`);
  const firstExpect = trees[0]?.src.expect ?? [];
  const receipt: Receipt = {
    receipt_id: newReceiptId(),
    host: req.host,
    remote_path: req.remotePath ?? trees.map((t) => t.tree.root).join(","),
    ...(req.runId ? { run_id: req.runId } : {}),
    local_dir: s.localRoot,
    files: receiptFiles,
    manifest_sha256: manifestSha256(receiptFiles),
    created_at: new Date().toISOString(),
    expect: req.expect ?? (firstExpect.length ? firstExpect : undefined),
    ...(req.runId ? { cells: trees.map((t) => ({ name: t.src.cell, remote_dir: t.tree.root, local_dir: t.src.localDir })) } : {}),
  };
  await saveReceipt(ctx.ledger, receipt);
  const manifestPaths = trees.map((t) => writeManifest(t.src.localDir, buildManifest({
    ledger: ctx.ledger, receiptId: receipt.receipt_id, host: req.host, hostKey: s.hostKey, remoteDir: t.tree.root, runId: req.runId,
      cell: t.src.cell || undefined,
    files: t.tree.files, links: t.links, startedAt: s.startedAt, carried: t.carriedSha,
    // one plain tree: its file list is the receipt's, already hashed into manifest_sha256
    ...(trees.length === 1 && !t.src.cell ? { manifestSha256: receipt.manifest_sha256 } : {}),
  })));
  await ctx.progress(s.bytesTotal, s.bytesTotal, "verified");
  if (!rosterPaths.size && !(req.expect ?? []).length && !req.runId) {
    warnings.push(warning("NO_ROSTER", "info", "No expect roster given: the receipt proves these files arrived intact, not that every artifact the run should produce exists."));
  }
  return { ok: true, receipt_id: receipt.receipt_id, manifest_sha256: receipt.manifest_sha256, manifest_path: manifestPaths[0], ...base,
    elapsed_ms: Date.now() - s.t0, warnings };
}
