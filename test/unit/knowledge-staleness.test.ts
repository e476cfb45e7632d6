import { describe, it, expect } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { scanStaleness, billingFactsStale, profileStamps, BILLING_SECTION } from "../../src/knowledge/staleness.js";
import { loadProfiles, defaultProfilesDir, parseProfile } from "../../src/knowledge/profiles.js";

const NAMES = loadProfiles().map((p) => p.name);

function newestStamp(): string {
  return scanStaleness({ today: "2100-01" }).newest_stamp!;
}

function addMonths(stamp: string, n: number): string {
  const [y, m] = stamp.split("-").map(Number);
  const i = y * 12 + (m - 1) + n;
  return `${Math.floor(i / 12)}-${String((i % 12) + 1).padStart(2, "0")}`;
}

describe("scanStaleness", () => {
  it("scans frontmatter and prose stamps of every profile", () => {
    const r = scanStaleness({ today: newestStamp() });
    const perProfile = loadProfiles().map((p) => profileStamps(p).length);
    expect(r.stamps_scanned).toBe(perProfile.reduce((a, b) => a + b, 0));
    expect(r.stamps_scanned).toBeGreaterThan(100);
    const prose = loadProfiles().flatMap(profileStamps).filter((s) => s.kind === "prose");
    expect(prose.length).toBeGreaterThan(30);
  });

  it("lists nothing when today equals the newest stamp (default 6-month threshold)", () => {
    const r = scanStaleness({ today: newestStamp() });
    expect(r.threshold_months).toBe(6);
    expect(r.stale).toEqual([]);
  });

  it("two years ahead lists the teardown/billing facts of every profile, billing first", () => {
    const r = scanStaleness({ today: addMonths(newestStamp(), 24) });
    expect(r.stale.length).toBe(r.stamps_scanned);
    const first40 = r.stale.slice(0, 40);
    for (const n of NAMES) {
      expect(first40.some((s) => s.platform === n && s.section === BILLING_SECTION && s.fact.startsWith("meter stop")), n).toBe(true);
    }
    const firstNonBilling = r.stale.findIndex((s) => !s.billing);
    expect(r.stale.slice(firstNonBilling).every((s) => !s.billing)).toBe(true);
    // stamps differ by month since the 2026-08 snapshot (issue 15): the oldest billing fact leads
    expect(r.stale[0].age_months).toBeGreaterThanOrEqual(24);
  });

  it("is exclusive at the threshold: exactly N months old is fresh, N+1 is stale", () => {
    const oneProfile = "vastai";
    const n = scanStaleness({ platform: oneProfile, today: "2100-01" }).newest_stamp!;
    const at = scanStaleness({ platform: oneProfile, today: addMonths(n, 6) });
    expect(at.stale.filter((s) => s.verified === n)).toEqual([]);
    const past = scanStaleness({ platform: oneProfile, today: addMonths(n, 7) });
    const newest = past.stale.filter((s) => s.verified === n);
    expect(newest.length).toBeGreaterThan(0);
    expect(newest.every((s) => s.platform === oneProfile && s.age_months === 7)).toBe(true);
    expect(past.stale.every((s) => s.platform === oneProfile && s.age_months >= 7)).toBe(true);
    expect(scanStaleness({ platform: oneProfile, today: addMonths(n, 1), maxAgeMonths: 0 }).stale.length).toBe(past.stale.length);
  });

  it("attributes prose stamps to the nearest heading, with the surrounding sentence as the fact", () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-stale-"));
    const src = fs.readFileSync(path.join(defaultProfilesDir(), "vastai.md"), "utf8");
    const edited = src.replace("## 6. Daemon tool", "- Old claim about disk pricing that nobody re-checked (verified 2023-01).\n\n## 6. Daemon tool");
    expect(edited).not.toBe(src);
    fs.writeFileSync(path.join(d, "vastai.md"), edited);
    const p = parseProfile(path.join(d, "vastai.md"));
    const r = scanStaleness({ profiles: [p], today: "2026-06" });
    expect(r.stale).toEqual([
      { platform: "vastai", section: BILLING_SECTION, fact: "Old claim about disk pricing that nobody re-checked (verified 2023-01).", verified: "2023-01", age_months: 41, billing: true, kind: "prose" },
    ]);
  });

  it("rejects a malformed today", () => {
    expect(() => scanStaleness({ today: "2026-13" })).toThrow(/YYYY-MM/);
  });
});

describe("billingFactsStale", () => {
  it("is false at the newest stamp and true two years later, for every platform", () => {
    const n = newestStamp();
    for (const name of NAMES) {
      const fresh = billingFactsStale(name, n);
      expect(fresh.stale, name).toBe(false);
      expect(fresh.oldest).toMatch(/^\d{4}-\d{2}$/);
      const old = billingFactsStale(name, addMonths(n, 24));
      expect(old.stale, name).toBe(true);
      expect(old.entries.every((e) => e.billing && e.platform === name)).toBe(true);
    }
  });
});

describe("the 2026-08 snapshot's stamps (issue 15.1)", () => {
  it("check_staleness's scan sees the newer stamps carried over from reference-head", () => {
    const r = scanStaleness({ today: "2027-06", references: true, maxAgeMonths: 0 });
    const stamp = (platform: string, re: RegExp) => r.stale.find((s) => s.platform === platform && re.test(s.fact));
    expect(stamp("vastai", /destroy is eventually consistent|destroy that returned OK|still shows the instance|re-lists/i)?.verified).toBe("2026-06");
    expect(stamp("runpod", /not enabled|lower-priority capacity/i)?.verified).toBe("2026-04");
    expect(stamp("lambda", /hang|stall/i)?.verified).toBe("2026-06");
    expect(stamp("autodl", /gateway/i)?.verified).toBe("2026-07");
    expect(stamp("autodl", /fixed run layout/i)?.verified).toBe("2026-08");
    expect(stamp("local", /nothing is rented|no meter|not applicable/i)?.verified).toBe("2026-08");
    expect(stamp("references/artifact-layout", /layout/i)?.verified).toBe("2026-08");
    expect(stamp("references/monitoring-patterns", /payload|print/i)?.verified).toBe("2026-08");
    expect(r.newest_stamp).toBe("2026-08");
  });

  it("reference stamps are scanned only when asked, and never for one platform", () => {
    const without = scanStaleness({ today: "2026-09" });
    const withRefs = scanStaleness({ today: "2026-09", references: true });
    expect(withRefs.stamps_scanned).toBeGreaterThan(without.stamps_scanned);
    expect(scanStaleness({ today: "2026-09", references: true, platform: "vastai" }).stamps_scanned).toBe(scanStaleness({ today: "2026-09", platform: "vastai" }).stamps_scanned);
  });
});
