/**
 * Slurm backend: a run's cells become one job array on a login node (`sbatch --array=<idx>%K`), with
 * `--requeue` and `--signal=B:USR1@<lead>`. Each array task runs scripts/slurm_array.sh, which picks its
 * cell by SLURM_ARRAY_TASK_ID and runs it through scripts/run_one.sh, so the cell's state files are the
 * same ones the tmux and nohup backends leave (layout: ./types.ts). Per-cell scheduler output goes to
 * <state_dir>/slurm/<job>_<index>.out.
 *
 * Round trips: launch = one (slurm_submit.sh: spec files + content-hashed scripts + sbatch), status =
 * one (slurm_status.sh: state files + squeue + scontrol [+ sacct]), stop = one (scancel of this run's own
 * array tasks only, by job id, then a bounded wait until the scheduler lists none of them).
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { quote } from "shell-quote";
import { packageRoot, setting } from "../common/config.js";
import { RefusalError, warning, type Warning } from "../common/result.js";
import type {
  Backend, BackendContext, CellState, CellStatus, LaunchOutcome, LaunchRequest, RunRecord, StatusOptions, StatusOutcome, StopOutcome, VanishCause,
} from "./types.js";
import { walltimeSeconds, type SchedulerLaunchRequest, type SchedulerOptions } from "./k8s.js";
import { hashedScript } from "./scripts.js";
import { parseProgress } from "./classify.js";

export type { SchedulerOptions, SchedulerLaunchRequest };

const SUBMIT_TIMEOUT_MS = 60_000;
const STATUS_TIMEOUT_MS = 45_000;
const STOP_TIMEOUT_MS = 60_000;
const DEFAULT_SIGNAL_LEAD_S = 120;

interface SlurmJobRef { id: string; cells: string[]; submitted_at: string }
interface SlurmExtra { jobs: SlurmJobRef[]; scripts_dir?: string; home?: string }

function scriptText(name: string): string {
  return fs.readFileSync(path.join(packageRoot(), "scripts", name), "utf8");
}

function env0(kv: Record<string, string>): string {
  return Object.entries(kv).map(([k, v]) => `${k}=${v}\0`).join("");
}

/** "<relpath> <bytes>\n<bytes>" repeated, then an empty line. */
export function bundle(files: { rel: string; body: string | Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    const b = Buffer.isBuffer(f.body) ? f.body : Buffer.from(f.body, "utf8");
    parts.push(Buffer.from(`${f.rel} ${b.length}\n`, "utf8"), b);
  }
  parts.push(Buffer.from("\n"));
  return Buffer.concat(parts);
}

export function specSha(command: string, env: Record<string, string>): string {
  const keys = Object.keys(env).sort();
  return createHash("sha256").update(JSON.stringify([command, keys.map((k) => [k, env[k]])])).digest("hex").slice(0, 16);
}

function parseTabs(stdout: string): string[][] {
  return stdout.split("\n").filter((l) => l.length > 0).map((l) => l.split("\t"));
}

function clip(s: string, n = 300): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

function badInput(field: string, why: string, remedy: string): RefusalError {
  return new RefusalError("BAD_INPUT", `${field}: ${why}`, remedy);
}

/** Slurm --time text from the scheduler option (seconds → "M:SS" / text passed through when valid). */
export function slurmTime(w: string | number | undefined): string | undefined {
  if (w === undefined || w === "") return undefined;
  const s = walltimeSeconds(w);
  if (s === undefined) throw badInput("scheduler.walltime", `"${w}" is not a duration`, 'Use seconds or Slurm time text: "90" (minutes), "0:30" (30 s), "2:00:00", "1-00:00:00".');
  if (typeof w === "string") return w.trim();
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** The sbatch options of a launch (besides --array/--chdir/--output, which the box adds). */
export function sbatchOptions(req: SchedulerLaunchRequest): string[] {
  const o: SchedulerOptions = req.scheduler ?? {};
  const lead = o.signal_lead_s ?? leadFromProfile(req) ?? DEFAULT_SIGNAL_LEAD_S;
  if (!Number.isInteger(lead) || lead < 1 || lead > 65535) throw badInput("scheduler.signal_lead_s", "must be whole seconds between 1 and 65535", "Pass e.g. 120.");
  const args = [`--job-name=rgt-${req.run_id}`, "--requeue", `--signal=B:USR1@${lead}`, "--ntasks=1"];
  // max_hours on Slurm: the scheduler's own --time for each array task (the smaller of it and walltime)
  const cap = req.while_run?.max_hours !== undefined ? Math.max(60, Math.round(req.while_run.max_hours * 3600)) : undefined;
  const wall = o.walltime !== undefined ? walltimeSeconds(o.walltime) : undefined;
  const t = cap !== undefined && (wall === undefined || cap < wall) ? slurmTime(cap) : slurmTime(o.walltime);
  if (t) args.push(`--time=${t}`);
  if (o.partition !== undefined) {
    if (!/^[A-Za-z0-9_.,-]+$/.test(o.partition)) throw badInput("scheduler.partition", `"${o.partition}" is not a partition name`, "Use the name sinfo lists.");
    args.push(`--partition=${o.partition}`);
  }
  const explicit = req.cells.map((c) => c.gpus).filter((g): g is number => typeof g === "number");
  const gpus = explicit.length ? Math.max(...explicit) : 0;
  if (gpus > 0) args.push(`--gres=gpu:${gpus}`);
  return args;
}

function leadFromProfile(req: LaunchRequest): number | undefined {
  const g = req.profile?.spot?.grace_s;
  return typeof g === "number" && g > 0 ? Math.max(60, Math.ceil(g)) : undefined;
}

function slurmExtra(run: RunRecord): SlurmExtra {
  const e = (run.extra?.slurm ?? {}) as Partial<SlurmExtra>;
  const jobs = Array.isArray(e.jobs) ? e.jobs : [];
  if (!jobs.length && run.slurm_job_id) jobs.push({ id: run.slurm_job_id, cells: run.cells.map((c) => c.name), submitted_at: run.created_at });
  return { ...e, jobs };
}

/** For each cell, the array task id ("<job>_<index>") of the newest job that ran it. */
export function latestTasks(run: RunRecord): Map<string, string> {
  const m = new Map<string, string>();
  for (const j of slurmExtra(run).jobs) j.cells.forEach((c, i) => m.set(c, `${j.id}_${i}`));
  return m;
}

interface SchedInfo { state: string; reason: string; exit?: string; restarts: number; timeLimit?: string }

/** Map a cell's own state file and the scheduler's word on its task to one cell state. */
export function mapCellState(
  file: { state: string; stop: boolean; term: boolean; hbAge: number; logAge: number; cause?: string; reason?: string },
  sched: SchedInfo | undefined,
  stallAfterS: number,
): { state: CellState; cause?: { cause: VanishCause; evidence: string }; reason?: string; requeued?: boolean } {
  const fs_ = file.state;
  if (fs_ === "done") return { state: "done" };
  if (!sched) {
    // the scheduler has forgotten the task (MinJobAge) or never had it: trust the files
    if (fs_ === "running") {
      return { state: "vanished", cause: { cause: "unknown", evidence: "state file says running but Slurm lists no such task" } };
    }
    if (fs_ === "failed" || fs_ === "stopped") return { state: fs_, reason: file.reason };
    return { state: "pending", reason: file.reason };
  }
  const s = sched.state.toUpperCase();
  switch (s) {
    case "PENDING":
    case "CONFIGURING":
    case "REQUEUED":
    case "REQUEUE_FED":
    case "REQUEUE_HOLD":
    case "PREEMPTED":
    case "SUSPENDED":
    case "RESV_DEL_HOLD": {
      const requeued = sched.restarts > 0 || s.startsWith("REQUEUE") || s === "PREEMPTED";
      return {
        state: "pending",
        reason: `Slurm ${s}${sched.reason && sched.reason !== "None" ? ` (${sched.reason})` : ""}${sched.restarts ? `, restarts ${sched.restarts}` : ""}`,
        requeued,
        ...(requeued ? { cause: { cause: "preempted" as VanishCause, evidence: `Slurm ${s}, Restarts=${sched.restarts}` } } : {}),
      };
    }
    case "RUNNING":
    case "COMPLETING":
    case "SIGNALING":
    case "STAGE_OUT": {
      if (fs_ === "failed" || fs_ === "stopped") return { state: fs_, reason: file.reason };
      const age = Math.min(...[file.hbAge, file.logAge].filter((a) => a >= 0), Number.POSITIVE_INFINITY);
      if (fs_ === "running" && Number.isFinite(age) && age > stallAfterS) return { state: "stalled", reason: `no heartbeat or log change for ${age}s` };
      return { state: "running" };
    }
    case "COMPLETED":
      if (fs_ === "failed" || fs_ === "stopped") return { state: fs_, reason: file.reason };
      return { state: "done" };
    case "TIMEOUT":
    case "DEADLINE":
      return { state: "failed", cause: { cause: "walltime", evidence: `Slurm ${s} (time limit ${sched.timeLimit ?? "?"}), exit ${sched.exit ?? "?"}` }, reason: `walltime: Slurm ended the task at its time limit (${sched.timeLimit ?? "?"})` };
    case "OUT_OF_MEMORY":
      return { state: "failed", cause: { cause: "oom", evidence: `Slurm OUT_OF_MEMORY, exit ${sched.exit ?? "?"}` }, reason: "out of memory (Slurm OUT_OF_MEMORY)" };
    case "NODE_FAIL":
    case "BOOT_FAIL":
      return { state: "failed", cause: { cause: "reboot", evidence: `Slurm ${s}` }, reason: `node failure (Slurm ${s})` };
    case "CANCELLED":
      return { state: "stopped", reason: file.stop ? "stopped by stop_run" : `cancelled outside this tool (Slurm CANCELLED, ${sched.reason})` };
    case "FAILED":
      return { state: "failed", reason: file.reason || `Slurm FAILED, exit ${sched.exit ?? "?"}`, ...(file.cause === "oom" ? { cause: { cause: "oom" as VanishCause, evidence: "cgroup oom_kill count rose" } } : {}) };
    default:
      return { state: fs_ === "failed" ? "failed" : "unknown", reason: `Slurm state ${s}` };
  }
}

export const slurmBackend: Backend = {
  name: "slurm",

  async launch(ctx: BackendContext, req: LaunchRequest): Promise<LaunchOutcome> {
    const sreq = req as SchedulerLaunchRequest;
    const warnings: Warning[] = [];
    const host = req.hosts[0];
    if (!host) throw badInput("host", "a Slurm run needs the login node's host", "Pass host (the ssh alias of a node where sbatch works).");
    if (req.hosts.length > 1) warnings.push(warning("SLURM_ONE_HOST", "info", `Slurm places the cells itself; only ${host} (the login node) is used`));
    if (!req.cells.length) throw badInput("cells", "no cells to run", "Pass at least one cell.");
    for (const c of req.cells) {
      if (!/^[A-Za-z0-9._-]{1,100}$/.test(c.name) || c.name.startsWith(".")) {
        throw badInput(`cells[${c.name}].name`, "must be letters, digits, . _ - (it names a directory)", "Rename the cell.");
      }
    }
    const lanes = sreq.scheduler?.lanes ?? req.cells.length;
    if (!Number.isInteger(lanes) || lanes < 1) throw badInput("scheduler.lanes", "must be a whole number ≥ 1", "Pass lanes ≥ 1 (array tasks running at once).");
    const opts = sbatchOptions(sreq);
    if (req.while_run?.max_hours !== undefined) {
      warnings.push(warning("MAX_HOURS_SCHEDULER", "info", `max_hours on Slurm is each array task's limit (${opts.find((a) => a.startsWith("--time="))}): Slurm ends a task at that age; a task that starts later gets its own`));
    }
    const forward = setting("RGT_SLURM_FORWARD_SIGNAL");
    if (forward && /^[A-Z0-9]+$/.test(forward)) opts.push(`--export=ALL,RGT_SLURM_FORWARD=${forward}`);

    const existing = req.existing;
    const ex = existing ? slurmExtra(existing) : { jobs: [] as SlurmJobRef[] };
    const durable = req.durable_dir !== undefined ? req.durable_dir : req.profile?.durable_dir ?? "";
    const data = req.data_dir !== undefined ? req.data_dir : req.profile?.data_dir ?? "";
    const sdHint = existing?.host_dirs?.[host]?.state_dir ?? (existing?.backend === "slurm" ? existing.state_dir : "");

    // the same content-hashed names (and ~/.rgt/scripts) the tmux/nohup backends use
    const runOne = hashedScript("run_one.sh");
    const arr = hashedScript("slurm_array.sh");
    const sub = `sub-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;

    const runEnv: Record<string, string> = { RGT_RUN_ID: req.run_id };
    const p = req.profile;
    if (p?.proxy_hook) runEnv.RGT_PROXY_HOOK = p.proxy_hook;
    if (p?.cred_file) runEnv.RGT_CRED_FILE = p.cred_file;
    if (p?.python_path && p.python_path !== "python3") runEnv.RGT_PYTHON = p.python_path;
    if (p?.hf_home) runEnv.HF_HOME = p.hf_home;

    const files: { rel: string; body: string | Buffer }[] = [
      { rel: `scripts/${runOne.hashed}`, body: runOne.body },
      { rel: `scripts/${arr.hashed}`, body: arr.body },
      { rel: "run.env0", body: env0(runEnv) },
      { rel: "expect", body: req.expect.map((e) => `${e}\n`).join("") },
      { rel: `slurm/${sub}.cells`, body: req.cells.map((c) => `${c.name}\n`).join("") },
    ];
    const shas: Record<string, string> = {};
    for (const c of req.cells) {
      shas[c.name] = specSha(c.command, c.env);
      // CUDA_VISIBLE_DEVICES is Slurm's to set (GRES), so it is not part of the cell's spec here
      const { CUDA_VISIBLE_DEVICES: _drop, ...cellEnv } = c.env;
      files.push(
        { rel: `cells/${c.name}/env0`, body: env0({ ...cellEnv, RGT_CELL: c.name }) },
        { rel: `cells/${c.name}/cmd`, body: c.command.endsWith("\n") ? c.command : `${c.command}\n` },
        { rel: `cells/${c.name}/spec_sha`, body: `${shas[c.name]}\n` },
      );
    }
    const script = scriptText("slurm_submit.sh");
    const args = [req.run_id, sdHint, durable, data, req.workdir, sub, runOne.hashed, arr.hashed, String(lanes), ex.jobs.map((j) => j.id).join(","), ...opts];
    // the bundle starts right after the script's last line (which calls main); no blank line between
    const stdin = Buffer.concat([Buffer.from(script.endsWith("\n") ? script : `${script}\n`, "utf8"), bundle(files)]);
    const r = await ctx.remote.exec(host, `bash -s -- ${quote(args)}`, { stdin, timeoutMs: SUBMIT_TIMEOUT_MS, signal: ctx.signal });
    const rows = parseTabs(r.stdout);
    const get = (k: string) => rows.find((x) => x[0] === k);
    const err = get("ERROR");
    if (r.timedOut) throw new RefusalError("TIMEOUT", `sbatch submission on ${host} did not finish in ${SUBMIT_TIMEOUT_MS / 1000}s`, "Check the scheduler (sinfo, squeue) and retry; the same run_name resumes without double-starting.");
    if (err) {
      const [, code, msg] = err;
      const remedy = code === "NO_SBATCH" ? "Run this on a Slurm login node (where `sbatch` is on PATH), or use detach tmux/nohup."
        : code === "NO_WORKDIR" ? "Push the code first (push_code) or pass the right workdir."
        : code === "SBATCH" ? "Fix the sbatch error above (partition, walltime, GRES) and launch again with the same run_name."
        : "Check the box's disk and permissions, then launch again.";
      throw new RefusalError(code === "NO_WORKDIR" ? "BAD_INPUT" : "SLURM_SUBMIT_FAILED", `${code === "NO_WORKDIR" ? "workdir: " : ""}${msg ?? "submission failed"}`, remedy);
    }
    if (r.exitCode !== 0 || !get("SD")) {
      throw new RefusalError("SLURM_SUBMIT_FAILED", `submission script on ${host} exited ${r.exitCode}: ${clip(r.stderr.trim() || r.stdout.trim(), 400)}`, "Check the box (probe_env) and launch again with the same run_name.");
    }
    const home = get("HOME")?.[1] ?? "";
    const sd = get("SD")![1];
    const scr = get("SCR")?.[1] ?? "";
    const [, durableAbs, durableOk] = get("DURABLE") ?? ["", "", "missing"];
    if (durable && durableOk !== "ok") warnings.push(warning("DURABLE_MISSING", "warn", `durable dir ${durableAbs || durable} is missing or not writable on ${host}; cell state and artifacts stay in ${sd} and the output dirs only`));
    const outs = new Map(rows.filter((x) => x[0] === "OUT").map((x) => [x[1], x[2]]));
    const skippedDone = rows.filter((x) => x[0] === "SKIPDONE").map((x) => x[1]);
    const skippedLive = rows.filter((x) => x[0] === "SKIPLIVE").map((x) => x[1]);
    const job = get("JOB");
    const jobs = [...ex.jobs];
    let started: string[] = [];
    if (job) {
      jobs.push({ id: job[1], cells: req.cells.map((c) => c.name), submitted_at: new Date().toISOString() });
      started = job[2].split(",").map((i) => req.cells[Number(i)]?.name).filter((x): x is string => !!x);
    }
    const now = new Date().toISOString();
    const record: RunRecord = {
      run_id: req.run_id,
      run_name: req.run_name,
      hosts: [host],
      backend: "slurm",
      workdir: req.workdir,
      state_dir: sd,
      cells: req.cells.map((c) => ({ name: c.name, host, gpu_indices: [], output_dir: outs.get(c.name) ?? "", spec_sha: shas[c.name], command: c.command.slice(0, 2000) })),
      expect: req.expect,
      ...(durableOk === "ok" ? { durable_dir: durableAbs } : {}),
      created_at: existing?.created_at ?? now,
      updated_at: now,
      slurm_job_id: job?.[1] ?? existing?.slurm_job_id,
      host_dirs: { [host]: { state_dir: sd, scripts_dir: scr, ...(durableOk === "ok" ? { durable_dir: durableAbs } : {}) } },
      profile: req.profile?.name,
      extra: { ...(existing?.extra ?? {}), slurm: { jobs, scripts_dir: scr, home, lanes, sbatch: opts } },
    };
    if (skippedLive.length) warnings.push(warning("RUN_LIVE", "info", `${skippedLive.length} cell(s) still queued or running under an earlier job of this run; not submitted again`));
    return {
      record,
      placement: req.cells.map((c) => ({ cell: c.name, host, gpu_indices: [] })),
      session: job ? `slurm job ${job[1]} (array ${job[2]}%${lanes})` : `slurm: nothing new to submit${ex.jobs.length ? ` (jobs ${ex.jobs.map((j) => j.id).join(", ")})` : ""}`,
      log_dir: `${sd}/cells`,
      started,
      skipped_done: skippedDone,
      skipped_live: skippedLive,
      warnings,
      extra: { slurm_job_id: job?.[1], sbatch: `sbatch --array=${job?.[2] ?? ""}%${lanes} ${opts.join(" ")}` },
    };
  },

  async status(ctx: BackendContext, run: RunRecord, opts: StatusOptions): Promise<StatusOutcome> {
    const host = run.hosts[0];
    const ex = slurmExtra(run);
    const sd = run.host_dirs?.[host]?.state_dir ?? run.state_dir;
    const warnings: Warning[] = [];
    let r;
    try {
      r = await ctx.remote.runScript(host, "slurm_status.sh", [sd, String(Math.max(0, Math.min(50, opts.tail_lines))), ex.jobs.map((j) => j.id).join(",")], { timeoutMs: STATUS_TIMEOUT_MS, signal: ctx.signal });
    } catch (e) {
      if (e instanceof RefusalError && ["UNREACHABLE", "TIMEOUT"].includes(e.refusal.code)) {
        return {
          cells: run.cells.map((c) => ({ name: c.name, host: c.host, state: "unknown" as CellState, log_age_s: -1, reason: `${host} unreachable: ${e.refusal.reason}` })),
          gpus: [], disks: [], unreachable: [host], warnings,
        };
      }
      throw e;
    }
    const rows = parseTabs(r.stdout);
    const files = new Map<string, string[]>();
    const tails = new Map<string, string[]>();
    const sq = new Map<string, SchedInfo>();
    const sc = new Map<string, SchedInfo>();
    const sa = new Map<string, SchedInfo>();
    for (const x of rows) {
      if (x[0] === "CELL") files.set(x[1], x);
      else if (x[0] === "TAIL") tails.set(x[1], [...(tails.get(x[1]) ?? []), x[2] ?? ""]);
      else if (x[0] === "SQ") sq.set(x[1], { state: x[2], reason: x[3] ?? "", restarts: 0 });
      else if (x[0] === "SC") sc.set(x[1], { state: x[2], reason: x[3] ?? "", exit: x[4], restarts: Number(x[5] ?? 0) || 0, timeLimit: x[6] });
      else if (x[0] === "SA") sa.set(x[1], { state: x[2], reason: "", exit: x[3], restarts: 0 });
    }
    if (rows.some((x) => x[0] === "NOSTATE")) warnings.push(warning("SLURM_NO_STATE", "warn", `the run's state dir ${sd} is missing on ${host}`));
    const tasks = latestTasks(run);
    let requeued = 0;
    const cells: CellStatus[] = run.cells.map((c) => {
      const f = files.get(c.name);
      const task = tasks.get(c.name);
      // scontrol knows restarts and time limits; squeue is the fresher word on the state; sacct outlives both
      const s1 = task ? sc.get(task) : undefined;
      const s2 = task ? sq.get(task) : undefined;
      const s3 = task ? sa.get(task) : undefined;
      const sched: SchedInfo | undefined = s1 ?? s2 ?? s3
        ? { ...(s3 ?? {}), ...(s1 ?? {}), ...(s2 ? { state: s2.state, reason: s2.reason } : {}), restarts: s1?.restarts ?? 0 } as SchedInfo
        : undefined;
      const file = {
        state: f?.[2] ?? "pending",
        stop: f?.[12] === "stop",
        term: f?.[11] === "term",
        logAge: Number(f?.[4] ?? -1),
        hbAge: Number(f?.[5] ?? -1),
        reason: f?.[8] || undefined,
        cause: f?.[9] || undefined,
      };
      const m = mapCellState(file, sched, opts.stall_after_s);
      if (m.requeued) requeued++;
      const exit = f?.[3] !== undefined && f[3] !== "" ? Number(f[3]) : undefined;
      const tail = tails.get(c.name);
      return {
        name: c.name,
        host: c.host,
        state: m.state,
        ...(exit !== undefined && Number.isFinite(exit) ? { exit_code: exit } : {}),
        log_age_s: file.logAge,
        ...(tail?.length ? { tail } : {}),
        ...(tail?.length && parseProgress(tail) ? { progress: parseProgress(tail) } : {}),
        log_bytes: Number(f?.[6] ?? 0),
        ...(m.reason ? { reason: clip(m.reason, 240) } : {}),
        ...(m.cause ? { cause: m.cause } : {}),
        gpu_indices: [],
      };
    });
    if (requeued) {
      warnings.push(warning("SLURM_REQUEUED", "warn", `${requeued} cell(s) were preempted or requeued and wait to start again; they resume from their last checkpoint only if the training code saves one`));
    }
    return { cells, gpus: [], disks: [], unreachable: [], warnings };
  },

  async stop(ctx: BackendContext, run: RunRecord, cells?: string[]): Promise<StopOutcome> {
    const host = run.hosts[0];
    const sd = run.host_dirs?.[host]?.state_dir ?? run.state_dir;
    const names = cells?.length ? cells : run.cells.map((c) => c.name);
    const unknown = names.filter((n) => !run.cells.some((c) => c.name === n));
    if (unknown.length) throw badInput("cells", `not cells of run ${run.run_id}: ${unknown.join(", ")}`, `Cells of this run: ${run.cells.map((c) => c.name).join(", ")}.`);
    const ex = slurmExtra(run);
    const jobIds = ex.jobs.map((j) => j.id);
    if (!jobIds.length) throw new RefusalError("NOT_FOUND", `run ${run.run_id} has no Slurm job on record`, "Nothing was submitted; there is nothing to cancel.");
    for (const id of jobIds) if (!/^\d+$/.test(id)) throw new RefusalError("INTERNAL", `recorded Slurm job id ${id} is malformed`, "Check the ledger entry of this run.");
    // every array task of this run that may hold one of the cells, in every job of the run (ours only)
    const targets: string[] = [];
    for (const j of ex.jobs) j.cells.forEach((c, i) => { if (names.includes(c)) targets.push(`${j.id}_${i}`); });
    const whole = names.length === run.cells.length;
    const scancelArgs = whole ? jobIds : targets;
    const cellDirs = names.map((n) => `${sd}/cells/${n}`);
    const script = [
      "set -u",
      // what each cell was before the cancel: one that had already ended is reported as such
      "declare -A pre=()",
      `for d in ${quote(cellDirs)}; do [ -d "$d" ] || continue; pre[$d]=$(cat "$d/state" 2>/dev/null); : > "$d/stop_requested"; done`,
      `before=$(squeue -h -r -j ${quote([jobIds.join(",")])} -o '%i %T' 2>/dev/null)`,
      `printf 'BEFORE\\t%s\\n' "$(printf '%s' "$before" | tr '\\n' ',')"`,
      `scancel ${quote(scancelArgs)} 2>&1 | head -c 400 | sed 's/^/SCANCEL\\t/'`,
      "left=",
      "for i in $(seq 1 60); do",
      `  left=$(squeue -h -r -j ${quote([jobIds.join(",")])} -o '%i' 2>/dev/null | grep -x -F ${targets.map((t) => `-e ${quote([t])}`).join(" ")} | tr '\\n' ' ')`,
      '  [ -z "$left" ] && break',
      "  sleep 0.5",
      "done",
      `printf 'LEFT\\t%s\\n' "$left"`,
      `for d in ${quote(cellDirs)}; do`,
      '  [ -d "$d" ] || continue',
      '  st=${pre[$d]:-}',
      '  case $st in done|failed|stopped) printf "CELL\\t%s\\t%s\\talready\\n" "${d##*/}" "$st";; *) [ "$(cat "$d/state" 2>/dev/null)" = done ] || printf "stopped\\n" > "$d/state"; printf "CELL\\t%s\\tstopped\\tnow\\n" "${d##*/}";; esac',
      "done",
    ].join("\n");
    const r = await ctx.remote.exec(host, `bash -c ${quote([script])}`, { timeoutMs: STOP_TIMEOUT_MS, signal: ctx.signal });
    const rows = parseTabs(r.stdout);
    const left = (rows.find((x) => x[0] === "LEFT")?.[1] ?? "").trim().split(/\s+/).filter(Boolean);
    const leftCells = new Set<string>();
    for (const t of left) {
      const [jid, idx] = t.split("_");
      const c = ex.jobs.find((j) => j.id === jid)?.cells[Number(idx)];
      if (c) leftCells.add(c);
    }
    const stopped: string[] = [];
    const already: string[] = [];
    for (const x of rows.filter((y) => y[0] === "CELL")) {
      if (leftCells.has(x[1])) continue;
      (x[3] === "already" ? already : stopped).push(x[1]);
    }
    const warnings: Warning[] = [];
    const sc = rows.filter((x) => x[0] === "SCANCEL").map((x) => x[1]).join(" ").trim();
    if (sc) warnings.push(warning("SLURM_SCANCEL", "info", clip(sc, 300)));
    return {
      stopped,
      already_stopped: already,
      still_alive: [...leftCells],
      gpu_memory_freed: null,
      evidence: [
        `scancel ${scancelArgs.join(" ")} (this run's own ${whole ? "jobs" : "array tasks"} only)`,
        left.length ? `still listed by squeue: ${left.join(" ")}` : "squeue lists none of them any more",
      ],
      warnings,
    };
  },
};
