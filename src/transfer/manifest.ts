/**
 * Self-describing results: pull_verify writes `<tree>.rgt-manifest.json` BESIDE every pulled tree (each
 * cell's dir for a run pull; outside the tree, so the tree stays the box's export byte for byte) saying
 * which run, cell, command, spec, code (git commit + dirty state of the pushed tree), host, profile and GPU
 * the files came from, when, and every file's size and sha256, with the receipt id. A tree on the box
 * that has a manifest beside it (a pulled tree copied to durable storage with its manifest) is checked
 * against it before anything moves: a file whose bytes differ is refused (HASH_MISMATCH), a file the
 * manifest lists but the box lacks is missing (ROSTER_MISMATCH). Schema: docs/manifest.md.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as z from "zod";
import { createHash } from "node:crypto";
import type { Ledger } from "../ledger/store.js";
import { getRun } from "../ledger/runs.js";
import { getHost } from "../ledger/hosts.js";
import { hostInfo } from "../ledger/hostinfo.js";
import { manifestSha256 } from "../verify/hash.js";
import { pushFor } from "./provenance.js";

export const MANIFEST_SUFFIX = ".rgt-manifest.json";

/** Where the manifest of a tree lives: beside it, `<tree>.rgt-manifest.json` (local or box path). */
export const manifestPathFor = (treeDir: string): string => `${treeDir.replace(/\/+$/, "")}${MANIFEST_SUFFIX}`;
export const MANIFEST_SCHEMA = "rgt-manifest/1";

const FileEntry = z.object({ path: z.string(), bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) });

export const ManifestSchema = z.object({
  schema: z.literal(MANIFEST_SCHEMA),
  receipt_id: z.string(),
  manifest_sha256: z.string(),
  source: z.object({ host: z.string(), host_key: z.string().optional(), remote_dir: z.string() }),
  run: z.object({
    run_id: z.string(), cell: z.string().optional(), command: z.string().optional(), spec_sha: z.string().optional(),
    backend: z.string().optional(), gpu_indices: z.array(z.number()).optional(), created_at: z.string().optional(), updated_at: z.string().optional(),
  }).optional(),
  code: z.object({ git_commit: z.string().optional(), git_dirty: z.boolean().optional(), pushed_from: z.string().optional(), pushed_to: z.string(),
    pushed_at: z.string() }).optional(),
  host: z.object({ profile: z.string().optional(), gpu_name: z.string().optional(), gpu_count: z.number().optional() }),
  times: z.object({ pull_started_at: z.string(), pulled_at: z.string() }),
  files: z.array(FileEntry),
  links: z.array(z.object({ path: z.string(), target: z.string() })),
  /** sha256 of the manifest this tree carried when it was pulled, if it had one */
  carried_manifest_sha256: z.string().optional(),
});
export type Manifest = z.infer<typeof ManifestSchema>;

/** A manifest file (or its text), parsed and validated; undefined when absent or not one of ours. */
export function readManifest(file: string): Manifest | undefined {
  let raw: string;
  try { raw = fs.readFileSync(file, "utf8"); } catch { return undefined; }
  return parseManifest(raw);
}

export function parseManifest(raw: string): Manifest | undefined {
  try {
    const r = ManifestSchema.safeParse(JSON.parse(raw));
    return r.success ? r.data : undefined;
  } catch { return undefined; }
}

export interface ManifestCheck {
  /** files whose size or sha256 differ from what the manifest recorded */
  differs: string[];
  /** files the manifest lists that the box does not have */
  gone: string[];
}

/** The box's listing against a manifest (paths relative to the same root). */
export function checkManifest(m: Manifest, box: { path: string; bytes: number; sha256: string }[]): ManifestCheck {
  const have = new Map(box.map((f) => [f.path, f]));
  const differs: string[] = [];
  const gone: string[] = [];
  for (const f of m.files) {
    const b = have.get(f.path);
    if (!b) gone.push(f.path);
    else if (b.sha256 !== f.sha256 || b.bytes !== f.bytes) differs.push(f.path);
  }
  return { differs, gone };
}

export interface ManifestInput {
  ledger: Ledger;
  receiptId: string;
  host: string;
  hostKey?: string;
  remoteDir: string;
  runId?: string;
  cell?: string;
  files: { path: string; bytes: number; sha256: string }[];
  links: { path: string; target: string }[];
  startedAt: string;
  carried?: string;
  /** manifestSha256(files) when the caller has it already */
  manifestSha256?: string;
}

/** Build the manifest of one pulled tree from what the ledger knows about its run, code and host. */
export function buildManifest(i: ManifestInput): Manifest {
  const run = i.runId ? getRun(i.ledger, i.runId) : undefined;
  const cell = run?.cells.find((c) => c.name === i.cell);
  const pushed = i.hostKey ? pushFor(i.ledger, i.hostKey, run?.workdir ?? i.remoteDir) : undefined;
  let profile: string | undefined;
  try { profile = hostInfo(i.ledger, i.host).platform; } catch { /* unknown host */ }
  const seen = getHost(i.ledger, i.host);
  const files = i.files;
  return {
    schema: MANIFEST_SCHEMA,
    receipt_id: i.receiptId,
    manifest_sha256: i.manifestSha256 ?? manifestSha256(files),
    source: { host: i.host, ...(i.hostKey ? { host_key: i.hostKey } : {}), remote_dir: i.remoteDir },
    ...(run ? {
      run: {
        run_id: run.run_id, ...(cell ? { cell: cell.name, gpu_indices: cell.gpu_indices } : {}), ...(cell?.command ? { command: cell.command } : {}),
        ...(cell?.spec_sha ? { spec_sha: cell.spec_sha } : {}), backend: run.backend, created_at: run.created_at, updated_at: run.updated_at,
      },
    } : {}),
    ...(pushed ? {
      code: {
        ...(pushed.git_commit ? { git_commit: pushed.git_commit } : {}), ...(pushed.git_dirty !== undefined ? { git_dirty: pushed.git_dirty } : {}),
        pushed_from: pushed.local_dir, pushed_to: pushed.remote_dir, pushed_at: pushed.pushed_at,
      },
    } : {}),
    host: { ...(profile ? { profile } : {}), ...(seen?.gpu_name ? { gpu_name: seen.gpu_name } : {}),
      ...(seen?.gpu_count !== undefined ? { gpu_count: seen.gpu_count } : {}) },
    times: { pull_started_at: i.startedAt, pulled_at: new Date().toISOString() },
    files: [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    links: i.links,
    ...(i.carried ? { carried_manifest_sha256: i.carried } : {}),
  };
}

/** Write a manifest atomically (temp + rename) beside a pulled tree; returns its path. */
export function writeManifest(dir: string, m: Manifest): string {
  const file = manifestPathFor(path.resolve(dir));
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${JSON.stringify(m, null, 1)}\n`, { mode: 0o644 });
  fs.renameSync(tmp, file);
  return file;
}

export const sha256Text = (text: string): string => createHash("sha256").update(text).digest("hex");
