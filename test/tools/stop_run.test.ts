/** stop_run through an in-process server and an SDK client that listed the tools first (box cases: test/integration). */
import { describe, it } from "vitest";
import { badArgumentChecks, expectRefusal, metadataChecks, useHarness } from "./harness.js";

const H = useHarness();

describe("stop_run", () => {
  metadataChecks(H, "stop_run");
  badArgumentChecks(H, "stop_run", { run_id: "r1" });

  it("NOT_FOUND for a run the ledger does not know", async () => {
    await expectRefusal(H(), "stop_run", { run_id: "no-such-run" }, "NOT_FOUND");
    await expectRefusal(H(), "stop_run", { run_id: "no-such-run", cells: ["a"] }, "NOT_FOUND");
  });
});
