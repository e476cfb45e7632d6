/**
 * Meter clocks: when we first saw a host, when it last had live work, when (and how) its meter was
 * stopped. A rented box bills from the moment it exists whether or not anything runs, so every tool
 * result for a host that has been idle past a threshold carries IDLE_METER with the cost so far
 * (price from the user's registry), and the profile's danger clocks are surfaced once.
 */
import { warning, type Warning } from "../common/result.js";
import type { Ledger } from "./store.js";
import { setting } from "../common/config.js";

const DOC = "meter";

export interface HostMeter {
  first_seen: number;
  /** last time work was live on the host (a launch, or a status poll that saw a running cell) */
  last_activity?: number;
  teardown?: { at: number; action: string; status: string; outcome: string };
  /** danger clock ids already shown for this host */
  clocks_shown?: string[];
}
interface MeterDoc { hosts: Record<string, HostMeter> }

export function idleThresholdMs(env: NodeJS.ProcessEnv = process.env): number {
  return setting("RGT_IDLE_METER_S", env) * 1000;
}

export function readMeters(ledger: Ledger): Record<string, HostMeter> {
  return ledger.read<MeterDoc>(DOC, { hosts: {} }).hosts;
}

/** Note that a host was seen (and, with `activity`, that it had live work). Returns the updated state. */
export async function touchHost(ledger: Ledger, host: string, opts: { activity?: boolean; now?: number; firstSeen?: number } = {}): Promise<HostMeter> {
  return (await touchHosts(ledger, [{ host, firstSeen: opts.firstSeen }], opts))[host];
}

/** touchHost for many hosts in one locked update of the meter document (a 16-host call writes it once). */
export async function touchHosts(ledger: Ledger, hosts: { host: string; firstSeen?: number }[],
    opts: { activity?: boolean; now?: number } = {}): Promise<Record<string, HostMeter>> {
  const now = opts.now ?? Date.now();
  const out: Record<string, HostMeter> = {};
  await ledger.update<MeterDoc>(DOC, { hosts: {} }, (doc) => {
    const next = { ...doc.hosts };
    for (const { host, firstSeen } of hosts) {
      const m: HostMeter = { ...(doc.hosts[host] ?? { first_seen: Math.min(now, firstSeen ?? now) }) };
      if (opts.activity) {
        m.last_activity = now;
        // new work after a teardown means a new meter period
        if (m.teardown && m.teardown.at < now && m.teardown.status === "done") { m.first_seen = now; delete m.teardown; m.clocks_shown = []; }
      }
      next[host] = m;
      out[host] = m;
    }
    return { hosts: next };
  });
  return out;
}

export async function markClocksShown(ledger: Ledger, host: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await ledger.update<MeterDoc>(DOC, { hosts: {} }, (doc) => {
    const cur = doc.hosts[host];
    if (!cur) return doc;
    const shown = [...new Set([...(cur.clocks_shown ?? []), ...ids])];
    return { hosts: { ...doc.hosts, [host]: { ...cur, clocks_shown: shown } } };
  });
}

export async function recordTeardown(ledger: Ledger, host: string, t: { action: string; status: string; outcome: string; now?: number }): Promise<void> {
  const now = t.now ?? Date.now();
  await ledger.update<MeterDoc>(DOC, { hosts: {} }, (doc) => {
    const cur = doc.hosts[host] ?? { first_seen: now };
    return { hosts: { ...doc.hosts, [host]: { ...cur, teardown: { at: now, action: t.action, status: t.status, outcome: t.outcome.slice(0, 300) } } } };
  });
}

export function formatDuration(ms: number): string {
  const m = Math.max(0, Math.floor(ms / 60_000));
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

export interface MeterView {
  host: string;
  first_seen: string;
  running_for: string;
  idle_for?: string;
  idle: boolean;
  stopped: boolean;
  price_per_hour?: number;
  currency: string;
  /** cost since first seen (or until teardown), rounded to cents; undefined without a price */
  cost_so_far?: number;
  cost_text: string;
}

export function meterView(host: string, m: HostMeter, price: { price_per_hour?: number; currency?: string } | undefined, now = Date.now(),
    thresholdMs = idleThresholdMs()): MeterView {
  const stopped = m.teardown?.status === "done";
  const end = stopped ? m.teardown!.at : now;
  const since = m.last_activity ?? m.first_seen;
  const idleMs = Math.max(0, now - since);
  const currency = price?.currency ?? "USD";
  const cost = price?.price_per_hour !== undefined ? Math.round(price.price_per_hour * ((end - m.first_seen) / 3_600_000) * 100) / 100 : undefined;
  return {
    host,
    first_seen: new Date(m.first_seen).toISOString(),
    running_for: formatDuration(end - m.first_seen),
    idle_for: stopped ? undefined : formatDuration(idleMs),
    idle: !stopped && idleMs >= thresholdMs,
    stopped,
    price_per_hour: price?.price_per_hour,
    currency,
    cost_so_far: cost,
    cost_text: cost !== undefined ? `${cost.toFixed(2)} ${currency} (at ${price!.price_per_hour}/h)` : "unknown (add price_per_hour for this host to registry.yaml in RGT_HOME)",
  };
}

export interface DangerClock { id: string; message: string; hours?: number }

/** The IDLE_METER warning (and, once per host, its danger clocks) for a result. */
export function idleWarnings(v: MeterView, clocks: DangerClock[], shown: string[]): { warnings: Warning[]; shownNow: string[] } {
  const warnings: Warning[] = [];
  const shownNow: string[] = [];
  if (!v.idle) return { warnings, shownNow };
  warnings.push(warning("IDLE_METER", "warn",
    `${v.host} has had no live run for ${v.idle_for}; its meter has run ${v.running_for}, cost so far ${v.cost_text}. Pull results (pull_verify) and request_teardown, or put it to work.`));
  for (const c of clocks) {
    if (shown.includes(c.id)) continue;
    warnings.push(warning(c.id, "danger", c.message.slice(0, 300)));
    shownNow.push(c.id);
  }
  return { warnings, shownNow };
}
