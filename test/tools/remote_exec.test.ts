/** remote_exec through an in-process server and an SDK client that listed the tools first (box cases: test/integration/remote-exec). */
import { describe, expect, it } from "vitest";
import { badArgumentChecks, expectRefusal, metadataChecks, useHarness, NOWHERE } from "./harness.js";

const H = useHarness();

const KEY = "88340c27d155553fbcf8ccde0917c60ac470159b";

describe("remote_exec", () => {
  metadataChecks(H, "remote_exec");
  badArgumentChecks(H, "remote_exec", { host: NOWHERE, command: "true" });

  it("SECRET_INLINE before anything is sent, naming the field and never the value", async () => {
    const sc = await expectRefusal(H(), "remote_exec", { host: NOWHERE, command: `WANDB_API_KEY=${KEY} python t.py` }, "SECRET_INLINE");
    expect(sc.field).toBe("command");
    expect(JSON.stringify(sc)).not.toContain(KEY.slice(0, 12));
  });

  it("DESTROY_UNAPPROVED for instance destroys and rm -rf of a protected dir, also through cwd", async () => {
    await expectRefusal(H(), "remote_exec", { host: NOWHERE, command: "vastai destroy instance 4242" }, "DESTROY_UNAPPROVED");
    await expectRefusal(H(), "remote_exec", { host: NOWHERE, command: "sudo shutdown -h now" }, "DESTROY_UNAPPROVED");
    await expectRefusal(H(), "remote_exec", { host: NOWHERE, command: "rm -rf ./*", cwd: "/" }, "DESTROY_UNAPPROVED");
  });

  it("UNREACHABLE for a harmless command to a host that does not resolve", async () => {
    await expectRefusal(H(), "remote_exec", { host: NOWHERE, command: "true" }, "UNREACHABLE");
  });

  it("an error echoes no more than 200 characters of a long input", async () => {
    const long = `echo ${"y".repeat(5000)}`;
    const { sc, bytes } = await H().call("remote_exec", { host: NOWHERE, command: long, cwd: `/${"d".repeat(3000)}` });
    expect(sc.ok).toBe(false);
    expect(bytes).toBeLessThan(3000);
    expect(JSON.stringify(sc)).not.toContain("d".repeat(201));
  });
});
