/**
 * Placement over hosts × GPUs: which GPUs of a box are free for this run (lanes), and which lane each
 * cell goes to. Pure: unit-tested against hand-made facts.
 */
import { BUSY_GPU_MIB } from "../knowledge/gpu-health.js";

/** What placement needs to know of one box (a subset of launch_prep.sh's facts). */
export interface HostGpuFacts {
  host: string;
  gpus: { index: number; uuid: string; used_mib: number; total_mib: number }[];
  gpu_apps: { uuid: string; pid: number }[];
  lanes: { id: string; alive: boolean; gpus: number[]; cells: string[] }[];
}

export interface Lane { host: string; id: string; gpus: number[]; cells: string[] }

/**
 * GPU lanes of one host: the GPUs not holding another process's memory and not used by a live lane of
 * this run, cut into groups of `per` GPUs. A host without GPUs gets one CPU lane.
 */
export function lanesFor(f: HostGpuFacts, per: number, idPrefix: string): { lanes: Lane[]; busy: number[] } {
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
