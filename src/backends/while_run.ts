/**
 * What the box does on its own between launch and pull: the disk gate before each cell, the run's time
 * cap, the park once the sweep is safe, and the China network for the cells. Launch inputs and the profile
 * become the env files the on-box scripts read (run_one.sh, run_watch.sh, china_mirrors.sh); what those
 * scripts recorded comes back from run_status.sh as GATE and WATCH rows and is read here.
 *
 * On-box files (beside the layout in types.ts):
 *   run.env0 / cells/<c>/env0   RGT_MIN_FREE_BYTES, RGT_MIN_FREE_INODES (the cell's own win), RGT_ON_DISK_LOW,
 *                               RGT_DISK_WAIT_S, RGT_DEFAULT_FREE_* (the profile's), mirror variables, RGT_NO_PROXY_ADD
 *   cells/<c>/budget            "<bytes> <inodes> <source>" the gate used;  cells/<c>/blocked  the numbers it saw
 *   cells/<c>/out_size          "<bytes> <files> <epoch>" a done cell left (the default budget of the next)
 *   watch.env0                  RGT_MAX_S, RGT_PARK, RGT_PARK_TOKEN, RGT_PARK_VERB, RGT_PARK_CMD, RGT_PARK_MOUNTS …
 *   deadline, max_hours, stop_reason, watch.pid, park/{state,reason,at,roster.sha256,exit_code,log,used.<token>}
 */
import { setting } from "../common/config.js";
import type { Profile } from "../knowledge/schema.js";
import type { LaunchCellSpec } from "./types.js";

export const GB = 1e9;

export interface DiskGateInput { min_free_gb?: number; min_free_inodes?: number }
export interface WhileRunOptions extends DiskGateInput {
  on_disk_low?: "skip" | "wait";
  /** how long a `wait` cell re-checks before it is blocked (s) */
  disk_wait_s?: number;
  max_hours?: number;
  /** an approved (or approval-free PARK_READY) park, ready for the box */
  park?: ArmedPark;
}
export interface ArmedPark {
  /** one per approval: the box spends it before running the command */
  token: string;
  verb: string;
  /** the on-box command, "" = none documented (the box records PARK_READY) */
  command: string;
  mounts: { path: string; keeps: boolean }[];
}

function gateVars(g: DiskGateInput | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (g?.min_free_gb !== undefined) out.RGT_MIN_FREE_BYTES = String(Math.ceil(g.min_free_gb * GB));
  if (g?.min_free_inodes !== undefined) out.RGT_MIN_FREE_INODES = String(Math.ceil(g.min_free_inodes));
  return out;
}

/** Run-wide additions to run.env0: the gate's budget and policy, and the China network. */
export function runEnvAdditions(w: WhileRunOptions | undefined, p: Profile | undefined): Record<string, string> {
  const b = p?.disk_budget;
  return {
    ...gateVars(w),
    ...(w?.on_disk_low ? { RGT_ON_DISK_LOW: w.on_disk_low } : {}),
    ...(w?.disk_wait_s !== undefined ? { RGT_DISK_WAIT_S: String(w.disk_wait_s) } : {}),
    ...(b?.min_free_gb !== undefined ? { RGT_DEFAULT_FREE_BYTES: String(Math.ceil(b.min_free_gb * GB)) } : {}),
    ...(b?.min_free_inodes !== undefined ? { RGT_DEFAULT_FREE_INODES: String(b.min_free_inodes) } : {}),
    ...(mirrorEnv(p)?.env ?? {}),
  };
}

/** A cell's own budget (cells/<c>/env0, read after run.env0, so it wins). */
export function cellEnvAdditions(c: LaunchCellSpec & DiskGateInput): Record<string, string> {
  return gateVars(c);
}

/** The mirror variables every cell of a China profile gets, and the hosts the proxy must leave alone. */
export function mirrorEnv(p: Profile | undefined): { env: Record<string, string>; proxy_hook: string } | undefined {
  const m = p?.china_mirrors;
  if (!p?.china_mirror_needed || !m) return undefined;
  const env: Record<string, string> = {
    ...(m.hf_endpoint ? { HF_ENDPOINT: m.hf_endpoint } : {}),
    ...(m.pip_index_url ? { PIP_INDEX_URL: m.pip_index_url } : {}),
    ...(m.conda_channels.length ? { CONDA_CHANNELS: m.conda_channels.join(",") } : {}),
    ...m.env,
    ...(m.no_proxy.length ? { RGT_NO_PROXY_ADD: m.no_proxy.join(",") } : {}),
  };
  return { env, proxy_hook: p.proxy_hook };
}

/** What the launch result shows about the network: compact, with each cell's overrides named. */
export function networkView(p: Profile | undefined, cells: LaunchCellSpec[], setup: string[]): Record<string, unknown> | undefined {
  const m = mirrorEnv(p);
  if (!m) return undefined;
  const { RGT_NO_PROXY_ADD: noProxy, ...env } = m.env;
  const overridden: Record<string, string[]> = {};
  for (const c of cells) {
    const keys = Object.keys(c.env).filter((k) => k in m.env || k === "no_proxy" || k === "NO_PROXY");
    if (keys.length) overridden[c.name] = keys;
  }
  return {
    profile: p!.name,
    env,
    ...(m.proxy_hook ? { proxy_hook: m.proxy_hook } : {}),
    ...(noProxy ? { no_proxy_add: noProxy } : {}),
    ...(Object.keys(overridden).length ? { cell_overrides: Object.fromEntries(Object.entries(overridden).slice(0, 8)) } : {}),
    ...(setup.length ? { box_setup: setup.slice(0, 6) } : {}),
  };
}

/** Arguments of china_mirrors.sh for this profile (the box's own pip/conda/HF cache), or undefined. */
export function mirrorSetupArgs(p: Profile | undefined): string[] | undefined {
  const m = p?.china_mirrors;
  if (!p?.china_mirror_needed || !m) return undefined;
  return [m.pip_index_url ?? "", p.hf_home ?? "", ...m.conda_channels];
}

/** watch.env0 for run_watch.sh; always written, so a relaunch without a fresh approval disarms the park. */
export function watchEnv(w: WhileRunOptions | undefined, scripts: { watch: string; stop: string }): Record<string, string> {
  const park = w?.park;
  return {
    RGT_WATCH_SCRIPT: scripts.watch,
    RGT_STOP_SCRIPT: scripts.stop,
    RGT_MAX_HOURS: w?.max_hours !== undefined ? String(w.max_hours) : "",
    RGT_MAX_S: w?.max_hours !== undefined ? String(Math.max(1, Math.round(w.max_hours * 3600))) : "",
    RGT_PARK: park ? "1" : "0",
    RGT_PARK_TOKEN: park?.token ?? "",
    RGT_PARK_VERB: park?.verb ?? "",
    RGT_PARK_CMD: park?.command ?? "",
    RGT_PARK_MOUNTS: (park?.mounts ?? []).map((m) => `${m.keeps ? 1 : 0} ${m.path}`).join("\n"),
    RGT_WATCH_TICK_S: String(Math.max(1, Math.round(setting("RGT_WATCH_TICK_S")))),
  };
}

// ------------------------------------------------------------------------------------------------
// reading back

export interface GateRow { need_bytes?: number; need_inodes?: number; source: string; blocked?: BlockedNumbers }
export interface BlockedNumbers {
  code: "DISK_LOW"; dir: string; free_bytes?: number; need_bytes?: number; free_inodes?: number; need_inodes?: number;
  /** epoch until which the cell keeps re-checking (on_disk_low: "wait"); absent once it gave up */
  waiting_until?: number;
}
export interface WatchRow {
  deadline?: number; max_hours?: number; stop_reason?: string; park_armed: boolean; watcher_alive: boolean;
  park_state?: string; park_reason?: string; park_at?: number;
}

const n = (s: string | undefined) => (s === undefined || s === "" || s === "-" || !Number.isFinite(Number(s)) ? undefined : Number(s));

/** GATE <cell> "<bytes> <inodes> <source…>" "<free_b> <need_b> <free_i> <need_i> <until|-> <dir…>" */
export function parseGate(budget: string, blocked: string): GateRow {
  const [b, i, ...src] = budget.split(" ");
  const row: GateRow = { need_bytes: n(b), need_inodes: n(i), source: src.join(" ") || "none" };
  if (blocked) {
    const [fb, nb, fi, ni, until, ...dir] = blocked.split(" ");
    row.blocked = { code: "DISK_LOW", dir: dir.join(" "), free_bytes: n(fb), need_bytes: n(nb), free_inodes: n(fi), need_inodes: n(ni), ...(n(until) ? { waiting_until: n(until) } : {}) };
  }
  return row;
}

/** WATCH <deadline> <max_hours> <stop_reason> <park armed> <watcher alive> <park state> <park reason> <park at> */
export function parseWatch(r: string[]): WatchRow {
  return {
    deadline: n(r[1]), max_hours: n(r[2]), ...(r[3] ? { stop_reason: r[3] } : {}), park_armed: r[4] === "1", watcher_alive: r[5] === "1",
    ...(r[6] ? { park_state: r[6] } : {}), ...(r[7] ? { park_reason: r[7] } : {}), ...(n(r[8]) ? { park_at: n(r[8]) } : {}),
  };
}

/** The run-level view run_status shows: the cap, why the run stopped, the park, the disk budgets. */
export function whileRunView(watch: Map<string, WatchRow>, gates: { cell: string; gate: GateRow }[]): Record<string, unknown> | undefined {
  const budgets = new Map<string, { need_bytes?: number; need_inodes?: number; source: string; cells: number }>();
  for (const { gate } of gates) {
    const k = `${gate.need_bytes}|${gate.need_inodes}|${gate.source}`;
    const e = budgets.get(k) ?? { need_bytes: gate.need_bytes, need_inodes: gate.need_inodes, source: gate.source, cells: 0 };
    e.cells++;
    budgets.set(k, e);
  }
  const hosts = [...watch.entries()].map(([host, w]) => ({
    host,
    ...(w.max_hours !== undefined ? { max_hours: w.max_hours } : {}),
    ...(w.deadline ? { deadline: new Date(w.deadline * 1000).toISOString().replace(/\.\d+Z$/, "Z") } : {}),
    ...(w.stop_reason ? { stop_reason: w.stop_reason } : {}),
    park: w.park_state ?? (w.park_armed ? "armed" : "off"),
    ...(w.park_reason ? { park_reason: w.park_reason.slice(0, 240) } : {}),
  }));
  if (!budgets.size && !hosts.length) return undefined;
  return {
    ...(budgets.size ? { disk_budget: [...budgets.values()].slice(0, 4) } : {}),
    ...(hosts.length ? { hosts: hosts.slice(0, 8) } : {}),
  };
}

/** The launch result's extras: the network the cells get, and what the box will enforce on its own. */
export function launchExtras(req: { profile?: Profile; cells: LaunchCellSpec[]; while_run?: WhileRunOptions },
  mirrorSetup: string[]): { extra?: Record<string, unknown> } {
  const w = req.while_run;
  const net = networkView(req.profile, req.cells, mirrorSetup);
  const b = req.profile?.disk_budget;
  const gate = {
    min_free_gb: w?.min_free_gb ?? b?.min_free_gb ?? null,
    min_free_inodes: w?.min_free_inodes ?? b?.min_free_inodes ?? null,
    source: w?.min_free_gb !== undefined || w?.min_free_inodes !== undefined ? "launch" : b ? `profile ${req.profile!.name}` : "the last finished cell's outputs",
    on_disk_low: w?.on_disk_low ?? "skip",
    ...(req.cells.some((c) => c.min_free_gb !== undefined
      || c.min_free_inodes !== undefined) ? { per_cell: req.cells.filter((c) => c.min_free_gb !== undefined || c.min_free_inodes !== undefined).length } : {}),
  };
  const extra: Record<string, unknown> = {
    ...(net ? { network: net } : {}),
    disk_gate: gate,
    ...(w?.max_hours !== undefined ? { max_hours: w.max_hours } : {}),
  };
  return { extra };
}

/** The named keys of `o` that are set. */
export function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
