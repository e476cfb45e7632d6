/** Connection diagnosis, pure parts: address classes, banners, route tables, the one line. Nothing is dialled. */
import { describe, expect, it } from "vitest";
import { classifyAddress, classifyBanner, diagnosisLine, proxyVariables, tunDefaultRoute, tunFromRouteGet, tunFromWindowsRoutePrint } from "../../src/remote/diagnose.js";

describe("classifyAddress", () => {
  it.each([
    ["198.18.0.1", "fake-ip"], ["198.19.255.254", "fake-ip"], ["198.20.0.1", "public"], ["198.17.255.255", "public"],
    ["127.0.0.1", "loopback"], ["127.8.9.10", "loopback"], ["::1", "loopback"],
    ["10.1.2.3", "private"], ["172.16.0.1", "private"], ["172.31.255.255", "private"], ["172.32.0.1", "public"], ["192.168.1.1", "private"],
    ["100.64.0.1", "cgnat"], ["100.127.255.255", "cgnat"], ["100.128.0.1", "public"],
    ["169.254.1.1", "link-local"], ["fe80::1", "link-local"],
    ["fd12:3456::1", "ula"], ["fc00:4000::1", "ula"], ["fc00::1", "fake-ip"], ["fc00:3fff::1", "fake-ip"],
    ["224.0.0.1", "multicast"], ["ff02::1", "multicast"], ["0.0.0.0", "unspecified"], ["::", "unspecified"],
    ["192.0.2.10", "documentation"], ["2001:db8::5", "documentation"],
    ["8.8.8.8", "public"], ["2606:4700::1111", "public"], ["::ffff:198.18.3.4", "fake-ip"], ["::ffff:8.8.8.8", "public"],
    ["not-an-ip", "invalid"], ["999.1.1.1", "invalid"],
  ])("%s is %s", (ip, kind) => {
    expect(classifyAddress(ip).kind).toBe(kind);
  });
});

describe("classifyBanner", () => {
  it("tells SSH, HTTP, TLS, other and nothing apart", () => {
    expect(classifyBanner("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")).toEqual({ kind: "ssh", text: "SSH-2.0-OpenSSH_9.2p1 Debian-2" });
    expect(classifyBanner("a greeting line\r\nSSH-2.0-dropbear\r\n").kind).toBe("ssh");
    expect(classifyBanner("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").kind).toBe("http");
    expect(classifyBanner("<html><body>hi</body></html>").kind).toBe("http");
    expect(classifyBanner(Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x32])).kind).toBe("tls");
    expect(classifyBanner("220 mail.example ESMTP\r\n")).toEqual({ kind: "other", text: "220 mail.example ESMTP" });
    expect(classifyBanner(Buffer.alloc(0)).kind).toBe("none");
    expect(classifyBanner(undefined).kind).toBe("none");
  });
});

describe("route tables", () => {
  const header = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";
  it("finds a default route through a TUN device in /proc/net/route, and not an ordinary one", () => {
    expect(tunDefaultRoute(`${header}eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n`)).toBeUndefined();
    expect(tunDefaultRoute(`${header}eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\ntun0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n`)).toBe("tun0");
    // split default (0/1 + 128/1), as some VPN and proxy tools install it
    expect(tunDefaultRoute(`${header}utun3\t00000000\t00000000\t0001\t0\t0\t0\t00000080\t0\t0\t0\nutun3\t00000080\t00000000\t0001\t0\t0\t0\t00000080\t0\t0\t0\n`)).toBe("utun3");
    expect(tunDefaultRoute(`${header}Meta\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n`)).toBe("Meta");
    expect(tunDefaultRoute(`${header}tun0\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n`)).toBeUndefined();
  });
  it("reads Windows `route print -4 0.0.0.0`: the lowest-metric default through a fake-IP adapter is a proxy's TUN", () => {
    const head = "===========================================================================\r\nIPv4 Route Table\r\n===========================================================================\r\nActive Routes:\r\nNetwork Destination        Netmask          Gateway       Interface  Metric\r\n";
    const lan = "          0.0.0.0          0.0.0.0      192.168.1.1    192.168.1.23     35\r\n";
    const tun = "          0.0.0.0          0.0.0.0      198.18.0.2       198.18.0.1      0\r\n";
    expect(tunFromWindowsRoutePrint(head + lan + tun + "===\r\nPersistent Routes:\r\n  None\r\n")).toBe("the adapter 198.18.0.1");
    expect(tunFromWindowsRoutePrint(head + lan)).toBeUndefined();
    expect(tunFromWindowsRoutePrint(head + lan.replace("35", "1") + tun.replace(/0\r\n$/, "50\r\n"))).toBeUndefined();
  });

  it("reads macOS `route -n get default`", () => {
    expect(tunFromRouteGet("   route to: default\ndestination: default\n  interface: utun4\n")).toBe("utun4");
    expect(tunFromRouteGet("   route to: default\n  interface: en0\n")).toBeUndefined();
  });
});

describe("proxy variables", () => {
  it("names the set ones, never their values", () => {
    const v = proxyVariables({ HTTPS_PROXY: "http://user:pw@127.0.0.1:7890", ALL_PROXY: "", http_proxy: "x" });
    expect(v).toEqual(["HTTPS_PROXY", "http_proxy"]);
    expect(v.join(" ")).not.toContain("pw");
  });
});

describe("diagnosisLine", () => {
  it("puts a fake-IP answer first, then the route and proxy facts", () => {
    const l = diagnosisLine({ hostname: "connect.westb.example.com", port: 41234, address: "198.18.0.27", stage: "SSH banner", outcome: "timeout", tunIface: "utun3", proxyVars: ["HTTPS_PROXY"] });
    expect(l).toMatch(/^connect\.westb\.example\.com resolved to 198\.18\.0\.27, the fake-IP range/);
    expect(l).toContain("no SSH banner");
    expect(l).toContain("utun3");
    expect(l).toContain("HTTPS_PROXY");
    expect(l.length).toBeLessThanOrEqual(400);
  });
  it("names a non-SSH service on the port", () => {
    expect(diagnosisLine({ hostname: "h", port: 80, address: "1.2.3.4", stage: "key exchange", outcome: "closed", firstBytes: Buffer.from("HTTP/1.1 400 Bad Request\r\n") })).toMatch(/answered with HTTP, not SSH/);
  });
  it("a refused port, an unanswered SYN, an auth failure and a failing jump host each say their own thing", () => {
    expect(diagnosisLine({ hostname: "127.0.0.1", port: 9, address: "127.0.0.1", stage: "TCP connect", outcome: "refused" })).toMatch(/nothing listens on port 9/);
    expect(diagnosisLine({ hostname: "10.0.0.5", port: 22, address: "10.0.0.5", stage: "TCP connect", outcome: "timeout" })).toMatch(/no TCP answer from 10\.0\.0\.5.*private/);
    expect(diagnosisLine({ hostname: "h", port: 22, address: "1.2.3.4", stage: "authentication", outcome: "auth", firstBytes: Buffer.from("SSH-2.0-OpenSSH_9.2\r\n") })).toMatch(/path and the ssh server are fine \(SSH-2\.0-OpenSSH_9\.2\): only the keys/);
    expect(diagnosisLine({ hostname: "t", port: 22, via: "jump host j1" })).toMatch(/^the route failed at jump host j1, before the target t:22/);
  });
  it("carries a platform hint passed in from above", () => {
    expect(diagnosisLine({ hostname: "h", port: 2222, outcome: "refused", hint: "AutoDL gives a re-created instance a new port" })).toContain("AutoDL gives");
  });
});
