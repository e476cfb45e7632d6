/** launch_queue through an in-process server and an SDK client that listed the tools first (box cases: test/integration/launch-*). */
import { describe, expect, it } from "vitest";
import { badArgumentChecks, expectRefusal, metadataChecks, useHarness, NOWHERE } from "./harness.js";

const H = useHarness();

const KEY = "88340c27d155553fbcf8ccde0917c60ac470159b";
const base = { host: NOWHERE, run_name: "t", workdir: "/root/w", cells: [{ name: "a", command: "python t.py" }] };

describe("launch_queue", () => {
  metadataChecks(H, "launch_queue");
  badArgumentChecks(H, "launch_queue", base);

  it("SECRET_INLINE for a credential in a command or an env value, naming the field", async () => {
    const s1 = await expectRefusal(H(), "launch_queue", { ...base, cells: [{ name: "a", command: `WANDB_API_KEY=${KEY} python t.py` }] }, "SECRET_INLINE");
    expect(s1.field).toBe("cells[0].command");
    const s2 = await expectRefusal(H(), "launch_queue", { ...base, cells: [{ name: "a", command: "python t.py", env: { WANDB_API_KEY: KEY } }] }, "SECRET_INLINE");
    expect(s2.field).toBe("cells[0].env.WANDB_API_KEY");
    expect(JSON.stringify([s1, s2])).not.toContain(KEY.slice(0, 12));
  });

  it("DESTROY_UNAPPROVED for a destroy queued as a cell", async () => {
    await expectRefusal(H(), "launch_queue", { ...base, cells: [{ name: "a", command: "vastai destroy instance 4242" }] }, "DESTROY_UNAPPROVED");
  });

  it("CRLF_SCRIPT and BAD_INPUT (duplicate cell, no host, relative workdir) before any connection", async () => {
    await expectRefusal(H(), "launch_queue", { ...base, cells: [{ name: "a", command: "python t.py\r\n" }] }, "CRLF_SCRIPT");
    const dup = await expectRefusal(H(), "launch_queue", { ...base, cells: [{ name: "a", command: "x" }, { name: "a", command: "y" }] }, "BAD_INPUT");
    expect(dup.refused.reason).toContain("cells[1].name");
    await expectRefusal(H(), "launch_queue", { ...base, host: undefined }, "BAD_INPUT");
    await expectRefusal(H(), "launch_queue", { ...base, workdir: "rel/dir" }, "BAD_INPUT");
  });

  it("UNREACHABLE for a clean queue to a host that does not resolve", async () => {
    await expectRefusal(H(), "launch_queue", base, "UNREACHABLE");
  });
});
