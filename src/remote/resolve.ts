/**
 * Host resolution the way OpenSSH does it: ask `ssh -G` (Include, Match, ProxyJump, IdentityFile, Port, User,
 * UserKnownHostsFile, StrictHostKeyChecking all applied by OpenSSH itself), so an alias behaves here exactly
 * as it does in the user's terminal. `user@hostname[:port]` is accepted too.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { refuse } from "../common/result.js";
import type { ResolvedHost } from "./types.js";

const SPEC = /^(?:([A-Za-z0-9._-]+)@)?([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/;

export interface ParsedSpec { user?: string; host: string; port?: number }

/** Validate and split a host spec. Anything that could smuggle an ssh option (leading '-') or spaces is refused. */
export function parseHostSpec(spec: string): ParsedSpec {
  const m = SPEC.exec(spec.trim());
  if (!m || spec.trim().startsWith("-")) {
    refuse("BAD_INPUT", `host '${spec.slice(0, 80)}' is not an ssh alias or user@hostname[:port]`, "Pass an alias from your ssh config (e.g. autodl-1) or user@hostname:port.");
  }
  const port = m[3] ? Number(m[3]) : undefined;
  if (port !== undefined && (port < 1 || port > 65535)) refuse("BAD_INPUT", `host: port ${port} out of range`, "Use a port between 1 and 65535.");
  return { user: m[1], host: m[2].replace(/^\[|\]$/g, ""), port };
}

/** Where and for whom a path from `ssh -G` is expanded (the real machine by default; fixtures pass their own). */
export interface PathContext {
  platform: NodeJS.Platform;
  home: string;
  user: string;
  env: NodeJS.ProcessEnv;
  /** whether a file exists (identity files that do not are skipped, as OpenSSH does) */
  exists: (p: string) => boolean;
}

export function localPathContext(): PathContext {
  return { platform: process.platform, home: os.homedir(), user: os.userInfo().username, env: process.env, exists: (p) => fs.existsSync(p) };
}

/** The OpenSSH client binary: Windows ships it as ssh.exe (C:\Windows\System32\OpenSSH). */
export function sshBinary(platform: NodeJS.Platform = process.platform): string {
  return platform === "win32" ? "ssh.exe" : "ssh";
}

/**
 * A path as `ssh -G` prints it, made usable: quotes stripped; `~`, `~/…` and `~\…` to the home directory;
 * OpenSSH's %d (home), %u (local user), %% tokens; ${VAR} environment references; on Windows also
 * %VAR% (%USERPROFILE%, %PROGRAMDATA%) and Win32-OpenSSH's __PROGRAMDATA__ placeholder, and the separators
 * normalised to backslashes (Windows OpenSSH prints mixed ones: C:\Users\x/.ssh/known_hosts).
 */
export function expandSshPath(raw: string, ctx: PathContext = localPathContext()): string {
  const win = ctx.platform === "win32";
  const P = win ? path.win32 : path.posix;
  let p = raw.trim().replace(/^"(.*)"$/, "$1");
  const envOf = (k: string) => (win ? Object.entries(ctx.env).find(([n]) => n.toLowerCase() === k.toLowerCase())?.[1] : ctx.env[k]);
  p = p.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, k: string) => envOf(k) ?? m);
  if (win) {
    p = p.replace(/__PROGRAMDATA__/g, envOf("PROGRAMDATA") ?? "C:\\ProgramData");
    p = p.replace(/%([A-Za-z_][A-Za-z0-9_()]{1,})%/g, (m, k: string) => envOf(k) ?? m);
  }
  p = p.replace(/%([du%])/g, (_m, k: string) => (k === "d" ? ctx.home : k === "u" ? ctx.user : "%"));
  if (p === "~") p = ctx.home;
  else if (p.startsWith("~/") || (win && p.startsWith("~\\"))) p = P.join(ctx.home, p.slice(2));
  return win ? P.normalize(p) : p;
}

/** Parse `ssh -G` output into a multimap (keys lower-case; identityfile etc. repeat). */
export function parseSshG(out: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of out.split(/\r?\n/)) {
    const i = line.indexOf(" ");
    if (i <= 0) continue;
    const k = line.slice(0, i).toLowerCase();
    const v = line.slice(i + 1).trim();
    const arr = m.get(k) ?? [];
    arr.push(v);
    m.set(k, arr);
  }
  return m;
}

function runSshG(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(sshBinary(), args, { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error((stderr || err.message).toString().trim()));
      else resolve(stdout.toString());
    });
  });
}

/** OpenSSH's ProxyCommand tokens (ssh -G prints them unexpanded): %h host, %p port, %r user, %n alias, %% a percent. */
export function expandProxyTokens(cmd: string, v: { h: string; p: string; r: string; n: string }): string {
  return cmd.replace(/%([hprn%])/g, (_m, k: string) => (k === "%" ? "%" : v[k as "h" | "p" | "r" | "n"]));
}

export interface ResolveOptions { sshConfig?: string; defaultConnectTimeoutMs?: number }

/** A list value of `ssh -G` (known-hosts files): space-separated, a "quoted path" may hold spaces. */
function splitPaths(v: string): string[] {
  return (v.match(/"[^"]*"|\S+/g) ?? []).map((x) => x.replace(/^"(.*)"$/, "$1"));
}

export async function resolveHost(spec: string, opts: ResolveOptions = {}): Promise<ResolvedHost> {
  const parsed = parseHostSpec(spec);
  const args = ["-G"];
  if (opts.sshConfig) {
    if (!fs.existsSync(opts.sshConfig)) refuse("BAD_INPUT", `RGT_SSH_CONFIG points at ${opts.sshConfig}, which does not exist`, "Fix RGT_SSH_CONFIG or unset it to use ~/.ssh/config.");
    args.push("-F", opts.sshConfig);
  }
  if (parsed.port) args.push("-p", String(parsed.port));
  args.push(parsed.user ? `${parsed.user}@${parsed.host}` : parsed.host);
  let out: string;
  try {
    out = await runSshG(args, 5000);
  } catch (e) {
    return refuse("BAD_INPUT", `ssh -G could not resolve '${spec}': ${(e as Error).message.slice(0, 300)}`, "Check the alias in your ssh config (ssh -G <alias>).");
  }
  return hostFromSshG(out, spec, opts);
}

/** A ResolvedHost from `ssh -G` output (pure apart from ctx.exists): the Linux, macOS and Windows layouts alike. */
export function hostFromSshG(out: string, spec: string, opts: ResolveOptions = {}, ctx: PathContext = localPathContext()): ResolvedHost {
  const parsed = parseHostSpec(spec);
  const g = parseSshG(out);
  const one = (k: string) => g.get(k)?.[0];
  const hostname = one("hostname") ?? parsed.host;
  const port = Number(one("port") ?? parsed.port ?? 22);
  const user = one("user") ?? parsed.user ?? ctx.user;
  const identityFiles = (g.get("identityfile") ?? []).map((p) => expandSshPath(p, ctx)).filter((p) => ctx.exists(p));
  const files = (k: string, dflt: string[]) => (g.get(k) ?? dflt).flatMap(splitPaths).filter((p) => p !== "none").map((p) => expandSshPath(p, ctx));
  const known = files("userknownhostsfile", ["~/.ssh/known_hosts"]);
  const global = files("globalknownhostsfile", ctx.platform === "win32" ? ["__PROGRAMDATA__/ssh/ssh_known_hosts"] : ["/etc/ssh/ssh_known_hosts"]);
  const strictRaw = (one("stricthostkeychecking") ?? "ask").toLowerCase();
  const strict: ResolvedHost["strictHostKeyChecking"] =
    strictRaw === "true" || strictRaw === "yes" ? "yes" : strictRaw === "false" || strictRaw === "no" || strictRaw === "off" ? "no" : strictRaw === "accept-new" ? "accept-new" : "ask";
  const ct = one("connecttimeout");
  const connectTimeoutMs = ct && ct !== "none" && Number(ct) > 0 ? Number(ct) * 1000 : opts.defaultConnectTimeoutMs ?? 10_000;
  const pj = one("proxyjump");
  const pc = one("proxycommand");
  const agent = one("identityagent");
  const hostKeyAlias = one("hostkeyalias");
  const ciphers = one("ciphers")?.split(",").filter(Boolean);
  return {
    spec,
    hostname,
    port,
    user,
    identityFiles,
    identityAgent: agent && agent !== "none" ? expandSshPath(agent, ctx) : agent === "none" ? "none" : undefined,
    proxyJump: pj && pj !== "none" ? pj : undefined,
    proxyCommand: pc && pc !== "none" ? expandProxyTokens(pc, { h: hostname, p: String(port), r: user, n: parsed.host }) : undefined,
    userKnownHostsFiles: known,
    globalKnownHostsFiles: global,
    strictHostKeyChecking: strict,
    connectTimeoutMs,
    // the route is part of the identity: localhost:22 behind two different jump hosts is two different boxes
    key: `${user}@${hostname}:${port}${pj && pj !== "none" ? ` via ${pj}` : ""}${pc && pc !== "none" ? ` via-command ${pc}` : ""}`,
    ...(hostKeyAlias ? { hostKeyAlias } : {}),
    ...(ciphers?.length ? { ciphers } : {}),
  } as ResolvedHost;
}

/** AES-GCM first when this CPU has AES instructions (x86 AES-NI, the ARMv8 crypto extension). */
const AES_GCM = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"];
let aesCpu: boolean | undefined;
export function cpuHasAes(): boolean {
  if (aesCpu === undefined) {
    if (process.platform === "darwin") aesCpu = true; // every Mac since 2010 (AES-NI) and Apple silicon
    else {
      try { aesCpu = /^(flags|features)\s*:.*\baes\b/im.test(fs.readFileSync("/proc/cpuinfo", "utf8")); } catch { aesCpu = false; }
    }
  }
  return aesCpu;
}

/**
 * The cipher order an OpenSSH transport should offer, or undefined to leave OpenSSH's own: OpenSSH puts
 * chacha20-poly1305 first, which costs twice the CPU of AES-GCM where the CPU has AES instructions (a
 * loopback or LAN transfer is CPU-bound). Only the order of the ciphers the config already allows
 * changes, never the set. Pure.
 */
export function transportCiphers(allowed: string[] | undefined, hasAes: boolean): string | undefined {
  if (!hasAes || !allowed?.length) return undefined;
  const gcm = AES_GCM.filter((c) => allowed.includes(c));
  if (!gcm.length || allowed.slice(0, gcm.length).every((c, i) => c === gcm[i])) return undefined;
  return [...gcm, ...allowed.filter((c) => !gcm.includes(c))].join(",");
}

