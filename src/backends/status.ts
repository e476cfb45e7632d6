/** Status over SSH: one run_status.sh round trip per host (hosts in parallel), classified per cell. */
import { RefusalError, warning, type Warning } from "../common/result.js";
import type { RunCell, RunRecord } from "../ledger/runs.js";
import type { Remote } from "../remote/types.js";
import type { BackendContext, CellStatus, DiskStatus, GpuStatus, StatusOptions, StatusOutcome } from "./types.js";
import { isConnectionError, runInstalled, settle } from "./scripts.js";
import { classifyCell, parseStatus, type BoxStatus } from "./classify.js";
import type { GateRow, WatchRow } from "./while_run.js";
import { rowFindings } from "../knowledge/gpu-health.js";

/** one bound for a host's whole status answer, both attempts together (connect, channel, script): well inside the 60 s a client waits */
const STATUS_TIMEOUT_MS = 20_000;

/** One status round trip for one host, re-asked once when the connection drops; both inside one bound. */
export async function statusOfHost(remote: Remote, host: string, stateDir: string, cells: string[], opts: StatusOptions,
  scriptsDir?: string): Promise<BoxStatus> {
  const args = [stateDir, "40", String(opts.log_offset ?? -1), ...cells];
  const deadline = Date.now() + STATUS_TIMEOUT_MS;
  let lastErr: unknown;
  for (let attempt = 0; attempt < 2 && (attempt === 0 || deadline - Date.now() > 2000); attempt++) {
    try {
      const res = await runInstalled(remote, host, scriptsDir, "run_status.sh", args, deadline - Date.now());
      if (res.exitCode === 0 && /^NOW\t/m.test(res.stdout)) return parseStatus(host, res.stdout);
      lastErr = new RefusalError("UNREACHABLE", `status script on ${host} exited ${res.exitCode}${res.timedOut ? " (timed out)" : ""}`, "Retry.");
    } catch (e) {
      if (!isConnectionError(e)) throw e;
      lastErr = e;
    }
    if (attempt === 0) await new Promise((r) => setTimeout(r, 1500));
  }
  throw lastErr;
}

export async function sshStatus(ctx: BackendContext, run: RunRecord, opts: StatusOptions): Promise<StatusOutcome> {
  const warnings: Warning[] = [];
  const byHost = new Map<string, RunCell[]>();
  for (const c of run.cells) byHost.set(c.host, [...(byHost.get(c.host) ?? []), c]);
  const res = await settle([...byHost.keys()], (h) =>
    statusOfHost(ctx.remote, h, run.host_dirs?.[h]?.state_dir ?? run.state_dir, byHost.get(h)!.map((c) => c.name), opts, run.host_dirs?.[h]?.scripts_dir));
  const cells: CellStatus[] = [];
  const gpus: GpuStatus[] = [];
  const disks: DiskStatus[] = [];
  const unreachable: string[] = [];
  const watch = new Map<string, WatchRow>();
  const gates: { cell: string; gate: GateRow }[] = [];
  for (const [h, r] of res) {
    if (r instanceof Error) {
      if (!isConnectionError(r)) throw r;
      unreachable.push(h);
      warnings.push(warning("HOST_UNREACHABLE", "warn", `${h} did not answer twice (${r.message.slice(0, 160)}); its cells are unknown, not dead`));
      for (const c of byHost.get(h)!) cells.push({ name: c.name, host: h, state: "unknown", log_age_s: -1, reason: "host did not answer; re-check later" });
      continue;
    }
    for (const c of byHost.get(h)!) cells.push(classifyCell(r, r.cells.get(c.name), c, opts));
    warnings.push(...gpuWarnings(r, byHost.get(h)!));
    gpus.push(...r.gpus);
    disks.push(...r.disks);
    if (r.watch) watch.set(h, r.watch);
    for (const [cell, gate] of r.gates ?? []) gates.push({ cell, gate });
  }
  const order = new Map(run.cells.map((c, i) => [c.name, i]));
  cells.sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
  return { cells, gpus, disks, unreachable, warnings, watch, gates };
}

/**
 * A GPU that went bad while the run goes: uncorrected ECC errors or pages waiting to retire (results
 * computed there are suspect: GPU_FAULT), or hardware/thermal slowdowns (the run is slower than it should
 * be: GPU_SLOWDOWN). One warning per kind and host, naming the GPUs and the run's cells on them.
 */
export function gpuWarnings(b: BoxStatus, cells: RunCell[]): Warning[] {
  const out: Warning[] = [];
  const on = (i: number) => cells.filter((c) => c.gpu_indices?.includes(i)).map((c) => c.name);
  const found = b.health.map((r) => ({ r, f: rowFindings(r) })).filter((x) => x.f.said.length);
  for (const kind of ["fault", "slow"] as const) {
    const hit = found.filter((x) => (kind === "fault" ? x.f.faulty : !x.f.faulty && x.f.slowed));
    if (!hit.length) continue;
    const what = hit.slice(0, 4).map(({ r, f }) => {
      const who = on(r.index);
      return `GPU ${r.index}${who.length ? ` (${who.slice(0, 3).join(", ")}${who.length > 3 ? "…" : ""})` : ""}: ${f.said.join(", ")}`;
    }).join("; ") + (hit.length > 4 ? `; +${hit.length - 4} more` : "");
    out.push(kind === "fault"
      ? warning("GPU_FAULT", "danger", `${b.host} ${what} — do not trust results from that GPU after the error; stop those cells, ask the provider for a replacement box, relaunch from the checkpoint there`, "rgt://references/training-failures#gpu-fault")
      : warning("GPU_SLOWDOWN", "warn", `${b.host} ${what} — the hardware is throttling (cooling or power); the run goes slower than it should, nothing is lost`));
  }
  return out;
}
