/**
 * push_secret's service: read one credential here (the server's environment, or one block of a local
 * file), find where it would land on the box and whether that is a shared/durable mount of the host's
 * profile (scripts/secret_where.sh, no secret in it), and write it (scripts/secret_write.sh, streamed on
 * stdin with the credential right after it: never in a command line, a log or a result).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { refuse, RefusalError } from "../common/result.js";
import { shq } from "../common/text.js";
import type { Remote } from "../remote/types.js";
import { readScript } from "../remote/pool.js";
import { scriptsDir } from "../backends/scripts.js";
import { allMarkers, detectProfile } from "../knowledge/detect.js";
import { getProfile, loadProfiles } from "../knowledge/profiles.js";
import type { Profile } from "../knowledge/schema.js";
import type { HostInfo } from "../ledger/hostinfo.js";

const MAX_SECRET_BYTES = 1024 * 1024;

/**
 * One block of a credential file: a `machine NAME` stanza of a netrc file (up to the next machine/default),
 * or an INI `[NAME]` section with its header (e.g. one profile of ~/.aws/credentials). undefined if absent.
 */
export function extractBlock(text: string, block: string): string | undefined {
  const lines = text.split(/\r?\n/);
  const hdr = lines.findIndex((l) => l.trim() === `[${block}]`);
  if (hdr >= 0) {
    let end = lines.length;
    for (let i = hdr + 1; i < lines.length; i++) if (/^\s*\[[^\]]+\]\s*$/.test(lines[i])) { end = i; break; }
    while (end > hdr + 1 && lines[end - 1].trim() === "") end--;
    return lines.slice(hdr, end).join("\n") + "\n";
  }
  const tokens: { tok: string; at: number }[] = [];
  const re = /\S+/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) tokens.push({ tok: m[0], at: m.index });
  for (let i = 0; i + 1 < tokens.length; i++) {
    if (tokens[i].tok === "machine" && tokens[i + 1].tok === block) {
      let j = i + 2;
      while (j < tokens.length && tokens[j].tok !== "machine" && tokens[j].tok !== "default" && tokens[j].tok !== "macdef") j++;
      const endPos = j < tokens.length ? tokens[j].at : text.length;
      return text.slice(tokens[i].at, endPos).trimEnd() + "\n";
    }
  }
  return undefined;
}

/** Mount paths of a profile on which no credential may be written. "/" is never one. */
export function forbiddenCredentialRoots(p: Profile | undefined): string[] {
  if (!p) return [];
  const out = new Set<string>(p.no_credentials_on ?? []);
  for (const m of p.mounts ?? []) if (m.shared || m.role === "durable") out.add(m.path);
  return [...out].map((x) => x.replace(/\/+$/, "")).filter((x) => x.length > 0 && x !== "/");
}

export function isUnder(p: string, root: string): boolean {
  const r = root.replace(/\/+$/, "");
  return p === r || p.startsWith(`${r}/`);
}

export type SecretSource = { env?: string; file?: string; block?: string };

/** The credential's bytes, read on this machine. Refuses (BAD_INPUT, naming the field) what is not one. */
export function readSecret(src: SecretSource, env: NodeJS.ProcessEnv = process.env): Buffer {
  let value: Buffer;
  if (src.env !== undefined) {
    const v = env[src.env];
    if (v === undefined || v === "") {
      refuse("BAD_INPUT", `source.env: ${src.env} is not set in the server's environment`, `Export ${src.env} in the environment the MCP server is started with (client config "env"), then call again.`);
    }
    value = Buffer.from(v.endsWith("\n") ? v : `${v}\n`, "utf8");
  } else {
    const f = src.file!.startsWith("~/") ? path.join(os.homedir(), src.file!.slice(2)) : path.resolve(src.file!);
    let text: Buffer;
    try {
      const st = fs.statSync(f);
      if (!st.isFile()) refuse("BAD_INPUT", `source.file: ${src.file} is not a regular file`, "Name the credential file itself.");
      if (st.size > MAX_SECRET_BYTES) refuse("BAD_INPUT", `source.file: ${src.file} is over 1 MiB; that is not a credential`, "Push data with push_code.");
      text = fs.readFileSync(f);
    } catch (e) {
      if (e instanceof RefusalError) throw e;
      return refuse("BAD_INPUT", `source.file: cannot read ${src.file} (${(e as NodeJS.ErrnoException).code ?? "error"})`, "Check the path and its permissions on the machine running the server.");
    }
    if (src.block !== undefined) {
      const b = extractBlock(text.toString("utf8"), src.block);
      if (b === undefined) refuse("BAD_INPUT", `source.block: no "machine ${src.block}" stanza or [${src.block}] section in ${src.file}`, "Name a netrc machine or an INI section that exists in the file.");
      value = Buffer.from(b, "utf8");
    } else {
      value = text;
    }
  }
  if (value.length === 0) refuse("BAD_INPUT", "source: the credential is empty", "Point source at a non-empty variable or file.");
  return value;
}

export interface Destination {
  /** resolved destination (its directory's symlinks resolved) */
  target: string;
  /** as written, made absolute */
  raw: string;
  profile: Profile | undefined;
  profileName: string;
  /** the first shared/durable root it lies on, if any */
  forbiddenRoot?: string;
}

/** Where would the file land, and on which profile mount? One round trip, no secret in it. */
export async function resolveDestination(remote: Remote, host: string, info: HostInfo, remotePath: string): Promise<Destination> {
  const profiles = (() => { try { return loadProfiles(); } catch { return []; } })();
  const roots = new Set<string>();
  for (const p of profiles) forbiddenCredentialRoots(p).forEach((r) => roots.add(r));
  const args: string[] = [remotePath, ...[...roots].flatMap((r) => ["--root", r])];
  if (info.platform_from === "default") {
    const mk = (() => { try { return allMarkers(profiles); } catch { return { paths: [], env: [], commands: [], hostname_regexes: [] }; } })();
    for (const p of mk.paths) args.push("--path", p);
    for (const e of mk.env) args.push("--env", e);
    for (const c of mk.commands) args.push("--cmd", c);
    args.push("--host");
  }
  const pr = await remote.runScript(host, "secret_where.sh", args, { timeoutMs: 30_000 });
  if (pr.timedOut) refuse("TIMEOUT", `resolving ${remotePath} on ${host} timed out`, "Retry; check the box with probe_env.");
  const line = (k: string): string[] => pr.stdout.split("\n").filter((l) => l.startsWith(`${k}=`)).map((l) => l.slice(k.length + 1));
  const target = line("T")[0];
  if (!target) refuse("INTERNAL", `could not resolve ${remotePath} on ${host}: ${pr.stderr.trim().slice(-200)}`, "Check the box's shell (bash is needed) with probe_env.");
  const raw = line("RAW")[0] ?? target;
  let profile = info.profile;
  let profileName = info.platform;
  if (info.platform_from === "default") {
    // a command marker alone is not evidence here (no controller was asked): the safe reading for a
    // credential is the one with more shared mounts, so weak matches still count toward the roots below
    const det = detectProfile({ paths_present: line("P"), env_present: line("E"), commands: line("C"), hostname: line("H")[0] ?? "" }, profiles, { weakMarkersCount: true });
    profileName = det.name;
    try { profile = getProfile(det.name, det.variant) ?? profile; } catch { /* keep */ }
  }
  const resolved = new Map<string, string>();
  for (const l of line("M")) { const [a, b] = l.split("\t"); resolved.set(a, b || a); }
  const forbiddenRoot = forbiddenCredentialRoots(profile).find((root) => isUnder(target, resolved.get(root) ?? root) || isUnder(raw, root)
    || isUnder(target, root));
  return { target, raw, profile, profileName, ...(forbiddenRoot ? { forbiddenRoot } : {}) };
}

/** Write the credential: scripts/secret_write.sh then the value on the same stdin. Returns bytes written. */
export async function writeSecret(remote: Remote, host: string, target: string, value: Buffer): Promise<number> {
  const body = Buffer.from(readScript(scriptsDir(), "secret_write.sh"), "utf8");
  const stdin = Buffer.concat([body, body[body.length - 1] === 0x0a ? Buffer.alloc(0) : Buffer.from("\n"), value]);
  const wr = await remote.exec(host, `bash -s -- ${shq(target)}`, { stdin, timeoutMs: 30_000, maxOutputBytes: 4096 });
  if (wr.timedOut) refuse("TIMEOUT", `writing ${target} on ${host} timed out`, "Retry; check the box with probe_env.");
  if (wr.exitCode !== 0) {
    refuse("BAD_INPUT", `remote_path: could not write ${target} on ${host} (step ${wr.exitCode === 41 ? "mkdir" : wr.exitCode === 42 ? "write" : "rename"} failed)`, "Pick a path the login user can write on the per-instance disk.");
  }
  return Number(wr.stdout.trim());
}
