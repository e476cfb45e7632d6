/**
 * What the local state knows about a host, resolved for the tools: which platform profile applies (the
 * user's registry first, then what probe_env detected, variant included), its instance id (registry first,
 * then what the probe saw on the box), its price, and the paths a destroy must never touch.
 */
import { getProfile } from "../knowledge/profiles.js";
import type { Profile } from "../knowledge/schema.js";
import { listRuns, type RunRecord } from "./runs.js";
import { registryEntry, registryEntrySafe, type RegistryEntry } from "./registry.js";
import type { Ledger } from "./store.js";
import { getHost, type HostRecord } from "./hosts.js";

export interface HostInfo {
  host: string;
  profile: Profile | undefined;
  /** the profile name and where it came from */
  platform: string;
  platform_from: "registry" | "probe" | "default";
  instance_id?: string;
  instance_from?: "registry" | "probe";
  registry?: RegistryEntry;
}

/** Env vars the probe may have seen on the box that carry the provider's instance id, per platform. */
const INSTANCE_ENV: Record<string, string[]> = {
  vastai: ["CONTAINER_ID", "VAST_CONTAINERLABEL"],
  runpod: ["RUNPOD_POD_ID"],
};

/** The probe's memory of a host (src/ledger/hosts.ts). */
function probed(ledger: Ledger, host: string, platform?: string): { profile?: string; variant?: string; instance_id?: string } {
  let h: HostRecord | undefined;
  try { h = getHost(ledger, host); } catch { return {}; }
  if (!h) return {};
  const name = platform ?? h.profile;
  let instance_id: string | undefined;
  for (const k of INSTANCE_ENV[name ?? ""] ?? []) {
    const v = h.instance_ids?.[k];
    if (v) { instance_id = k === "VAST_CONTAINERLABEL" ? v.replace(/^C\./, "") : v; break; }
  }
  return { profile: h.profile, variant: h.variant, instance_id };
}

export function hostInfo(ledger: Ledger, host: string, opts: { strict?: boolean } = {}): HostInfo {
  const reg = opts.strict ? registryEntry(ledger, host) : registryEntrySafe(ledger, host);
  const seen = probed(ledger, host, reg?.profile);
  let platform = "generic-ssh";
  let from: HostInfo["platform_from"] = "default";
  if (reg?.profile) { platform = reg.profile; from = "registry"; } else if (seen.profile) { platform = seen.profile; from = "probe"; }
  let profile: Profile | undefined;
  try { profile = getProfile(platform, from === "probe" ? seen.variant : undefined) ?? getProfile(platform); } catch { profile = undefined; }
  const instance_id = reg?.instance_id ?? seen.instance_id;
  return {
    host,
    profile,
    platform,
    platform_from: from,
    ...(instance_id ? { instance_id, instance_from: reg?.instance_id ? "registry" as const : "probe" as const } : {}),
    registry: reg,
  };
}

export function runsOnHost(ledger: Ledger, host: string): RunRecord[] {
  return listRuns(ledger, { host });
}

/** Paths a command outside the teardown gate must never delete on this host. */
export function protectedPathsFor(info: HostInfo, runs: RunRecord[]): string[] {
  const out = new Set<string>(["~", "$HOME"]);
  for (const m of info.profile?.mounts ?? []) if (m.role === "data" || m.role === "durable") out.add(m.path);
  if (info.profile?.data_dir) out.add(info.profile.data_dir);
  if (info.profile?.durable_dir) out.add(info.profile.durable_dir);
  for (const r of runs) {
    for (const c of r.cells) if (c.host === info.host && c.output_dir) out.add(c.output_dir);
    if (r.durable_dir) out.add(r.durable_dir);
    const hd = r.host_dirs?.[info.host];
    if (hd?.state_dir) out.add(hd.state_dir);
    if (hd?.durable_dir) out.add(hd.durable_dir);
    if (r.state_dir) out.add(r.state_dir);
  }
  return [...out].filter(Boolean);
}

export function ownSlurmJobIds(runs: RunRecord[]): string[] {
  return [...new Set(runs.map((r) => r.slurm_job_id).filter((x): x is string => typeof x === "string" && x.length > 0))];
}
