/**
 * The rsync runner: one local rsync process over the same OpenSSH settings the pool uses
 * (remote.sshTransport), resumable (--partial into a partial dir), bounded (I/O timeout + wall clock),
 * with progress and per-file completion callbacks and the --stats totals parsed.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { trackChild } from "../common/children.js";
import { RefusalError } from "../common/result.js";
import type { Remote } from "./types.js";
import { versionAtLeast } from "../common/text.js";

export const PARTIAL_DIR = ".rgt-partial";

export interface RsyncStats {
  filesTransferred: number;
  totalFileSize: number;
  transferredFileSize: number;
  literalData: number;
  matchedData: number;
  bytesSent: number;
  bytesReceived: number;
}

export interface RsyncResult extends RsyncStats {
  exitCode: number | null;
  ok: boolean;
  timedOut: boolean;
  /** true when the stats block was found (a cut connection usually has none) */
  haveStats: boolean;
  stderrTail: string;
  /** rsync's stderr (all of what it kept, not just the tail) says the login shell printed into the stream */
  shellNoise: boolean;
  elapsedMs: number;
}

export interface RsyncJob {
  transport: { argv: string[]; destination: string };
  direction: "push" | "pull";
  /** local directory: the source of a push, the destination of a pull */
  localDir: string;
  /** absolute remote directory */
  remoteDir: string;
  /** transfer exactly these paths (relative to the two dirs); omitted = the whole tree */
  files?: string[];
  extraArgs?: string[];
  /** the box's rsync version ("3.2.7"; "" unknown): decides whether mtimes can be compared to the nanosecond */
  remoteVersion?: string;
  /** wall-clock limit; the rsync (and its ssh) is killed past it */
  timeoutMs: number;
  /** rsync --timeout: give up after this many seconds without I/O */
  ioTimeoutS?: number;
  onProgress?: (bytesDone: number, pct: number) => void;
  /** called with each file rsync reports finished (relative path) */
  onFile?: (rel: string) => void;
  signal?: AbortSignal;
}

/**
 * Quote an argv for rsync's -e option. rsync splits that string itself: spaces separate words,
 * single or double quotes keep spaces, backslashes are NOT understood.
 */
export function rsyncShellArg(argv: string[]): string {
  return argv
    .map((a) => {
      if (/^[\w@%+=:,./~-]+$/.test(a)) return a;
      if (!a.includes("'")) return `'${a}'`;
      if (!a.includes('"')) return `"${a}"`;
      throw new Error(`ssh argument cannot be passed to rsync -e: ${a}`);
    })
    .join(" ");
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** rsync prints unprintable bytes of names as \#ooo (octal); undo that. Bytes that are not UTF-8 come back as U+FFFD. */
export function decodeRsyncName(s: string): string {
  if (!s.includes("\\#")) return s;
  return Buffer.from(rsyncNameBytes(Buffer.from(s, "utf8"))).toString("utf8");
}

function rsyncNameBytes(b: Buffer): number[] {
  const bytes: number[] = [];
  for (let i = 0; i < b.length; ) {
    if (b[i] === 0x5c && b[i + 1] === 0x23 && i + 4 < b.length && /^[0-7]{3}$/.test(b.subarray(i + 2, i + 5).toString("latin1"))) {
      bytes.push(parseInt(b.subarray(i + 2, i + 5).toString("latin1"), 8));
      i += 5;
      continue;
    }
    bytes.push(b[i]);
    i++;
  }
  return bytes;
}

/** A name as rsync printed it (raw bytes, \#ooo escapes) → the name, or null when its bytes are not UTF-8. */
export function decodeRsyncNameStrict(b: Buffer): string | null {
  // most names hold no escape: decoded as they are, without a byte array per name (20,000 of them add up)
  try { return UTF8.decode(b.includes(0x5c) ? Uint8Array.from(rsyncNameBytes(b)) : b); } catch { return null; }
}

/** Split a byte stream into lines (\n or \r), as Buffers, never decoding a partial character. */
export function onBufferLines(stream: NodeJS.ReadableStream, onLine: (line: Buffer) => void): () => void {
  let carry = Buffer.alloc(0);
  stream.on("data", (d: Buffer) => {
    let buf = carry.length ? Buffer.concat([carry, d]) : d;
    let at = 0;
    for (let i = 0; i < buf.length; i++) {
      if (buf[i] === 10 || buf[i] === 13) {
        if (i > at) onLine(buf.subarray(at, i));
        at = i + 1;
      }
    }
    carry = Buffer.from(buf.subarray(at));
    buf = carry;
  });
  return () => { if (carry.length) onLine(carry); carry = Buffer.alloc(0); };
}

const num = (s: string | undefined): number => (s ? Number(s.replace(/[,.](?=\d{3}\b)/g, "").replace(/[^\d]/g, "")) || 0 : 0);

export function parseRsyncStats(text: string): { stats: RsyncStats; found: boolean } {
  const g = (re: RegExp): string | undefined => re.exec(text)?.[1];
  const sent = g(/Total bytes sent:\s*([\d,.]+)/);
  return {
    found: sent !== undefined,
    stats: {
      filesTransferred: num(g(/Number of regular files transferred:\s*([\d,.]+)/)),
      totalFileSize: num(g(/Total file size:\s*([\d,.]+)/)),
      transferredFileSize: num(g(/Total transferred file size:\s*([\d,.]+)/)),
      literalData: num(g(/Literal data:\s*([\d,.]+)/)),
      matchedData: num(g(/Matched data:\s*([\d,.]+)/)),
      bytesSent: num(sent),
      bytesReceived: num(g(/Total bytes received:\s*([\d,.]+)/)),
    },
  };
}

const FILE_TAG = "RGTF:";

export { versionAtLeast };

// ---------------------------------------------------------------------------------------------
// children that die with the server

let pdeathsig: string[] | undefined;
/**
 * The argv prefix that makes a child get SIGKILL when its parent (this server) dies: util-linux's
 * `setpriv --pdeathsig KILL` on Linux; nothing elsewhere (the caller's own kill paths still apply).
 * A SIGKILLed server then leaves no rsync writing behind the next run.
 */
export function dieWithParent(): string[] {
  if (pdeathsig === undefined) {
    pdeathsig = process.platform === "linux" && onPath("setpriv") ? ["setpriv", "--pdeathsig", "KILL", "--"] : [];
  }
  return pdeathsig;
}

function onPath(exe: string): boolean {
  return (process.env.PATH ?? "").split(path.delimiter).some((d) => {
    try { fs.accessSync(path.join(d, exe), fs.constants.X_OK); return true; } catch { return false; }
  });
}

/** spawn a command so that it dies with this process (see dieWithParent) */
export function spawnTied(argv: string[], opts: { stdio?: ("ignore" | "pipe")[] } = {}): ChildProcess {
  const full = [...dieWithParent(), ...argv];
  return trackChild(spawn(full[0], full.slice(1), { stdio: opts.stdio ?? ["ignore", "pipe", "pipe"] }));
}

/**
 * An rsync files-from list that no name can break: NUL-terminated entries, each behind "./" so that a
 * name starting with "#" or ";" is not read as a comment (rsync drops such lines even with --from0).
 */
export function filesFromList(files: string[]): Buffer {
  return Buffer.from(files.map((f) => `./${f}\0`).join(""), "utf8");
}

export function rsyncArgs(job: RsyncJob, listFile?: string): string[] {
  const remoteSpec = `${job.transport.destination}:${job.remoteDir.replace(/\/+$/, "")}/`;
  const localSpec = `${job.localDir.replace(/\/+$/, "")}/`;
  const args = [
    "-rlpt",
    "-8",
    "--partial",
    `--partial-dir=${PARTIAL_DIR}`,
    `--timeout=${job.ioTimeoutS ?? 60}`,
    "--info=progress2",
    "--no-inc-recursive",
    "--stats",
    `--out-format=${FILE_TAG}%n`,
    "-e",
    rsyncShellArg([...dieWithParent(), ...job.transport.argv]),
  ];
  // rsync's quick check compares whole-second mtimes: a file rewritten with the same size within the second
  // of the previous copy (an agent editing and pushing at once, a checkpoint rewritten in place) is silently
  // skipped. Nanosecond comparison needs 3.1.3 or newer on the box.
  if (versionAtLeast(job.remoteVersion ?? "", "3.1.3")) args.push("--modify-window=-1");
  if (listFile) args.push("--from0", `--files-from=${listFile}`);
  if (job.extraArgs) args.push(...job.extraArgs);
  if (job.direction === "push") args.push("--", localSpec, remoteSpec);
  else args.push("--", remoteSpec, localSpec);
  return args;
}

/** A private temp dir for one call, removed afterwards whatever happens. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  try { return await fn(dir); } finally { fs.rmSync(dir, { recursive: true, force: true }); }
}

export interface RsyncChild {
  /** pid of the local rsync (for the transfer lock: a rerun kills a survivor before it starts) */
  onSpawn?: (pid: number) => void;
}

export async function runRsync(job: RsyncJob & RsyncChild): Promise<RsyncResult> {
  const t0 = Date.now();
  if (job.direction === "pull") fs.mkdirSync(job.localDir, { recursive: true });
  return withTempDir("rgt-rsync-", async (tmp) => {
    let listFile: string | undefined;
    if (job.files) {
      listFile = path.join(tmp, "files");
      fs.writeFileSync(listFile, filesFromList(job.files), { mode: 0o600 });
    }
    return new Promise<RsyncResult>((resolve) => {
      const child = spawnTied(["rsync", ...rsyncArgs(job, listFile)]);
      if (child.pid) job.onSpawn?.(child.pid);
      let statsText = "";
      let inStats = false;
      let stderr = "";
      let timedOut = false;
      const onLine = (raw: Buffer): void => {
        const line = raw.toString("utf8");
        if (line.startsWith(FILE_TAG)) {
          const name = decodeRsyncNameStrict(raw.subarray(FILE_TAG.length)) ?? decodeRsyncName(line.slice(FILE_TAG.length));
          if (!name.endsWith("/")) job.onFile?.(name);
          return;
        }
        const m = /^\s*([\d,.]+)\s+(\d{1,3})%/.exec(line);
        if (m && !inStats) { job.onProgress?.(num(m[1]), Number(m[2])); return; }
        if (/^Number of files:/.test(line)) inStats = true;
        if (inStats && statsText.length < 8192) statsText += line + "\n";
      };
      const flush = onBufferLines(child.stdout!, onLine);
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (d: string) => { stderr = (stderr + d).slice(-4000); });
      const kill = (): void => {
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 3000).unref();
      };
      const timer = setTimeout(() => { timedOut = true; kill(); }, job.timeoutMs);
      const onAbort = (): void => kill();
      job.signal?.addEventListener("abort", onAbort, { once: true });
      child.on("error", (e) => { stderr += `\n${e.message}`; });
      child.on("close", (code) => {
        clearTimeout(timer);
        job.signal?.removeEventListener("abort", onAbort);
        flush();
        const { stats, found } = parseRsyncStats(statsText);
        resolve({
          ...stats,
          exitCode: code,
          ok: code === 0 && !timedOut,
          timedOut,
          haveStats: found,
          stderrTail: stderr.trim().split("\n").slice(-6).join("\n").slice(-800),
          shellNoise: code !== 0 && shellNotClean(stderr),
          elapsedMs: Date.now() - t0,
        });
      });
    });
  });
}

export interface ListedEntry {
  path: string;
  bytes: number;
  kind: "file" | "link";
}

/**
 * The files a push would send, as rsync itself selects them: a dry run from localDir into an empty
 * directory, with the same filter rules. Returns relative paths, sizes and kinds (directories left out);
 * names whose bytes are not UTF-8 come back in `badNames` (as rsync printed them), never dropped.
 */
export async function listPushTree(localDir: string, filterArgs: string[], timeoutMs = 120_000): Promise<{ entries: ListedEntry[]; badNames: string[] }> {
  return withTempDir("rgt-empty-", (empty) => new Promise((resolve, reject) => {
    const child = spawnTied(["rsync", "-rlpt", "-n", "-8", "--no-inc-recursive", `--out-format=${FILE_TAG}%i\t%l\t%n`, ...filterArgs, "--", `${localDir.replace(/\/+$/, "")}/`, `${empty}/`]);
    const entries: ListedEntry[] = [];
    const badNames: string[] = [];
    let stderr = "";
    const flush = onBufferLines(child.stdout!, (l) => {
      if (l.subarray(0, FILE_TAG.length).toString("latin1") !== FILE_TAG) return;
      const t1 = l.indexOf(9, FILE_TAG.length);
      const t2 = l.indexOf(9, t1 + 1);
      if (t1 < 0 || t2 < 0) return;
      const item = l.subarray(FILE_TAG.length, t1).toString("latin1");
      const rawName = l.subarray(t2 + 1);
      const name = decodeRsyncNameStrict(rawName);
      if (name === null) { badNames.push(rawName.toString("latin1")); return; }
      if (name.endsWith("/") || item[1] === "d") return;
      const kind = item[1] === "L" ? "link" : item[1] === "f" ? "file" : undefined;
      if (!kind) return;
      entries.push({ path: name, bytes: Number(l.subarray(t1 + 1, t2).toString("latin1")) || 0, kind });
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (d: string) => { stderr = (stderr + d).slice(-2000); });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      flush();
      if (code !== 0 && code !== 23 && code !== 24) reject(new Error(`rsync listing failed (exit ${code}): ${stderr.trim().slice(-400)}`));
      else resolve({ entries, badNames });
    });
  }));
}

// ---------------------------------------------------------------------------------------------
// which rsync this machine has

export interface RsyncFlavour {
  flavour: "rsync" | "openrsync" | "unknown" | "absent";
  version: string;
  /** whether every flag this project passes is understood (GNU rsync 3.1.0 or newer) */
  usable: boolean;
  /** why not, in one line */
  why?: string;
}

/** Read `rsync --version` output: GNU rsync ("rsync  version 3.2.7  protocol version 31"), openrsync, or other. */
export function parseRsyncVersion(text: string): RsyncFlavour {
  const first = text.split("\n").find((l) => l.trim()) ?? "";
  if (/openrsync/i.test(text)) {
    const v = /rsync version ([\d.]+)/.exec(text)?.[1] ?? "";
    return { flavour: "openrsync", version: v, usable: false, why: `openrsync${v ? ` (${v}-compatible)` : ""} lacks --info=progress2, --partial-dir and --no-inc-recursive` };
  }
  const m = /^rsync\s+version\s+v?([\d.]+)/i.exec(first.trim());
  if (!m) return { flavour: "unknown", version: "", usable: false, why: `unrecognised rsync --version output: ${first.slice(0, 80)}` };
  const version = m[1];
  if (!versionAtLeast(version, "3.1.0")) return { flavour: "rsync", version, usable: false, why: `rsync ${version} is older than 3.1.0 (no --info=progress2)` };
  return { flavour: "rsync", version, usable: true };
}

/** what `rsync --version` on this PATH said (cached per PATH: a test or a user may put another rsync first) */
const localRsync = new Map<string, RsyncFlavour>();
export function localRsyncFlavour(): RsyncFlavour {
  const key = process.env.PATH ?? "";
  let f = localRsync.get(key);
  if (f) return f;
  if (!onPath("rsync")) f = { flavour: "absent", version: "", usable: false, why: "rsync is not installed on this machine" };
  else {
    const r = spawnSync("rsync", ["--version"], { encoding: "utf8", timeout: 10_000 });
    f = r.error ? { flavour: "unknown", version: "", usable: false, why: `rsync --version failed: ${r.error.message}` } : parseRsyncVersion(`${r.stdout}\n${r.stderr}`);
  }
  localRsync.set(key, f);
  return f;
}

/** A local rsync that understands every flag this project passes. */
export function localRsyncAvailable(): boolean {
  return localRsyncFlavour().usable;
}

// ---------------------------------------------------------------------------------------------
// the remote end of a transfer

/** A remote path as a POSIX shell word: "~" / "~/x" expand to $HOME, everything else is quoted literally. */
export function remotePathWord(p: string): string {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  if (p === "~" || p === "~/") return `"$HOME"`;
  if (p.startsWith("~/")) return `"$HOME"/${q(p.slice(2))}`;
  return q(p);
}

export interface RemoteDirInfo {
  /** absolute path on the box, symlinks resolved */
  dir: string;
  exists: boolean;
  hasRsync: boolean;
  /** the box's rsync version, "" when unknown or absent */
  rsyncVersion: string;
}

/**
 * One round trip (scripts/prepare_dir.sh): (optionally create and) resolve a directory on the box, and
 * learn whether rsync is there. Throws RefusalError BAD_INPUT naming `field` when it cannot be created.
 */
export async function prepareRemoteDir(
  remote: Remote,
  host: string,
  dir: string,
  field: string,
  opts: { create?: boolean; timeoutMs?: number } = {},
): Promise<RemoteDirInfo> {
  const r = await remote.runScript(host, "prepare_dir.sh", [dir, opts.create ?? true ? "1" : "0"], { timeoutMs: opts.timeoutMs ?? 30_000 });
  if (r.timedOut) throw new RefusalError("TIMEOUT", `preparing ${dir} on ${host} timed out`, "Retry; check the box with probe_env.");
  if (r.exitCode === 41) {
    throw new RefusalError("BAD_INPUT", `${field}: cannot create ${dir} on ${host}: ${r.stderr.trim().slice(-300)}`, `Pick a ${field} the login user can write (e.g. under the data disk or ~/).`);
  }
  const m = /^DIR=(.*)$/m.exec(r.stdout);
  const v = /^RSYNCV=([\d.]+)$/m.exec(r.stdout);
  return { dir: m ? m[1] : dir, exists: !!m, hasRsync: /^RSYNC=1$/m.test(r.stdout), rsyncVersion: v ? v[1] : "" };
}

/**
 * A login shell that prints on non-interactive sessions (an echo in ~/.bashrc, conda's banner) corrupts
 * rsync's and SFTP's byte streams: rsync then stops with "protocol version mismatch -- is your shell clean?".
 * Re-running cannot help, so this gets its own refusal and remedy.
 */
export function shellNotClean(stderr: string): boolean {
  return /is your shell clean|protocol version mismatch|unexpected tag \d+|Received message too long/i.test(stderr);
}

export const SHELL_NOT_CLEAN_REMEDY =
  "The box's login shell prints text for non-interactive ssh sessions (~/.bashrc, /etc/bash.bashrc or a profile script), which breaks rsync and SFTP. " +
  "Make it quiet unless interactive, e.g. put `case $- in *i*) ;; *) return ;; esac` at the top of ~/.bashrc (remote_exec can show what prints: `bash -c true`). Re-running will not help until then.";
