/**
 * `ssh -G` as Windows OpenSSH prints it (CRLF lines, C:\ paths with mixed separators, ~ and %USERPROFILE%,
 * the __PROGRAMDATA__ placeholder for the global known_hosts, the agent's named pipe) turned into the same
 * ResolvedHost the Linux layout gives. Fixtures only: nothing here runs on Windows.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { expandSshPath, hostFromSshG, sshBinary, type PathContext } from "../../src/remote/resolve.js";
import { loadKnownKeys } from "../../src/remote/knownHosts.js";

const fixture = (n: string) => fs.readFileSync(path.join(__dirname, "..", "fixtures", "ssh-G", n), "utf8");
const win: PathContext = {
  platform: "win32",
  home: "C:\\Users\\alice",
  user: "alice",
  env: { USERPROFILE: "C:\\Users\\alice", ProgramData: "C:\\ProgramData", APPDATA: "C:\\Users\\alice\\AppData\\Roaming" },
  exists: () => true,
};
const linux: PathContext = { platform: "linux", home: "/home/alice", user: "alice", env: { XDG: "/x" }, exists: () => true };

describe("expandSshPath", () => {
  it.each([
    ["~", "C:\\Users\\alice"],
    ["~/.ssh/id_ed25519", "C:\\Users\\alice\\.ssh\\id_ed25519"],
    ["~\\.ssh\\id_ed25519", "C:\\Users\\alice\\.ssh\\id_ed25519"],
    ["%USERPROFILE%\\.ssh\\k", "C:\\Users\\alice\\.ssh\\k"],
    ["%userprofile%/.ssh/k", "C:\\Users\\alice\\.ssh\\k"],
    ["%d/.ssh/k", "C:\\Users\\alice\\.ssh\\k"],
    ["${APPDATA}\\keys\\k", "C:\\Users\\alice\\AppData\\Roaming\\keys\\k"],
    ["__PROGRAMDATA__\\ssh/ssh_known_hosts", "C:\\ProgramData\\ssh\\ssh_known_hosts"],
    ["C:\\Users\\alice/.ssh/known_hosts", "C:\\Users\\alice\\.ssh\\known_hosts"],
    ["\"C:\\Users\\alice\\My Keys\\id\"", "C:\\Users\\alice\\My Keys\\id"],
    ["%NOPE%\\k", "%NOPE%\\k"],
  ])("windows: %s → %s", (raw, want) => {
    expect(expandSshPath(raw, win)).toBe(want);
  });

  it("linux keeps its own rules: ~, %d, %u, ${VAR}, no %VAR%", () => {
    expect(expandSshPath("~/.ssh/id", linux)).toBe("/home/alice/.ssh/id");
    expect(expandSshPath("%d/.ssh/%u.key", linux)).toBe("/home/alice/.ssh/alice.key");
    expect(expandSshPath("${XDG}/k", linux)).toBe("/x/k");
    expect(expandSshPath("%%HOME%%", linux)).toBe("%HOME%");
    expect(expandSshPath("/etc/ssh/ssh_known_hosts", linux)).toBe("/etc/ssh/ssh_known_hosts");
  });

  it("names the ssh binary per platform", () => {
    expect(sshBinary("win32")).toBe("ssh.exe");
    expect(sshBinary("linux")).toBe("ssh");
    expect(sshBinary("darwin")).toBe("ssh");
  });
});

describe("hostFromSshG on Windows OpenSSH output", () => {
  it("an AutoDL alias with unexpanded paths: identities, both known_hosts sets, the agent pipe, no stray \\r", () => {
    const h = hostFromSshG(fixture("windows-autodl.txt"), "autodl-1", {}, win);
    expect(h.hostname).toBe("connect.westb.seetacloud.com");
    expect(h.port).toBe(41234);
    expect(h.user).toBe("root");
    expect(h.identityFiles).toEqual([
      "C:\\Users\\alice\\.ssh\\id_rsa",
      "C:\\Users\\alice\\.ssh\\id_ed25519",
      "C:\\Users\\alice\\.ssh\\work_ed25519",
      "C:\\Users\\alice\\.ssh\\lab_ed25519",
      "C:\\Users\\alice\\.ssh\\d_token_key",
      "C:\\Users\\alice\\My Keys\\id_spaced",
    ]);
    expect(h.userKnownHostsFiles).toEqual(["C:\\Users\\alice\\.ssh\\known_hosts", "C:\\Users\\alice\\.ssh\\known_hosts2"]);
    expect(h.globalKnownHostsFiles).toEqual(["C:\\ProgramData\\ssh\\ssh_known_hosts", "C:\\ProgramData\\ssh\\ssh_known_hosts2"]);
    expect(h.identityAgent).toBe("\\\\.\\pipe\\openssh-ssh-agent");
    expect(h.connectTimeoutMs).toBe(10_000);
    expect(h.strictHostKeyChecking).toBe("ask");
    expect(JSON.stringify(h)).not.toContain("\\r");
  });

  it("already-expanded paths with mixed separators and a quoted path with spaces; missing identity files skipped", () => {
    const h = hostFromSshG(fixture("windows-expanded.txt"), "box", {}, { ...win, exists: (p) => !p.includes("id_ecdsa") });
    expect(h.identityFiles).toEqual([]);
    expect(h.userKnownHostsFiles).toEqual(["C:\\Users\\alice\\.ssh\\known_hosts", "C:\\Users\\alice\\OneDrive - Acme\\ssh\\known_hosts"]);
    expect(h.globalKnownHostsFiles).toEqual(["C:\\ProgramData\\ssh\\ssh_known_hosts"]);
    expect(h.proxyJump).toBe("bastion");
    expect(h.identityAgent).toBe("none");
    expect(h.connectTimeoutMs).toBe(7000);
    expect(h.strictHostKeyChecking).toBe("accept-new");
    expect(h.key).toBe("alice@10.0.0.7:22 via bastion");
  });

  it("a known_hosts file written with CRLF line ends still vouches for its keys", () => {
    const dir = fs.mkdtempSync(path.join(require("node:os").tmpdir(), "kh-crlf-"));
    const f = path.join(dir, "known_hosts");
    const blob = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from("ssh-ed25519"), Buffer.from([0, 0, 0, 32]), Buffer.alloc(32, 7)]).toString("base64");
    fs.writeFileSync(f, `# made on Windows\r\n[connect.westb.seetacloud.com]:41234 ssh-ed25519 ${blob}\r\n`);
    const keys = loadKnownKeys([f], "[connect.westb.seetacloud.com]:41234");
    expect(keys).toHaveLength(1);
    expect(keys[0].type).toBe("ssh-ed25519");
    fs.rmSync(dir, { recursive: true });
  });
});
