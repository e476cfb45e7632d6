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

function expandTilde(p: string, home = os.homedir()): string {
  if (p === "~") return home;
  if (p.startsWith("~/")) return path.join(home, p.slice(2));
  return p;
}

/** Parse `ssh -G` output into a multimap (keys lower-case; identityfile etc. repeat). */
export function parseSshG(out: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of out.split("\n")) {
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
    execFile("ssh", args, { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
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
  const g = parseSshG(out);
  const one = (k: string) => g.get(k)?.[0];
  const hostname = one("hostname") ?? parsed.host;
  const port = Number(one("port") ?? parsed.port ?? 22);
  const user = one("user") ?? parsed.user ?? os.userInfo().username;
  const identityFiles = (g.get("identityfile") ?? []).map((p) => expandTilde(p)).filter((p) => fs.existsSync(p));
  const known = (g.get("userknownhostsfile") ?? ["~/.ssh/known_hosts"]).flatMap((v) => v.split(/\s+/)).map((p) => expandTilde(p));
  const strictRaw = (one("stricthostkeychecking") ?? "ask").toLowerCase();
  const strict: ResolvedHost["strictHostKeyChecking"] =
    strictRaw === "true" || strictRaw === "yes" ? "yes" : strictRaw === "false" || strictRaw === "no" || strictRaw === "off" ? "no" : strictRaw === "accept-new" ? "accept-new" : "ask";
  const ct = one("connecttimeout");
  const connectTimeoutMs = ct && ct !== "none" && Number(ct) > 0 ? Number(ct) * 1000 : opts.defaultConnectTimeoutMs ?? 10_000;
  const pj = one("proxyjump");
  const pc = one("proxycommand");
  const agent = one("identityagent");
  const hostKeyAlias = one("hostkeyalias");
  return {
    spec,
    hostname,
    port,
    user,
    identityFiles,
    identityAgent: agent && agent !== "none" ? expandTilde(agent.replace(/^"|"$/g, "")) : agent === "none" ? "none" : undefined,
    proxyJump: pj && pj !== "none" ? pj : undefined,
    proxyCommand: pc && pc !== "none" ? expandProxyTokens(pc, { h: hostname, p: String(port), r: user, n: parsed.host }) : undefined,
    userKnownHostsFiles: known,
    strictHostKeyChecking: strict,
    connectTimeoutMs,
    // the route is part of the identity: localhost:22 behind two different jump hosts is two different boxes
    key: `${user}@${hostname}:${port}${pj && pj !== "none" ? ` via ${pj}` : ""}${pc && pc !== "none" ? ` via-command ${pc}` : ""}`,
    ...(hostKeyAlias ? { hostKeyAlias } : {}),
  } as ResolvedHost;
}
