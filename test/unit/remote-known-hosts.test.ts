import { createHmac, randomBytes, generateKeyPairSync } from "node:crypto";
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { blobType, hostFieldMatches, knownHostsName, parseKnownHosts, preferredAlgorithms, verifyKey } from "../../src/remote/knownHosts.js";
import { parseHostSpec, parseSshG } from "../../src/remote/resolve.js";
import { CappedBuffer, wrapCommand } from "../../src/remote/exec.js";

function sshBlob(type: string, body: Buffer): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  const blen = Buffer.alloc(4);
  blen.writeUInt32BE(body.length);
  return Buffer.concat([len, t, blen, body]);
}
const keyA = sshBlob("ssh-ed25519", randomBytes(32));
const keyB = sshBlob("ssh-ed25519", randomBytes(32));
const rsa = sshBlob("ssh-rsa", randomBytes(64));

function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update(name).digest("base64")}`;
}

describe("known_hosts names and matching", () => {
  it("uses [host]:port for non-22 ports and the bare host for 22", () => {
    expect(knownHostsName("10.0.0.5", 22)).toBe("10.0.0.5");
    expect(knownHostsName("connect.westb.seetacloud.com", 41234)).toBe("[connect.westb.seetacloud.com]:41234");
  });
  it("matches hashed entries only for the exact name", () => {
    const h = hashed("[127.0.0.1]:2222");
    expect(hostFieldMatches(h, "[127.0.0.1]:2222")).toBe(true);
    expect(hostFieldMatches(h, "[127.0.0.1]:2223")).toBe(false);
    expect(hostFieldMatches(h, "127.0.0.1")).toBe(false);
  });
  it("handles comma lists, wildcards and negation", () => {
    expect(hostFieldMatches("a.example.com,b.example.com", "b.example.com")).toBe(true);
    expect(hostFieldMatches("*.example.com,!bad.example.com", "ok.example.com")).toBe(true);
    expect(hostFieldMatches("*.example.com,!bad.example.com", "bad.example.com")).toBe(false);
    expect(hostFieldMatches("[10.0.0.?]:22*", "[10.0.0.7]:2201")).toBe(true);
  });
});

describe("verifyKey", () => {
  const file = [
    "# comment",
    `${hashed("[127.0.0.1]:2222")} ssh-ed25519 ${keyA.toString("base64")}`,
    `other.example.com ssh-ed25519 ${keyB.toString("base64")}`,
    `@revoked [127.0.0.1]:2222 ssh-ed25519 ${keyB.toString("base64")}`,
    `@cert-authority *.example.com ssh-ed25519 ${keyA.toString("base64")}`,
  ].join("\n");
  const known = parseKnownHosts(file, "/kh", "[127.0.0.1]:2222");

  it("accepts the recorded key", () => {
    expect(verifyKey(keyA, known).kind).toBe("match");
  });
  it("reports a different key as changed, naming the recorded line", () => {
    const v = verifyKey(sshBlob("ssh-ed25519", randomBytes(32)), known);
    expect(v.kind).toBe("changed");
    if (v.kind === "changed") expect(v.known[0].line).toBe(2);
  });
  it("flags a revoked key even though it is listed", () => {
    expect(verifyKey(keyB, known).kind).toBe("revoked");
  });
  it("reports unknown when no line names the host (cert-authority lines never vouch)", () => {
    expect(verifyKey(keyA, parseKnownHosts(file, "/kh", "[127.0.0.1]:9999")).kind).toBe("unknown");
    expect(verifyKey(keyA, parseKnownHosts(file, "/kh", "x.example.com")).kind).toBe("unknown");
  });
  it("orders host key algorithms after the known key types", () => {
    const k = parseKnownHosts(`h ssh-rsa ${rsa.toString("base64")}\nh ssh-ed25519 ${keyA.toString("base64")}`, "/kh", "h");
    expect(preferredAlgorithms(k)).toEqual(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", "ssh-ed25519"]);
    expect(blobType(rsa)).toBe("ssh-rsa");
  });
  it("parses a real OpenSSH public key blob type", () => {
    const { publicKey } = generateKeyPairSync("ed25519");
    const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
    expect(blobType(sshBlob("ssh-ed25519", raw))).toBe("ssh-ed25519");
  });
});

describe("host specs", () => {
  it("accepts aliases and user@host:port", () => {
    expect(parseHostSpec("autodl-1")).toEqual({ host: "autodl-1", user: undefined, port: undefined });
    expect(parseHostSpec("root@connect.westb.seetacloud.com:41234")).toEqual({ host: "connect.westb.seetacloud.com", user: "root", port: 41234 });
    expect(parseHostSpec("root@[::1]:22")).toEqual({ host: "::1", user: "root", port: 22 });
  });
  it("refuses option smuggling and junk with BAD_INPUT", () => {
    for (const bad of ["-oProxyCommand=touch /tmp/x", "a b", "host;rm -rf /", "", "h:99999"]) {
      expect(() => parseHostSpec(bad)).toThrowError(/BAD_INPUT/);
    }
  });
  it("parses ssh -G output into a multimap", () => {
    const g = parseSshG("user root\nhostname 127.0.0.1\nidentityfile ~/.ssh/a\nidentityfile ~/.ssh/b\nproxyjump jump1,jump2\n");
    expect(g.get("identityfile")).toEqual(["~/.ssh/a", "~/.ssh/b"]);
    expect(g.get("proxyjump")?.[0]).toBe("jump1,jump2");
  });
});

describe("bounded output", () => {
  it("keeps head and tail and marks truncation", () => {
    const b = new CappedBuffer(100);
    for (let i = 0; i < 50; i++) b.push(Buffer.from(`line${String(i).padStart(3, "0")}\n`));
    const s = b.toString();
    expect(b.truncated).toBe(true);
    expect(s.startsWith("line000")).toBe(true);
    expect(s.trimEnd().endsWith("line049")).toBe(true);
    expect(s).toContain("[output truncated]");
    expect(Buffer.byteLength(s)).toBeLessThan(160);
  });
  it("wraps a command so it runs as its own process group, reports it first, and keeps quoting and exit status", () => {
    const cmd = `echo "$1-'a b'" $HOME | tr a-z A-Z; echo "pg=$(ps -o pgid= -p $$ | tr -d ' ')" >&2; exit 7`;
    const r = spawnSync("bash", ["-c", wrapCommand(cmd)], { encoding: "utf8" });
    expect(r.status).toBe(7);
    expect(r.stdout.trim()).toBe(`-'A B' ${(process.env.HOME ?? "").toUpperCase()}`);
    const m = /^__RGT_PGID__ (\d+)\npg=(\d+)/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    expect(m![1]).toBe(m![2]);
  });
});
