/**
 * The wire to a box that every SSH-run backend shares: our scripts installed under content-hashed names,
 * the stdin file bundle, running an installed script, tab-separated script output, per-host fan-out.
 */
import * as path from "node:path";
import { createHash } from "node:crypto";
import { shq } from "../common/text.js";
import { packageRoot } from "../common/config.js";
import { RefusalError, refuse } from "../common/result.js";
import type { ExecResult, Remote } from "../remote/types.js";
import { readScript } from "../remote/pool.js";
import { fanoutLimit, mapLimited } from "../common/limit.js";

export const SCRIPTS_REL = ".rgt/scripts";
const PREP_TIMEOUT_MS = 45_000;

export interface HashedScript { name: string; hashed: string; sha256: string; body: Buffer }
const scriptCache = new Map<string, HashedScript>();

export function scriptsDir(): string {
  return path.join(packageRoot(), "scripts");
}

/** scripts/<name> with its on-box name `<stem>-<sha256[:12]><ext>`; a changed script gets a new name. */
export function hashedScript(name: string): HashedScript {
  const hit = scriptCache.get(name);
  if (hit) return hit;
  const body = Buffer.from(readScript(scriptsDir(), name), "utf8");
  if (body.includes(0x0d)) throw new Error(`scripts/${name} has CR line endings`);
  const sha256 = createHash("sha256").update(body).digest("hex");
  const ext = path.extname(name);
  const hashed = `${name.slice(0, name.length - ext.length)}-${sha256.slice(0, 12)}${ext}`;
  const s = { name, hashed, sha256, body };
  scriptCache.set(name, s);
  return s;
}

/** "<relpath> <bytes>\n<bytes…>" repeated: what launch_start.sh (and the installer) read from stdin. */
export function bundle(files: { path: string; data: string | Buffer }[], withSha = false): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    if (/[\s]/.test(f.path) || f.path.includes("..") || f.path.startsWith("/")) throw new Error(`bad bundle path ${f.path}`);
    const data = Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data, "utf8");
    const sha = withSha ? ` ${createHash("sha256").update(data).digest("hex")}` : "";
    parts.push(Buffer.from(`${f.path} ${data.length}${sha}\n`), data);
  }
  return Buffer.concat(parts);
}


/**
 * One exec: copy the named scripts to ~/.rgt/scripts/<hashed name> (an existing file is never
 * overwritten; one whose bytes no longer match its name is reported) and then run `then` from there.
 */
export async function installAndRun(
  remote: Remote, host: string, names: string[], then: { script: string; args: string[] } | undefined, timeoutMs = PREP_TIMEOUT_MS,
): Promise<{ scriptsDir: string; paths: Record<string, string>; res: ExecResult }> {
  const scripts = names.map(hashedScript);
  const installer = [
    "set -u; umask 077",
    `D="$HOME/${SCRIPTS_REL}"`,
    'mkdir -p "$D" || { echo "RGTERR cannot create $D"; exit 90; }',
    "bad=''",
    "while IFS=' ' read -r n s h; do",
    '  [ -n "$n" ] || break',
    '  f="$D/$n"',
    '  if [ -e "$f" ]; then',
    '    head -c "$s" >/dev/null',
    '    g=$(sha256sum <"$f" 2>/dev/null | cut -c1-64)',
    '    [ -z "$g" ] || [ "$g" = "$h" ] || bad="$bad $n"',
    "  else",
    '    t="$f.part.$$"; head -c "$s" >"$t" && chmod 0500 "$t" && mv -n "$t" "$f"; rm -f "$t"',
    "  fi",
    "done",
    `printf 'SCRIPTS\\t%s\\n' "$D"`,
    'if [ -n "$bad" ]; then printf "MUTATED\\t%s\\n" $bad; exit 91; fi',
    then ? `exec bash "$D/${hashedScript(then.script).hashed}" "$@"` : "exit 0",
  ].join("\n");
  const cmd = `bash -c ${shq(installer)} rgt-install ${(then?.args ?? []).map(shq).join(" ")}`;
  const res = await remote.exec(host, cmd, {
    stdin: bundle(scripts.map((s) => ({ path: s.hashed, data: s.body })), true),
    timeoutMs,
  });
  const rows = tsv(res.stdout);
  const dir = rows.find((r) => r[0] === "SCRIPTS")?.[1] ?? `~/${SCRIPTS_REL}`;
  const mutated = rows.filter((r) => r[0] === "MUTATED").map((r) => r[1]);
  if (res.exitCode === 91 || mutated.length) {
    refuse(
      "LIVE_SCRIPT_MUTATION",
      `on ${host}, ${mutated.join(", ")} in ${dir} no longer matches the content its name was hashed from; something edited a script a run may be reading, and it will not be overwritten`,
      `Find out what changed it. If no run uses it, delete that one file on the box by hand and launch again.`,
    );
  }
  const paths: Record<string, string> = {};
  for (const s of scripts) paths[s.name] = `${dir}/${s.hashed}`;
  return { scriptsDir: dir, paths, res };
}

export function tsv(out: string): string[][] {
  return out.split("\n").filter((l) => l.length > 0).map((l) => l.split("\t"));
}

export function num(s: string | undefined): number | undefined {
  if (s === undefined || s === "") return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

/** exec failures that mean "could not ask", not "the answer is bad" */
export function isConnectionError(e: unknown): boolean {
  return e instanceof RefusalError && ["UNREACHABLE", "TIMEOUT", "AUTH_FAILED", "HOST_KEY_UNKNOWN", "HOST_KEY_CHANGED"].includes(e.refusal.code);
}

/**
 * Run `fn` for every host in parallel, at most fanoutLimit() (RGT_FANOUT, default 16) at once
 * (src/common/limit.ts); a host that throws gives its Error, never a rejection.
 */
export async function settle<T>(hosts: string[], fn: (h: string) => Promise<T>): Promise<Map<string, T | Error>> {
  const out = new Map<string, T | Error>();
  await mapLimited(hosts, fanoutLimit(), async (h) => {
    try { out.set(h, await fn(h)); } catch (e) { out.set(h, e instanceof Error ? e : new Error(String(e))); }
  });
  return out;
}

/**
 * Run one of our scripts on a box: the copy installed at launch under its content-hashed name when it is
 * there (a file read is far cheaper for bash than a script streamed over stdin), else streamed.
 */
export async function runInstalled(remote: Remote, host: string, scriptsDir: string | undefined, name: string, args: string[],
  timeoutMs: number): Promise<ExecResult> {
  if (scriptsDir) {
    const f = `${scriptsDir}/${hashedScript(name).hashed}`;
    // sourced by the wrapper's own bash (ours, started --norc) rather than run by yet another bash
    const res = await remote.exec(host, `f=${shq(f)}; [ -r "$f" ] || exit 197; . "$f" ${args.map(shq).join(" ")}`, { timeoutMs });
    if (res.exitCode !== 197) return res;
  }
  return remote.runScript(host, name, args, { timeoutMs });
}
