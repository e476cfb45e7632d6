/**
 * The result hook behind IDLE_METER: every tool result that names a host updates that host's meter
 * clock, and a host with no live work for longer than RGT_IDLE_METER_S (default 1800 s) gets a warning
 * with the cost so far; the profile's danger clocks ride along once per host.
 * Installed by createServer via installMeterHook().
 */
import { addResultHook, type ResultHook } from "../server/tool.js";
import { getHost } from "../ledger/hosts.js";
import { getRun } from "../ledger/runs.js";
import { idleWarnings, markClocksShown, meterView, touchHosts } from "../ledger/meter.js";
import type { Ledger } from "../ledger/store.js";
import { hostInfo } from "../ledger/hostinfo.js";
import { clearParkReady, parkReadyHosts } from "../ledger/parks.js";
import { parkReadyWarning } from "../backends/park.js";

const SKIP_CODES = new Set(["BAD_INPUT"]);

function hostsOf(args: Record<string, unknown>, ledger: Ledger): string[] {
  const out = new Set<string>();
  if (typeof args.host === "string" && args.host) out.add(args.host);
  if (Array.isArray(args.hosts)) for (const h of args.hosts) if (typeof h === "string" && h) out.add(h);
  if (out.size === 0 && typeof args.run_id === "string") {
    try { for (const h of getRun(ledger, args.run_id)?.hosts ?? []) out.add(h); } catch { /* unknown run */ }
  }
  return [...out].slice(0, 16);
}

export const meterHook: ResultHook = async (tool, args, result, ctx) => {
  if (result.refused && SKIP_CODES.has(result.refused.code)) return;
  const hosts = hostsOf(args, ctx.ledger);
  if (hosts.length === 0) return;
  const state = (result as { state?: unknown }).state;
  const activity = (tool === "launch_queue" && result.ok) || (tool === "run_status" && (state === "running" || state === "stalled"));
  const seen = hosts.map((host) => {
    let firstSeen: number | undefined;
    try { const h = getHost(ctx.ledger, host); if (h?.first_seen) firstSeen = Date.parse(h.first_seen) || undefined; } catch { /* none */ }
    return { host, firstSeen };
  });
  const meters = await touchHosts(ctx.ledger, seen, { activity });
  // a box that is safe to park but that nobody parked (PARK_READY) carries its idle cost until work or a
  // teardown takes it over
  const ready = parkReadyHosts(ctx.ledger);
  for (const host of hosts) {
    if (!ready[host]) continue;
    if ((tool === "launch_queue" || tool === "request_teardown") && result.ok) { await clearParkReady(ctx.ledger, host); continue; }
    if (!Array.isArray(result.warnings)) result.warnings = [];
    if (result.warnings.some((w) => (w as { code?: string }).code === "PARK_READY")) continue;
    const m = meters[host];
    const cost = m ? meterView(host, m, hostInfo(ctx.ledger, host).registry).cost_text : "unknown";
    result.warnings.push(parkReadyWarning(host, ready[host].verb, cost));
  }
  if (tool === "request_teardown") return; // it reports the meter itself
  for (const host of hosts) {
    const m = meters[host];
    const info = hostInfo(ctx.ledger, host);
    const view = meterView(host, m, info.registry);
    const clocks = (info.profile?.danger_clocks ?? []).map((c) => ({ id: c.id, message: c.message, hours: c.hours }));
    const { warnings, shownNow } = idleWarnings(view, clocks, m.clocks_shown ?? []);
    if (warnings.length === 0) continue;
    if (!Array.isArray(result.warnings)) result.warnings = [];
    result.warnings.push(...warnings);
    await markClocksShown(ctx.ledger, host, shownNow);
  }
};

export function installMeterHook(): void {
  addResultHook(meterHook);
}
