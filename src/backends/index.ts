/**
 * Picks the detach backend for a run and turns a backend's per-cell report into the run-level answer
 * run_status gives (state, vanished_cause, next_action). Also what teardown asks before acting:
 * liveRunsOn(host) — which recorded runs still have live cells there.
 */
import { RefusalError, warning, type Warning } from "../common/result.js";
import type { Ledger } from "../ledger/store.js";
import { getRun, listRuns, type BackendName, type RunRecord } from "../ledger/runs.js";
import type { Remote } from "../remote/types.js";
import type { Profile } from "../knowledge/schema.js";
import { tmuxBackend } from "./tmux.js";
import { nohupBackend } from "./nohup.js";
import { k8sBackend } from "./k8s.js";
import { slurmBackend } from "./slurm.js";
import { statusOfHost } from "./status.js";
import { classifyCell } from "./classify.js";
import type { Backend, BackendContext, CellStatus, DiskStatus, GpuStatus, RunState, StatusOptions, VanishCause } from "./types.js";

export const DEFAULT_STALL_S = 900;

/** explicit detach > the profile's detach > tmux (which falls back to nohup per host when tmux is missing) */
export function chooseBackendName(detach: string | undefined, profile?: Profile): BackendName {
  const d = detach ?? profile?.detach;
  if (d === "nohup" || d === "slurm" || d === "k8s" || d === "tmux") return d;
  return d === "notebook" ? "nohup" : "tmux";
}

export async function backendFor(name: BackendName): Promise<Backend> {
  switch (name) {
    case "tmux": return tmuxBackend;
    case "nohup": return nohupBackend;
    case "k8s": return k8sBackend;
    case "slurm": return slurmBackend;
  }
}

export interface RunStatusResult {
  ok: boolean;
  run_id: string;
  run_name: string;
  state: RunState;
  cells: CellStatus[];
  gpus: GpuStatus[];
  disks: DiskStatus[];
  vanished_cause?: { cause: VanishCause; evidence: string };
  next_action: string;
  warnings: Warning[];
}

/** Run-level state from cell states. Never `vanished`/`failed` because a host did not answer. */
export function summarize(cells: CellStatus[]): { state: RunState; vanished_cause?: { cause: VanishCause; evidence: string } } {
  const has = (s: string) => cells.some((c) => c.state === s);
  const firstCause = (s: string) => cells.find((c) => c.state === s && c.cause)?.cause;
  if (has("vanished")) return { state: "vanished", vanished_cause: firstCause("vanished") ?? { cause: "unknown", evidence: "no evidence recorded" } };
  if (has("stalled")) return { state: "stalled" };
  if (has("unknown")) return { state: "unknown" };
  if (has("running") || has("pending")) return { state: "running" };
  if (has("failed") || has("stopped")) {
    const c = firstCause("failed");
    return { state: "failed", ...(c ? { vanished_cause: c } : {}) };
  }
  return { state: cells.length ? "done" : "unknown" };
}

export function nextAction(run: RunRecord, state: RunState, cells: CellStatus[], cause?: { cause: VanishCause }): string {
  const names = (s: string) => cells.filter((c) => c.state === s).map((c) => c.name);
  const host = run.cells[0]?.host ?? run.hosts[0];
  const relaunch = `launch_queue again with run_name "${run.run_name}" (done cells are skipped, the rest resume from their checkpoints)`;
  switch (state) {
    case "done":
      return `All ${cells.length} cell(s) done. Pull and verify: pull_verify { host: "${host}", run_id: "${run.run_id}", local_dir: … }, then request_teardown.`;
    case "running": {
      const f = names("failed");
      return f.length
        ? `Still running; ${f.join(", ")} failed — read its tail now. Poll run_status again in a few minutes.`
        : "Running. Poll run_status again in a few minutes (pass log_offset to get only new log text).";
    }
    case "stalled":
      return `${names("stalled").join(", ")} alive but silent past the threshold: look at it (remote_exec nvidia-smi / py-spy dump), or stop_run those cells and ${relaunch}.`;
    case "vanished":
      switch (cause?.cause) {
        case "reboot": return `The box rebooted under the run; ${relaunch}.`;
        case "oom": return `Killed by the OOM killer: lower batch size / workers / memory use, then ${relaunch}.`;
        case "hangup": return `The detach was lost (tmux server or terminal gone) and took the cells with it; ${relaunch}.`;
        case "killed": return `Something outside rgt killed the run; find out what, then ${relaunch}.`;
        default: return `The run's processes are gone without a recorded cause; check the box (probe_env), then ${relaunch}.`;
      }
    case "failed": {
      const f = names("failed");
      const s = names("stopped");
      if (!f.length && s.length) return `Stopped by stop_run (${s.join(", ")}); files are kept. To continue, ${relaunch}.`;
      if (cause?.cause === "oom") return `${f.join(", ")} died from the OOM killer: reduce memory use, then ${relaunch}.`;
      return `${f.join(", ")} failed: read the tail/reason, fix the cause, then ${relaunch}.`;
    }
    default:
      return "Could not reach every host even after a re-check; the run may well be alive. Retry run_status later; do not relaunch or tear down on this answer.";
  }
}

function compact(cells: CellStatus[], tailBudget: number): CellStatus[] {
  // keep the answer small: tails only where they matter, fewer lines when there are many cells
  const interesting = cells.filter((c) => c.state !== "done" && c.state !== "pending");
  const per = interesting.length ? Math.max(1, Math.min(5, Math.floor(tailBudget / interesting.length))) : 0;
  return cells.map((c) => {
    const { gpu_indices: _g, ...rest } = c;
    if (c.state === "done" || c.state === "pending" || (c.state === "running" && interesting.length > 4)) delete rest.tail;
    else if (rest.tail) rest.tail = rest.tail.slice(-per);
    return rest;
  });
}

export async function runStatusOf(
  remote: Remote, ledger: Ledger, runId: string, opts: Partial<StatusOptions> = {},
): Promise<RunStatusResult> {
  const run = getRun(ledger, runId);
  if (!run) throw new RefusalError("NOT_FOUND", `no run ${runId} in the ledger`, "List runs with `rgt status`, or pass the run_id launch_queue returned.");
  const backend = await backendFor(run.backend);
  const full: StatusOptions = { stall_after_s: opts.stall_after_s ?? DEFAULT_STALL_S, tail_lines: opts.tail_lines ?? 5,
      ...(opts.log_offset !== undefined ? { log_offset: opts.log_offset } : {}) };
  const ctx: BackendContext = { remote, ledger };
  const s = await backend.status(ctx, run, full);
  const { state, vanished_cause } = summarize(s.cells);
  const warnings = [...s.warnings];
  for (const d of s.disks) {
    if ((d.inodes_used_pct ?? 0) >= 90) warnings.push(warning("INODE_HIGH", (d.inodes_used_pct ?? 0) >= 97 ? "danger" : "warn", `${d.host}:${d.mount} inodes ${d.inodes_used_pct}% used (writes fail at 100% even with free bytes)`));
    if ((d.used_pct ?? 0) >= 90) warnings.push(warning("DISK_HIGH", (d.used_pct ?? 0) >= 97 ? "danger" : "warn", `${d.host}:${d.mount} ${d.used_pct}% full`));
  }
  // many hosts: keep the answer readable — the busiest GPUs and the fullest disks, with a count of the rest
  // (a patrol over many hosts is mostly "all fine": show the GPUs and disks that tell something)
  const manyHosts = run.hosts.length > 2;
  const gpus = s.gpus.length > 8 ? [...s.gpus].sort((a, b) => (b.memory_used_mib ?? 0) - (a.memory_used_mib ?? 0)).slice(0, manyHosts ? 4 : 8) : s.gpus;
  const pressure = (d: DiskStatus) => Math.max(d.used_pct ?? 0, d.inodes_used_pct ?? 0);
  const byPressure = [...s.disks].sort((a, b) => pressure(b) - pressure(a));
  const disks = manyHosts ? byPressure.filter((d) => pressure(d) >= 80).slice(0, 6) : s.disks.length > 6 ? byPressure.slice(0, 6) : s.disks;
  return {
    ok: true,
    run_id: run.run_id,
    run_name: run.run_name,
    state,
    cells: compact(s.cells, 12),
    gpus,
    disks,
    ...(s.gpus.length > gpus.length ? { gpus_omitted: s.gpus.length - gpus.length } : {}),
    ...(s.disks.length > disks.length ? { disks_omitted: s.disks.length - disks.length } : {}),
    ...(vanished_cause ? { vanished_cause } : {}),
    next_action: nextAction(run, state, s.cells, vanished_cause),
    warnings,
  };
}

/**
 * Runs recorded in the ledger that still have live cells on `host` (running, stalled, or pending under a
 * live lane). Throws UNREACHABLE when the host cannot be asked: a caller gating teardown must fail closed.
 */
export async function liveRunsOn(remote: Remote, ledger: Ledger, host: string): Promise<{ run_id: string; cells_running: string[] }[]> {
  const out: { run_id: string; cells_running: string[] }[] = [];
  for (const run of listRuns(ledger, { host })) {
    const cells = run.cells.filter((c) => c.host === host);
    if (!cells.length) continue;
    if (run.backend === "slurm" || run.backend === "k8s") {
      const b = await backendFor(run.backend);
      const s = await b.status({ remote, ledger }, run, { stall_after_s: DEFAULT_STALL_S, tail_lines: 0 });
      const live = s.cells.filter((c) => c.host === host && ["running", "pending", "stalled", "unknown"].includes(c.state)).map((c) => c.name);
      if (live.length) out.push({ run_id: run.run_id, cells_running: live });
      continue;
    }
    const opts: StatusOptions = { stall_after_s: DEFAULT_STALL_S, tail_lines: 0 };
    const b = await statusOfHost(remote, host, run.host_dirs?.[host]?.state_dir ?? run.state_dir, cells.map((c) => c.name), opts,
        run.host_dirs?.[host]?.scripts_dir);
    const live = cells.map((c) => classifyCell(b, b.cells.get(c.name), c, opts)).filter((c) => ["running", "pending", "stalled"].includes(c.state)).map((c) => c.name);
    if (live.length) out.push({ run_id: run.run_id, cells_running: live });
  }
  return out;
}
