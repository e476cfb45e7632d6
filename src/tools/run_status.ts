/**
 * run_status — one patrol tick: one round trip per host (hosts in parallel) answering the run's state,
 * each cell's state / exit code / progress / log age / short tail, GPU memory, disk and inode pressure,
 * and — when the run died — a cause with its evidence. A host that does not answer is asked again and
 * then reported `unknown`, never dead.
 */
import * as z from "zod";
import { refuse } from "../common/result.js";
import { listRuns } from "../ledger/runs.js";
import { defineTool } from "../server/tool.js";
import { runStatusOf } from "../backends/index.js";
import { hostText, nameText } from "./fields.js";

/** a failure class (src/knowledge/failures.ts), the line or counter that decided it, the section explaining it */
const Cause = z.object({ cause: z.string(), evidence: z.string(), ref: z.string().optional() });

const CellOut = z.object({
  name: z.string(),
  host: z.string().optional(),
  state: z.string(),
  exit_code: z.number().optional(),
  progress: z.object({ step: z.number().optional(), total_steps: z.number().optional(), epoch: z.number().optional(),
    total_epochs: z.number().optional(), pct: z.number().optional() }).optional(),
  log_age_s: z.number().optional(),
  tail: z.array(z.string()).optional(),
  log_bytes: z.number().optional(),
  new_text: z.string().optional(),
  new_text_file: z.string().optional(),
  reason: z.string().optional(),
  cause: Cause.optional(),
  stall: z.object({ kind: z.enum(["gpu_idle", "hang"]), evidence: z.string(), since_s: z.number().optional() }).optional(),
  blocked: z.object({ code: z.string(), dir: z.string(), free_bytes: z.number().optional(), need_bytes: z.number().optional(),
    free_inodes: z.number().optional(), need_inodes: z.number().optional(), waiting_until: z.number().optional() }).optional(),
});

/** the longest a call may hold its answer (many clients time a tool call out after a few minutes) */
const MAX_WAIT_S = 120;
const WAIT_TICK_S = 3;

export const runStatus = defineTool({
  name: "run_status",
  title: "Status of a launched run",
  description:
    "Patrol a run, one round trip per host: run and cell state, progress, log tail, GPU/disk pressure, cause of death, next_action.",
  input: {
    run_id: nameText().optional(),
    host: hostText().optional(),
    log_offset: z.number().int().min(0).max(2 ** 50).optional().describe("last log_bytes"),
    stall_after_s: z.number().int().min(1).max(7 * 24 * 3600).optional(), // default: backends DEFAULT_STALL_S (skill/SKILL.md)
    checkpoint_every_s: z.number().int().min(1).max(7 * 24 * 3600).optional().describe("checkpoint_cadence's interval_s"),
    wait_s: z.number().int().min(0).max(MAX_WAIT_S).optional().describe("long-poll while running"),
  },
  output: {
    run_id: z.string().optional(),
    run_name: z.string().optional(),
    state: z.enum(["running", "done", "failed", "stopped", "blocked", "stalled", "vanished", "unknown"]).optional(),
    cells: z.array(CellOut).optional(),
    cell_counts: z.record(z.string(), z.number()).optional().describe("cells per state, when the listing is cut to fit"),
    cells_omitted: z.number().optional().describe("cells not listed (plain running/done/pending ones) to stay within ~2 KB"),
    gpus: z.array(z.object({ host: z.string(), index: z.number(), memory_used_mib: z.number().optional(), memory_total_mib: z.number().optional(),
      utilization_pct: z.number().optional() })).optional(),
    disks: z.array(z.object({ host: z.string(), mount: z.string(), size_bytes: z.number().optional(), used_pct: z.number().optional(),
      inodes_used_pct: z.number().optional() })).optional(),
    gpus_omitted: z.number().optional(),
    new_text_dir: z.string().optional(),
    disks_omitted: z.number().optional(),
    vanished_cause: Cause.optional(),
    while_run: z.record(z.string(), z.unknown()).optional().describe("disk budgets, time cap, stop reason, park"),
    next_action: z.string().optional(),
    elapsed_ms: z.number().optional(),
  },
  effect: "read",
  meter: { activity: (r) => r.state === "running" || r.state === "stalled" },
  async handler(args, ctx) {
    const t0 = Date.now();
    let runId = args.run_id;
    if (!runId) {
      const runs = listRuns(ctx.ledger, args.host ? { host: args.host } : {});
      if (!runs.length) refuse("NOT_FOUND", `no run recorded${args.host ? ` on ${args.host}` : ""}`, "Launch one with launch_queue, or pass run_id.");
      runId = runs[0].run_id;
    }
    const opts = {
      ...(args.log_offset !== undefined ? { log_offset: args.log_offset } : {}),
      ...(args.stall_after_s !== undefined ? { stall_after_s: args.stall_after_s } : {}),
      ...(args.checkpoint_every_s !== undefined ? { checkpoint_every_s: args.checkpoint_every_s } : {}),
    };
    // wait_s: a bounded long-poll. Only `running` is worth waiting on; every other state (done, failed,
    // stalled, vanished, unknown) is news the agent must act on now.
    const deadline = t0 + (args.wait_s ?? 0) * 1000;
    let r = await runStatusOf(ctx.remote, ctx.ledger, runId, opts);
    while (r.state === "running" && Date.now() < deadline && !ctx.signal.aborted) {
      const done = r.cells.filter((c) => c.state === "done").length;
      await ctx.progress(done, r.cells.length, `${done}/${r.cells.length} cells done`);
      await new Promise((res) => setTimeout(res, Math.min(WAIT_TICK_S * 1000, Math.max(0, deadline - Date.now()))));
      r = await runStatusOf(ctx.remote, ctx.ledger, runId, opts);
    }
    // the one line a client shows: the run's state and its cells by state, not "done" for a call that answered
    const counts = new Map<string, number>();
    for (const c of r.cells) counts.set(c.state, (counts.get(c.state) ?? 0) + 1);
    const byState = (r as { cell_counts?: Record<string, number> }).cell_counts ?? Object.fromEntries(counts);
    const cells = Object.entries(byState).map(([k, n]) => `${n} ${k}`).join(", ");
    const summary = `Run ${r.run_id} is ${r.state}${cells ? ` (${cells})` : ""}.${r.warnings.length ? ` ${r.warnings.length} warning(s).` : ""}`;
    return { ...r, summary, elapsed_ms: Date.now() - t0 };
  },
});
