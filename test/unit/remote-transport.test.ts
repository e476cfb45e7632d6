/** The cipher order an OpenSSH transport (rsync -e) offers: AES-GCM first on AES-capable CPUs, never another set. */
import { describe, expect, it } from "vitest";
import { hostFromSshG, transportCiphers } from "../../src/remote/resolve.js";

const DEFAULT = "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com";

describe("transportCiphers", () => {
  it("moves AES-GCM to the front of OpenSSH's default list, keeping every other cipher", () => {
    const out = transportCiphers(DEFAULT.split(","), true)!;
    expect(out.split(",").slice(0, 2)).toEqual(["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]);
    expect(out.split(",").sort()).toEqual(DEFAULT.split(",").sort());
  });
  it("leaves the order alone without AES instructions, when GCM is not allowed, or when it is first already", () => {
    expect(transportCiphers(DEFAULT.split(","), false)).toBeUndefined();
    expect(transportCiphers(["chacha20-poly1305@openssh.com", "aes256-ctr"], true)).toBeUndefined();
    expect(transportCiphers(["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"], true)).toBeUndefined();
    expect(transportCiphers(undefined, true)).toBeUndefined();
  });
  it("a config that allows only aes256-gcm among the GCM pair gets that one first, nothing added", () => {
    expect(transportCiphers(["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"], true)).toBe("aes256-gcm@openssh.com,chacha20-poly1305@openssh.com");
  });
  it("ssh -G's ciphers line is read into the resolved host", () => {
    const h = hostFromSshG(`hostname 10.0.0.7\nport 22\nuser root\nciphers ${DEFAULT}\n`, "box", {}, { platform: "linux", home: "/h", user: "u", env: {}, exists: () => true });
    expect(h.ciphers).toEqual(DEFAULT.split(","));
  });
});
