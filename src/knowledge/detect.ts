/**
 * Platform detection from facts a one-shot bash probe gathers cheaply: which marker paths exist,
 * which marker env vars are set, the hostname, which marker commands are on PATH.
 * Profiles are tried by detect.priority (high first); the fallback profile matches anything.
 */
import { loadProfiles } from "./profiles.js";
import type { Detect, Marker, Profile } from "./schema.js";

export interface BoxFacts {
  paths_present: string[];
  env_present: string[];
  hostname: string;
  commands: string[];
}

export interface Detection {
  name: string;
  /** human-readable reason, e.g. "path /root/autodl-fs" */
  detected_by: string;
  /** the sub-platform, when the profile has variants and one matched (china → gpushare …) */
  variant?: string;
}

function describe(m: Marker): string {
  if (m.path !== undefined) return `path ${m.path}`;
  if (m.env !== undefined) return `env ${m.env}`;
  if (m.command !== undefined) return `command ${m.command}`;
  return `hostname matches /${m.hostname_regex}/`;
}

function markerMatches(m: Marker, f: BoxFacts): boolean {
  if (m.path !== undefined) return f.paths_present.includes(m.path) || f.paths_present.includes(m.path.replace(/\/+$/, ""));
  if (m.env !== undefined) return f.env_present.includes(m.env);
  if (m.command !== undefined) return f.commands.includes(m.command);
  if (m.hostname_regex !== undefined) {
    try { return new RegExp(m.hostname_regex).test(f.hostname); } catch { return false; }
  }
  return false;
}

/** Returns the reason string when the rule matches, undefined otherwise. Empty rules never match. */
function ruleMatches(d: Detect, f: BoxFacts): string | undefined {
  if (d.any.length === 0 && d.all.length === 0) return undefined;
  const reasons: string[] = [];
  for (const m of d.all) {
    if (!markerMatches(m, f)) return undefined;
    reasons.push(describe(m));
  }
  if (d.any.length) {
    const hit = d.any.find((m) => markerMatches(m, f));
    if (!hit) return undefined;
    reasons.push(describe(hit));
  }
  return reasons.join(" + ");
}

function ordered(profiles: Profile[]): Profile[] {
  return [...profiles].sort((a, b) => b.detect.priority - a.detect.priority || a.name.localeCompare(b.name));
}

export function detectProfile(facts: BoxFacts, profiles: Profile[] = loadProfiles()): Detection {
  const f: BoxFacts = {
    paths_present: facts.paths_present ?? [],
    env_present: facts.env_present ?? [],
    hostname: facts.hostname ?? "",
    commands: facts.commands ?? [],
  };
  for (const p of ordered(profiles)) {
    if (p.detect.fallback) continue;
    const why = ruleMatches(p.detect, f);
    if (why === undefined) continue;
    for (const v of [...p.variants].sort((a, b) => (b.detect?.priority ?? 0) - (a.detect?.priority ?? 0))) {
      const vwhy = v.detect ? ruleMatches(v.detect, f) : undefined;
      if (vwhy !== undefined) return { name: p.name, detected_by: vwhy, variant: v.id };
    }
    return { name: p.name, detected_by: why };
  }
  const fb = profiles.find((p) => p.detect.fallback);
  return { name: fb?.name ?? "generic-ssh", detected_by: "fallback: no platform marker found" };
}

export interface MarkerSet {
  paths: string[];
  env: string[];
  commands: string[];
  hostname_regexes: string[];
}

/** Every marker any profile (or variant) checks — what the probe script must test for. */
export function allMarkers(profiles: Profile[] = loadProfiles()): MarkerSet {
  const paths = new Set<string>();
  const env = new Set<string>();
  const commands = new Set<string>();
  const host = new Set<string>();
  const add = (m: Marker) => {
    if (m.path !== undefined) paths.add(m.path);
    if (m.env !== undefined) env.add(m.env);
    if (m.command !== undefined) commands.add(m.command);
    if (m.hostname_regex !== undefined) host.add(m.hostname_regex);
  };
  for (const p of profiles) {
    [...p.detect.any, ...p.detect.all].forEach(add);
    for (const v of p.variants) if (v.detect) [...v.detect.any, ...v.detect.all].forEach(add);
  }
  return { paths: [...paths].sort(), env: [...env].sort(), commands: [...commands].sort(), hostname_regexes: [...host].sort() };
}
