/**
 * `rgt doctor <host>`: the connection ladder, one rung at a time, each bounded — resolve (ssh -G), DNS, TCP,
 * banner, auth — then, when a rung failed, one bounded fallback route (the jump host alone when the route has
 * one, else OpenSSH itself with the proxy variables removed) before the path is declared blocked. Every failed
 * rung says what to fix.
 */
import { execFile } from "node:child_process";
import * as dns from "node:dns";
import * as net from "node:net";
import { RefusalError } from "../common/result.js";
import { classifyAddress, probePort, proxyVariables, readTunRoute } from "../remote/diagnose.js";
import { SshRemote } from "../remote/pool.js";
import { resolveHost } from "../remote/resolve.js";
import type { ResolvedHost } from "../remote/types.js";
import type { Check } from "./doctor.js";

export interface LadderOptions {
  sshConfig?: string;
  env?: NodeJS.ProcessEnv;
  /** bound of each network rung (default 5 s) */
  stepMs?: number;
}

function lookup(host: string, ms: number): Promise<{ address?: string; error?: string }> {
  if (net.isIP(host)) return Promise.resolve({ address: host });
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve({ error: `no answer within ${ms} ms` }), ms);
    dns.lookup(host, (err, address) => { clearTimeout(t); resolve(err ? { error: (err as NodeJS.ErrnoException).code ?? err.message } : { address }); });
  });
}

/** OpenSSH itself, batch mode, bounded: the independent second route. */
function opensshTrue(host: string, sshConfig: string | undefined, env: NodeJS.ProcessEnv, ms: number, extra: string[] = []): Promise<{ ok: boolean;
  out: string }> {
  const args = [...(sshConfig ? ["-F", sshConfig] : []), "-o", "BatchMode=yes", "-o", `ConnectTimeout=${Math.ceil(ms / 1000)}`, ...extra, host, "true"];
  return new Promise((resolve) => {
    execFile(process.platform === "win32" ? "ssh.exe" : "ssh", args, { timeout: ms + 2000, env }, (err, _o, stderr) => {
      resolve({ ok: !err, out: (stderr?.toString() || (err?.message ?? "")).trim().split("\n").slice(-2).join(" ").slice(0, 200) });
    });
  });
}

/** The first hop this machine dials itself: the first ProxyJump host, else the target. */
async function firstHop(h: ResolvedHost, sshConfig?: string): Promise<ResolvedHost> {
  if (!h.proxyJump) return h;
  return resolveHost(h.proxyJump.split(",")[0].trim(), { sshConfig });
}

/** What to do about each failed rung. */
const FIX = {
  resolve: "Fix the alias in your ssh config; `ssh -G <alias>` shows what OpenSSH makes of it.",
  localNet: "A proxy tool in TUN or fake-IP mode can capture ssh: exempt this host (a DIRECT rule, fake-ip-filter) if the rungs below fail.",
  dns: "Check the HostName spelling and this machine's DNS (a hung proxy DNS?); or put the box's IP address in HostName.",
  fakeIp: "A proxy tool answered with a fake IP: add this host to its fake-ip-filter / a DIRECT rule, or use the box's real IP as HostName.",
  refused: "The box is stopped, sshd is down, or the port moved (rentals re-assign ports on restart): read the current port in the console.",
  noTcp: "The host is down, the address is wrong, or a firewall drops the packets.",
  noBanner: "Something accepts TCP but is not sshd (a proxy/TUN capturing the connection, a forward with nothing behind it) or sshd hangs.",
  otherService: "The port belongs to another service: the ssh port moved or is wrong in your config.",
  shell: "The login shell on the box prints or fails: check its rc files.",
};

interface Rungs { checks: Check[]; failed: boolean }

/** DNS, TCP and banner, against the first machine this one dials itself. */
async function networkRungs(hop: ResolvedHost, who: string, stepMs: number): Promise<Rungs> {
  const d = await lookup(hop.hostname, stepMs);
  if (!d.address) return { checks: [{ name: "dns", status: "fail", detail: `${hop.hostname}${who}: ${d.error}`, fix: FIX.dns }], failed: true };
  const c = classifyAddress(d.address);
  const fake = c.kind === "fake-ip";
  const checks: Check[] = [{ name: "dns", status: fake ? "warn" : "ok", detail: `${hop.hostname}${who} → ${d.address} (${c.note})`, ...(fake ? { fix: FIX.fakeIp } : {}) }];
  const p = await probePort(d.address, hop.port, stepMs, stepMs);
  const at = `${d.address}:${hop.port}${who}`;
  if (p.tcp !== "open") {
    const why = p.tcp === "refused" ? "connection refused (nothing listens)" : p.tcp === "timeout" ? `no answer within ${stepMs / 1000} s` : p.error;
    checks.push({ name: "tcp", status: "fail", detail: `${at}: ${why}`, fix: p.tcp === "refused" ? FIX.refused : FIX.noTcp });
    return { checks, failed: true };
  }
  checks.push({ name: "tcp", status: "ok", detail: `${at} accepts connections (${p.ms} ms)` });
  if (p.banner === "ssh") {
    checks.push({ name: "banner", status: "ok", detail: p.bannerText ?? "SSH" });
    return { checks, failed: false };
  }
  const said = p.banner === "none" ? `no SSH banner within ${stepMs / 1000} s` : `the port speaks ${p.banner === "other" ? `'${p.bannerText}'` : p.banner.toUpperCase()}, not SSH`;
  checks.push({ name: "banner", status: "fail", detail: said, fix: p.banner === "none" ? FIX.noBanner : FIX.otherService });
  return { checks, failed: true };
}

/** The whole path as the server uses it (ssh2, host key checked, route applied), bounded. */
async function authRung(host: string, h: ResolvedHost, opts: LadderOptions, stepMs: number): Promise<Rungs> {
  const r = new SshRemote({ sshConfig: opts.sshConfig, idleMs: 1000 });
  try {
    const res = await r.exec(host, "echo rgt-doctor-ok", { timeoutMs: stepMs * 2 });
    const ok = res.stdout.includes("rgt-doctor-ok");
    return { checks: [ok ? { name: "auth", status: "ok", detail: `logged in as ${h.user}, a command ran` } : { name: "auth", status: "fail", detail: `logged in, but a command printed nothing (exit ${res.exitCode})`, fix: FIX.shell }], failed: false };
  } catch (e) {
    const ref = e instanceof RefusalError ? (e.refusal as { code: string; reason: string; remedy: string; diagnosis?: string }) : undefined;
    const detail = `${ref?.code ?? "ERROR"}: ${(ref?.reason ?? (e as Error).message).slice(0, 200)}${ref?.diagnosis ? ` — ${ref.diagnosis.slice(0, 200)}` : ""}`;
    // keys refused or a host key problem: the path works, and no other route would change that
    const pathFine = !!ref && ["AUTH_FAILED", "HOST_KEY_UNKNOWN", "HOST_KEY_CHANGED"].includes(ref.code);
    return { checks: [{ name: "auth", status: "fail", detail, fix: ref?.remedy ?? "See the message." }], failed: !pathFine };
  } finally { await r.close(); }
}

export async function connectionLadder(host: string, opts: LadderOptions = {}): Promise<Check[]> {
  const env = opts.env ?? process.env;
  const stepMs = opts.stepMs ?? 5000;
  const out: Check[] = [];
  let h: ResolvedHost;
  try {
    h = await resolveHost(host, { sshConfig: opts.sshConfig });
  } catch (e) {
    return [{ name: "resolve", status: "fail", detail: (e as Error).message.slice(0, 200), fix: FIX.resolve }];
  }
  const route = h.proxyCommand ? "via ProxyCommand" : h.proxyJump ? `via ProxyJump ${h.proxyJump}` : "direct";
  out.push({ name: "resolve", status: "ok", detail: `${h.user}@${h.hostname}:${h.port} (${route}), ConnectTimeout ${h.connectTimeoutMs / 1000} s` });

  const proxies = proxyVariables(env);
  const tun = readTunRoute();
  if (proxies.length || tun) {
    const seen = [tun ? `default route via ${tun}` : "", proxies.length ? `${proxies.join(", ")} set` : ""].filter(Boolean).join("; ");
    out.push({ name: "local network", status: "warn", detail: seen, fix: FIX.localNet });
  }

  let failed = false;
  if (h.proxyCommand) {
    out.push({ name: "dns/tcp/banner", status: "ok", detail: "skipped: the ProxyCommand opens the stream (the auth rung runs it)" });
  } else {
    const hop = await firstHop(h, opts.sshConfig).catch((e: Error) => e);
    if (hop instanceof Error) return [...out, { name: "jump host", status: "fail", detail: hop.message.slice(0, 200), fix: "Fix the jump host's alias in your ssh config." }];
    const nw = await networkRungs(hop, hop === h ? "" : ` (jump host ${h.proxyJump!.split(",")[0]})`, stepMs);
    out.push(...nw.checks);
    failed = nw.failed;
  }
  if (!failed) {
    const auth = await authRung(host, h, opts, stepMs);
    out.push(...auth.checks);
    failed = auth.failed;
  }
  if (failed) out.push(await fallback(host, h, opts, env, stepMs));
  return out;
}

/** One bounded second route before the path is called blocked. */
async function fallback(host: string, h: ResolvedHost, opts: LadderOptions, env: NodeJS.ProcessEnv, stepMs: number): Promise<Check> {
  if (h.proxyJump) {
    const jump = h.proxyJump.split(",")[0].trim();
    const j = await opensshTrue(jump, opts.sshConfig, env, stepMs);
    return j.ok
      ? { name: "fallback: jump host alone", status: "fail", detail: `${jump} answers by itself: the jump host cannot reach ${h.hostname}:${h.port}`, fix: `Check the target's address as the jump host sees it (ssh ${jump} nc -zv ${h.hostname} ${h.port}); the box may be stopped or its port moved.` }
      : { name: "fallback: jump host alone", status: "fail", detail: `${jump} fails by itself too (${j.out}): the path is blocked at the jump host`, fix: `Fix the jump host first (rgt doctor ${jump}).` };
  }
  const clean: NodeJS.ProcessEnv = { ...env };
  for (const k of proxyVariables(env)) delete clean[k];
  const o = await opensshTrue(host, opts.sshConfig, clean, stepMs);
  return o.ok
    ? { name: "fallback: OpenSSH", status: "warn", detail: "OpenSSH itself gets through (proxy variables removed) where the rungs above failed", fix: "A proxy variable or a tool watching them interferes with this process: start the MCP server without HTTP(S)_PROXY/ALL_PROXY, or exempt the host." }
    : { name: "fallback: OpenSSH", status: "fail", detail: `OpenSSH fails too (${o.out || "no output"}): the path is blocked`, fix: "Fix the first failed rung above; nothing on this machine's side routes around it." };
}
