/**
 * push_secret — one credential onto a box without it ever appearing in a command line, a log, an error
 * or a result. The value is read here (the server's own environment, or one block of a local file),
 * streamed through the ssh channel's stdin into `cat`, written under umask 077 to a temp name and renamed
 * into place (0600). Destinations on a shared or durable mount of the host's profile are refused first.
 */
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { refuse, warning, type Warning } from "../common/result.js";
import { hostInfo } from "../ledger/hostinfo.js";
import { loadProfiles, getProfile } from "../knowledge/profiles.js";
import { allMarkers, detectProfile } from "../knowledge/detect.js";
import type { Profile } from "../knowledge/schema.js";
import { remotePathWord } from "../remote/rsync.js";
import { readCredentialFile } from "../verify/secret_file.js";
import { hostText, pathText } from "./fields.js";

const MAX_SECRET_BYTES = 1024 * 1024;

/**
 * One block of a credential file: a `machine NAME` stanza of a netrc file (up to the next machine/default),
 * or an INI `[NAME]` section with its header (e.g. one profile of ~/.aws/credentials). undefined if absent.
 */
export function extractBlock(text: string, block: string): string | undefined {
  const lines = text.split(/\r?\n/);
  // INI section
  const hdr = lines.findIndex((l) => l.trim() === `[${block}]`);
  if (hdr >= 0) {
    let end = lines.length;
    for (let i = hdr + 1; i < lines.length; i++) if (/^\s*\[[^\]]+\]\s*$/.test(lines[i])) { end = i; break; }
    while (end > hdr + 1 && lines[end - 1].trim() === "") end--;
    return lines.slice(hdr, end).join("\n") + "\n";
  }
  // netrc: tokens, stanza starts at `machine <block>`
  const tokens: { tok: string; at: number; end: number }[] = [];
  const re = /\S+/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) tokens.push({ tok: m[0], at: m.index, end: m.index + m[0].length });
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

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export const pushSecret = defineTool({
  name: "push_secret",
  title: "Put one credential on a box (stdin → 0600 file)",
  description:
    "Put one credential (an env var of this server, or a local file) into a 0600 file on the box via stdin; it never shows in a command, log or result.",
  input: {
    host: hostText(),
    source: z.union([
      z.object({ env: z.string().max(128).regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "source.env must be an environment variable name") }).strict(),
      z.object({ file: z.string().min(1).max(4096), block: z.string().min(1).max(512).optional() }).strict(),
    ]).describe("{env: NAME} or {file, block?}"),
    remote_path: pathText("remote_path"),
  },
  output: {
    remote_path: z.string().optional(),
    bytes: z.number().optional(),
    profile: z.string().optional(),
  },
  // destroy: it replaces the file at remote_path, though it deletes nothing else
  effect: "destroy",
  idempotent: true,
  async handler(args, ctx) {
    const warnings: Warning[] = [];
    const rp = args.remote_path;
    if (/[\0\n\r]/.test(rp)) refuse("BAD_INPUT", "remote_path: must be one path without newlines or NUL", "Pass a single file path.");
    if (rp.endsWith("/") || rp === "~") refuse("BAD_INPUT", "remote_path: names a directory; it must name the file to write", "e.g. ~/.netrc or /root/.wandb_key");

    // 1. the value, read here; it never enters a string that leaves this function except stdin
    let value: Buffer;
    const src = args.source as { env?: string; file?: string; block?: string };
    if (src.env !== undefined) {
      const v = process.env[src.env];
      if (v === undefined || v === "") {
        refuse("BAD_INPUT", `source.env: ${src.env} is not set in the server's environment`, `Export ${src.env} in the environment the MCP server is started with (client config "env"), then call again.`);
      }
      value = Buffer.from(v.endsWith("\n") ? v : `${v}\n`, "utf8");
    } else {
      const text = readCredentialFile(src.file!, MAX_SECRET_BYTES);
      if (src.block !== undefined) {
        const b = extractBlock(text.toString("utf8"), src.block);
        if (b === undefined) refuse("BAD_INPUT", `source.block: no "machine ${src.block}" stanza or [${src.block}] section in ${src.file}`, "Name a netrc machine or an INI section that exists in the file.");
        value = Buffer.from(b, "utf8");
      } else {
        value = text;
      }
    }
    if (value.length === 0) refuse("BAD_INPUT", "source: the credential is empty", "Point source at a non-empty variable or file.");

    // 2. where would it land, and is that a shared/durable mount? (one round trip, no secret in it)
    const info = hostInfo(ctx.ledger, args.host);
    const profiles = (() => { try { return loadProfiles(); } catch { return []; } })();
    const candidateRoots = new Set<string>();
    for (const p of profiles) forbiddenCredentialRoots(p).forEach((r) => candidateRoots.add(r));
    const markers = (() => { try { return allMarkers(profiles); } catch { return { paths: [], env: [], commands: [], hostname_regexes: [] }; } })();
    const probe = [
      `t=${remotePathWord(rp)}`,
      `case "$t" in /*) ;; *) t="$HOME/$t" ;; esac`,
      `rp() { realpath -m -- "$1" 2>/dev/null || readlink -f -- "$1" 2>/dev/null || printf '%s\\n' "$1"; }`,
      `printf 'T=%s/%s\\n' "$(rp "$(dirname -- "$t")")" "$(basename -- "$t")"`,
      `printf 'RAW=%s\\n' "$t"`,
      ...[...candidateRoots].map((r) => `printf 'M=%s\\t%s\\n' ${q(r)} "$(rp ${q(r)})"`),
      ...(info.platform_from === "default"
        ? [
            ...markers.paths.map((p) => `[ -e ${q(p)} ] && printf 'P=%s\\n' ${q(p)}`),
            ...markers.env.filter((e) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(e)).map((e) => `[ -n "\${${e}+x}" ] && echo 'E=${e}'`),
            ...markers.commands.filter((c) => /^[\w.+-]+$/.test(c)).map((c) => `command -v ${c} >/dev/null 2>&1 && echo 'C=${c}'`),
            `printf 'H=%s\\n' "$(hostname 2>/dev/null)"`,
          ]
        : []),
      "true",
    ].join("\n");
    const pr = await ctx.remote.exec(args.host, probe, { timeoutMs: 30_000 });
    if (pr.timedOut) refuse("TIMEOUT", `resolving ${rp} on ${args.host} timed out`, "Retry; check the box with probe_env.");
    const line = (k: string): string[] => pr.stdout.split("\n").filter((l) => l.startsWith(`${k}=`)).map((l) => l.slice(k.length + 1));
    const target = line("T")[0];
    const raw = line("RAW")[0] ?? target;
    if (!target) refuse("INTERNAL", `could not resolve ${rp} on ${args.host}: ${pr.stderr.trim().slice(-200)}`, "Check the box's shell (a POSIX sh is needed) with probe_env.");
    let profile: Profile | undefined = info.profile;
    let profileName = info.platform;
    if (info.platform_from === "default") {
      const det = detectProfile({ paths_present: line("P"), env_present: line("E"), commands: line("C"), hostname: line("H")[0] ?? "" }, profiles);
      profileName = det.name;
      try { profile = getProfile(det.name, det.variant) ?? profile; } catch { /* keep */ }
    }
    const resolvedRoots = new Map<string, string>();
    for (const l of line("M")) { const [a, b] = l.split("\t"); resolvedRoots.set(a, b || a); }
    for (const root of forbiddenCredentialRoots(profile)) {
      const rr = resolvedRoots.get(root) ?? root;
      if (isUnder(target, rr) || isUnder(raw, root) || isUnder(target, root)) {
        const home = profile?.cred_file ? ` such as ${profile.cred_file}` : " under the home directory on the instance's own disk (e.g. ~/.netrc)";
        refuse(
          "SECRET_ON_SHARED_MOUNT",
          `remote_path ${rp} resolves to ${target}, on ${root}, which the ${profileName} profile marks shared/durable (other instances or the platform keep it). Nothing was sent.`,
          `Write the credential to the per-instance disk${home}.`,
          { profile: profileName },
        );
      }
    }

    // 3. the write: value only on stdin; temp file + rename so a reader never sees half a credential
    const cmd =
      `umask 077; t=${q(target)}; d=$(dirname -- "$t"); mkdir -p -- "$d" || exit 41; ` +
      `tmp="$t.rgt-tmp.$$"; if ! cat > "$tmp"; then rm -f -- "$tmp"; exit 42; fi; ` +
      `chmod 600 -- "$tmp" && mv -f -- "$tmp" "$t" || { rm -f -- "$tmp"; exit 43; }; wc -c < "$t"`;
    const wr = await ctx.remote.exec(args.host, cmd, { stdin: value, timeoutMs: 30_000, maxOutputBytes: 4096 });
    if (wr.timedOut) refuse("TIMEOUT", `writing ${target} on ${args.host} timed out`, "Retry; check the box with probe_env.");
    if (wr.exitCode !== 0) {
      refuse("BAD_INPUT", `remote_path: could not write ${target} on ${args.host} (step ${wr.exitCode === 41 ? "mkdir" : wr.exitCode === 42 ? "write" : "rename"} failed)`, "Pick a path the login user can write on the per-instance disk.");
    }
    const written = Number(wr.stdout.trim());
    if (written !== value.length) {
      refuse("INTERNAL", `wrote ${written} bytes to ${target} but sent ${value.length}`, "Call push_secret again; the file is replaced atomically.");
    }
    if (profile?.cred_file && target !== profile.cred_file && src.env && /WANDB/i.test(src.env)) {
      warnings.push(warning("CRED_FILE", "info", `The ${profileName} profile keeps credentials at ${profile.cred_file}.`, `rgt://profiles/${profileName}`));
    }
    return { ok: true, remote_path: target, bytes: value.length, profile: profileName, warnings };
  },
});
