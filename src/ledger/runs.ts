/**
 * Runs launched by launch_queue, as the server remembers them (the truth about each cell lives on the box).
 *
 * Where a run's files are on the box:
 *   state dir      $HOME/.rgt/runs/<run_id>/                            (per-cell state, logs; see src/backends/types.ts)
 *   output dir     <data_dir or workdir>/rgt-out/<run_id>/<cell>/        (RGT_OUTPUT_DIR; `expect` is relative to it)
 *   durable copy   <durable_dir>/rgt/<run_id>/<cell>/                    (roster copied here after success, verified)
 * `artifactRoot(rec, cell)` gives the place pull_verify should read a cell's artifacts from.
 */
import type { Ledger } from "./store.js";

export type BackendName = "tmux" | "nohup" | "slurm" | "k8s";

export interface RunCell {
  name: string;
  host: string;
  gpu_indices: number[];
  output_dir: string;
  /** sha256 (hex, 16) of command + env, to tell a changed cell from a resumed one */
  spec_sha?: string;
  /** the cell's command (first 2,000 characters), for the pull manifest */
  command?: string;
}

export interface RunRecord {
  run_id: string;
  run_name: string;
  hosts: string[];
  backend: BackendName;
  workdir: string;
  /** state dir on the box (of the first host; see host_dirs for each) */
  state_dir: string;
  cells: RunCell[];
  expect: string[];
  durable_dir?: string;
  created_at: string;
  updated_at: string;
  slurm_job_id?: string;
  /** per host: the resolved state dir and scripts dir (hosts may have different $HOME) */
  host_dirs?: Record<string, { state_dir: string; scripts_dir: string; durable_dir?: string; detach?: string }>;
  /** profile name in force at launch */
  profile?: string;
  /** backend-specific data (k8s job name, namespace…) */
  extra?: Record<string, unknown>;
}

const DOC = "runs";
type RunsDoc = { runs: Record<string, RunRecord> };

/** A run_name made into a run_id: stable (the same name resumes the same run), safe in paths and session names. */
export function runIdFor(runName: string): string {
  const s = runName.trim().toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[-.]+|[-.]+$/g, "").slice(0, 64);
  return s || "run";
}

export function getRun(ledger: Ledger, runId: string): RunRecord | undefined {
  return ledger.read<RunsDoc>(DOC, { runs: {} }).runs[runId];
}

export function listRuns(ledger: Ledger, filter: { host?: string } = {}): RunRecord[] {
  const all = Object.values(ledger.read<RunsDoc>(DOC, { runs: {} }).runs);
  const out = filter.host ? all.filter((r) => r.hosts.includes(filter.host!) || r.cells.some((c) => c.host === filter.host)) : all;
  return out.sort((a, b) => (a.updated_at < b.updated_at ? 1 : -1));
}

export async function saveRun(ledger: Ledger, rec: RunRecord): Promise<RunRecord> {
  const stamped = { ...rec, updated_at: new Date().toISOString() };
  await ledger.update<RunsDoc>(DOC, { runs: {} }, (doc) => {
    doc.runs[stamped.run_id] = stamped;
    return doc;
  });
  return stamped;
}

/** The durable copy of a cell's artifacts when the run has a durable dir, else the cell's output dir. */
export function artifactRoot(rec: RunRecord, cell: string): string {
  const c = rec.cells.find((x) => x.name === cell);
  if (!c) throw new Error(`run ${rec.run_id} has no cell ${cell}`);
  const hd = rec.host_dirs?.[c.host];
  const durable = hd ? hd.durable_dir : rec.durable_dir;
  if (durable) return `${durable.replace(/\/+$/, "")}/rgt/${rec.run_id}/${cell}`;
  return c.output_dir;
}
