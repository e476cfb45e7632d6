/** checkpoint_cadence through an in-process server and an SDK client that listed the tools first. */
import { describe, expect, it } from "vitest";
import { badArgumentChecks, expectRefusal, metadataChecks, useHarness } from "./harness.js";

const H = useHarness();

const valid = { mtbf_s: 10800, checkpoint_write_s: 30, seconds_per_iter: 2 };

describe("checkpoint_cadence", () => {
  metadataChecks(H, "checkpoint_cadence");
  badArgumentChecks(H, "checkpoint_cadence", valid);

  it("answers the Young/Daly interval, rounded down to whole iterations", async () => {
    const { sc } = await H().call("checkpoint_cadence", valid);
    expect(sc).toMatchObject({ ok: true, formula: "young", interval_iters: 402, warnings: [] });
    expect(sc.interval_s).toBeCloseTo(Math.sqrt(2 * 30 * 10800), 1);
    const daly = await H().call("checkpoint_cadence", { ...valid, formula: "daly" });
    expect(daly.sc.interval_s).toBeLessThan(sc.interval_s);
  });

  it("refuses a non-positive number as BAD_INPUT naming it", async () => {
    const sc = await expectRefusal(H(), "checkpoint_cadence", { ...valid, mtbf_s: -1 }, "BAD_INPUT");
    expect(sc.refused.reason).toContain("mtbf_s");
  });
});
