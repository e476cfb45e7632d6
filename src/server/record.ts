/**
 * The pipeline's record stage (in place of the old result hook): every result that names a host moves
 * that host's meter clock, and a host with no live work for longer than RGT_IDLE_METER_S gets an
 * IDLE_METER warning with the cost so far; the profile's danger clocks ride along once per host.
 * Also gathers, from the ledger, the facts the pure input guard needs (protected paths, own job ids).
 */
import { getHost } from "../ledger/hosts.js";
import { getRun } from "../ledger/runs.js";
import { idleWarnings, markClocksShown, meterView, touchHosts } from "../ledger/meter.js";
import type { Ledger } from "../ledger/store.js";
import { hostInfo, ownSlurmJobIds, protectedPathsFor, runsOnHost } from "../ledger/hostinfo.js";
import type { GuardInputContext } from "../guard/inputs.js";
import { clearParkReady, parkReadyHosts, parkReadyWarning } from "../ledger/parks.js";
import { pushedFileLookup } from "../transfer/provenance.js";
import type { HandlerResult, ToolContext, ToolDef } from "./tool.js";

function named(args: Record<string, unknown>): string[] {
  const out = new Set<string>();
  if (typeof args.host === "string" && args.host) out.add(args.host);
  if (Array.isArray(args.hosts)) for (const h of args.hosts) if (typeof h === "string" && h) out.add(h);
  return [...out].slice(0, 16);
}

function hostsOf(args: Record<string, unknown>, ledger: Ledger): string[] {
  const out = named(args);
  if (out.length === 0 && typeof args.run_id === "string") {
    try { out.push(...(getRun(ledger, args.run_id)?.hosts ?? []).slice(0, 16)); } catch { /* unknown run */ }
  }
  return out;
}

/** Ledger facts for guardInputs: the first named host's protected paths and our own Slurm job ids. */
export function guardContextFor(ledger: Ledger, args: Record<string, unknown>): GuardInputContext | undefined {
  const host = named(args)[0];
  if (!host) return undefined;
  try {
    const runs = runsOnHost(ledger, host);
    const pushedFile = pushedFileLookup(ledger, host);
    return { protectedPaths: protectedPathsFor(hostInfo(ledger, host), runs), ownJobIds: ownSlurmJobIds(runs), ...(pushedFile ? { pushedFile } : {}) };
  } catch {
    return undefined;
  }
}

export async function recordMeter(def: ToolDef, args: Record<string, unknown>, result: HandlerResult, ctx: ToolContext): Promise<void> {
  const hosts = hostsOf(args, ctx.ledger);
  if (hosts.length === 0) return;
  const activity = def.meter?.activity?.(result) ?? false;
  const seen = hosts.map((host) => {
    let firstSeen: number | undefined;
    try { const h = getHost(ctx.ledger, host); if (h?.first_seen) firstSeen = Date.parse(h.first_seen) || undefined; } catch { /* none */ }
    return { host, firstSeen };
  });
  const meters = await touchHosts(ctx.ledger, seen, { activity });
  // a box that is safe to park but that nobody parked (PARK_READY) carries its idle cost in every result
  // until work or a teardown takes it over
  const ready = parkReadyHosts(ctx.ledger);
  for (const host of hosts) {
    if (!ready[host]) continue;
    if ((def.name === "launch_queue" || def.name === "request_teardown") && result.ok) { await clearParkReady(ctx.ledger, host); continue; }
    if (!Array.isArray(result.warnings)) result.warnings = [];
    if (result.warnings.some((w) => w.code === "PARK_READY")) continue;
    result.warnings.push(parkReadyWarning(host, ready[host].verb, meterView(host, meters[host], hostInfo(ctx.ledger, host).registry).cost_text));
  }
  if (def.meter?.reportsItself) return;
  for (const host of hosts) {
    const m = meters[host];
    const info = hostInfo(ctx.ledger, host);
    if (info.profile?.kind === "workstation") continue; // the user's own machine (profiles/local.md): no meter
    const view = meterView(host, m, info.registry);
    const clocks = (info.profile?.danger_clocks ?? []).map((c) => ({ id: c.id, message: c.message, hours: c.hours }));
    const { warnings, shownNow } = idleWarnings(view, clocks, m.clocks_shown ?? []);
    if (warnings.length === 0) continue;
    if (!Array.isArray(result.warnings)) result.warnings = [];
    result.warnings.push(...warnings);
    await markClocksShown(ctx.ledger, host, shownNow);
  }
}
