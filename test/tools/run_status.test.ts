/** run_status through an in-process server and an SDK client that listed the tools first (box cases: test/integration). */
import { describe, it } from "vitest";
import { badArgumentChecks, expectRefusal, metadataChecks, useHarness, NOWHERE } from "./harness.js";

const H = useHarness();

describe("run_status", () => {
  metadataChecks(H, "run_status");
  badArgumentChecks(H, "run_status", { run_id: "r1" });

  it("NOT_FOUND for a run the ledger does not know, or when no run was ever recorded on a host", async () => {
    await expectRefusal(H(), "run_status", { run_id: "no-such-run" }, "NOT_FOUND");
    await expectRefusal(H(), "run_status", { host: NOWHERE }, "NOT_FOUND");
  });

  it("BAD_INPUT for a wait longer than a call may hold", async () => {
    await expectRefusal(H(), "run_status", { run_id: "r1", wait_s: 100_000 }, "BAD_INPUT");
  });
});
