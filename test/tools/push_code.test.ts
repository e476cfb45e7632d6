/** push_code through an in-process server and an SDK client that listed the tools first (box cases: test/integration/transfer-*). */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { badArgumentChecks, expectRefusal, metadataChecks, startHarness, NOWHERE, type Harness } from "./harness.js";

let h: Harness;
let proj: string;
beforeAll(async () => {
  h = await startHarness();
  proj = path.join(h.home, "proj");
  fs.mkdirSync(proj, { recursive: true });
  fs.writeFileSync(path.join(proj, "train.py"), "print('hi')\n");
});
afterAll(async () => { await h?.close(); });

describe("push_code", () => {
  metadataChecks(() => h, "push_code");
  badArgumentChecks(() => h, "push_code", { host: NOWHERE, local_dir: "/nonexistent", remote_dir: "/root/x" });

  it("BAD_INPUT for a local_dir that does not exist", async () => {
    const sc = await expectRefusal(h, "push_code", { host: NOWHERE, local_dir: path.join(h.home, "nope"), remote_dir: "/root/x" }, "BAD_INPUT");
    expect(sc.refused.reason).toContain("local_dir");
  });

  it("a dry run scans and reports without touching the network", async () => {
    const { sc } = await h.call("push_code", { host: NOWHERE, local_dir: proj, remote_dir: "/root/x", dry_run: true });
    expect(sc).toMatchObject({ ok: true, method: "dry_run", files_total: 1, bytes_sent: 0 });
  });

  it("SECRET_FILE and CRLF_SCRIPT before a byte leaves, listing the files", async () => {
    const withKey = path.join(h.home, "withkey");
    fs.mkdirSync(withKey);
    fs.writeFileSync(path.join(withKey, ".env"), "WANDB_API_KEY=x\n");
    const s1 = await expectRefusal(h, "push_code", { host: NOWHERE, local_dir: withKey, remote_dir: "/root/x" }, "SECRET_FILE");
    expect(s1.secret_files).toEqual([".env"]);
    const crlf = path.join(h.home, "crlf");
    fs.mkdirSync(crlf);
    fs.writeFileSync(path.join(crlf, "run.sh"), "#!/bin/bash\r\necho hi\r\n");
    const s2 = await expectRefusal(h, "push_code", { host: NOWHERE, local_dir: crlf, remote_dir: "/root/x" }, "CRLF_SCRIPT");
    expect(s2.crlf_scripts).toEqual(["run.sh"]);
  });

  it("UNREACHABLE when the tree is clean but the host does not resolve", async () => {
    await expectRefusal(h, "push_code", { host: NOWHERE, local_dir: proj, remote_dir: "/root/x" }, "UNREACHABLE");
  });
});
