/**
 * push_secret against real boxes: the credential reaches a 0600 file through stdin and appears nowhere
 * else — not in the server's stderr, not in any result (raw MCP payloads included), not in RGT_HOME, not
 * in the box's sshd log. Shared/durable mounts of the detected profile (AutoDL's /root/autodl-fs) are refused,
 * symlinked routes to them too.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";

let lab: Lab;
let s: ServerConnection;
const VALUE = `zq-${randomBytes(18).toString("hex")}`;
const NETRC_PW = `pw-${randomBytes(12).toString("hex")}`;
const seen: string[] = [];

async function call(name: string, args: Record<string, unknown>): Promise<any> {
  const raw = await s.callRaw(name, args);
  seen.push(JSON.stringify(raw));
  return raw.structuredContent;
}

function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...allFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

beforeAll(async () => {
  lab = await startLab([{ name: "k1", gpus: 0 }, { name: "ad", gpus: 1, profile: "autodl" }]);
  s = await connectServer({ ...lab.env, RGT_TEST_SECRET: VALUE }, { timeoutMs: 120_000 });
}, 60_000);
afterAll(async () => {
  await s?.close();
  await lab?.stop();
});

describe("push_secret", () => {
  it("writes an env var's value to a 0600 file through stdin", async () => {
    const r = await call("push_secret", { host: "k1", source: { env: "RGT_TEST_SECRET" }, remote_path: "~/.config/wandb/key" });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.remote_path).toBe("/root/.config/wandb/key");
    expect(r.bytes).toBe(VALUE.length + 1);
    expect(await lab.boxes.k1.readFile("/root/.config/wandb/key")).toBe(`${VALUE}\n`);
    const st = await lab.boxes.k1.exec("stat -c %a /root/.config/wandb/key; ls -A /root/.config/wandb");
    expect(st.stdout.split("\n")[0]).toBe("600");
    expect(st.stdout).not.toContain("rgt-tmp");
    // idempotent: a second push replaces it atomically
    const again = await call("push_secret", { host: "k1", source: { env: "RGT_TEST_SECRET" }, remote_path: "~/.config/wandb/key" });
    expect(again.ok).toBe(true);
  });

  it("pushes one netrc machine stanza from a local file", async () => {
    const netrc = path.join(lab.root, "netrc-src");
    fs.writeFileSync(netrc, `machine other.example login a password nope\nmachine api.wandb.ai\n  login user\n  password ${NETRC_PW}\n`, { mode: 0o600 });
    const r = await call("push_secret", { host: "k1", source: { file: netrc, block: "api.wandb.ai" }, remote_path: "/root/.netrc" });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const text = await lab.boxes.k1.readFile("/root/.netrc");
    expect(text).toBe(`machine api.wandb.ai\n  login user\n  password ${NETRC_PW}\n`);
    expect(text).not.toContain("other.example");
    const missing = await call("push_secret", { host: "k1", source: { file: netrc, block: "nope.example" }, remote_path: "/root/.netrc2" });
    expect(missing.refused.code).toBe("BAD_INPUT");
    expect(missing.refused.reason).toContain("source.block");
  });

  it("refuses the shared FS of the detected AutoDL profile, directly or through a symlink", async () => {
    const r = await call("push_secret", { host: "ad", source: { env: "RGT_TEST_SECRET" }, remote_path: "/root/autodl-fs/.netrc" });
    expect(r.ok).toBe(false);
    expect(r.refused.code).toBe("SECRET_ON_SHARED_MOUNT");
    expect(r.refused.reason).toContain("/root/autodl-fs");
    expect(r.refused.remedy).toMatch(/per-instance/);
    await lab.boxes.ad.exec("mkdir -p /root/autodl-fs/proj && ln -sfn /root/autodl-fs/proj /root/proj-link");
    const viaLink = await call("push_secret", { host: "ad", source: { env: "RGT_TEST_SECRET" }, remote_path: "/root/proj-link/.env" });
    expect(viaLink.refused?.code).toBe("SECRET_ON_SHARED_MOUNT");
    expect((await lab.boxes.ad.exec("ls -A /root/autodl-fs/proj /root/autodl-fs")).stdout).not.toMatch(/netrc|\.env|rgt-tmp/);
    const ok = await call("push_secret", { host: "ad", source: { env: "RGT_TEST_SECRET" }, remote_path: "/root/.wandb_key" });
    expect(ok.ok, JSON.stringify(ok)).toBe(true);
    expect(ok.profile).toBe("autodl");
  });

  it("an unset variable is BAD_INPUT naming source.env", async () => {
    const r = await call("push_secret", { host: "k1", source: { env: "RGT_NOT_SET_ANYWHERE" }, remote_path: "/root/x" });
    expect(r.refused.code).toBe("BAD_INPUT");
    expect(r.refused.reason).toContain("source.env");
    const r2 = await call("push_secret", { host: "k1", source: { env: "RGT_TEST_SECRET" }, remote_path: "/root/dir/" });
    expect(r2.refused.code).toBe("BAD_INPUT");
    expect(r2.refused.reason).toContain("remote_path");
  });

  it("the values appear in no result, no server stderr, no state file and no sshd log", async () => {
    for (const v of [VALUE, NETRC_PW]) {
      for (const t of seen) expect(t.includes(v)).toBe(false);
      expect(s.stderr().includes(v)).toBe(false);
      for (const f of allFiles(lab.env.RGT_HOME!)) expect(fs.readFileSync(f, "utf8").includes(v), f).toBe(false);
      for (const b of ["k1", "ad"]) expect(lab.boxes[b].sshdLog().includes(v)).toBe(false);
    }
    expect(seen.length).toBeGreaterThanOrEqual(8);
  });
});
