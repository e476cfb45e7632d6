/** check_staleness through an in-process server and an SDK client that listed the tools first. */
import { describe, expect, it } from "vitest";
import { badArgumentChecks, expectRefusal, metadataChecks, useHarness } from "./harness.js";
import { scanStaleness } from "../../src/knowledge/staleness.js";

const H = useHarness();

describe("check_staleness", () => {
  metadataChecks(H, "check_staleness");
  badArgumentChecks(H, "check_staleness", {});

  it("lists nothing stale on the day of the newest stamp, and billing facts first two years on", async () => {
    const newest = scanStaleness({ today: "2100-01" }).newest_stamp!;
    const fresh = await H().call("check_staleness", { today: newest });
    expect(fresh.sc).toMatchObject({ ok: true, stale: [], stale_total: 0, today: newest });
    const later = `${Number(newest.slice(0, 4)) + 2}${newest.slice(4)}`;
    const old = await H().call("check_staleness", { today: later });
    expect(old.sc.stale.length).toBeGreaterThan(0);
    expect(old.sc.stale[0].billing).toBe(true);
    expect(old.sc.warnings.some((w: { code: string }) => w.code === "STALE_FACT")).toBe(true);
  });

  it("refuses a month that is not YYYY-MM and an unknown platform (BAD_INPUT)", async () => {
    expect((await expectRefusal(H(), "check_staleness", { today: "not-a-month" }, "BAD_INPUT")).refused.reason).toContain("today");
    expect((await expectRefusal(H(), "check_staleness", { platform: "nosuch" }, "BAD_INPUT")).refused.reason).toContain("platform");
  });
});
