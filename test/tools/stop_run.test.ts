/** stop_run through an in-process server and an SDK client that listed the tools first (box cases: test/integration). */
import { afterAll, beforeAll, describe, it } from "vitest";
import { badArgumentChecks, expectRefusal, metadataChecks, startHarness, type Harness } from "./harness.js";

let h: Harness;
beforeAll(async () => { h = await startHarness(); });
afterAll(async () => { await h?.close(); });

describe("stop_run", () => {
  metadataChecks(() => h, "stop_run");
  badArgumentChecks(() => h, "stop_run", { run_id: "r1" });

  it("NOT_FOUND for a run the ledger does not know", async () => {
    await expectRefusal(h, "stop_run", { run_id: "no-such-run" }, "NOT_FOUND");
    await expectRefusal(h, "stop_run", { run_id: "no-such-run", cells: ["a"] }, "NOT_FOUND");
  });
});
