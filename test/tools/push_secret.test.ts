/** push_secret through an in-process server and an SDK client that listed the tools first (box cases: test/integration/transfer-secret). */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { badArgumentChecks, expectRefusal, metadataChecks, startHarness, NOWHERE, type Harness } from "./harness.js";

let h: Harness;
beforeAll(async () => { h = await startHarness(); });
afterAll(async () => { await h?.close(); delete process.env.RGT_TOOLS_TEST_SECRET; });

describe("push_secret", () => {
  metadataChecks(() => h, "push_secret");
  badArgumentChecks(() => h, "push_secret", { host: NOWHERE, source: { env: "RGT_TOOLS_TEST_UNSET" }, remote_path: "/root/.k" });

  it("BAD_INPUT for an unset variable, a missing file, a directory as destination, a source with both shapes", async () => {
    expect((await expectRefusal(h, "push_secret", { host: NOWHERE, source: { env: "RGT_TOOLS_TEST_UNSET" }, remote_path: "/root/.k" }, "BAD_INPUT")).refused.reason)
      .toContain("source.env");
    await expectRefusal(h, "push_secret", { host: NOWHERE, source: { file: path.join(h.home, "none") }, remote_path: "/root/.k" }, "BAD_INPUT");
    await expectRefusal(h, "push_secret", { host: NOWHERE, source: { env: "X" }, remote_path: "/root/" }, "BAD_INPUT");
    await expectRefusal(h, "push_secret", { host: NOWHERE, source: { env: "X", file: "/etc/hosts" }, remote_path: "/root/.k" }, "BAD_INPUT");
  });

  it("UNREACHABLE for a set variable and a host that does not resolve; the value appears nowhere", async () => {
    const value = "hf_" + "Q".repeat(34);
    process.env.RGT_TOOLS_TEST_SECRET = value;
    const sc = await expectRefusal(h, "push_secret", { host: NOWHERE, source: { env: "RGT_TOOLS_TEST_SECRET" }, remote_path: "/root/.k" }, "UNREACHABLE");
    expect(JSON.stringify(sc)).not.toContain(value.slice(0, 10));
    const file = path.join(h.home, "netrc");
    fs.writeFileSync(file, "machine api.wandb.ai\n  login user\n  password abc\n");
    await expectRefusal(h, "push_secret", { host: NOWHERE, source: { file, block: "nosuch" }, remote_path: "/root/.netrc" }, "BAD_INPUT");
  });
});
