/** pull_verify through an in-process server and an SDK client that listed the tools first (box cases: test/integration/transfer-pull). */
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { badArgumentChecks, expectRefusal, metadataChecks, startHarness, NOWHERE, type Harness } from "./harness.js";

let h: Harness;
beforeAll(async () => { h = await startHarness(); });
afterAll(async () => { await h?.close(); });

describe("pull_verify", () => {
  metadataChecks(() => h, "pull_verify");
  badArgumentChecks(() => h, "pull_verify", { host: NOWHERE, remote_path: "/root/out", local_dir: "/tmp/rgt-never" });

  it("BAD_INPUT without remote_path or run_id, or with an expect path that climbs out", async () => {
    const sc = await expectRefusal(h, "pull_verify", { host: NOWHERE, local_dir: path.join(h.home, "p") }, "BAD_INPUT");
    expect(sc.refused.reason).toMatch(/remote_path|run_id/);
    await expectRefusal(h, "pull_verify", { host: NOWHERE, remote_path: "/root/o", local_dir: path.join(h.home, "p"), expect: ["../x"] }, "BAD_INPUT");
  });

  it("NOT_FOUND for a run the ledger does not know; UNREACHABLE for a host that does not resolve", async () => {
    await expectRefusal(h, "pull_verify", { host: NOWHERE, run_id: "no-such-run", local_dir: path.join(h.home, "p") }, "NOT_FOUND");
    await expectRefusal(h, "pull_verify", { host: NOWHERE, remote_path: "/root/o", local_dir: path.join(h.home, "p") }, "UNREACHABLE");
  });
});
