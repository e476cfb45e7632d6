/** run_status through an in-process server and an SDK client that listed the tools first (box cases: test/integration). */
import { afterAll, beforeAll, describe, it } from "vitest";
import { badArgumentChecks, expectRefusal, metadataChecks, startHarness, NOWHERE, type Harness } from "./harness.js";

let h: Harness;
beforeAll(async () => { h = await startHarness(); });
afterAll(async () => { await h?.close(); });

describe("run_status", () => {
  metadataChecks(() => h, "run_status");
  badArgumentChecks(() => h, "run_status", { run_id: "r1" });

  it("NOT_FOUND for a run the ledger does not know, or when no run was ever recorded on a host", async () => {
    await expectRefusal(h, "run_status", { run_id: "no-such-run" }, "NOT_FOUND");
    await expectRefusal(h, "run_status", { host: NOWHERE }, "NOT_FOUND");
  });

  it("BAD_INPUT for a wait longer than a call may hold", async () => {
    await expectRefusal(h, "run_status", { run_id: "r1", wait_s: 100_000 }, "BAD_INPUT");
  });
});
