/**
 * launch_queue — start a detached, resumable queue of cells over one or more boxes and return within
 * seconds. The same run_name again converges: done cells are skipped, live ones are left alone, the rest
 * resume. Cell state lives on the box (src/backends/types.ts), so it outlives this server and the SSH link.
 */
import * as z from "zod";
import { refuse, warning, type Warning } from "../common/result.js";
import { checkLaunchInput } from "../guard/launch_input.js";
import { getProfile } from "../knowledge/profiles.js";
import type { Profile } from "../knowledge/schema.js";
import { hostInfo } from "../ledger/hostinfo.js";
import { getRun, runIdFor, saveRun } from "../ledger/runs.js";
import { defineTool } from "../server/tool.js";
import { backendFor, chooseBackendName } from "../backends/index.js";
import { armPark, pick } from "../backends/park.js";
import type { LaunchRequest } from "../backends/types.js";
import { hostText, nameText, pathText } from "./fields.js";
import { capped } from "../common/listing.js";

const CellInput = z.object({
  name: nameText(64),
  command: z.string().min(1).max(65_536),
  env: z.record(z.string().max(128), z.string().max(16_384)).optional(),
  gpus: z.number().int().min(0).max(16).optional(),
  min_free_gb: z.number().min(0).max(1e6).optional(),
  min_free_inodes: z.number().int().min(0).max(1e12).optional(),
});
const Obj = z.record(z.string(), z.unknown()).optional();

export const launchQueue = defineTool({
  name: "launch_queue",
  title: "Launch a detached, resumable queue",
  description:
    "Start cells (one command each) detached on boxes (tmux, nohup, Slurm, k8s), a lane per free GPU, each with its own $RGT_OUTPUT_DIR. Same run_name resumes.",
  input: {
    host: hostText().optional(),
    hosts: z.array(hostText()).max(64).optional(),
    run_name: z.string().min(1).max(100),
    workdir: pathText("workdir"),
    cells: z.array(CellInput).min(1).max(512),
    expect: z.array(pathText("expect")).max(64).optional().describe("roster per cell"),
    detach: z.enum(["tmux", "nohup", "slurm", "k8s"]).optional(),
    profile: nameText(64).optional(),
    durable_dir: z.string().max(4096).optional(),
    data_dir: z.string().max(4096).optional(),
    // the backends check each knob and name it (scheduler.lanes, …) when it is wrong
    scheduler: z.record(z.string().max(32), z.unknown()).optional()
      .describe("Slurm/k8s: lanes, walltime, partition, signal_lead_s, image, namespace, pvc"),
    min_free_gb: z.number().min(0).max(1e6).optional(),
    min_free_inodes: z.number().int().min(0).max(1e12).optional(),
    on_disk_low: z.enum(["skip", "wait"]).optional(),
    disk_wait_s: z.number().int().min(0).max(86_400).optional(),
    max_hours: z.number().positive().max(24 * 60).optional(),
    on_done: z.enum(["nothing", "park"]).optional().describe("park: reversible meter-stop once all is durable"),
    park_approval_id: z.string().min(1).max(128).optional(),
  },
  output: {
    run_id: z.string().optional(),
    placement: z.array(z.object({ cell: z.string(), host: z.string(), gpu_indices: z.array(z.number()) })).optional(),
    session: z.string().optional(),
    log_dir: z.string().optional(),
    started: z.array(z.string()).optional(),
    placement_more: z.number().optional().describe("placements not listed (first 16 shown)"), started_more: z.number().optional().describe("started cells not listed (first 32 shown)"),
    skipped_done: z.array(z.string()).optional(),
    skipped_live: z.array(z.string()).optional(),
    first_log_line: z.string().optional(),
    backend: z.string().optional(),
    network: Obj,
    disk_gate: Obj,
    max_hours: z.number().optional(),
    park: Obj,
    elapsed_ms: z.number().optional(),
  },
  effect: "write",
  meter: { activity: (r) => r.ok },
  async handler(args, ctx) {
    const t0 = Date.now();
    const warnings: Warning[] = [];
    const hosts = [...new Set([...(args.host ? [args.host] : []), ...(args.hosts ?? [])])];
    if (hosts.length === 0) refuse("BAD_INPUT", "host: give host or hosts", "Pass host: \"<ssh alias>\" or hosts: [\"a\", \"b\"].");

    // --- validate before anything reaches a box ---
    checkLaunchInput(args);
    // credentials and destroys in commands/env were refused by the input guard (src/guard/inputs.ts)

    // --- profile: explicit, else the host registry's, else what probe_env detected for the first host ---
    let profile: Profile | undefined;
    if (args.profile) {
      profile = getProfile(args.profile);
      if (!profile) refuse("BAD_INPUT", `profile: no profile named "${args.profile}"`, "Use a name from rgt://profiles, or leave it out to use the detected one.");
    } else {
      const info = hostInfo(ctx.ledger, hosts[0]);
      if (info.platform_from !== "default") profile = info.profile;
      if (!profile) warnings.push(warning("NOT_PROBED", "info", `no platform profile known for ${hosts[0]} (run probe_env first); generic defaults used: no data/durable dir, state under $HOME`));
    }

    const runId = runIdFor(args.run_name);
    const existing = getRun(ctx.ledger, runId);
    const backendName = existing && !args.detach ? existing.backend : chooseBackendName(args.detach, profile);
    if (existing && existing.run_name !== args.run_name) {
      warnings.push(warning("RUN_ID_SHARED", "info", `run_name "${args.run_name}" maps to the same run_id as "${existing.run_name}"; treated as the same run`));
    }
    const backend = await backendFor(backendName);
    const req: LaunchRequest & { scheduler?: Record<string, unknown> } = {
      run_id: runId,
      run_name: args.run_name,
      hosts,
      workdir: args.workdir,
      cells: args.cells.map((c) => ({ ...c, env: c.env ?? {} })),
      expect: args.expect ?? existing?.expect ?? [],
      ...(profile ? { profile } : {}),
      ...(args.durable_dir !== undefined ? { durable_dir: args.durable_dir } : existing?.durable_dir ? { durable_dir: existing.durable_dir } : {}),
      ...(args.data_dir !== undefined ? { data_dir: args.data_dir } : {}),
      ...(existing ? { existing } : {}),
      ...(args.scheduler ? { scheduler: args.scheduler as Record<string, unknown> } : {}),
    };
    const park = args.on_done === "park" ? await armPark(ctx, { hosts, run_id: runId, profile, expect: req.expect, backend: backendName, durable_dir: req.durable_dir, data_dir: req.data_dir }, args.park_approval_id) : undefined;
    req.while_run = { ...pick(args, ["min_free_gb", "min_free_inodes", "on_disk_low", "disk_wait_s", "max_hours"]), ...(park?.armed ? { park: park.armed } : {}) };
    await ctx.progress(0, 2, `launching ${args.cells.length} cell(s) on ${hosts.join(", ")}`);
    const out = await backend.launch({ remote: ctx.remote, ledger: ctx.ledger, signal: ctx.signal, log: ctx.log }, req);
    await saveRun(ctx.ledger, out.record);
    await ctx.progress(2, 2, "launched");

    const [placement, started] = [capped(out.placement, 16), capped(out.started, 32)];
    return {
      ok: true,
      summary: `Run ${runId}: ${out.started.length} cell(s) started, ${out.skipped_done.length} done before, ${out.skipped_live.length} already live; patrol with run_status.`,
      run_id: runId,
      backend: backendName,
      placement: placement.shown, ...(placement.more ? { placement_more: placement.more } : {}),
      session: out.session,
      log_dir: out.log_dir,
      started: started.shown, ...(started.more ? { started_more: started.more } : {}),
      skipped_done: out.skipped_done,
      skipped_live: out.skipped_live,
      ...(out.first_log_line ? { first_log_line: out.first_log_line } : {}),
      ...(out.extra ?? {}),
      ...(park ? { park: park.view } : {}),
      warnings: [...warnings, ...(park?.warnings ?? []), ...out.warnings],
      elapsed_ms: Date.now() - t0,
    };
  },
});
