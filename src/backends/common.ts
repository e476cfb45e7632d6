/**
 * What the SSH detach backends (tmux, setsid+nohup) share, and the pieces other backends reuse:
 * content-hashed script upload, the stdin file bundle, tab-separated script output, placement over
 * hosts × GPUs, and the classification of a cell's on-box record into a state with evidence.
 *
 * A launch is two round trips per host (hosts in parallel): (1) install the hashed scripts and run
 * launch_prep.sh (GPU facts, tools, what this run already left on the box); (2) launch_start.sh unpacks
 * the cell specs from stdin and starts the lanes. Status and stop are one round trip per host.
 */
import { shq } from "../common/text.js";
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { packageRoot } from "../common/config.js";
import { RefusalError, refuse, warning, type Warning } from "../common/result.js";
import type { ExecResult, Remote } from "../remote/types.js";
import { readScript } from "../remote/pool.js";
import type { Profile } from "../knowledge/schema.js";
import type { RunCell, RunRecord } from "../ledger/runs.js";
import type {
  Backend, BackendContext, CellState, CellStatus, DiskStatus, GpuStatus, LaunchCellSpec, LaunchOutcome, LaunchRequest,
  Placement, StatusOptions, StatusOutcome, StopOutcome, VanishCause,
} from "./types.js";

export const SCRIPTS_REL = ".rgt/scripts";
const PREP_TIMEOUT_MS = 45_000;
const START_TIMEOUT_MS = 45_000;
const STATUS_TIMEOUT_MS = 25_000;
const BUSY_GPU_MIB = 1024;

// ------------------------------------------------------------------------------------------------
// scripts under content-hashed names

export interface HashedScript { name: string; hashed: string; sha256: string; body: Buffer }
const scriptCache = new Map<string, HashedScript>();

export function scriptsDir(): string {
  return path.join(packageRoot(), "scripts");
}

/** scripts/<name> with its on-box name `<stem>-<sha256[:12]><ext>`; a changed script gets a new name. */
export function hashedScript(name: string): HashedScript {
  const hit = scriptCache.get(name);
  if (hit) return hit;
  const body = Buffer.from(readScript(scriptsDir(), name), "utf8");
  if (body.includes(0x0d)) throw new Error(`scripts/${name} has CR line endings`);
  const sha256 = createHash("sha256").update(body).digest("hex");
  const ext = path.extname(name);
  const hashed = `${name.slice(0, name.length - ext.length)}-${sha256.slice(0, 12)}${ext}`;
  const s = { name, hashed, sha256, body };
  scriptCache.set(name, s);
  return s;
}

/** "<relpath> <bytes>\n<bytes…>" repeated: what launch_start.sh (and the installer) read from stdin. */
export function bundle(files: { path: string; data: string | Buffer }[], withSha = false): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    if (/[\s]/.test(f.path) || f.path.includes("..") || f.path.startsWith("/")) throw new Error(`bad bundle path ${f.path}`);
    const data = Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data, "utf8");
    const sha = withSha ? ` ${createHash("sha256").update(data).digest("hex")}` : "";
    parts.push(Buffer.from(`${f.path} ${data.length}${sha}\n`), data);
  }
  return Buffer.concat(parts);
}

export { shq };

/**
 * One exec: copy the named scripts to ~/.rgt/scripts/<hashed name> (an existing file is never
 * overwritten; one whose bytes no longer match its name is reported) and then run `then` from there.
 */
export async function installAndRun(
  remote: Remote, host: string, names: string[], then: { script: string; args: string[] } | undefined, timeoutMs = PREP_TIMEOUT_MS,
): Promise<{ scriptsDir: string; paths: Record<string, string>; res: ExecResult }> {
  const scripts = names.map(hashedScript);
  const installer = [
    "set -u; umask 077",
    `D="$HOME/${SCRIPTS_REL}"`,
    'mkdir -p "$D" || { echo "RGTERR cannot create $D"; exit 90; }',
    "bad=''",
    "while IFS=' ' read -r n s h; do",
    '  [ -n "$n" ] || break',
    '  f="$D/$n"',
    '  if [ -e "$f" ]; then',
    '    head -c "$s" >/dev/null',
    '    g=$(sha256sum <"$f" 2>/dev/null | cut -c1-64)',
    '    [ -z "$g" ] || [ "$g" = "$h" ] || bad="$bad $n"',
    "  else",
    '    t="$f.part.$$"; head -c "$s" >"$t" && chmod 0500 "$t" && mv -n "$t" "$f"; rm -f "$t"',
    "  fi",
    "done",
    `printf 'SCRIPTS\\t%s\\n' "$D"`,
    'if [ -n "$bad" ]; then printf "MUTATED\\t%s\\n" $bad; exit 91; fi',
    then ? `exec bash "$D/${hashedScript(then.script).hashed}" "$@"` : "exit 0",
  ].join("\n");
  const cmd = `bash -c ${shq(installer)} rgt-install ${(then?.args ?? []).map(shq).join(" ")}`;
  const res = await remote.exec(host, cmd, {
    stdin: bundle(scripts.map((s) => ({ path: s.hashed, data: s.body })), true),
    timeoutMs,
  });
  const rows = tsv(res.stdout);
  const dir = rows.find((r) => r[0] === "SCRIPTS")?.[1] ?? `~/${SCRIPTS_REL}`;
  const mutated = rows.filter((r) => r[0] === "MUTATED").map((r) => r[1]);
  if (res.exitCode === 91 || mutated.length) {
    refuse(
      "LIVE_SCRIPT_MUTATION",
      `on ${host}, ${mutated.join(", ")} in ${dir} no longer matches the content its name was hashed from; something edited a script a run may be reading, and it will not be overwritten`,
      `Find out what changed it. If no run uses it, delete that one file on the box by hand and launch again.`,
    );
  }
  const paths: Record<string, string> = {};
  for (const s of scripts) paths[s.name] = `${dir}/${s.hashed}`;
  return { scriptsDir: dir, paths, res };
}

export function tsv(out: string): string[][] {
  return out.split("\n").filter((l) => l.length > 0).map((l) => l.split("\t"));
}

function num(s: string | undefined): number | undefined {
  if (s === undefined || s === "") return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

/** exec failures that mean "could not ask", not "the answer is bad" */
export function isConnectionError(e: unknown): boolean {
  return e instanceof RefusalError && ["UNREACHABLE", "TIMEOUT", "AUTH_FAILED", "HOST_KEY_UNKNOWN", "HOST_KEY_CHANGED"].includes(e.refusal.code);
}

// ------------------------------------------------------------------------------------------------
// launch

export interface PrepFacts {
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

export interface Lane { host: string; id: string; gpus: number[]; cells: string[] }

/**
 * GPU lanes of one host: the GPUs not holding another process's memory and not used by a live lane of
 * this run, cut into groups of `per` GPUs. A host without GPUs gets one CPU lane.
 */
export function lanesFor(f: Pick<PrepFacts, "host" | "gpus" | "gpu_apps" | "lanes">, per: number, idPrefix: string): { lanes: Lane[]; busy: number[] } {
  if (f.gpus.length === 0 || per === 0) return { lanes: [{ host: f.host, id: `${idPrefix}-0`, gpus: [], cells: [] }], busy: [] };
  const liveGpus = new Set(f.lanes.filter((l) => l.alive).flatMap((l) => l.gpus));
  const appUuids = new Set(f.gpu_apps.map((a) => a.uuid));
  const busy: number[] = [];
  const free: number[] = [];
  for (const g of [...f.gpus].sort((a, b) => a.index - b.index)) {
    if (liveGpus.has(g.index)) continue;
    if (appUuids.has(g.uuid) || g.used_mib >= BUSY_GPU_MIB) busy.push(g.index);
    else free.push(g.index);
  }
  const lanes: Lane[] = [];
  for (let i = 0; i + per <= free.length; i += per) lanes.push({ host: f.host, id: `${idPrefix}-${lanes.length}`, gpus: free.slice(i, i + per), cells: [] });
  return { lanes, busy };
}

/** Spread cells over lanes: each cell to the least-loaded lane it may use (pinned cells stay on their host). */
export function assignCells(cells: { name: string; pinnedHost?: string }[], lanes: Lane[]): { placed: Map<string, Lane>; unplaced: string[] } {
  // interleave hosts so consecutive cells land on different boxes
  const byHost = new Map<string, Lane[]>();
  for (const l of lanes) byHost.set(l.host, [...(byHost.get(l.host) ?? []), l]);
  const order: Lane[] = [];
  for (let i = 0; order.length < lanes.length; i++) for (const ls of byHost.values()) if (ls[i]) order.push(ls[i]);
  const placed = new Map<string, Lane>();
  const unplaced: string[] = [];
  for (const c of cells) {
    const pool = c.pinnedHost ? order.filter((l) => l.host === c.pinnedHost) : order;
    if (pool.length === 0) { unplaced.push(c.name); continue; }
    let best = pool[0];
    for (const l of pool) if (l.cells.length < best.cells.length) best = l;
    best.cells.push(c.name);
    placed.set(c.name, best);
  }
  return { placed, unplaced };
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

async function settle<T>(hosts: string[], fn: (h: string) => Promise<T>): Promise<Map<string, T | Error>> {
  const out = new Map<string, T | Error>();
  await Promise.all(hosts.map(async (h) => {
    try { out.set(h, await fn(h)); } catch (e) { out.set(h, e instanceof Error ? e : new Error(String(e))); }
  }));
  return out;
}

export async function sshLaunch(mode: "tmux" | "nohup", ctx: BackendContext, req: LaunchRequest): Promise<LaunchOutcome> {
  const warnings: Warning[] = [];
  const { durable, data } = dirsOf(req);
  const existing = req.existing;
  const prior = new Map<string, RunCell>((existing?.cells ?? []).map((c) => [c.name, c]));
  const hosts = [...new Set([...req.hosts, ...req.cells.map((c) => prior.get(c.name)?.host).filter((h): h is string => !!h)])];
  const checkPaths = [...new Set(req.cells.flatMap((c) => scriptPathsIn(c.command)))];
  const SCRIPTS = ["run_one.sh", "run_queue.sh", "launch_prep.sh", "launch_start.sh", "run_status.sh", "stop_run.sh"];

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
  const startHosts = [...facts.values()].filter((f) => allLanes.some((l) => l.host === f.host && l.cells.length));
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
      ...(p?.hf_home ? { HF_HOME: p.hf_home } : {}),
    };
    const files: { path: string; data: string }[] = [
      { path: "run.env0", data: env0(runEnv) },
      { path: "expect", data: req.expect.map((e) => `${e}\n`).join("") },
    ];
    for (const l of lanes) {
      for (const name of l.cells) {
        const spec = req.cells.find((c) => c.name === name)!;
        const out = `${outRoot(f)}/${name}`;
        outputDirOf.set(name, out);
        const cenv = { ...spec.env, RGT_CELL: name, RGT_OUTPUT_DIR: out, CUDA_VISIBLE_DEVICES: l.gpus.join(",") };
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
    }
    if (res.exitCode !== 0 && !rows.some((r) => r[0] === "STARTED")) throw new RefusalError("INTERNAL", `launch_start on ${h} exited ${res.exitCode}: ${(res.stderr || res.stdout).slice(-300)}`, "Check the box (probe_env), then launch again; done cells are kept.");
  });
  for (const [h, r] of results) {
    if (r instanceof Error) {
      if (!isConnectionError(r) && !(r instanceof RefusalError)) throw r;
      warnings.push(warning("START_FAILED", "warn", `${h}: ${r.message.slice(0, 200)}`));
    }
  }

  // the record: earlier cells keep their place unless they moved
  const now = new Date().toISOString();
  const cellMap = new Map<string, RunCell>(prior);
  for (const c of req.cells) {
    const lane = placed.get(c.name);
    if (lane && started.includes(c.name)) {
      cellMap.set(c.name, { name: c.name, host: lane.host, gpu_indices: lane.gpus, output_dir: outputDirOf.get(c.name)!, spec_sha: specSha(c) });
    } else if (!cellMap.has(c.name) && lane) {
      cellMap.set(c.name, { name: c.name, host: lane.host, gpu_indices: lane.gpus, output_dir: `${outRoot(facts.get(lane.host)!)}/${c.name}`, spec_sha: specSha(c) });
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
  };
}

// ------------------------------------------------------------------------------------------------
// status

export interface BoxCellRow {
  name: string; state: string; exit_code?: number; alive: boolean; log_bytes: number; log_mtime: number; beat_mtime: number;
  hb_mtime: number; started_at?: number; ended_at?: number; signal: string; reason: string; cause: string; oom_before?: number; pid?: number;
    oom_now?: number; oom_file?: string;
  /** the cell's runner (run_one.sh) is alive; undefined when the box recorded no runner pid (older runs) */
  runner_alive?: boolean;
  tail: string[]; new_text?: string; new_from?: number; missing?: boolean;
}
export interface BoxStatus {
  host: string; now: number; uptime_s: number; boot: number; nostate: boolean;
  cells: Map<string, BoxCellRow>;
  lanes: { id: string; alive: boolean; signal: string; cells: string[]; ended: boolean }[];
  gpus: GpuStatus[]; disks: DiskStatus[]; dmesg: string[];
}

export function parseStatus(host: string, stdout: string): BoxStatus {
  const b: BoxStatus = { host, now: 0, uptime_s: 0, boot: 0, nostate: false, cells: new Map(), lanes: [], gpus: [], disks: [], dmesg: [] };
  for (const r of tsv(stdout)) {
    switch (r[0]) {
      case "NOW": b.now = num(r[1]) ?? 0; b.uptime_s = num(r[2]) ?? 0; b.boot = num(r[3]) ?? 0; break;
      case "NOSTATE": b.nostate = true; break;
      case "CELL":
        if (r[2] === "missing") { b.cells.set(r[1], { name: r[1], state: "missing", missing: true, alive: false, log_bytes: -1, log_mtime: 0, beat_mtime: 0, hb_mtime: 0, signal: "", reason: "", cause: "", tail: [] }); break; }
        b.cells.set(r[1], {
          name: r[1], state: r[2] || "pending", exit_code: num(r[3]), alive: r[4] === "1", log_bytes: num(r[5]) ?? -1,
          log_mtime: num(r[6]) ?? 0, beat_mtime: num(r[7]) ?? 0, hb_mtime: num(r[8]) ?? 0, started_at: num(r[9]), ended_at: num(r[10]),
          signal: r[11] ?? "", reason: r[12] ?? "", cause: r[13] ?? "", oom_before: num(r[14]), pid: num(r[15]), oom_now: num(r[16]), oom_file: r[17] || undefined,
          runner_alive: r[18] === "1" ? true : r[18] === "0" ? false : undefined, tail: [],
        });
        break;
      case "TAIL": b.cells.get(r[1])?.tail.push(r.slice(2).join(" ")); break;
      case "NEW": {
        const c = b.cells.get(r[1]);
        if (c) { c.new_from = num(r[2]); c.new_text = Buffer.from(r[3] ?? "", "base64").toString("utf8"); }
        break;
      }
      case "LANE": b.lanes.push({ id: r[1], alive: r[2] === "1", signal: r[3] ?? "", cells: (r[4] ?? "").split(",").filter(Boolean), ended: r[5] === "ended" }); break;
      case "GPU": b.gpus.push({ host, index: Number(r[1]), memory_used_mib: num(r[2]), memory_total_mib: num(r[3]), utilization_pct: num(r[4]) }); break;
      case "DISK": b.disks.push({ host, mount: r[1], size_bytes: num(r[2]), used_pct: num(r[3]), inodes_used_pct: num(r[4]) }); break;
      case "DMESG": b.dmesg.push(r.slice(1).join(" ")); break;
    }
  }
  return b;
}

const STEP_RES = [
  /\bstep['"]?\s*[=:]?\s*(\d+)\s*(?:\/|of)\s*(\d+)/i,
  /\b(?:global_step|step|iter(?:ation)?)['"]?\s*[=:]?\s*(\d+)/i,
];
const EPOCH_RE = /\bepoch['"]?\s*[=:]?\s*(\d+)(?:\s*(?:\/|of)\s*(\d+))?/i;
const PCT_RE = /(\d{1,3})%\|/;

/** The last step/epoch a training log mentions (tqdm, HF Trainer, Lightning and plain prints). */
export function parseProgress(lines: string[]): CellStatus["progress"] | undefined {
  const p: NonNullable<CellStatus["progress"]> = {};
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i];
    if (l.startsWith("[rgt]")) continue;
    if (p.step === undefined) {
      const m = STEP_RES[0].exec(l);
      if (m) { p.step = Number(m[1]); p.total_steps = Number(m[2]); }
      else { const m2 = STEP_RES[1].exec(l); if (m2) p.step = Number(m2[1]); }
    }
    if (p.epoch === undefined) { const m = EPOCH_RE.exec(l); if (m) { p.epoch = Number(m[1]); if (m[2]) p.total_epochs = Number(m[2]); } }
    if (p.pct === undefined) { const m = PCT_RE.exec(l); if (m) p.pct = Number(m[1]); }
    if (p.step !== undefined && p.epoch !== undefined) break;
  }
  if (p.pct === undefined && p.step !== undefined && p.total_steps) p.pct = Math.min(100, Math.round((100 * p.step) / p.total_steps));
  return Object.keys(p).length ? p : undefined;
}

const SIGNALS: Record<number, string> = { 1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 15: "SIGTERM" };

/** "exit 137 (128+9: SIGKILL)": a shell reports death by signal N as exit 128+N; say which signal. */
export function exitText(code: number | null | undefined): string {
  if (code == null) return "no exit code";
  const sig = code > 128 && code < 160 ? SIGNALS[code - 128] ?? `signal ${code - 128}` : "";
  return sig ? `exit ${code} (128+${code - 128}: ${sig})` : `exit ${code}`;
}

function sigName(sig: string): string {
  return sig.split(" ")[0] ?? "";
}

/** Decide a cell's state from its on-box record. Pure: unit-tested against hand-made rows. */
export function classifyCell(b: BoxStatus, row: BoxCellRow | undefined, cell: RunCell, opts: StatusOptions): CellStatus {
  const base: CellStatus = { name: cell.name, host: cell.host, state: "unknown", log_age_s: -1, gpu_indices: cell.gpu_indices };
  if (!row || row.missing || b.nostate) {
    const why = b.nostate ? "the run's state dir is gone from the box" : "no record of this cell on the box";
    return { ...base, state: "vanished", reason: why, cause: { cause: "unknown", evidence: `${why} (box re-created or disk wiped?)` } };
  }
  const lastChange = Math.max(row.log_mtime, row.beat_mtime, row.started_at ?? 0);
  const out: CellStatus = { ...base, log_age_s: row.log_bytes >= 0 && lastChange ? Math.max(0, b.now - lastChange) : -1 };
  if (row.exit_code !== undefined) out.exit_code = row.exit_code;
  if (row.log_bytes >= 0) out.log_bytes = row.log_bytes;
  const prog = parseProgress(row.tail);
  if (prog) out.progress = prog;
  if (row.tail.length && opts.tail_lines > 0) out.tail = row.tail.slice(-opts.tail_lines).map((l) => (l.length > 160 ? `${l.slice(0, 160)}…` : l));
  if (row.new_text !== undefined) out.new_text = row.new_text;
  if (row.reason) out.reason = row.reason;
  // a relaunch gives the cell a new lane beside the dead one of the earlier attempt: the live lane speaks
  // for it, else the newest (lane ids sort by creation time)
  const holding = b.lanes.filter((l) => l.cells.includes(cell.name));
  const lane = holding.find((l) => l.alive) ?? holding[holding.length - 1];
  const oomGrew = row.oom_before !== undefined && row.oom_now !== undefined && row.oom_now > row.oom_before;
  const dmesgHit = row.pid ? b.dmesg.find((d) => new RegExp(`process ${row.pid}\\b`).test(d)) : undefined;
  const oomEvidence = () => [oomGrew ? `oom_kill in ${row.oom_file ?? "the cell's memory cgroup"} went ${row.oom_before} -> ${row.oom_now}` : "", dmesgHit ? `dmesg: ${dmesgHit}` : ""].filter(Boolean).join("; ");

  // the runner writes exit_code a moment before state: a finished process with an exit code is not "vanished"
  let st = row.state;
  if (st === "running" && !row.alive && row.exit_code !== undefined) {
    if (row.exit_code === 0) {
      out.state = "running";
      out.reason = "command exited 0; checking the roster and copying to the durable dir";
      return out;
    }
    st = "failed";
  }
  switch (st) {
    case "done":
      out.state = "done";
      delete out.tail;
      return out;
    case "stopped":
      out.state = "stopped";
      return out;
    case "failed": {
      out.state = "failed";
      if (row.cause === "oom" || oomGrew || dmesgHit) out.cause = { cause: "oom", evidence: `${row.reason || `exit ${row.exit_code}`}; ${oomEvidence() || "recorded by the runner"}` };
      else if (row.cause === "killed" || (row.exit_code ?? 0) > 128) {
        out.cause = { cause: "killed", evidence: `${row.reason || exitText(row.exit_code)}; no OOM kill counted (cgroup oom_kill ${row.oom_now ?? "n/a"}${b.dmesg.length ? "" : ", dmesg silent or unreadable"})` };
      }
      return out;
    }
    case "running": {
      if (row.alive) {
        const quiet = b.now - lastChange;
        if (quiet > opts.stall_after_s) {
          out.state = "stalled";
          out.reason = `process ${row.pid} alive but its log has not grown for ${quiet}s (threshold ${opts.stall_after_s}s)`;
        } else out.state = "running";
        return out;
      }
      if (row.runner_alive) {
        // the command has ended and its runner is alive, about to write the exit code: not a vanish
        out.state = "running";
        out.reason = `process ${row.pid ?? "?"} has ended; its runner is recording the outcome`;
        return out;
      }
      out.state = "vanished";
      out.cause = vanishCause(b, row, lane, oomGrew || !!dmesgHit, oomEvidence());
      out.reason = `process ${row.pid ?? "?"} is gone and the runner wrote no exit code`;
      return out;
    }
    default: {
      // pending: fine while its lane lives; otherwise nothing will ever start it
      if (lane?.alive) { out.state = "pending"; return out; }
      out.state = "vanished";
      out.reason = lane ? `its lane ${lane.id} is gone before the cell started` : "no lane holds this cell";
      out.cause = vanishCause(b, { ...row, signal: lane?.signal || row.signal }, lane, false, "");
      return out;
    }
  }
}

function vanishCause(b: BoxStatus, row: BoxCellRow, lane: BoxStatus["lanes"][number] | undefined, oom: boolean, oomEv: string): { cause: VanishCause; evidence: string } {
  const since = row.started_at ?? 0;
  if (b.boot && since && b.boot > since) {
    return { cause: "reboot", evidence: `box booted at ${iso(b.boot)} (uptime ${b.uptime_s}s), after the cell started at ${iso(since)}` };
  }
  if (oom) return { cause: "oom", evidence: oomEv };
  const sig = sigName(row.signal) || sigName(lane?.signal ?? "");
  if (sig === "HUP") return { cause: "hangup", evidence: `the runner got SIGHUP at ${iso(Number((row.signal || lane?.signal || "").split(" ")[1]))} (tmux server or its terminal went away) and passed it to the cell` };
  if (sig === "TERM" || sig === "INT") return { cause: "killed", evidence: `the runner got SIG${sig} at ${iso(Number((row.signal || lane?.signal || "").split(" ")[1]))} from outside rgt` };
  return { cause: "unknown", evidence: `pid ${row.pid ?? "?"} gone, no exit code, no signal recorded, no OOM kill counted, box up ${b.uptime_s}s (runner killed with SIGKILL?)` };
}

function iso(epoch: number): string {
  return Number.isFinite(epoch) && epoch > 0 ? new Date(epoch * 1000).toISOString().replace(/\.\d+Z$/, "Z") : "?";
}

/**
 * Run one of our scripts on a box: the copy installed at launch under its content-hashed name when it is
 * there (a file read is far cheaper for bash than a script streamed over stdin), else streamed.
 */
export async function runInstalled(remote: Remote, host: string, scriptsDir: string | undefined, name: string, args: string[],
    timeoutMs: number): Promise<ExecResult> {
  if (scriptsDir) {
    const f = `${scriptsDir}/${hashedScript(name).hashed}`;
    // sourced by the wrapper's own bash (ours, started --norc) rather than run by yet another bash
    const res = await remote.exec(host, `f=${shq(f)}; [ -r "$f" ] || exit 197; . "$f" ${args.map(shq).join(" ")}`, { timeoutMs });
    if (res.exitCode !== 197) return res;
  }
  return remote.runScript(host, name, args, { timeoutMs });
}

/** One status round trip for one host, re-asked once when the connection drops. */
export async function statusOfHost(remote: Remote, host: string, stateDir: string, cells: string[], opts: StatusOptions,
    scriptsDir?: string): Promise<BoxStatus> {
  const args = [stateDir, "40", String(opts.log_offset ?? -1), ...cells];
  let lastErr: unknown;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const res = await runInstalled(remote, host, scriptsDir, "run_status.sh", args, STATUS_TIMEOUT_MS);
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
  for (const [h, r] of res) {
    if (r instanceof Error) {
      if (!isConnectionError(r)) throw r;
      unreachable.push(h);
      warnings.push(warning("HOST_UNREACHABLE", "warn", `${h} did not answer twice (${r.message.slice(0, 160)}); its cells are unknown, not dead`));
      for (const c of byHost.get(h)!) cells.push({ name: c.name, host: h, state: "unknown", log_age_s: -1, reason: "host did not answer; re-check later" });
      continue;
    }
    for (const c of byHost.get(h)!) cells.push(classifyCell(r, r.cells.get(c.name), c, opts));
    gpus.push(...r.gpus);
    disks.push(...r.disks);
  }
  const order = new Map(run.cells.map((c, i) => [c.name, i]));
  cells.sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
  return { cells, gpus, disks, unreachable, warnings };
}

// ------------------------------------------------------------------------------------------------
// stop

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

export function sshBackend(mode: "tmux" | "nohup"): Backend {
  return {
    name: mode,
    launch: (ctx, req) => sshLaunch(mode, ctx, req),
    status: (ctx, run, opts) => sshStatus(ctx, run, opts),
    stop: (ctx, run, cells) => sshStop(ctx, run, cells),
  };
}
