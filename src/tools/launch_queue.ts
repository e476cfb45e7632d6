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
import { armPark } from "../backends/park.js";
import { pick } from "../backends/while_run.js";
import type { LaunchRequest } from "../backends/types.js";

const CellInput = z.object({
  name: z.string().min(1).describe("unique within the run: letters, digits, . _ - (it names the output dir)"),
  command: z.string().min(1).describe("shell command run with bash in workdir; reads $RGT_OUTPUT_DIR, $CUDA_VISIBLE_DEVICES"),
  env: z.record(z.string(), z.string()).optional().describe("extra environment (no credentials: use push_secret)"),
  gpus: z.number().int().min(0).max(16).optional().describe("GPUs per cell (default 1; 0 = CPU)"),
  min_free_gb: z.number().min(0).max(1e6).optional().describe("this cell's disk budget (overrides the run's)"),
  min_free_inodes: z.number().int().min(0).optional(),
});
const Obj = z.record(z.string(), z.unknown()).optional();

export const launchQueue = defineTool({
  name: "launch_queue",
  title: "Launch a detached, resumable queue",
  description:
    "Start cells (one command each) detached on one or more SSH boxes — tmux when present, else setsid nohup; Slurm arrays or a Kubernetes indexed Job with detach — spread one lane per free GPU (CUDA_VISIBLE_DEVICES pinned, GPUs held by other processes skipped), each cell with its own output dir ($RGT_OUTPUT_DIR) and log. Returns in seconds with run_id, placement and the first log line. Idempotent: the same run_name skips done cells, never double-starts live ones, and resumes the rest. After success each cell's roster (`expect`) is copied to the durable dir and checked; a failed copy fails the cell. Refuses credentials in commands/env (SECRET_INLINE) and CRLF scripts.",
  input: {
    host: z.string().min(1).optional().describe("one ssh alias or user@host[:port]"),
    hosts: z.array(z.string().min(1)).max(64).optional().describe("several hosts to fan the cells out over"),
    run_name: z.string().min(1).max(100).describe("names the run; the same name again resumes it"),
    workdir: z.string().min(1).describe("directory on the box the commands run in (absolute, or ~/…)"),
    cells: z.array(CellInput).min(1).max(512),
    expect: z.array(z.string().min(1)).max(64).optional().describe("artifacts every cell must leave, relative to its output dir, e.g. [\"best.pth\"]"),
    detach: z.enum(["tmux", "nohup", "slurm", "k8s"]).optional(),
    profile: z.string().optional().describe("platform profile (default: the one probe_env detected for the host)"),
    durable_dir: z.string().optional().describe("override the profile's durable dir (\"\" = no durable copy)"),
    data_dir: z.string().optional().describe("override the profile's data dir (where rgt-out/ goes)"),
    scheduler: z
      .object({
        lanes: z.number().int().min(1).optional(),
        walltime: z.union([z.string(), z.number()]).optional(),
        partition: z.string().optional(),
        signal_lead_s: z.number().int().min(0).optional(),
        image: z.string().optional(),
        namespace: z.string().optional(),
        pvc: z.string().optional(),
      })
      .passthrough()
      .optional()
      .describe("Slurm / Kubernetes knobs (lanes, walltime, partition, image, namespace…)"),
    min_free_gb: z.number().min(0).max(1e6).optional().describe("disk gate: free GB (10^9 bytes) each cell needs on its output and durable dir before it starts; default the profile's, else what the last finished cell left"),
    min_free_inodes: z.number().int().min(0).optional().describe("disk gate: free inodes each cell needs there"),
    on_disk_low: z.enum(["skip", "wait"]).optional().describe("below budget: skip the cell (blocked, DISK_LOW; default) or wait, re-checking, up to disk_wait_s"),
    disk_wait_s: z.number().int().min(0).max(86_400).optional(),
    max_hours: z.number().positive().max(24 * 60).optional().describe("time cap enforced on the box: live cells then get stop_run's stop (checkpoints kept), the run is `stopped` (max_hours)"),
    on_done: z.enum(["nothing", "park"]).optional().describe("park: once every cell is done and each roster is hashed on a mount the park keeps, the box runs the profile's reversible meter-stop (a human approves it)"),
    park_approval_id: z.string().min(1).max(128).optional().describe("the approval id of an earlier park request, after `rgt approve <id>`"),
  },
  output: {
    run_id: z.string().optional(),
    placement: z.array(z.object({ cell: z.string(), host: z.string(), gpu_indices: z.array(z.number()) })).optional(),
    session: z.string().optional(),
    log_dir: z.string().optional(),
    started: z.array(z.string()).optional(),
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
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  async handler(args, ctx) {
    const t0 = Date.now();
    const warnings: Warning[] = [];
    const hosts = [...new Set([...(args.host ? [args.host] : []), ...(args.hosts ?? [])])];
    if (hosts.length === 0) refuse("BAD_INPUT", "host: give host or hosts", "Pass host: \"<ssh alias>\" or hosts: [\"a\", \"b\"].");

    // --- validate before anything reaches a box ---
    checkLaunchInput(args);

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

    return {
      ok: true,
      run_id: runId,
      backend: backendName,
      placement: out.placement,
      session: out.session,
      log_dir: out.log_dir,
      started: out.started,
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
