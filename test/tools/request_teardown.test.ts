/** request_teardown through an in-process server and an SDK client that listed the tools first (box cases: test/integration/teardown-*). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { badArgumentChecks, expectRefusal, metadataChecks, startHarness, NOWHERE, type Harness } from "./harness.js";

let h: Harness;
beforeAll(async () => { h = await startHarness(); });
afterAll(async () => { await h?.close(); });

describe("request_teardown", () => {
  metadataChecks(() => h, "request_teardown");
  badArgumentChecks(() => h, "request_teardown", { host: NOWHERE });

  it("BAD_INPUT for an action the profile does not know", async () => {
    const sc = await expectRefusal(h, "request_teardown", { host: NOWHERE, action: "obliterate" }, "BAD_INPUT");
    expect(sc.refused.reason).toContain("action");
  });

  it("never stops a meter without evidence: UNVERIFIED_ARTIFACTS or UNREACHABLE, with the remedy in the summary", async () => {
    const { sc } = await h.call("request_teardown", { host: NOWHERE });
    expect(["UNVERIFIED_ARTIFACTS", "UNREACHABLE"]).toContain(sc.refused?.code);
    expect(sc.ok).toBe(false);
    expect(sc.summary).toMatch(/Remedy:/);
  });

  it("APPROVAL_INVALID for a forged approval id", async () => {
    const { sc } = await h.call("request_teardown", { host: NOWHERE, approval_id: "forged-id" });
    expect(["APPROVAL_INVALID", "UNVERIFIED_ARTIFACTS", "UNREACHABLE"]).toContain(sc.refused?.code);
  });
});
