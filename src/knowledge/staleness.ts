/**
 * Finds platform facts whose `verified YYYY-MM` stamp is older than a threshold: every stamp in the
 * frontmatter (meter_stop, actions, danger clocks, mounts, spot, variants) and every
 * `verified YYYY-MM` written in the prose (section = the nearest heading above it).
 */
import { loadProfiles } from "./profiles.js";
import { getReference, listReferences } from "./references.js";
import type { Profile } from "./schema.js";

export const DEFAULT_MAX_AGE_MONTHS = 6;
export const BILLING_SECTION = "5. Teardown / billing";

export interface StaleEntry {
  platform: string;
  section: string;
  fact: string;
  verified: string;
  age_months: number;
  /** true for facts that decide money or teardown (meter stop, actions, danger clocks, §5 prose) */
  billing: boolean;
  kind: StampKind;
}

export type StampKind = "meter_stop" | "danger_clock" | "action" | "mount" | "spot" | "prose";
const KIND_RANK: Record<StampKind, number> = { meter_stop: 0, danger_clock: 1, action: 2, mount: 3, spot: 3, prose: 4 };

export interface StampEntry extends Omit<StaleEntry, "age_months"> {}

export interface StalenessReport {
  stamps_scanned: number;
  threshold_months: number;
  today: string;
  newest_stamp: string | null;
  stale: StaleEntry[];
}

const STAMP = /\bverified\s+(\d{4})-(0[1-9]|1[0-2])\b/g;

function monthIndex(stamp: string): number {
  const [y, m] = stamp.split("-").map(Number);
  return y * 12 + (m - 1);
}

export function currentMonth(d: Date = new Date()): string {
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

export function isMonthStamp(s: string): boolean {
  return /^\d{4}-(0[1-9]|1[0-2])$/.test(s);
}

function clip(s: string, n = 140): string {
  const t = s.replace(/\s+/g, " ").trim();
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}

/** Every stamp of one profile, frontmatter first, then prose. */
export function profileStamps(p: Profile): StampEntry[] {
  const out: StampEntry[] = [];
  const fm = (kind: StampKind, section: string, fact: string, verified: string | undefined, billing: boolean) => {
    if (verified) out.push({ platform: p.name, section, fact: clip(fact), verified, billing, kind });
  };
  const units: { label: string; src: Partial<Profile> }[] = [{ label: "", src: p }];
  for (const v of p.variants) units.push({ label: `${v.id}: `, src: v as unknown as Partial<Profile> });
  for (const { label, src } of units) {
    const ms = src.meter_stop;
    if (ms) fm("meter_stop", BILLING_SECTION, `${label}meter stop is "${ms.verb}" via ${ms.via}${ms.irreversible ? " (irreversible)" : " (reversible)"}${ms.still_bills ? `; still bills: ${ms.still_bills}` : ""}`, ms.verified, true);
    for (const a of src.actions ?? []) fm("action", BILLING_SECTION, `${label}action "${a.verb}": keeps ${a.keeps}`, a.verified, true);
    for (const c of src.danger_clocks ?? []) fm("danger_clock", BILLING_SECTION, `${label}${c.id}: ${c.message}`, c.verified, true);
    for (const m of src.mounts ?? []) fm("mount", "2. Storage survival matrix", `${label}${m.path} (${m.role}) survives stop: ${m.survives_stop}, destroy: ${m.survives_destroy}`, m.verified, false);
  }
  if (p.spot.verified) fm("spot", "4. Spot / interruption + resume", `spot ${p.spot.available ? "available" : "not offered"}, grace ${p.spot.grace_s ?? "n/a"} s`, p.spot.verified, false);

  out.push(...proseStamps(p.name, p.body));
  return out;
}

/**
 * Every `verified YYYY-MM` written in markdown prose: the section is the nearest heading above it, the
 * fact is the paragraph / list item / table row it sits in. Facts under "5. Teardown / billing" are billing.
 */
export function proseStamps(platform: string, body: string): StampEntry[] {
  const out: StampEntry[] = [];
  const p = { name: platform, body };
  let section = "(preamble)";
  let top = "";
  let block: string[] = [];
  for (const line of p.body.split(/\r?\n/)) {
    const h = /^(#{2,4})[ \t]+(.+?)\s*$/.exec(line);
    if (h) {
      if (h[1] === "##") { top = h[2]; section = h[2]; } else section = top ? `${top} › ${h[2]}` : h[2];
      block = [];
      continue;
    }
    // a fact is the paragraph / list item / table row the stamp sits in
    if (/^\s*$/.test(line) || /^\s*([-*+]|\d+\.)\s/.test(line) || /^\s*\|/.test(line)) block = [];
    block.push(line.replace(/^[\s>*+-]+|^\s*\d+\.\s+/, "").replace(/\*\*/g, "").trim());
    for (const m of line.matchAll(STAMP)) {
      out.push({ platform: p.name, section, fact: clip(block.join(" ")), verified: `${m[1]}-${m[2]}`, billing: section.startsWith(BILLING_SECTION), kind: "prose" });
    }
  }
  return out;
}

/** Stamps in references/*.md (shared facts, e.g. a destroy being eventually consistent), as platform "references/<name>". */
export function referenceStamps(): StampEntry[] {
  return listReferences().flatMap((d) => proseStamps(`references/${d.name}`, getReference(d.name) ?? ""));
}

export interface ScanOptions {
  platform?: string;
  maxAgeMonths?: number;
  /** "YYYY-MM"; defaults to the current month */
  today?: string;
  profiles?: Profile[];
  /** also scan the stamps in references/*.md (as platform "references/<name>"); ignored with `platform` */
  references?: boolean;
}

/**
 * A fact is stale when today is MORE than maxAgeMonths after its stamp (so a stamp equal to today,
 * or within the window, is fresh). Stale entries are ordered billing facts first (meter stops, then danger clocks,
 * then actions, then §5 prose), oldest first within a kind.
 */
export function scanStaleness(opts: ScanOptions = {}): StalenessReport {
  const threshold = opts.maxAgeMonths ?? DEFAULT_MAX_AGE_MONTHS;
  const today = opts.today ?? currentMonth();
  if (!isMonthStamp(today)) throw new Error(`today must be YYYY-MM, got ${today}`);
  const all = opts.profiles ?? loadProfiles();
  const profiles = opts.platform ? all.filter((p) => p.name === opts.platform) : all;
  const stamps = [...profiles.flatMap(profileStamps), ...(opts.references && !opts.platform ? referenceStamps() : [])];
  const now = monthIndex(today);
  let newest: string | null = null;
  for (const s of stamps) if (!newest || monthIndex(s.verified) > monthIndex(newest)) newest = s.verified;
  const stale = stamps
    .map((s) => ({ ...s, age_months: now - monthIndex(s.verified) }))
    .filter((s) => s.age_months > threshold)
    .sort((a, b) => Number(b.billing) - Number(a.billing) || KIND_RANK[a.kind] - KIND_RANK[b.kind] || b.age_months - a.age_months
      || a.platform.localeCompare(b.platform));
  return { stamps_scanned: stamps.length, threshold_months: threshold, today, newest_stamp: newest, stale };
}

/** For request_teardown: are the billing facts of this platform older than the threshold? */
export function billingFactsStale(platform: string, today?: string, maxAgeMonths?: number): { stale: boolean; oldest: string | null; entries: StaleEntry[] } {
  const r = scanStaleness({ platform, today, maxAgeMonths });
  const entries = r.stale.filter((s) => s.billing);
  let oldest: string | null = null;
  const p = loadProfiles().find((x) => x.name === platform);
  if (p) {
    for (const s of profileStamps(p).filter((x) => x.billing)) if (!oldest || monthIndex(s.verified) < monthIndex(oldest)) oldest = s.verified;
  }
  return { stale: entries.length > 0, oldest, entries };
}
