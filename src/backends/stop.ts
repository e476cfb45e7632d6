/** Stop over SSH: stop_run.sh per host kills exactly the run's own process groups and reports what is left. */
import { warning } from "../common/result.js";
import type { RunRecord } from "../ledger/runs.js";
import type { BackendContext, StopOutcome } from "./types.js";
import { isConnectionError, runInstalled, settle, tsv } from "./scripts.js";

export async function sshStop(ctx: BackendContext, run: RunRecord, cells?: string[]): Promise<StopOutcome> {
  const want = cells && cells.length ? new Set(cells) : undefined;
  const byHost = new Map<string, string[]>();
  for (const c of run.cells) if (!want || want.has(c.name)) byHost.set(c.host, [...(byHost.get(c.host) ?? []), c.name]);
  const out: StopOutcome = { stopped: [], already_stopped: [], still_alive: [], gpu_memory_freed: null, evidence: [], warnings: [] };
  const res = await settle([...byHost.keys()], (h) =>
    runInstalled(ctx.remote, h, run.host_dirs?.[h]?.scripts_dir, "stop_run.sh", [run.host_dirs?.[h]?.state_dir ?? run.state_dir, "10", ...(want ? byHost.get(h)! : [])], 60_000));
  let gpuKnown = false;
  let gpuHeld = false;
  for (const [h, r] of res) {
    if (r instanceof Error) {
      if (!isConnectionError(r)) throw r;
      out.still_alive.push(...byHost.get(h)!);
      out.warnings.push(warning("HOST_UNREACHABLE", "danger", `${h}: could not reach the box to stop ${byHost.get(h)!.join(", ")} (${r.message.slice(0, 160)})`));
      continue;
    }
    for (const row of tsv(r.stdout)) {
      switch (row[0]) {
        case "STOPPED": out.stopped.push(row[1]); out.evidence.push(`${h}: cell ${row[1]} process group ${row[2]} gone`); break;
        case "ALREADY": if (!want || want.has(row[1])) out.already_stopped.push(row[1]); break;
        case "ALIVE": out.still_alive.push(row[1]); out.evidence.push(`${h}: cell ${row[1]} group ${row[2]} still has pids ${row[3]}`); break;
        case "NOTOURS": out.still_alive.push(row[1]); out.warnings.push(warning("PID_NOT_OURS", "warn", `${h}: pid ${row[2]} recorded for ${row[1]} does not carry this run's id; left alone`)); break;
        case "LEFTOVER": out.evidence.push(`${h}: cell ${row[1]} had ended, but processes were left in its group ${row[2]} (GPU memory held); reclaimed`); break;
        case "LANESTOPPED": out.evidence.push(`${h}: lane ${row[1]} stopped`); break;
        case "LANEALIVE": out.warnings.push(warning("LANE_ALIVE", "warn", `${h}: lane ${row[1]} still has pids ${row[3]}`)); break;
        case "GPU":
          if (row[1] !== "n/a") { gpuKnown = true; if (row[1] !== "none") { gpuHeld = true; out.evidence.push(`${h}: pids still on the GPU: ${row[1]}`); } }
          break;
        case "NOSTATE": out.warnings.push(warning("NO_STATE", "warn", `${h}: no state dir ${row[1]}; nothing to stop`)); break;
      }
    }
  }
  out.gpu_memory_freed = gpuKnown ? !gpuHeld : null;
  return out;
}
