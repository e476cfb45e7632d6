/** pull_verify through an in-process server and an SDK client that listed the tools first (box cases: test/integration/transfer-pull). */
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { badArgumentChecks, expectRefusal, metadataChecks, useHarness, NOWHERE } from "./harness.js";

const H = useHarness();

describe("pull_verify", () => {
  metadataChecks(H, "pull_verify");
  badArgumentChecks(H, "pull_verify", { host: NOWHERE, remote_path: "/root/out", local_dir: "/tmp/rgt-never" });

  it("BAD_INPUT without remote_path or run_id, or with an expect path that climbs out", async () => {
    const sc = await expectRefusal(H(), "pull_verify", { host: NOWHERE, local_dir: path.join(H().home, "p") }, "BAD_INPUT");
    expect(sc.refused.reason).toMatch(/remote_path|run_id/);
    await expectRefusal(H(), "pull_verify", { host: NOWHERE, remote_path: "/root/o", local_dir: path.join(H().home, "p"), expect: ["../x"] }, "BAD_INPUT");
  });

  it("NOT_FOUND for a run the ledger does not know; UNREACHABLE for a host that does not resolve", async () => {
    await expectRefusal(H(), "pull_verify", { host: NOWHERE, run_id: "no-such-run", local_dir: path.join(H().home, "p") }, "NOT_FOUND");
    await expectRefusal(H(), "pull_verify", { host: NOWHERE, remote_path: "/root/o", local_dir: path.join(H().home, "p") }, "UNREACHABLE");
  });
});
