/** request_teardown through an in-process server and an SDK client that listed the tools first (box cases: test/integration/teardown-*). */
import { describe, expect, it } from "vitest";
import { badArgumentChecks, expectRefusal, metadataChecks, useHarness, NOWHERE } from "./harness.js";

const H = useHarness();

describe("request_teardown", () => {
  metadataChecks(H, "request_teardown");
  badArgumentChecks(H, "request_teardown", { host: NOWHERE });

  it("BAD_INPUT for an action the profile does not know", async () => {
    const sc = await expectRefusal(H(), "request_teardown", { host: NOWHERE, action: "obliterate" }, "BAD_INPUT");
    expect(sc.refused.reason).toContain("action");
  });

  it("never stops a meter without evidence: UNVERIFIED_ARTIFACTS or UNREACHABLE, with the remedy in the summary", async () => {
    const { sc } = await H().call("request_teardown", { host: NOWHERE });
    expect(["UNVERIFIED_ARTIFACTS", "UNREACHABLE"]).toContain(sc.refused?.code);
    expect(sc.ok).toBe(false);
    expect(sc.summary).toMatch(/Remedy:/);
  });

  it("APPROVAL_INVALID for a forged approval id", async () => {
    const { sc } = await H().call("request_teardown", { host: NOWHERE, approval_id: "forged-id" });
    expect(["APPROVAL_INVALID", "UNVERIFIED_ARTIFACTS", "UNREACHABLE"]).toContain(sc.refused?.code);
  });
});
