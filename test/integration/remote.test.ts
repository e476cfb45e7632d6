/**
 * The SSH core against real OpenSSH sshd boxes on loopback: pooling, bounded exec that kills its process
 * group on the box, host-key policy (unknown, changed, hashed, accept-new), auth failures, closed ports,
 * ProxyJump, and reconnect after a dropped connection.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { RefusalError } from "../../src/common/result.js";
import { SshRemote } from "../../src/remote/pool.js";

let lab: Lab;
let dir: string;

function refusalCode(e: unknown): string {
  return e instanceof RefusalError ? e.refusal.code : `not a refusal: ${String(e)}`;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try { await p; return "no error"; } catch (e) { return refusalCode(e); }
}

/** Append Host blocks to a copy of the lab's ssh config. */
function configWith(extra: string): string {
  const f = path.join(dir, `cfg-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(f, `${extra}\n\n${fs.readFileSync(lab.sshConfig, "utf8")}`);
  return f;
}

beforeAll(async () => {
  lab = await startLab([{ name: "r1", gpus: 1 }, { name: "r2", gpus: 0 }]);
  dir = fs.mkdtempSync(path.join(lab.env.RGT_HOME!, "remote-test-"));
});
afterAll(async () => { await lab?.stop(); });

describe("exec on a pooled connection", () => {
  it("runs commands, returns exit codes and both streams, and reuses one connection", async () => {
    const r = new SshRemote({ sshConfig: lab.sshConfig });
    try {
      const a = await r.exec("r1", "echo out; echo err >&2; echo $SSH_CONNECTION; exit 3");
      expect(a.exitCode).toBe(3);
      expect(a.stdout.split("\n")[0]).toBe("out");
      expect(a.stderr.trim()).toBe("err");
      const b = await r.exec("r1", "echo $SSH_CONNECTION");
      // same client source port => same TCP connection
      expect(b.stdout.trim().split(" ")[1]).toBe(a.stdout.split("\n")[1].split(" ")[1]);
      const many = await Promise.all(Array.from({ length: 8 }, (_, i) => r.exec("r1", `echo ${i}`)));
      expect(many.map((m) => m.stdout.trim())).toEqual(["0", "1", "2", "3", "4", "5", "6", "7"]);
    } finally { await r.close(); }
  });

  it("runs 24 commands at once on one connection although sshd allows 10 sessions per connection", async () => {
    const r = new SshRemote({ sshConfig: lab.sshConfig });
    try {
      await r.exec("r1", "true");
      // the box really refuses an 11th channel on one connection (OpenSSH's MaxSessions default) …
      const { client } = await r.connection("r1");
      const raw = await Promise.all(Array.from({ length: 13 }, () => new Promise<string>((res) => client.exec("sleep 1", (err, ch) => {
        if (err) return res(err.message);
        ch.on("close", () => res("ok")); ch.resume(); ch.stderr.resume(); ch.end();
      }))));
      expect(raw.filter((x) => x !== "ok").length).toBeGreaterThan(0);
      // … and the pool queues instead of failing or mistaking the refusal for a dead box
      const many = await Promise.all(Array.from({ length: 24 }, (_, i) => r.exec("r1", `sleep 0.3; echo ${i}`)));
      expect(many.map((m) => Number(m.stdout.trim()))).toEqual(Array.from({ length: 24 }, (_, i) => i));
    } finally { await r.close(); }
  });

  it("kills the command's whole process group on the box when it outlives its timeout", async () => {
    const r = new SshRemote({ sshConfig: lab.sshConfig });
    try {
      const t0 = Date.now();
      const res = await r.exec("r1", "sleep 313 & sleep 314; echo never", { timeoutMs: 1500 });
      expect(res.timedOut).toBe(true);
      expect(res.stdout).not.toContain("never");
      expect(Date.now() - t0).toBeLessThan(8000);
      const left = await lab.boxes.r1.exec("pgrep -f 'sleep 31[34]' || true");
      expect(left.stdout.trim()).toBe("");
      // the connection still serves the next call
      expect((await r.exec("r1", "echo alive")).stdout.trim()).toBe("alive");
    } finally { await r.close(); }
  });

  it("caps output, keeping head and tail", async () => {
    const r = new SshRemote({ sshConfig: lab.sshConfig });
    try {
      const res = await r.exec("r1", "seq 1 200000", { maxOutputBytes: 4000 });
      expect(res.truncated).toBe(true);
      expect(res.stdout.startsWith("1\n2\n")).toBe(true);
      expect(res.stdout.trimEnd().endsWith("200000")).toBe(true);
      expect(res.stdout.length).toBeLessThan(4200);
    } finally { await r.close(); }
  });

  it("streams a script over stdin with env exported from stdin, never on the command line", async () => {
    const r = new SshRemote({ sshConfig: lab.sshConfig, scriptsDir: dir });
    fs.writeFileSync(path.join(dir, "t.sh"), 'echo "arg=$1 env=$RGT_X"; ps -eo args | grep -c "[s]ecret-marker-value" || true\n');
    try {
      const res = await r.runScript("r1", "t.sh", ["a b"], { env: { RGT_X: "secret-marker-value" } });
      expect(res.stdout.split("\n")[0]).toBe("arg=a b env=secret-marker-value");
      expect(res.stdout.split("\n")[1]).toBe("0");
      await expect(r.runScript("r1", "../etc/passwd")).rejects.toThrow(/BAD_INPUT/);
    } finally { await r.close(); }
  });
});

describe("pool lifecycle", () => {
  it("reaps an idle connection (the box sees the session end) and reconnects on the next call", async () => {
    const r = new SshRemote({ sshConfig: lab.sshConfig, idleMs: 400 });
    const sessions = async () => Number((await lab.boxes.r2.exec("pgrep -c -f '^sshd: root' || true")).stdout.trim() || "0");
    try {
      expect((await r.exec("r2", "echo up")).stdout.trim()).toBe("up");
      expect(await sessions()).toBeGreaterThanOrEqual(1);
      const t0 = Date.now();
      while ((await sessions()) > 0 && Date.now() - t0 < 15_000) await new Promise((res) => setTimeout(res, 250));
      expect(await sessions()).toBe(0);
      expect((await r.exec("r2", "echo again")).stdout.trim()).toBe("again");
    } finally { await r.close(); }
  });
});

describe("login shells that talk", () => {
  it("keeps a noisy ~/.bashrc out of our own shells, and still finds and kills the process group behind it", async () => {
    const lab4 = await startLab([{ name: "rc", gpus: 0 }]);
    await lab4.boxes.rc.writeFile("/root/.bashrc", "echo rc-noise-out; echo rc-noise-err >&2\n");
    const r = new SshRemote({ sshConfig: lab4.sshConfig });
    try {
      const x = await r.exec("rc", "echo hi; echo e >&2; exit 4");
      expect(x.exitCode).toBe(4);
      // Debian's bash reads ~/.bashrc for an ssh command: the login shell does (not ours to stop), ours never
      expect(x.stdout.match(/rc-noise-out/g)?.length ?? 0).toBeLessThanOrEqual(1);
      expect(x.stdout.trim().split("\n").pop()).toBe("hi");
      expect(x.stderr).not.toContain("__RGT_PGID__");
      expect(x.stderr.trim().split("\n").pop()).toBe("e");
      const t = await r.exec("rc", "sleep 297", { timeoutMs: 1000 });
      expect(t.timedOut).toBe(true);
      expect((await lab4.boxes.rc.exec("pgrep -f 'sleep 29[7]' || echo none")).stdout.trim().split("\n").pop()).toBe("none");
    } finally { await r.close(); await lab4.stop(); }
  });
});

describe("host keys", () => {
  it("refuses an unknown host key with HOST_KEY_UNKNOWN", async () => {
    const cfg = configWith(`Host r1-nokey\n  HostName 127.0.0.1\n  Port ${lab.boxes.r1.port}\n  User root\n  IdentityFile ${lab.identity}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${path.join(dir, "empty_known_hosts")}\n  StrictHostKeyChecking yes`);
    const r = new SshRemote({ sshConfig: cfg });
    try { expect(await codeOf(r.exec("r1-nokey", "true"))).toBe("HOST_KEY_UNKNOWN"); } finally { await r.close(); }
  });

  it("accepts and records a new key only where the config says accept-new", async () => {
    const kh = path.join(dir, "acceptnew_known_hosts");
    const cfg = configWith(`Host r1-tofu\n  HostName 127.0.0.1\n  Port ${lab.boxes.r1.port}\n  User root\n  IdentityFile ${lab.identity}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${kh}\n  StrictHostKeyChecking accept-new`);
    const r = new SshRemote({ sshConfig: cfg });
    try {
      expect((await r.exec("r1-tofu", "echo ok")).stdout.trim()).toBe("ok");
      expect(fs.readFileSync(kh, "utf8")).toContain(`[127.0.0.1]:${lab.boxes.r1.port} `);
      // OpenSSH itself accepts what we recorded
      const out = execFileSync("ssh", ["-F", cfg, "-o", "StrictHostKeyChecking=yes", "r1-tofu", "echo fine"], { encoding: "utf8" });
      expect(out.trim()).toBe("fine");
    } finally { await r.close(); }
  });

  it("verifies against hashed known_hosts entries", async () => {
    const kh = path.join(dir, "hashed_known_hosts");
    fs.copyFileSync(lab.knownHosts, kh);
    execFileSync("ssh-keygen", ["-H", "-f", kh], { stdio: "ignore" });
    expect(fs.readFileSync(kh, "utf8")).toMatch(/^\|1\|/m);
    const cfg = configWith(`Host r1-hashed\n  HostName 127.0.0.1\n  Port ${lab.boxes.r1.port}\n  User root\n  IdentityFile ${lab.identity}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${kh}\n  StrictHostKeyChecking yes`);
    const r = new SshRemote({ sshConfig: cfg });
    try { expect((await r.exec("r1-hashed", "echo ok")).stdout.trim()).toBe("ok"); } finally { await r.close(); }
  });
});

describe("failures are structured and bounded", () => {
  it("a closed port is UNREACHABLE quickly", async () => {
    const net = await import("node:net");
    const port: number = await new Promise((res) => { const s = net.createServer().listen(0, "127.0.0.1", () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); }); });
    const r = new SshRemote({ sshConfig: lab.sshConfig });
    const t0 = Date.now();
    try { expect(await codeOf(r.exec(`root@127.0.0.1:${port}`, "true"))).toBe("UNREACHABLE"); } finally { await r.close(); }
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("a key the box does not know is AUTH_FAILED naming the key", async () => {
    const other = path.join(dir, "other_ed25519");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
    const cfg = configWith(`Host r1-wrongkey\n  HostName 127.0.0.1\n  Port ${lab.boxes.r1.port}\n  User root\n  IdentityFile ${other}\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile ${lab.knownHosts}`);
    const r = new SshRemote({ sshConfig: cfg });
    try {
      const e = await r.exec("r1-wrongkey", "true").catch((x) => x);
      expect(refusalCode(e)).toBe("AUTH_FAILED");
      expect((e as RefusalError).refusal.reason).toContain(other);
    } finally { await r.close(); }
  });

  it("an encrypted key without an agent is AUTH_FAILED naming ssh-add as the fix", async () => {
    const enc = path.join(dir, "enc_ed25519");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "correct horse", "-f", enc]);
    fs.appendFileSync(path.join(dir, "noop"), "");
    const cfg = configWith(`Host r1-enc\n  HostName 127.0.0.1\n  Port ${lab.boxes.r1.port}\n  User root\n  IdentityFile ${enc}\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile ${lab.knownHosts}`);
    const r = new SshRemote({ sshConfig: cfg });
    try {
      const e = await r.exec("r1-enc", "true").catch((x) => x);
      expect(refusalCode(e)).toBe("AUTH_FAILED");
      expect((e as RefusalError).refusal.remedy).toMatch(/ssh-add .*enc_ed25519/);
      expect((e as RefusalError).refusal.remedy).toMatch(/agent/);
    } finally { await r.close(); }
  });

  it("a changed host key (box re-created) is HOST_KEY_CHANGED with the exact ssh-keygen -R remedy", async () => {
    const lab2 = await startLab([{ name: "rot", gpus: 0 }]);
    const r = new SshRemote({ sshConfig: lab2.sshConfig });
    try {
      expect((await r.exec("rot", "echo before")).stdout.trim()).toBe("before");
      await r.close();
      await lab2.boxes.rot.rotateHostKey();
      const e = await r.exec("rot", "true").catch((x) => x);
      expect(refusalCode(e)).toBe("HOST_KEY_CHANGED");
      expect((e as RefusalError).refusal.remedy).toContain(`ssh-keygen -R '[127.0.0.1]:${lab2.boxes.rot.port}'`);
    } finally { await r.close(); await lab2.stop(); }
  });
});

describe("ssh-agent", () => {
  it("authenticates with a passphrase-protected key held by ssh-agent (no passphrase ever reaches the server)", async () => {
    const lab3 = await startLab([{ name: "ag", gpus: 0 }], { encryptedKey: "agent-test-pass" });
    const agentDir = fs.mkdtempSync(path.join(lab3.root, "agent-"));
    const sock = path.join(agentDir, "agent.sock");
    const agent = execFileSync("ssh-agent", ["-a", sock], { encoding: "utf8" });
    const pid = Number(/SSH_AGENT_PID=(\d+)/.exec(agent)![1]);
    const askpass = path.join(agentDir, "askpass.sh");
    fs.writeFileSync(askpass, "#!/bin/sh\necho agent-test-pass\n", { mode: 0o700 });
    const saved = process.env.SSH_AUTH_SOCK;
    try {
      execFileSync("ssh-add", [lab3.encryptedIdentity!], { env: { ...process.env, SSH_AUTH_SOCK: sock, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: "force", DISPLAY: ":0" }, stdio: ["ignore", "pipe", "pipe"] });
      // without the agent the locked alias is refused, naming the agent as the fix
      delete process.env.SSH_AUTH_SOCK;
      const r0 = new SshRemote({ sshConfig: lab3.sshConfig });
      const e = await r0.exec("ag-locked", "true").catch((x) => x);
      await r0.close();
      expect(refusalCode(e)).toBe("AUTH_FAILED");
      process.env.SSH_AUTH_SOCK = sock;
      const r = new SshRemote({ sshConfig: lab3.sshConfig });
      try { expect((await r.exec("ag-locked", "echo via-agent")).stdout.trim()).toBe("via-agent"); } finally { await r.close(); }
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK; else process.env.SSH_AUTH_SOCK = saved;
      try { process.kill(pid); } catch { /* gone */ }
      await lab3.stop();
    }
  });
});

describe("ProxyJump and reconnect", () => {
  it("reaches a box through a jump host (forwardOut)", async () => {
    const cfg = configWith(`Host r2-via-r1\n  HostName 127.0.0.1\n  Port ${lab.boxes.r2.port}\n  User root\n  IdentityFile ${lab.identity}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${lab.knownHosts}\n  StrictHostKeyChecking yes\n  ProxyJump r1`);
    const r = new SshRemote({ sshConfig: cfg });
    try {
      const res = await r.exec("r2-via-r1", "echo $SSH_CONNECTION");
      // r2 sees the connection coming from r1's sshd (a forwarded channel), not from our own socket
      expect(res.exitCode).toBe(0);
      const jumpSide = await lab.boxes.r1.exec("true");
      expect(jumpSide.code).toBe(0);
      expect(res.stdout.trim().split(" ")[2]).toBe("127.0.0.1");
    } finally { await r.close(); }
  });

  it("connects through a ProxyCommand (tokens expanded), and a failing one is UNREACHABLE with its message", async () => {
    const cfg = configWith(`Host r2-via-cmd\n  HostName 127.0.0.1\n  Port ${lab.boxes.r2.port}\n  User root\n  IdentityFile ${lab.identity}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${lab.knownHosts}\n  StrictHostKeyChecking yes\n  ProxyCommand ssh -F ${lab.sshConfig} -W %h:%p r1\n\nHost broken-cmd\n  HostName 127.0.0.1\n  Port ${lab.boxes.r2.port}\n  User root\n  ProxyCommand sh -c 'echo no route to %h >&2; exit 3'`);
    const r = new SshRemote({ sshConfig: cfg });
    try {
      const res = await r.exec("r2-via-cmd", "echo through-proxycommand");
      expect(res.stdout.trim()).toBe("through-proxycommand");
      const e = await r.exec("broken-cmd", "true").catch((x) => x);
      expect(refusalCode(e)).toBe("UNREACHABLE");
      expect((e as RefusalError).refusal.reason).toContain("no route to 127.0.0.1");
    } finally { await r.close(); }
  });

  it("transparently reconnects after the connection drops", async () => {
    const r = new SshRemote({ sshConfig: lab.sshConfig });
    try {
      const a = await r.exec("r1", "echo $SSH_CONNECTION");
      // drop every ssh session on the box (the listener survives): what a flaky link or a box-side sshd restart does
      await lab.boxes.r1.exec("pkill -KILL -f '^sshd: root' || true");
      await new Promise((res) => setTimeout(res, 200));
      const b = await r.exec("r1", "echo $SSH_CONNECTION");
      expect(b.exitCode).toBe(0);
      expect(b.stdout.trim().split(" ")[1]).not.toBe(a.stdout.trim().split(" ")[1]); // a new TCP connection
    } finally { await r.close(); }
  });

  it("a connection cut mid-command by the network is reported as UNREACHABLE, not as a failed command", async () => {
    // past the handshake, auth and the command's start (~6 KB), well inside its 588 KB of output
    const proxy = await lab.cutProxy("r1", { cutAfterBytes: 40_000, maxCuts: 1 });
    const r = new SshRemote({ sshConfig: lab.sshConfig });
    try {
      const e = await r.exec(proxy.alias, "seq 1 100000").catch((x) => x);
      expect(refusalCode(e)).toBe("UNREACHABLE");
      expect(proxy.cuts).toBe(1);
      expect((await r.exec(proxy.alias, "echo back")).stdout.trim()).toBe("back");
    } finally { await r.close(); await proxy.close(); }
  });
});
