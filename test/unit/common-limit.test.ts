import { describe, expect, it } from "vitest";
import { fanoutLimit, limiter, mapLimited } from "../../src/common/limit.js";

const tick = () => new Promise<void>((r) => setTimeout(r, 1));

describe("fan-out limiter", () => {
  it("never runs more than the limit at once, runs everything, keeps the order of results", async () => {
    let active = 0;
    let peak = 0;
    const out = await mapLimited(Array.from({ length: 64 }, (_, i) => i), 8, async (x) => {
      active++;
      peak = Math.max(peak, active);
      await tick();
      active--;
      return x * 2;
    });
    expect(peak).toBe(8);
    expect(out).toEqual(Array.from({ length: 64 }, (_, i) => i * 2));
  });

  it("a failing call frees its slot and fails alone", async () => {
    const gate = limiter(1);
    const a = gate(async () => { throw new Error("boom"); });
    const b = gate(async () => "ok");
    await expect(a).rejects.toThrow("boom");
    await expect(b).resolves.toBe("ok");
  });

  it("reads RGT_FANOUT, falling back to the default on nonsense", () => {
    expect(fanoutLimit({ RGT_FANOUT: "32" })).toBe(32);
    expect(fanoutLimit({ RGT_FANOUT: "0" })).toBe(16);
    expect(fanoutLimit({ RGT_FANOUT: "x" })).toBe(16);
    expect(fanoutLimit({})).toBe(16);
  });
});
