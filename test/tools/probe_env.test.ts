/** probe_env through an in-process server and an SDK client that listed the tools first (box cases: test/integration/probe). */
import { describe, expect, it } from "vitest";
import { badArgumentChecks, expectRefusal, metadataChecks, useHarness, NOWHERE } from "./harness.js";

const H = useHarness();

describe("probe_env", () => {
  metadataChecks(H, "probe_env");
  badArgumentChecks(H, "probe_env", { host: NOWHERE });

  it("UNREACHABLE for a host that does not resolve; the summary carries the code and the remedy", async () => {
    const sc = await expectRefusal(H(), "probe_env", { host: NOWHERE }, "UNREACHABLE");
    expect(sc.summary).toMatch(/Remedy:/);
  });

  it("BAD_INPUT for an unknown profile, before any connection; an option-looking host is refused too", async () => {
    expect((await expectRefusal(H(), "probe_env", { host: NOWHERE, profile: "nosuch" }, "BAD_INPUT")).refused.reason).toContain("profile");
    await expectRefusal(H(), "probe_env", { host: "-oProxyCommand=touch /tmp/pwn" }, "BAD_INPUT");
  });
});
