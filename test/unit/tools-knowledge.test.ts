import { describe, it, expect } from "vitest";
import { checkStaleness, STALE_CAP } from "../../src/tools/check_staleness.js";
import { checkpointCadence, youngInterval, dalyInterval } from "../../src/tools/checkpoint_cadence.js";
import { runTool, type ToolContext } from "../../src/server/tool.js";
import { loadProfiles } from "../../src/knowledge/profiles.js";
import { scanStaleness } from "../../src/knowledge/staleness.js";

/** These two tools touch no host and no ledger: a ctx whose remote/ledger throw proves it. */
const untouchable = new Proxy({}, { get: (_t, k) => { throw new Error(`tool touched ${String(k)}`); } });
const ctx = {
  remote: untouchable,
  ledger: untouchable,
  progress: async () => {},
  log: async () => {},
  signal: new AbortController().signal,
} as unknown as ToolContext;

async function call(def: any, args: Record<string, unknown>) {
  const r = await runTool(def, args as never, ctx);
  return { sc: r.structuredContent as Record<string, any>, isError: !!r.isError, bytes: r.content[0].text.length };
}

const NEWEST = scanStaleness({ today: "2100-01" }).newest_stamp!;
const TWO_YEARS = `${Number(NEWEST.slice(0, 4)) + 2}${NEWEST.slice(4)}`;

describe("check_staleness", () => {
  it("today = newest stamp: ok, nothing stale, no warnings", async () => {
    const { sc, isError } = await call(checkStaleness, { today: NEWEST });
    expect(isError).toBe(false);
    expect(sc).toMatchObject({ ok: true, threshold_months: 6, stale: [], stale_total: 0, warnings: [], today: NEWEST });
    expect(sc.stamps_scanned).toBeGreaterThan(100);
  });

  it("two years ahead: capped list that still carries every profile's meter-stop fact, STALE_FACT per platform", async () => {
    const { sc, bytes } = await call(checkStaleness, { today: TWO_YEARS });
    expect(sc.ok).toBe(true);
    expect(sc.stale.length).toBe(STALE_CAP);
    expect(sc.stale_total).toBe(sc.stamps_scanned);
    for (const p of loadProfiles()) {
      expect(sc.stale.some((s: any) => s.platform === p.name && s.billing && s.fact.startsWith("meter stop")), p.name).toBe(true);
    }
    expect(sc.warnings.map((w: any) => w.code)).toEqual(Array(loadProfiles().length).fill("STALE_FACT"));
    expect(sc.warnings.every((w: any) => /^rgt:\/\/profiles\//.test(w.ref))).toBe(true);
    for (const s of sc.stale) expect(s.fact.length).toBeLessThanOrEqual(100);
    expect(bytes).toBeLessThan(12_000);
  });

  it("filters by platform and honours max_age_months", async () => {
    const { sc } = await call(checkStaleness, { platform: "runpod", today: TWO_YEARS, max_age_months: 36 });
    expect(sc.stale).toEqual([]);
    expect(sc.threshold_months).toBe(36);
    const { sc: sc2 } = await call(checkStaleness, { platform: "runpod", today: TWO_YEARS });
    expect(sc2.stale.length).toBeGreaterThan(0);
    expect(sc2.stale.every((s: any) => s.platform === "runpod")).toBe(true);
  });

  it("refuses bad input with BAD_INPUT naming the field", async () => {
    for (const [args, field] of [
      [{ today: "2026/06" }, "today"],
      [{ today: "2026-13" }, "today"],
      [{ platform: "aws" }, "platform"],
      [{ max_age_months: -1 }, "max_age_months"],
      [{ max_age_months: Number.NaN }, "max_age_months"],
    ] as const) {
      const { sc, isError } = await call(checkStaleness, args);
      expect(isError, JSON.stringify(args)).toBe(true);
      expect(sc.ok).toBe(false);
      expect(sc.refused.code).toBe("BAD_INPUT");
      expect(sc.refused.reason.startsWith(`${field}:`)).toBe(true);
    }
  });
});

describe("checkpoint_cadence", () => {
  it("Young/Daly: C=30 s, M=3 h, 2 s/iter -> ~805 s, 402 iterations (rounded down)", async () => {
    const { sc, isError } = await call(checkpointCadence, { mtbf_s: 10800, checkpoint_write_s: 30, seconds_per_iter: 2 });
    expect(isError).toBe(false);
    expect(sc.formula).toBe("young");
    expect(sc.interval_s).toBeCloseTo(804.98, 1);
    expect(sc.interval_iters).toBe(402);
    expect(sc.young_interval_s).toBe(sc.interval_s);
    expect(sc.warnings).toEqual([]);
  });

  it("rounds down, never up", async () => {
    // sqrt(2*50*100) = 100 s exactly; 100/3 = 33.3 -> 33
    const { sc } = await call(checkpointCadence, { mtbf_s: 100, checkpoint_write_s: 50, seconds_per_iter: 3 });
    expect(sc.interval_s).toBe(100);
    expect(sc.interval_iters).toBe(33);
    // and 100/2.5 = 40 exactly stays 40
    const { sc: sc2 } = await call(checkpointCadence, { mtbf_s: 100, checkpoint_write_s: 50, seconds_per_iter: 2.5 });
    expect(sc2.interval_iters).toBe(40);
  });

  it("at least one iteration, with a warning, when an iteration outlasts the interval", async () => {
    const { sc } = await call(checkpointCadence, { mtbf_s: 600, checkpoint_write_s: 3, seconds_per_iter: 500 });
    expect(sc.interval_s).toBeCloseTo(60, 5);
    expect(sc.interval_iters).toBe(1);
    expect(sc.warnings.map((w: any) => w.code)).toContain("ITER_LONGER_THAN_INTERVAL");
  });

  it("daly: higher-order form, smaller than first order by about δ", async () => {
    expect(dalyInterval(30, 10800)).toBeCloseTo(youngInterval(30, 10800) * (1 + Math.sqrt(30 / 21600) / 3 + 30 / 21600 / 9) - 30, 9);
    expect(dalyInterval(300, 100)).toBe(100); // δ >= 2M -> M
    const { sc } = await call(checkpointCadence, { mtbf_s: 10800, checkpoint_write_s: 30, seconds_per_iter: 2, formula: "daly" });
    expect(sc.formula).toBe("daly");
    expect(sc.interval_s).toBeCloseTo(785.10, 1);
    expect(sc.interval_iters).toBe(Math.floor(dalyInterval(30, 10800) / 2));
  });

  it("warns when a checkpoint costs as much as the time between preemptions", async () => {
    const { sc } = await call(checkpointCadence, { mtbf_s: 100, checkpoint_write_s: 80, seconds_per_iter: 1 });
    expect(sc.warnings.map((w: any) => w.code)).toContain("CKPT_COST_HIGH");
  });

  it("refuses non-positive or missing numbers with BAD_INPUT naming the field", async () => {
    const good = { mtbf_s: 10800, checkpoint_write_s: 30, seconds_per_iter: 2 };
    for (const [field, v] of [["mtbf_s", 0], ["mtbf_s", -5], ["checkpoint_write_s", Number.NaN], ["seconds_per_iter", Number.POSITIVE_INFINITY], ["seconds_per_iter", undefined]] as const) {
      const { sc, isError } = await call(checkpointCadence, { ...good, [field]: v });
      expect(isError, `${field}=${v}`).toBe(true);
      expect(sc.refused.code).toBe("BAD_INPUT");
      expect(sc.refused.reason.startsWith(`${field}:`)).toBe(true);
    }
  });
});
