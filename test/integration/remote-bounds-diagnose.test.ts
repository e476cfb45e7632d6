/**
 * A refused connection says why, on loopback only: a closed port, a port that accepts TCP and stays silent,
 * a port that speaks HTTP, a jump host that fails, keys the box refuses. Each refusal carries a diagnosis
 * line, and `rgt doctor <host>` (the ladder) stops at the right rung with a fix and tries one fallback route.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { RefusalError } from "../../src/common/result.js";
import { SshRemote } from "../../src/remote/pool.js";
import { connectionLadder } from "../../src/cli/ladder.js";
import { connectServer } from "../../src/lab/client.js";
import type { Check } from "../../src/cli/doctor.js";

type Ref = { code: string; reason: string; remedy: string; diagnosis?: string };
let lab: Lab;
let cfg: string;

async function refusal(p: Promise<unknown>): Promise<Ref> {
  try { await p; } catch (e) { if (e instanceof RefusalError) return e.refusal as Ref; throw e; }
  throw new Error("expected a refusal");
}

/** the refusal one exec on a fresh pool gets */
async function refusalOf(host: string, timeoutMs?: number): Promise<Ref> {
  const r = new SshRemote({ sshConfig: cfg });
  try { return await refusal(r.exec(host, "true", timeoutMs ? { timeoutMs } : {})); } finally { await r.close(); }
}

const rung = (checks: Check[], name: string) => checks.find((c) => c.name === name);

beforeAll(async () => {
  lab = await startLab([{ name: "dg1", gpus: 0 }, { name: "dg-autodl", gpus: 1, profile: "autodl" }]);
  // the ports that are not sshd come from the lab (src/lab/ports.ts), as aliases in its ssh config
  await lab.fakePort("closed", { kind: "closed" });
  await lab.fakePort("silent", { kind: "silent" });
  await lab.fakePort("http", { kind: "reply", text: "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" });
  await lab.fakePort("smtp", { kind: "banner", text: "220 mail.lab ESMTP ready\r\n" });
  await lab.fakePort("hangup", { kind: "hangup" });
  await lab.fakePort("reset", { kind: "reset" });
  lab.jumpAlias("via-closed", "closed", "dg1");
  const dir = fs.mkdtempSync(path.join(lab.env.RGT_HOME!, "diag-"));
  const other = path.join(dir, "other_ed25519");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
  cfg = path.join(dir, "config");
  fs.writeFileSync(cfg, [
    `Host wrongkey\n  HostName 127.0.0.1\n  Port ${lab.boxes.dg1.port}\n  User root\n  IdentityFile ${other}\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile ${lab.knownHosts}\n  StrictHostKeyChecking yes`,
    fs.readFileSync(lab.sshConfig, "utf8"),
  ].join("\n\n"));
});
afterAll(async () => {
  await lab?.stop();
});

describe("refusals carry a diagnosis", () => {
  it("closed port: UNREACHABLE, nothing listens", async () => {
    const ref = await refusalOf("closed");
    expect(ref.code).toBe("UNREACHABLE");
    expect(ref.diagnosis).toMatch(/nothing listens on port/);
  });

  it("a port that accepts TCP but sends no banner: TIMEOUT at the banner stage, said so", async () => {
    const ref = await refusalOf("silent", 2500);
    expect(ref.code).toBe("TIMEOUT");
    expect(ref.reason).toMatch(/SSH banner/);
    expect(ref.diagnosis).toMatch(/accepts TCP but sends no SSH banner/);
  });

  it("a port that speaks HTTP: named as HTTP, not SSH", async () => {
    const ref = await refusalOf("http");
    expect(ref.code).toBe("UNREACHABLE");
    expect(ref.diagnosis).toMatch(/answered with HTTP, not SSH/);
  });

  it("a port that greets with another protocol's banner and waits: TIMEOUT, and the banner is quoted", async () => {
    const ref = await refusalOf("smtp", 2500);
    expect(ref.code).toBe("TIMEOUT");
    expect(ref.diagnosis).toMatch(/answered with '220 mail\.lab ESMTP ready', not SSH/);
  });

  it("a port that hangs up before any SSH banner: UNREACHABLE, said so, whether the close is a FIN or a RST", async () => {
    for (const host of ["hangup", "reset"]) {
      const ref = await refusalOf(host);
      expect(ref.code, host).toBe("UNREACHABLE");
      expect(ref.reason, host).toMatch(/closed the connection during the SSH banner stage/);
      expect(ref.diagnosis, host).toMatch(/accepts TCP but hung up without SSH banner/);
    }
  });

  it("a failing jump host: the route's failure, naming the hop, not the target's", async () => {
    const ref = await refusalOf("via-closed");
    expect(ref.code).toBe("UNREACHABLE");
    expect(ref.reason).toMatch(/^jump host closed/);
    expect(ref.diagnosis).toMatch(/^the route failed at jump host closed, before the target/);
  });

  it("refused keys: AUTH_FAILED, and the diagnosis clears the path", async () => {
    const ref = await refusalOf("wrongkey");
    expect(ref.code).toBe("AUTH_FAILED");
    expect(ref.diagnosis).toMatch(/path and the ssh server are fine \(SSH-2\.0-OpenSSH/);
  });
});

describe("platform knowledge in the diagnosis (through the server)", () => {
  it("an AutoDL box whose sshd went away: UNREACHABLE, and the diagnosis says AutoDL moves the port", async () => {
    const srv = await connectServer(lab.env);
    try {
      const p = (await srv.call("probe_env", { host: "dg-autodl" })) as Record<string, any>;
      expect(p.ok, JSON.stringify(p).slice(0, 500)).toBe(true);
      const box = lab.boxes["dg-autodl"];
      await box.stopSshd();
      await box.exec("pkill -KILL -f '^sshd: root' || true");
      const r = (await srv.call("remote_exec", { host: "dg-autodl", command: "true", timeout_s: 10 })) as Record<string, any>;
      expect(r.refused?.code, JSON.stringify(r)).toBe("UNREACHABLE");
      expect(r.refused.diagnosis).toMatch(/nothing listens on port/);
      expect(r.refused.diagnosis).toMatch(/AutoDL gives a re-created instance a new ssh port/);
    } finally { await srv.close(); await lab.boxes["dg-autodl"].startSshd(); }
  });
});

describe("rgt doctor <host>: the ladder", () => {
  const opts = () => ({ sshConfig: cfg, stepMs: 2500, env: { PATH: process.env.PATH } });

  it("a healthy box passes every rung and tries no fallback", async () => {
    const c = await connectionLadder("dg1", opts());
    expect(c.filter((x) => x.status === "fail"), JSON.stringify(c)).toEqual([]);
    expect(c.map((x) => x.name)).toEqual(["resolve", "dns", "tcp", "banner", "auth"]);
  });

  it("closed port: fails at tcp with the fix, then the fallback route fails too", async () => {
    const c = await connectionLadder("closed", opts());
    expect(rung(c, "tcp")?.status).toBe("fail");
    expect(rung(c, "tcp")?.fix).toMatch(/port moved/);
    expect(rung(c, "auth")).toBeUndefined();
    expect(rung(c, "fallback: OpenSSH")?.detail).toMatch(/blocked/);
  });

  it("silent and HTTP ports fail at the banner rung, each with its own words", async () => {
    const s = await connectionLadder("silent", opts());
    expect(rung(s, "tcp")?.status).toBe("ok");
    expect(rung(s, "banner")?.detail).toMatch(/no SSH banner/);
    const h = await connectionLadder("http", opts());
    expect(rung(h, "banner")?.detail).toMatch(/speaks HTTP, not SSH/);
    expect(rung(h, "fallback: OpenSSH")?.status).toBe("fail");
    const m = await connectionLadder("smtp", opts());
    expect(rung(m, "banner")?.detail).toMatch(/speaks '220 mail\.lab ESMTP ready', not SSH/);
  });

  it("a failing jump host: the rungs run against the hop, and the fallback tries the hop alone", async () => {
    const c = await connectionLadder("via-closed", opts());
    expect(rung(c, "resolve")?.detail).toMatch(/via ProxyJump closed/);
    expect(rung(c, "tcp")?.detail).toMatch(/jump host closed.*refused/);
    expect(rung(c, "fallback: jump host alone")?.detail).toMatch(/blocked at the jump host/);
  });

  it("the CLI prints each rung with its fix and exits 1 when a rung failed", () => {
    let out = "";
    let code = 0;
    try {
      execFileSync(process.execPath, [path.join(__dirname, "..", "..", "dist", "cli", "main.js"), "doctor", "closed"], { env: { ...lab.env, RGT_SSH_CONFIG: cfg }, encoding: "utf8", timeout: 60_000 });
    } catch (e) { out = (e as { stdout: string }).stdout; code = (e as { status: number }).status; }
    expect(code).toBe(1);
    expect(out).toMatch(/^ok +resolve +root@127\.0\.0\.1:/m);
    expect(out).toMatch(/^FAIL +tcp +.*connection refused/m);
    expect(out).toMatch(/fix: The box is stopped, sshd is down, or the port moved/);
    expect(out).toMatch(/closed: \d+ rung\(s\) failed/);
  });

  it("refused keys stop at auth, no fallback (no route change fixes a key)", async () => {
    const c = await connectionLadder("wrongkey", opts());
    expect(rung(c, "banner")?.status).toBe("ok");
    expect(rung(c, "auth")?.detail).toMatch(/^AUTH_FAILED/);
    expect(c.some((x) => x.name.startsWith("fallback"))).toBe(false);
  });
});
