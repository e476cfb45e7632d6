/**
 * Why a connection failed, from what this machine can see without asking anyone: the class of the address a
 * name resolved to (a proxy tool's fake-IP range, CGNAT, private, …), proxy variables in the environment, a
 * default route through a TUN device, and what the port said (nothing, an SSH banner, HTTP, TLS). The pure
 * parts come first (tested without dialling); the bounded local reads (route table) and the banner probe
 * follow. The result is one line for a refusal's `diagnosis`.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";

export type AddressClass =
  | "fake-ip" | "loopback" | "private" | "cgnat" | "link-local" | "ula" | "multicast" | "unspecified"
  | "documentation" | "public" | "invalid";

interface Range { cidr: string; kind: AddressClass; note: string }

/**
 * 198.18.0.0/15 is reserved for network benchmarks (RFC 2544) and never routed on the internet, which is why
 * Clash/Mihomo, Surge and sing-box hand out their fake-IP answers from it by default; sing-box's IPv6
 * default sits in fc00::/18, inside the ULA block.
 */
const PRIVATE = "a private (RFC 1918) address, reachable only inside its network or over a VPN";
const DOCS = "a documentation-only address (RFC 5737): copied from an example?";
const V4: Range[] = [
  { cidr: "198.18.0.0/15", kind: "fake-ip", note: "the fake-IP range of proxy tools (Clash/Mihomo, Surge, sing-box): a local proxy answered the DNS query" },
  { cidr: "127.0.0.0/8", kind: "loopback", note: "this machine itself" },
  { cidr: "10.0.0.0/8", kind: "private", note: PRIVATE },
  { cidr: "172.16.0.0/12", kind: "private", note: PRIVATE },
  { cidr: "192.168.0.0/16", kind: "private", note: PRIVATE },
  { cidr: "100.64.0.0/10", kind: "cgnat", note: "a carrier-grade NAT / overlay address (RFC 6598; Tailscale uses it): reachable only through that overlay" },
  { cidr: "169.254.0.0/16", kind: "link-local", note: "a link-local address: only the same network segment reaches it" },
  { cidr: "224.0.0.0/4", kind: "multicast", note: "a multicast address: no ssh server lives there" },
  { cidr: "0.0.0.0/8", kind: "unspecified", note: "not a destination address" },
  { cidr: "192.0.2.0/24", kind: "documentation", note: DOCS },
  { cidr: "198.51.100.0/24", kind: "documentation", note: DOCS },
  { cidr: "203.0.113.0/24", kind: "documentation", note: DOCS },
];

function v4ToInt(ip: string): number {
  return ip.split(".").reduce((a, o) => a * 256 + Number(o), 0);
}

function inV4(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  return Math.floor(v4ToInt(ip) / size) === Math.floor(v4ToInt(base) / size);
}

/** Expand an IPv6 address to its 8 groups (numbers); undefined when it does not parse. */
function v6Groups(ip: string): number[] | undefined {
  if (!net.isIPv6(ip)) return undefined;
  let s = ip.toLowerCase().replace(/%.*$/, "");
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4tail) {
    const n = v4ToInt(v4tail[1]);
    s = s.slice(0, -v4tail[1].length) + `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = s.split("::");
  const h = head ? head.split(":") : [];
  const t = tail !== undefined ? (tail ? tail.split(":") : []) : [];
  const fill = tail !== undefined ? 8 - h.length - t.length : 0;
  return [...h, ...Array(fill).fill("0"), ...t].map((g) => parseInt(g, 16));
}

export function classifyAddress(ip: string): { kind: AddressClass; note: string } {
  if (net.isIPv4(ip)) {
    const hit = V4.find((r) => inV4(ip, r.cidr));
    return hit ? { kind: hit.kind, note: hit.note } : { kind: "public", note: "a public address" };
  }
  const g = v6Groups(ip);
  if (!g) return { kind: "invalid", note: "not an IP address" };
  if (g.every((x) => x === 0)) return { kind: "unspecified", note: "not a destination address" };
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return { kind: "loopback", note: "this machine itself" };
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return classifyAddress(`${g[6] >> 8}.${g[6] & 255}.${g[7] >> 8}.${g[7] & 255}`);
  if (g[0] === 0xfc00 && (g[1] & 0xc000) === 0) {
    return { kind: "fake-ip", note: "inside fc00::/18, the IPv6 fake-IP default of sing-box: a local proxy may have answered the DNS query" };
  }
  if ((g[0] & 0xfe00) === 0xfc00) return { kind: "ula", note: "a unique-local IPv6 address (fc00::/7): reachable only inside its network or over a VPN" };
  if ((g[0] & 0xffc0) === 0xfe80) return { kind: "link-local", note: "a link-local address: only the same network segment reaches it" };
  if ((g[0] & 0xff00) === 0xff00) return { kind: "multicast", note: "a multicast address: no ssh server lives there" };
  if (g[0] === 0x2001 && g[1] === 0x0db8) return { kind: "documentation", note: "a documentation-only address (2001:db8::/32): copied from an example?" };
  return { kind: "public", note: "a public address" };
}

/** Names (never values: they may carry credentials) of the proxy variables set in env. */
export function proxyVariables(env: NodeJS.ProcessEnv = process.env): string[] {
  const names = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"];
  return names.filter((n) => (env[n] ?? "").trim() !== "");
}

/** TUN-like interface names used by VPNs and proxy tools in TUN mode. */
const TUN_IFACE = /^(tun|utun|tap|wg|clash|mihomo|meta|sing|singbox|sing-box|nekoray|v2ray|xray|Wintun)/i;

/** From /proc/net/route text: the interface of a default route (destination 0, mask 0) that is a TUN device. */
export function tunDefaultRoute(procNetRoute: string): string | undefined {
  for (const line of procNetRoute.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dest, , , , , , mask] = f;
    if (dest === "00000000" && (mask === "00000000" || mask === undefined) && TUN_IFACE.test(iface)) return iface;
    // tools that split the default in two halves (0/1 and 128/1) to win over the real default route
    if ((dest === "00000000" || dest === "00000080") && mask === "00000080" && TUN_IFACE.test(iface)) return iface;
  }
  return undefined;
}

/** From `route -n get default` (macOS/BSD): the interface when it is a TUN device. */
export function tunFromRouteGet(text: string): string | undefined {
  const m = /interface:\s*(\S+)/.exec(text);
  return m && TUN_IFACE.test(m[1]) ? m[1] : undefined;
}

/**
 * From Windows `route print -4 0.0.0.0`: a default route whose interface address sits in the fake-IP range is a
 * proxy tool's TUN adapter (Clash/Mihomo and sing-box give theirs an address there); the route with the lowest
 * metric wins, as Windows picks it.
 */
export function tunFromWindowsRoutePrint(text: string): string | undefined {
  const rows = text.split(/\r?\n/).map((l) => l.trim().split(/\s+/)).filter((f) => f.length === 5 && f[0] === "0.0.0.0" && f[1] === "0.0.0.0" && net.isIPv4(f[3]));
  rows.sort((a, b) => Number(a[4]) - Number(b[4]));
  const best = rows[0];
  return best && classifyAddress(best[3]).kind === "fake-ip" ? `the adapter ${best[3]}` : undefined;
}

export type BannerKind = "ssh" | "http" | "tls" | "other" | "none";

/** What the first bytes a port sent are. */
export function classifyBanner(first: Buffer | string | undefined): { kind: BannerKind; text: string } {
  const b = first === undefined ? Buffer.alloc(0) : Buffer.isBuffer(first) ? first : Buffer.from(first);
  if (!b.length) return { kind: "none", text: "" };
  const text = b.subarray(0, 120).toString("latin1").replace(/[^\x20-\x7e]+/g, " ").trim().slice(0, 60);
  if (b[0] === 0x16 || b[0] === 0x15) return { kind: "tls", text: "TLS record" };
  const s = b.toString("latin1");
  if (/(^|\n)SSH-\d\.\d+-/.test(s)) return { kind: "ssh", text: /SSH-[^\r\n]*/.exec(s)![0].slice(0, 60) };
  if (/^HTTP\/\d|^<(!doctype|html)|^[A-Z]+ \/ HTTP/i.test(s)) return { kind: "http", text };
  return { kind: "other", text };
}

// ---- bounded local reads ----

/** Read-only look at the default route: the TUN interface carrying it, if any. Bounded, never throws. */
export function readTunRoute(): string | undefined {
  try {
    if (process.platform === "linux") return tunDefaultRoute(fs.readFileSync("/proc/net/route", "utf8"));
    const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: "utf8", timeout: 1500, stdio: ["ignore", "pipe", "ignore"], windowsHide: true });
    if (process.platform === "darwin") return tunFromRouteGet(run("route", ["-n", "get", "default"]));
    if (process.platform === "win32") return tunFromWindowsRoutePrint(run("route", ["print", "-4", "0.0.0.0"]));
  } catch { /* no route table to read */ }
  return undefined;
}

export interface PortProbe {
  tcp: "open" | "refused" | "timeout" | "error";
  /** the address actually dialled */
  address?: string;
  banner: BannerKind;
  bannerText?: string;
  error?: string;
  ms: number;
}

/** Dial host:port, wait up to bannerMs for the first bytes. The whole probe is bounded by connectMs + bannerMs. */
export function probePort(host: string, port: number, connectMs: number, bannerMs: number): Promise<PortProbe> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let got = Buffer.alloc(0);
    let settled = false;
    let timer = setTimeout(() => end({ tcp: "timeout", banner: "none" }), connectMs);
    const end = (p: Omit<PortProbe, "ms">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ ...p, ms: Date.now() - t0 });
    };
    sock.on("connect", () => {
      clearTimeout(timer);
      timer = setTimeout(() => end({ tcp: "open", address: sock.remoteAddress, ...bannerOf(got) }), bannerMs);
      // an HTTP server says nothing until asked: after a short silence, ask in a way an SSH server ignores
      setTimeout(() => { if (!settled && !got.length) sock.write("SSH-2.0-rgt_probe\r\n"); }, Math.min(1000, bannerMs / 2)).unref();
    });
    const bannerOf = (b: Buffer) => { const c = classifyBanner(b); return { banner: c.kind, ...(c.text ? { bannerText: c.text } : {}) }; };
    sock.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]).subarray(0, 512);
      if (got.includes(0x0a) || got.length >= 256 || got[0] === 0x16) end({ tcp: "open", address: sock.remoteAddress, ...bannerOf(got) });
    });
    sock.on("close", () => end({ tcp: "open", address: sock.remoteAddress, ...bannerOf(got) }));
    sock.on("error", (e: Error & { code?: string }) => {
      if (e.code === "ECONNREFUSED") end({ tcp: "refused", banner: "none", error: e.code });
      else end({ tcp: sock.remoteAddress ? "open" : "error", banner: "none", error: e.code ?? e.message });
    });
  });
}

// ---- the one line ----

export interface ConnectFacts {
  hostname: string;
  port: number;
  /** the stage that failed or hung */
  stage?: string;
  /** how it failed: refused (RST), timeout (no answer), closed (the peer hung up), auth (keys refused), dns */
  outcome?: "refused" | "timeout" | "closed" | "auth" | "dns";
  /** the address dialled (or resolved) */
  address?: string;
  /** first bytes the port sent */
  firstBytes?: Buffer;
  /** the failing part of the route (jump host alias or the ProxyCommand) */
  via?: string;
  proxyVars?: string[];
  tunIface?: string;
  /** platform knowledge passed in by the caller (e.g. "ports move on restart") */
  hint?: string;
}

/** One line saying what the failure most likely means, most specific fact first. */
export function diagnosisLine(f: ConnectFacts): string {
  const parts: string[] = [];
  const addr = f.address ?? f.hostname;
  const where = `${f.hostname}:${f.port}`;
  if (f.via) parts.push(`the route failed at ${f.via}, before the target ${where} was reached`);
  const cls = f.address ? classifyAddress(f.address) : net.isIP(f.hostname) ? classifyAddress(f.hostname) : undefined;
  if (cls && (cls.kind === "fake-ip" || cls.kind === "documentation" || cls.kind === "multicast" || cls.kind === "unspecified")) {
    parts.push(f.address && f.address !== f.hostname ? `${f.hostname} resolved to ${f.address}, ${cls.note}` : `${addr} is ${cls.note}`);
  }
  const banner = f.firstBytes ? classifyBanner(f.firstBytes) : undefined;
  if (banner && banner.kind !== "ssh" && banner.kind !== "none") {
    parts.push(`the port answered with ${banner.kind === "http" ? "HTTP" : banner.kind === "tls" ? "TLS" : `'${banner.text}'`}, not SSH: it maps to another service (a port that moved after a restart?)`);
  } else if (f.outcome === "auth") {
    parts.push(`the path and the ssh server are fine${banner?.kind === "ssh" ? ` (${banner.text})` : ""}: only the keys were refused`);
  } else if (f.outcome === "refused") {
    parts.push(`${addr} answered but nothing listens on port ${f.port}: sshd down, the box stopped, or the port moved`);
  } else if (f.stage === "SSH banner" && (f.outcome === "timeout" || f.outcome === "closed")) {
    parts.push(`the port accepts TCP but ${f.outcome === "closed" ? "hung up without" : "sends no"} SSH banner: a proxy or TUN capturing the connection, a port forward with nothing behind it, or a hung sshd`);
  } else if (f.stage === "TCP connect" && f.outcome === "timeout") {
    parts.push(`no TCP answer from ${addr}: the host is down, the address is wrong, or a firewall drops the packets`);
  } else if (f.stage === "channel open") {
    parts.push("the connection was up, then the box stopped answering (a frozen sshd, an overloaded or hung box); the path was fine");
  } else if (f.outcome === "dns") {
    parts.push(`${f.hostname} does not resolve from this machine`);
  }
  if (cls && !parts.some((p) => p.includes(cls.note)) && (cls.kind === "private" || cls.kind === "cgnat" || cls.kind === "ula" || cls.kind === "link-local")) {
    parts.push(`${addr} is ${cls.note}`);
  }
  if (f.tunIface) parts.push(`the default route goes through ${f.tunIface} (a VPN or a proxy in TUN mode)`);
  if (f.proxyVars?.length) parts.push(`${f.proxyVars.join(", ")} set (ssh ignores them; the proxy tool behind them may capture DNS or traffic)`);
  // a platform's port habits matter when the port did not answer as sshd, not when the keys were refused
  if (f.hint && f.outcome !== "auth") parts.push(f.hint);
  return parts.join("; ").slice(0, 400);
}

/** The local facts (env, route) every diagnosis adds. */
export function localFacts(env: NodeJS.ProcessEnv = process.env): Pick<ConnectFacts, "proxyVars" | "tunIface"> {
  const proxyVars = proxyVariables(env);
  const tunIface = readTunRoute();
  return { ...(proxyVars.length ? { proxyVars } : {}), ...(tunIface ? { tunIface } : {}) };
}
