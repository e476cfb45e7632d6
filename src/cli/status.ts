/**
 * rgt status [--json] — what this machine's server knows, from the local ledger only (no ssh):
 * hosts with their meter (first seen, idle, cost so far, teardown, danger clocks), runs, pull
 * receipts and pending approvals.
 */
import { Ledger } from "../ledger/store.js";
import { listHosts } from "../ledger/hosts.js";
import { listRuns } from "../ledger/runs.js";
import { listReceipts } from "../ledger/receipts.js";
import { listApprovals } from "../ledger/approvals.js";
import { loadRegistry } from "../ledger/registry.js";
import { formatDuration, meterView, readMeters, type HostMeter } from "../ledger/meter.js";
import { hostInfo } from "../ledger/hostinfo.js";
import { parkReadyHosts } from "../ledger/parks.js";

function table(head: string[], rows: string[][]): string {
  if (rows.length === 0) return "  (none)\n";
  const w = head.map((h, i) => Math.min(48, Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length))));
  const fmt = (r: string[]) => "  " + r.map((c, i) => (c.length > w[i] ? c.slice(0, w[i] - 1) + "…" : c.padEnd(w[i]))).join("  ").trimEnd();
  return [fmt(head), fmt(w.map((n) => "-".repeat(n))), ...rows.map(fmt)].join("\n") + "\n";
}

export interface StatusData {
  hosts: Record<string, unknown>[];
  runs: Record<string, unknown>[];
  receipts: Record<string, unknown>[];
  approvals: Record<string, unknown>[];
}

export function collectStatus(ledger: Ledger, now = Date.now()): StatusData {
  let registry: Record<string, { price_per_hour?: number; currency?: string }> = {};
  let registryError: string | undefined;
  try { registry = loadRegistry(ledger); } catch (e) { registryError = (e as Error).message; }
  const meters = readMeters(ledger);
  const names = new Set<string>([...Object.keys(meters), ...listHosts(ledger).map((h) => h.host), ...Object.keys(registry)]);
  const runs = listRuns(ledger);
  const parks = parkReadyHosts(ledger);
  for (const r of runs) for (const h of r.hosts) names.add(h);

  const hosts = [...names].sort().map((host) => {
    const info = hostInfo(ledger, host);
    const m: HostMeter | undefined = meters[host];
    const v = m ? meterView(host, m, registry[host], now) : undefined;
    const clocks = (info.profile?.danger_clocks ?? []).map((c) => {
      const due = m?.teardown && c.hours ? new Date(m.teardown.at + c.hours * 3_600_000).toISOString().slice(0, 16) : undefined;
      return due ? `${c.id} due ${due}` : c.id;
    });
    return {
      host,
      platform: info.platform,
      instance_id: info.instance_id ?? "",
      first_seen: v?.first_seen ?? "",
      running_for: v?.running_for ?? "",
      idle_for: v?.idle_for ?? "",
      idle: v?.idle ?? false,
      cost_so_far: v?.cost_so_far,
      cost_text: v ? v.cost_text : "",
      teardown: m?.teardown ? `${m.teardown.status} (${m.teardown.action}) ${new Date(m.teardown.at).toISOString().slice(0, 16)}` : "",
      danger_clocks: clocks,
      ...(parks[host] ? { park_ready: `PARK_READY since ${new Date(parks[host].since).toISOString().slice(0, 16)}: safe to ${parks[host].verb} (run ${parks[host].run_id}), billing idle until a human does it; cost so far ${v ? v.cost_text : "unknown"}` } : {}),
      ...(registryError ? { registry_error: registryError } : {}),
    };
  });
  return {
    hosts,
    runs: runs.map((r) => ({ run_id: r.run_id, hosts: r.hosts, backend: r.backend, cells: r.cells.length, expect: r.expect, updated_at: r.updated_at })),
    receipts: listReceipts(ledger).map((r) => ({ receipt_id: r.receipt_id, host: r.host, run_id: r.run_id ?? "", files: r.files.length, remote_path: r.remote_path, created_at: r.created_at })),
    approvals: listApprovals(ledger)
      .filter((a) => a.state === "pending" || a.state === "approved")
      .filter((a) => a.expires_at > now)
      .map((a) => ({ host: a.host, action: a.action, state: a.state, expires_in: formatDuration(a.expires_at - now) })),
  };
}

export async function run(argv: string[]): Promise<number> {
  const ledger = new Ledger();
  const s = collectStatus(ledger);
  if (argv.includes("--json")) {
    process.stdout.write(JSON.stringify(s, null, 2) + "\n");
    return 0;
  }
  const out: string[] = [`state: ${ledger.dir}\n`, "HOSTS\n"];
  out.push(table(["host", "platform", "instance", "meter on", "idle", "cost so far", "teardown", "danger clocks"],
    s.hosts.map((h) => [String(h.host), String(h.platform), String(h.instance_id), String(h.running_for), h.idle ? `${h.idle_for} IDLE` : String(h.idle_for), h.cost_so_far !== undefined ? String(h.cost_text).split(" (")[0] : "?", String(h.teardown), (h.danger_clocks as string[]).join(", ")])));
  for (const h of s.hosts) if (h.park_ready) out.push(`  ${String(h.host)}: ${String(h.park_ready)}\n`);
  if (s.hosts.some((h) => h.registry_error)) out.push(`  registry error: ${s.hosts.find((h) => h.registry_error)!.registry_error}\n`);
  out.push("\nRUNS\n", table(["run", "hosts", "backend", "cells", "updated"], s.runs.map((r) => [String(r.run_id), (r.hosts as string[]).join(","), String(r.backend), String(r.cells), String(r.updated_at).slice(0, 16)])));
  out.push("\nRECEIPTS\n", table(["receipt", "host", "run", "files", "remote path", "created"], s.receipts.map((r) => [String(r.receipt_id), String(r.host), String(r.run_id), String(r.files), String(r.remote_path), String(r.created_at).slice(0, 16)])));
  out.push("\nAPPROVALS (open)\n", table(["host", "action", "state", "expires in"], s.approvals.map((a) => [String(a.host), String(a.action), String(a.state), String(a.expires_in)])));
  process.stdout.write(out.join(""));
  return 0;
}
