/**
 * Launch over SSH (tmux or setsid+nohup lanes). Two round trips per host, hosts in parallel: (1) install
 * the hashed scripts and run launch_prep.sh (GPU facts, tools, what this run already left on the box);
 * (2) launch_start.sh unpacks the cell specs from stdin and starts the lanes.
 */
import { createHash } from "node:crypto";
import { shq } from "../common/text.js";
import { RefusalError, refuse, warning, type Warning } from "../common/result.js";
import type { Profile } from "../knowledge/schema.js";
import type { RunCell, RunRecord } from "../ledger/runs.js";
import type { BackendContext, LaunchCellSpec, LaunchOutcome, LaunchRequest, Placement } from "./types.js";
import { bundle, installAndRun, isConnectionError, num, settle, tsv } from "./scripts.js";
import { SHIM_SCRIPT } from "./seatbelt.js";
import { assignCells, lanesFor, type HostGpuFacts, type Lane } from "./placement.js";
import { cellEnvAdditions, launchExtras, mirrorSetupArgs, runEnvAdditions, watchEnv } from "./while_run.js";

const START_TIMEOUT_MS = 45_000;

export interface PrepFacts extends HostGpuFacts {
  host: string;
  home: string;
  state_dir: string;
  durable_dir: string;
  durable_ok: boolean;
  data_dir: string;
  data_ok: boolean;
  workdir_ok: boolean;
  /** the workdir with ~ / $HOME expanded on the box */
  workdir: string;
  tools: Record<string, boolean>;
  gpus: { index: number; uuid: string; used_mib: number; total_mib: number }[];
  gpu_apps: { uuid: string; pid: number }[];
  cells: Record<string, { state: string; spec_sha: string; alive: boolean }>;
  lanes: { id: string; alive: boolean; gpus: number[]; cells: string[] }[];
  crlf: string[];
  scripts: Record<string, string>;
  scripts_dir: string;
}

export function parsePrep(host: string, stdout: string): Omit<PrepFacts, "scripts" | "scripts_dir"> {
  const f: Omit<PrepFacts, "scripts" | "scripts_dir"> = {
    host, home: "", state_dir: "", durable_dir: "", durable_ok: false, data_dir: "", data_ok: false, workdir_ok: false, workdir: "",
    tools: {}, gpus: [], gpu_apps: [], cells: {}, lanes: [], crlf: [],
  };
  for (const r of tsv(stdout)) {
    switch (r[0]) {
      case "HOME": f.home = r[1] ?? ""; break;
      case "SD": f.state_dir = r[1] ?? ""; break;
      case "DURABLE": f.durable_dir = r[1] ?? ""; f.durable_ok = r[2] === "ok"; break;
      case "DATA": f.data_dir = r[1] ?? ""; f.data_ok = r[2] === "ok"; break;
      case "WORKDIR": f.workdir_ok = r[1] === "1"; f.workdir = r[2] ?? ""; break;
      case "TOOLS": for (const kv of r.slice(1)) { const [k, v] = kv.split("="); f.tools[k] = v === "1"; } break;
      case "GPU": f.gpus.push({ index: Number(r[1]), uuid: r[2] ?? "", used_mib: num(r[3]) ?? 0, total_mib: num(r[4]) ?? 0 }); break;
      case "GPUAPP": f.gpu_apps.push({ uuid: r[1] ?? "", pid: Number(r[2]) }); break;
      case "CELL": f.cells[r[1]] = { state: r[2] ?? "pending", spec_sha: r[3] ?? "", alive: r[4] === "1" }; break;
      case "LANE": f.lanes.push({
        id: r[1], alive: r[2] === "1",
        gpus: (r[3] ?? "").split(",").filter((x) => x !== "").map(Number),
        cells: (r[4] ?? "").split(",").filter((x) => x !== ""),
      }); break;
      case "CRLF": f.crlf.push(r[1]); break;
    }
  }
  return f;
}

/** sha256[:16] of what makes a cell this cell: a different command/env is a different cell spec */
export function specSha(c: LaunchCellSpec): string {
  const env = Object.keys(c.env ?? {}).sort().map((k) => [k, c.env[k]]);
  return createHash("sha256").update(JSON.stringify({ command: c.command, env, gpus: c.gpus ?? null })).digest("hex").slice(0, 16);
}

/** Scripts a command runs by path (`bash x.sh`, `./x.sh`, `sh dir/x.sh`): these are checked for CR on the box. */
export function scriptPathsIn(command: string): string[] {
  const out = new Set<string>();
  for (const m of command.matchAll(/(?:^|[\s;&|(])((?:\.{0,2}\/)?[\w./-]+\.(?:sh|bash))(?=$|[\s;&|)])/g)) out.add(m[1]);
  return [...out].slice(0, 20);
}

function env0(env: Record<string, string>): string {
  return Object.entries(env).map(([k, v]) => `${k}=${v}\0`).join("");
}

export function tmuxSessionName(runId: string): string {
  return `rgt-${runId}`.replace(/[.:\s]/g, "_");
}

function dirsOf(req: LaunchRequest): { durable: string; data: string } {
  const p: Profile | undefined = req.profile;
  return {
    durable: (req.durable_dir ?? p?.durable_dir ?? "").replace(/\/+$/, ""),
    data: (req.data_dir ?? p?.data_dir ?? "").replace(/\/+$/, ""),
  };
}

export async function sshLaunch(mode: "tmux" | "nohup", ctx: BackendContext, req: LaunchRequest): Promise<LaunchOutcome> {
  const warnings: Warning[] = [];
  const { durable, data } = dirsOf(req);
  const existing = req.existing;
  const prior = new Map<string, RunCell>((existing?.cells ?? []).map((c) => [c.name, c]));
  const hosts = [...new Set([...req.hosts, ...req.cells.map((c) => prior.get(c.name)?.host).filter((h): h is string => !!h)])];
  const checkPaths = [...new Set(req.cells.flatMap((c) => scriptPathsIn(c.command)))];
  const SCRIPTS = ["run_one.sh", "run_queue.sh", "launch_prep.sh", "launch_start.sh", "run_status.sh", "stop_run.sh", SHIM_SCRIPT, "run_watch.sh", "china_mirrors.sh"];

  // round trip 1: install scripts + facts
  const prepped = await settle(hosts, async (h) => {
    const sdHint = existing?.host_dirs?.[h]?.state_dir ?? "";
    const { res, paths, scriptsDir } = await installAndRun(ctx.remote, h, SCRIPTS, {
      script: "launch_prep.sh", args: [req.run_id, sdHint, durable, data, req.workdir, ...checkPaths],
    });
    if (res.exitCode !== 0) throw new RefusalError("INTERNAL", `launch_prep on ${h} exited ${res.exitCode}: ${(res.stderr || res.stdout).slice(-300)}`, "Check the box with probe_env, then retry.");
    return { ...parsePrep(h, res.stdout), scripts: paths, scripts_dir: scriptsDir } as PrepFacts;
  });
  const facts = new Map<string, PrepFacts>();
  for (const [h, r] of prepped) {
    if (r instanceof Error) {
      if (r instanceof RefusalError && !isConnectionError(r)) throw r;
      warnings.push(warning("HOST_UNREACHABLE", "warn", `${h}: ${r.message.slice(0, 200)}; nothing was started there`));
    } else facts.set(h, r);
  }
  if (facts.size === 0) {
    const first = [...prepped.values()][0];
    throw first instanceof Error ? first : new Error("no host answered");
  }
  for (const f of facts.values()) {
    if (f.crlf.length) refuse("CRLF_SCRIPT", `on ${f.host}, ${f.crlf.join(", ")} has CRLF (Windows) line endings; bash would fail on the \\r`, "Convert it to LF (dos2unix, or `sed -i 's/\\r$//' <file>`), push_code again, then launch.");
    if (!f.workdir_ok) refuse("BAD_INPUT", `workdir: ${req.workdir} does not exist on ${f.host}`, "push_code the project to that path first, or pass the right workdir.");
    if (f.durable_dir && !f.durable_ok) warnings.push(warning("NO_DURABLE_DIR", "warn", `${f.host}: durable dir ${f.durable_dir} is missing or read-only; state stays under $HOME and artifacts are not copied anywhere durable`));
  }

  // which cells run, which are skipped
  const started: string[] = [];
  const skippedDone: string[] = [];
  const skippedLive: string[] = [];
  const toStart: { spec: LaunchCellSpec; pinnedHost?: string }[] = [];
  for (const c of req.cells) {
    const p = prior.get(c.name);
    const f = p ? facts.get(p.host) : undefined;
    if (p && !facts.has(p.host)) {
      warnings.push(warning("HOST_UNREACHABLE", "warn", `cell ${c.name} lives on ${p.host}, which did not answer; left as it is`));
      continue;
    }
    const onBox = f?.cells[c.name];
    const inLiveLane = !!f?.lanes.some((l) => l.alive && l.cells.includes(c.name));
    if (onBox?.state === "done") {
      skippedDone.push(c.name);
      if (onBox.spec_sha && onBox.spec_sha !== specSha(c)) warnings.push(warning("DONE_WITH_OTHER_SPEC", "warn", `cell ${c.name} is done with a different command/env; it is not re-run (use a new run_name to run the new spec)`));
      continue;
    }
    if (onBox && (onBox.alive || (inLiveLane && onBox.state !== "failed" && onBox.state !== "stopped"))) {
      if (onBox.spec_sha && onBox.spec_sha !== specSha(c)) {
        refuse("LIVE_SCRIPT_MUTATION", `cell ${c.name} of run ${req.run_id} is live on ${p!.host} with a different command/env; its spec files will not be rewritten under it`, `Wait for it, or stop_run { run_id: "${req.run_id}", cells: ["${c.name}"] } first, then launch again.`);
      }
      skippedLive.push(c.name);
      continue;
    }
    toStart.push({ spec: c, pinnedHost: p && onBox ? p.host : undefined });
  }

  // lanes per host
  const need = toStart.length ? Math.max(...toStart.map((t) => t.spec.gpus ?? 1)) : 1;
  const stamp = Date.now().toString(36);
  const allLanes: Lane[] = [];
  for (const f of facts.values()) {
    const { lanes, busy } = lanesFor(f, need, `L${stamp}`);
    if (busy.length) warnings.push(warning("GPU_BUSY", "info", `${f.host}: GPU ${busy.join(",")} already hold another process's memory; not used`));
    if (f.gpus.length && lanes.length === 0) warnings.push(warning("NO_FREE_GPU", "warn", `${f.host}: no free group of ${need} GPU(s); nothing placed there`));
    allLanes.push(...lanes);
  }
  const { placed, unplaced } = assignCells(toStart.map((t) => ({ name: t.spec.name, pinnedHost: t.pinnedHost })), allLanes);
  if (toStart.length && placed.size === 0) {
    refuse("GPU_BUSY", `no free GPU lane on ${[...facts.keys()].join(", ")} for ${toStart.length} cell(s)`, "Wait for the GPUs to free up (run_status / probe_env show who holds them), add hosts, or lower the cells' gpus.");
  }
  if (unplaced.length) warnings.push(warning("NOT_PLACED", "warn", `no lane for ${unplaced.join(", ")}; launch again once a GPU frees up`));

  // round trip 2: specs + start, per host with lanes
  const outRoot = (f: PrepFacts) => `${f.data_dir && f.data_ok ? f.data_dir : (f.workdir || req.workdir).replace(/\/+$/, "")}/rgt-out/${req.run_id}`;
  const session = tmuxSessionName(req.run_id);
  const modeOf = new Map<string, "tmux" | "nohup">();
  const outputDirOf = new Map<string, string>();
  const firstLines: { cell: string; line: string }[] = [];
  const mirrorSetup: string[] = [];
  const startHosts = [...facts.values()].filter((f) => allLanes.some((l) => l.host === f.host && l.cells.length));
  // a park approved after the start reaches a host whose cells run or ran already: its watch.env0 alone
  const watchOnly = req.while_run?.park ? [...facts.values()].filter((f) => !startHosts.includes(f) && Object.keys(f.cells).length > 0) : [];
  const results = await settle(startHosts.map((f) => f.host), async (h) => {
    const f = facts.get(h)!;
    const lanes = allLanes.filter((l) => l.host === h && l.cells.length);
    const m: "tmux" | "nohup" = mode === "tmux" && !f.tools.tmux ? "nohup" : mode;
    if (m !== mode) warnings.push(warning("NO_TMUX", "info", `${h} has no tmux; lanes run under setsid nohup instead (same state files, same stop_run)`));
    modeOf.set(h, m);
    const p = req.profile;
    const runEnv: Record<string, string> = {
      PYTHONUNBUFFERED: "1",
      RGT_RUN_ID: req.run_id,
      RGT_WORKDIR: f.workdir || req.workdir,
      RGT_STATE_DIR: f.state_dir,
      RGT_DURABLE_ROOT: f.durable_ok ? f.durable_dir : "",
      RGT_PROXY_HOOK: p?.proxy_hook ?? "",
      RGT_CRED_FILE: p?.cred_file ?? "",
      RGT_PYTHON: p?.python_path ?? "",
      // the seatbelt: run_one.sh links this shim under the provider/power names first on the cell's PATH
      RGT_SHIM: f.scripts[SHIM_SCRIPT] ?? "",
      ...(p?.hf_home ? { HF_HOME: p.hf_home } : {}),
      ...runEnvAdditions(req.while_run, p),
    };
    const files: { path: string; data: string }[] = [
      { path: "run.env0", data: env0(runEnv) },
      { path: "expect", data: req.expect.map((e) => `${e}\n`).join("") },
      { path: "watch.env0", data: env0(watchEnv(req.while_run, { watch: f.scripts["run_watch.sh"], stop: f.scripts["stop_run.sh"] })) },
    ];
    const margs = mirrorSetupArgs(p);
    if (margs) files.push({ path: "mirrors.args0", data: [f.scripts["china_mirrors.sh"], ...margs].map((a) => `${a}\0`).join("") });
    for (const l of lanes) {
      for (const name of l.cells) {
        const spec = req.cells.find((c) => c.name === name)!;
        const out = `${outRoot(f)}/${name}`;
        outputDirOf.set(name, out);
        const cenv = { ...cellEnvAdditions(spec), ...spec.env, RGT_CELL: name, RGT_OUTPUT_DIR: out, CUDA_VISIBLE_DEVICES: l.gpus.join(",") };
        files.push({ path: `cells/${name}/env0`, data: env0(cenv) });
        files.push({ path: `cells/${name}/cmd`, data: spec.command.endsWith("\n") ? spec.command : `${spec.command}\n` });
        files.push({ path: `cells/${name}/spec_sha`, data: `${specSha(spec)}\n` });
      }
      files.push({ path: `lanes/${l.id}.cells`, data: l.cells.map((c) => `${c}\n`).join("") });
      files.push({ path: `lanes/${l.id}.gpus`, data: `${l.gpus.join(",")}\n` });
    }
    const args = [f.state_dir, m, session, f.scripts["run_queue.sh"], f.scripts["run_one.sh"], "3", ...lanes.map((l) => l.id)];
    const res = await ctx.remote.exec(h, `bash ${shq(f.scripts["launch_start.sh"])} ${args.map(shq).join(" ")}`, { stdin: bundle(files), timeoutMs: START_TIMEOUT_MS });
    const rows = tsv(res.stdout);
    const errs = rows.filter((r) => r[0] === "ERROR").map((r) => r[1]);
    if (errs.length) warnings.push(warning("START_ERROR", "warn", `${h}: ${errs.join("; ").slice(0, 300)}`));
    for (const r of rows) {
      if (r[0] === "STARTED") started.push(...(r[3] ?? "").split(" ").filter(Boolean));
      if (r[0] === "SKIPLIVE") skippedLive.push(r[1]);
      if (r[0] === "FIRST") firstLines.push({ cell: r[1], line: r[2] ?? "" });
      if (r[0] === "MIRROR") mirrorSetup.push(`${h}: ${r.slice(1).join(" ")}`.slice(0, 160));
    }
    if (res.exitCode !== 0 && !rows.some((r) => r[0] === "STARTED")) throw new RefusalError("INTERNAL", `launch_start on ${h} exited ${res.exitCode}: ${(res.stderr || res.stdout).slice(-300)}`, "Check the box (probe_env), then launch again; done cells are kept.");
  });
  for (const [h, r] of results) {
    if (r instanceof Error) {
      if (!isConnectionError(r) && !(r instanceof RefusalError)) throw r;
      warnings.push(warning("START_FAILED", "warn", `${h}: ${r.message.slice(0, 200)}`));
    }
  }
  await settle(watchOnly.map((f) => f.host), async (h) => {
    const f = facts.get(h)!;
    const files = [{ path: "watch.env0", data: env0(watchEnv(req.while_run, { watch: f.scripts["run_watch.sh"], stop: f.scripts["stop_run.sh"] })) }];
    const args = [f.state_dir, mode, session, f.scripts["run_queue.sh"], f.scripts["run_one.sh"], "0"];
    const res = await ctx.remote.exec(h, `bash ${shq(f.scripts["launch_start.sh"])} ${args.map(shq).join(" ")}`, { stdin: bundle(files), timeoutMs: START_TIMEOUT_MS });
    if (!tsv(res.stdout).some((r) => r[0] === "WATCH")) warnings.push(warning("START_ERROR", "warn", `${h}: the park could not be armed on the running lanes (${(res.stderr || res.stdout).slice(-160)})`));
  });

  // the record: earlier cells keep their place unless they moved
  const now = new Date().toISOString();
  const cellMap = new Map<string, RunCell>(prior);
  for (const c of req.cells) {
    const lane = placed.get(c.name);
    if (lane && started.includes(c.name)) {
      cellMap.set(c.name, { name: c.name, host: lane.host, gpu_indices: lane.gpus, output_dir: outputDirOf.get(c.name)!, spec_sha: specSha(c),
        command: c.command.slice(0, 2000) });
    } else if (!cellMap.has(c.name) && lane) {
      cellMap.set(c.name, { name: c.name, host: lane.host, gpu_indices: lane.gpus, output_dir: `${outRoot(facts.get(lane.host)!)}/${c.name}`, spec_sha: specSha(c), command: c.command.slice(0, 2000) });
    }
  }
  const hostDirs: NonNullable<RunRecord["host_dirs"]> = { ...(existing?.host_dirs ?? {}) };
  for (const f of facts.values()) {
    hostDirs[f.host] = {
      state_dir: f.state_dir, scripts_dir: f.scripts_dir,
      ...(f.durable_ok ? { durable_dir: f.durable_dir } : {}),
      detach: modeOf.get(f.host) ?? hostDirs[f.host]?.detach ?? mode,
    };
  }
  const firstHost = [...facts.values()][0];
  const record: RunRecord = {
    run_id: req.run_id,
    run_name: req.run_name,
    hosts: [...new Set([...(existing?.hosts ?? []), ...req.hosts])],
    backend: mode,
    workdir: req.workdir,
    state_dir: existing?.state_dir ?? firstHost.state_dir,
    cells: [...cellMap.values()],
    expect: req.expect,
    ...(firstHost.durable_ok ? { durable_dir: firstHost.durable_dir } : {}),
    created_at: existing?.created_at ?? now,
    updated_at: now,
    host_dirs: hostDirs,
    ...(req.profile ? { profile: req.profile.name } : existing?.profile ? { profile: existing.profile } : {}),
  };
  const placement: Placement[] = req.cells
    .map((c) => cellMap.get(c.name))
    .filter((c): c is RunCell => !!c)
    .map((c) => ({ cell: c.name, host: c.host, gpu_indices: c.gpu_indices }));
  const first = firstLines.find((x) => !x.line.startsWith("[rgt]")) ?? firstLines[0];
  const sessions = [...new Set([...modeOf.values()])].map((m) => (m === "tmux" ? session : `nohup (setsid) lanes of ${req.run_id}`));
  return {
    record,
    placement,
    session: sessions.join(", ") || session,
    log_dir: `${firstHost.state_dir}/cells/<cell>/log`,
    started,
    skipped_done: skippedDone,
    skipped_live: [...new Set(skippedLive)],
    ...(first ? { first_log_line: `${first.cell}: ${first.line}`.slice(0, 300) } : {}),
    warnings,
    ...launchExtras(req, mirrorSetup),
  };
}
