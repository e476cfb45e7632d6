/**
 * Platform detection from facts a one-shot bash probe gathers cheaply: which marker paths exist,
 * which marker env vars are set, the hostname, which marker commands are on PATH, and the evidence a
 * marker may need on top (a Slurm controller that answers).
 * Profiles are tried by detect.priority (high first); the fallback profile matches anything.
 *
 * Detection needs evidence: a marker that a package can bring alone (a command on PATH) counts only
 * when the evidence it names (`needs`) is there. Without it the profile is skipped and the detection
 * carries a note saying why, so a bare box with the Slurm client installed reads as generic-ssh, not as
 * a login node. A `declared_only` profile (local: the user's own machine) is never detected at all.
 */
import { loadProfiles } from "./profiles.js";
import type { Detect, EvidenceName, Marker, Profile } from "./schema.js";

export interface BoxFacts {
  paths_present: string[];
  env_present: string[];
  hostname: string;
  commands: string[];
  /** what the probe found beyond markers; absent or null = not asked / could not tell */
  evidence?: Partial<Record<EvidenceName, boolean | null>>;
}

export interface Detection {
  name: string;
  /** human-readable reason, e.g. "path /root/autodl-fs" */
  detected_by: string;
  /** the sub-platform, when the profile has variants and one matched (china → gpushare …) */
  variant?: string;
  /** markers that were seen but did not count for want of evidence (one line each) */
  notes?: string[];
}

export interface DetectOptions {
  /**
   * Count a marker even without the evidence it needs. Only for callers that must err toward a
   * platform (push_secret reading which mounts are shared), never for naming the platform.
   */
  weakMarkersCount?: boolean;
}

const EVIDENCE_MISSING: Record<EvidenceName, string> = {
  slurm_controller: "no Slurm controller answered a bounded scontrol ping / sinfo",
};

function describe(m: Marker): string {
  if (m.path !== undefined) return `path ${m.path}`;
  if (m.env !== undefined) return `env ${m.env}`;
  if (m.command !== undefined) return `command ${m.command}`;
  return `hostname matches /${m.hostname_regex}/`;
}

function rawMatch(m: Marker, f: BoxFacts): boolean {
  if (m.path !== undefined) return f.paths_present.includes(m.path) || f.paths_present.includes(m.path.replace(/\/+$/, ""));
  if (m.env !== undefined) return f.env_present.includes(m.env);
  if (m.command !== undefined) return f.commands.includes(m.command);
  if (m.hostname_regex !== undefined) {
    try { return new RegExp(m.hostname_regex).test(f.hostname); } catch { return false; }
  }
  return false;
}

type Match = "yes" | "no" | "unconfirmed";

function markerMatches(m: Marker, f: BoxFacts, o: DetectOptions): Match {
  if (!rawMatch(m, f)) return "no";
  if (!m.needs || o.weakMarkersCount) return "yes";
  return f.evidence?.[m.needs] === true ? "yes" : "unconfirmed";
}

type RuleResult = { ok: true; why: string } | { ok: false; unconfirmed?: Marker };

function ruleMatches(d: Detect, f: BoxFacts, o: DetectOptions): RuleResult {
  if (d.declared_only || (d.any.length === 0 && d.all.length === 0)) return { ok: false };
  const reasons: string[] = [];
  for (const m of d.all) {
    const r = markerMatches(m, f, o);
    if (r !== "yes") return { ok: false, ...(r === "unconfirmed" ? { unconfirmed: m } : {}) };
    reasons.push(describe(m));
  }
  if (d.any.length) {
    const hit = d.any.find((m) => markerMatches(m, f, o) === "yes");
    if (!hit) {
      const weak = d.any.find((m) => markerMatches(m, f, o) === "unconfirmed");
      return { ok: false, ...(weak ? { unconfirmed: weak } : {}) };
    }
    reasons.push(describe(hit));
  }
  return { ok: true, why: reasons.join(" + ") };
}

function ordered(profiles: Profile[]): Profile[] {
  return [...profiles].sort((a, b) => b.detect.priority - a.detect.priority || a.name.localeCompare(b.name));
}

export function detectProfile(facts: BoxFacts, profiles: Profile[] = loadProfiles(), opts: DetectOptions = {}): Detection {
  const f: BoxFacts = {
    paths_present: facts.paths_present ?? [],
    env_present: facts.env_present ?? [],
    hostname: facts.hostname ?? "",
    commands: facts.commands ?? [],
    evidence: facts.evidence ?? {},
  };
  const notes: string[] = [];
  const withNotes = (d: Detection): Detection => (notes.length ? { ...d, notes } : d);
  for (const p of ordered(profiles)) {
    if (p.detect.fallback) continue;
    const r = ruleMatches(p.detect, f, opts);
    if (!r.ok) {
      if (r.unconfirmed?.needs) notes.push(`${describe(r.unconfirmed)} is there, but ${EVIDENCE_MISSING[r.unconfirmed.needs]}: not treated as ${p.name} (a package can bring that marker alone)`);
      continue;
    }
    for (const v of [...p.variants].sort((a, b) => (b.detect?.priority ?? 0) - (a.detect?.priority ?? 0))) {
      const vr = v.detect ? ruleMatches(v.detect, f, opts) : { ok: false as const };
      if (vr.ok) return withNotes({ name: p.name, detected_by: vr.why, variant: v.id });
    }
    return withNotes({ name: p.name, detected_by: r.why });
  }
  const fb = profiles.find((p) => p.detect.fallback);
  return withNotes({ name: fb?.name ?? "generic-ssh", detected_by: "fallback: no platform marker found" });
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
