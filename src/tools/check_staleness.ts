/** check_staleness — which platform facts carry a `verified YYYY-MM` stamp older than the threshold. Read-only, local. */
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { nameText } from "./fields.js";
import { refuse, warning, type Warning } from "../common/result.js";
import { loadProfiles } from "../knowledge/profiles.js";
import { scanStaleness, isMonthStamp, DEFAULT_MAX_AGE_MONTHS } from "../knowledge/staleness.js";

/** At most this many stale entries come back; the rest are counted in stale_total. */
export const STALE_CAP = 40;

const StaleEntry = z.object({
  platform: z.string(),
  section: z.string(),
  fact: z.string(),
  verified: z.string(),
  age_months: z.number(),
  billing: z.boolean(),
});

export const checkStaleness = defineTool({
  name: "check_staleness",
  title: "Check how old the platform facts are",
  description:
    "List platform facts whose `verified YYYY-MM` stamp is older than max_age_months, billing first. Touches no host.",
  input: {
    platform: nameText(64).optional(),
    max_age_months: z.number().optional().describe("default 6"),
    today: z.string().max(7).optional().describe("YYYY-MM"),
  },
  output: {
    stamps_scanned: z.number(),
    threshold_months: z.number(),
    today: z.string(),
    newest_stamp: z.string().nullable(),
    stale: z.array(StaleEntry),
    stale_total: z.number(),
  },
  effect: "read",
  local: true,
  async handler(args) {
    const { platform, max_age_months, today } = args;
    if (today !== undefined && !isMonthStamp(today)) {
      refuse("BAD_INPUT", `today: "${String(today).slice(0, 40)}" is not a YYYY-MM month`, 'Pass today as "YYYY-MM" (e.g. "2026-06"), or omit it for the current month.');
    }
    if (max_age_months !== undefined && (typeof max_age_months !== "number" || !Number.isFinite(max_age_months) || max_age_months < 0)) {
      refuse("BAD_INPUT", `max_age_months: must be a number >= 0, got ${String(max_age_months)}`, `Pass a whole number of months (default ${DEFAULT_MAX_AGE_MONTHS}).`);
    }
    const names = loadProfiles().map((p) => p.name);
    if (platform !== undefined && !names.includes(platform)) {
      refuse("BAD_INPUT", `platform: no profile named "${String(platform).slice(0, 40)}"`, `Use one of: ${names.join(", ")}; or omit platform to scan all.`);
    }
    // without a platform, the shared references (references/*.md) are scanned too
    const r = scanStaleness({ platform, maxAgeMonths: max_age_months, today, references: platform === undefined });
    const warnings: Warning[] = [];
    const billingStale = new Map<string, number>();
    for (const s of r.stale) if (s.billing) billingStale.set(s.platform, (billingStale.get(s.platform) ?? 0) + 1);
    for (const [p, n] of billingStale) {
      warnings.push(warning("STALE_FACT", "warn", `${p}: ${n} billing/teardown fact(s) older than ${r.threshold_months} months — re-check the provider's docs before acting on them`, `rgt://profiles/${p}`));
    }
    if (warnings.length > 12) {
      const extra = warnings.length - 11;
      warnings.splice(11, warnings.length, warning("STALE_FACT", "warn", `${extra} more platform(s) with stale billing facts`));
    }
    return {
      ok: true,
      stamps_scanned: r.stamps_scanned,
      threshold_months: r.threshold_months,
      today: r.today,
      newest_stamp: r.newest_stamp,
      stale: r.stale.slice(0, STALE_CAP).map((s) => ({
        platform: s.platform,
        section: s.section.length > 60 ? `${s.section.slice(0, 59)}…` : s.section,
        fact: s.fact.length > 100 ? `${s.fact.slice(0, 99)}…` : s.fact,
        verified: s.verified,
        age_months: s.age_months,
        billing: s.billing,
      })),
      stale_total: r.stale.length,
      warnings,
    };
  },
});
