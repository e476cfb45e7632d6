/**
 * The detach-backend contract. A backend starts a run's cells somewhere they outlive the SSH connection
 * and the server (tmux, setsid+nohup, a Slurm array, a Kubernetes indexed Job), reports per-cell state,
 * and stops exactly the run's own work. src/backends/index.ts picks one; the tools never talk to a backend
 * other than through this interface.
 *
 * On-box layout shared by every backend that runs cells through scripts/run_one.sh (tmux, nohup, slurm):
 *
 *   <state_dir> = $HOME/.rgt/runs/<run_id>/   (never the durable mount: often inode-capped)
 *     run.env0                NUL-separated KEY=VALUE lines for every cell of the run: RGT_RUN_ID, RGT_WORKDIR,
 *                             RGT_STATE_DIR, RGT_DURABLE_ROOT ("" = no durable copy), RGT_PROXY_HOOK, RGT_CRED_FILE,
 *                             RGT_PYTHON, HF_HOME (only when the profile names one)
 *     expect                  the roster, one path per line, relative to each cell's output dir
 *     cells/<cell>/env0       NUL-separated KEY=VALUE: the cell's env plus RGT_CELL, RGT_OUTPUT_DIR, CUDA_VISIBLE_DEVICES
 *     cells/<cell>/cmd        the command text (run with bash in RGT_WORKDIR)
 *     cells/<cell>/state      pending | running | done | failed | stopped      (written by run_one.sh)
 *     cells/<cell>/exit_code, pid, pgid, pstart (process start ticks), heartbeat (touched while alive),
 *     cells/<cell>/started_at, ended_at (epoch seconds), reason (one line), signal (HUP/TERM seen by the runner),
 *     cells/<cell>/log        the cell's own stdout+stderr
 *   `bash run_one.sh <state_dir> <cell>` runs one cell to completion in the foreground and leaves those files;
 *   it skips a cell whose state is already `done`. A Slurm array task can call it directly.
 *   Output dir of a cell: <data_dir or workdir>/rgt-out/<run_id>/<cell>; durable copy: <durable_dir>/rgt/<run_id>/<cell>/.
 */
import type { Warning } from "../common/result.js";
import type { Ledger } from "../ledger/store.js";
import type { Remote } from "../remote/types.js";
import type { Profile } from "../knowledge/schema.js";
import type { RunRecord, BackendName } from "../ledger/runs.js";
import type { FailureClass } from "../knowledge/failures.js";
import type { BlockedNumbers, GateRow, WatchRow, WhileRunOptions } from "./while_run.js";

export type { RunRecord, BackendName };

export type CellState = "pending" | "running" | "done" | "failed" | "stopped" | "blocked" | "stalled" | "vanished" | "unknown";
/** `stopped`: the box's own time cap (max_hours) stopped the run; `blocked`: cells the disk gate kept from starting */
export type RunState = "running" | "done" | "failed" | "stopped" | "blocked" | "stalled" | "vanished" | "unknown";
/** why a cell died: the failure classes of src/knowledge/failures.ts */
export type VanishCause = FailureClass;
/** a class, the line or counter that decided it, and the reference section that explains it */
export interface CellCause { cause: VanishCause; evidence: string; ref?: string }

export interface BackendContext {
  remote: Remote;
  ledger: Ledger;
  signal?: AbortSignal;
  log?: (level: "debug" | "info" | "warning" | "error", data: unknown) => Promise<void>;
}

/** One cell as the caller asked for it. */
export interface LaunchCellSpec {
  name: string;
  command: string;
  env: Record<string, string>;
  /** GPUs this cell needs (default 1 where the host has GPUs, 0 on a CPU-only host) */
  gpus?: number;
  /** this cell's disk budget (the disk gate in run_one.sh); the run's otherwise */
  min_free_gb?: number;
  min_free_inodes?: number;
}

export interface LaunchRequest {
  run_id: string;
  run_name: string;
  /** hosts in the order the caller gave them (one entry for a scheduler login node) */
  hosts: string[];
  workdir: string;
  cells: LaunchCellSpec[];
  expect: string[];
  /** the profile in force (explicit or detected); undefined = generic defaults */
  profile?: Profile;
  /** explicit override of the profile's durable dir ("" = no durable copy) */
  durable_dir?: string;
  /** explicit override of the profile's data dir */
  data_dir?: string;
  /** the run as recorded by an earlier launch with the same run_name, if any */
  existing?: RunRecord;
  /** disk gate, time cap and park: what the box does on its own (src/backends/while_run.ts) */
  while_run?: WhileRunOptions;
}

export interface Placement {
  cell: string;
  host: string;
  gpu_indices: number[];
}

export interface LaunchOutcome {
  /** the record to save (the caller saves it) */
  record: RunRecord;
  placement: Placement[];
  /** tmux session name(s), nohup lane ids, Slurm job id, or Job name — one human-readable string */
  session: string;
  log_dir: string;
  started: string[];
  skipped_done: string[];
  /** cells not started because that host already runs this run (a live run is never started twice) */
  skipped_live: string[];
  first_log_line?: string;
  warnings: Warning[];
  /** backend-specific extras (e.g. a k8s manifest to apply by hand); merged into the tool result */
  extra?: Record<string, unknown>;
}

export interface CellStatus {
  name: string;
  host: string;
  state: CellState;
  exit_code?: number;
  /** parsed from the log: the last step/epoch seen */
  progress?: { step?: number; total_steps?: number; epoch?: number; total_epochs?: number; pct?: number };
  /** seconds since the log (or the cell's own heartbeat) last changed; -1 when there is no log */
  log_age_s: number;
  /** the last few log lines, each clipped */
  tail?: string[];
  /** log size in bytes (pass back as log_offset to get only the new text) */
  log_bytes?: number;
  /** log text after log_offset (its newest part; the whole of it in new_text_file) */
  new_text?: string;
  /** DESTROY_BLOCKED_ON_BOX: the seatbelt's line when a shim stopped a destroy this cell reached at run time */
  destroy_blocked?: string;
  /** local file holding all the new text fetched, when new_text is only its end */
  new_text_file?: string;
  /** one line on why the cell is in this state (exit signal, missing artifact, sync failure…) */
  reason?: string;
  /** cause + evidence (+ the reference section) when the cell died without finishing */
  cause?: CellCause;
  /** the disk gate kept the cell from starting: the numbers it saw */
  blocked?: BlockedNumbers;
  gpu_indices?: number[];
  /** a sentinel on a live cell: GPU idle (starved input / hung collective) or log silent while the GPU works */
  stall?: { kind: "gpu_idle" | "hang"; evidence: string; since_s?: number };
  /** internal, never returned: seconds since the newest checkpoint; negative = none yet, running that long */
  ckpt_age_s?: number;
  /** internal, never returned: the command/env knobs the OOM ladder reads */
  knobs?: string;
}

export interface GpuStatus { host: string; index: number; memory_used_mib?: number; memory_total_mib?: number; utilization_pct?: number }
export interface DiskStatus { host: string; mount: string; size_bytes?: number; used_pct?: number; inodes_used_pct?: number; avail_bytes?: number }

export interface StatusOptions {
  log_offset?: number;
  /** seconds without log/heartbeat progress before a live cell counts as stalled */
  stall_after_s: number;
  /** max tail lines per cell */
  tail_lines: number;
  /** the checkpoint interval checkpoint_cadence gave: a live cell's newest checkpoint older than 2× is flagged */
  checkpoint_every_s?: number;
}

/** What a backend reports; index.ts derives the run-level state and next_action from it. */
export interface StatusOutcome {
  cells: CellStatus[];
  gpus: GpuStatus[];
  disks: DiskStatus[];
  /** hosts that could not be reached even after a re-check: their cells are `unknown`, never dead */
  unreachable: string[];
  warnings: Warning[];
  /** per host: the watcher's record (time cap, stop reason, park) */
  watch?: Map<string, WatchRow>;
  /** the disk gate's budget per cell */
  gates?: { cell: string; gate: GateRow }[];
}

export interface StopOutcome {
  stopped: string[];
  already_stopped: string[];
  /** cells whose processes still exist after the kill (should be empty) */
  still_alive: string[];
  /** true when no stopped pid still holds GPU memory; null when the host has no GPU query */
  gpu_memory_freed: boolean | null;
  evidence: string[];
  warnings: Warning[];
}

export interface Backend {
  readonly name: BackendName;
  launch(ctx: BackendContext, req: LaunchRequest): Promise<LaunchOutcome>;
  status(ctx: BackendContext, run: RunRecord, opts: StatusOptions): Promise<StatusOutcome>;
  /** cells undefined = the whole run */
  stop(ctx: BackendContext, run: RunRecord, cells?: string[]): Promise<StopOutcome>;
}
