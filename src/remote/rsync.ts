/**
 * The rsync runner: one local rsync process over the same OpenSSH settings the pool uses
 * (remote.sshTransport), resumable (--partial into a partial dir), bounded (I/O timeout + wall clock),
 * with progress and per-file completion callbacks and the --stats totals parsed.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn } from "node:child_process";
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

/** rsync prints unprintable bytes of names as \#ooo (octal); undo that. */
export function decodeRsyncName(s: string): string {
  if (!s.includes("\\#")) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; ) {
    const m = /^\\#([0-7]{3})/.exec(s.slice(i, i + 5));
    if (m) { bytes.push(parseInt(m[1], 8)); i += 5; continue; }
    for (const b of Buffer.from(s[i], "utf8")) bytes.push(b);
    i++;
  }
  return Buffer.from(bytes).toString("utf8");
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
    rsyncShellArg(job.transport.argv),
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

export async function runRsync(job: RsyncJob): Promise<RsyncResult> {
  const t0 = Date.now();
  let listFile: string | undefined;
  let tmpDir: string | undefined;
  if (job.files) {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-rsync-"));
    listFile = path.join(tmpDir, "files");
    fs.writeFileSync(listFile, job.files.map((f) => `${f}\0`).join(""), { mode: 0o600 });
  }
  if (job.direction === "pull") fs.mkdirSync(job.localDir, { recursive: true });
  try {
    return await new Promise<RsyncResult>((resolve) => {
      const child = trackChild(spawn("rsync", rsyncArgs(job, listFile), { stdio: ["ignore", "pipe", "pipe"] }));
      let statsText = "";
      let inStats = false;
      let carry = "";
      let stderr = "";
      let timedOut = false;
      const onLine = (line: string): void => {
        if (line.startsWith(FILE_TAG)) {
          const name = decodeRsyncName(line.slice(FILE_TAG.length));
          if (!name.endsWith("/")) job.onFile?.(name);
          return;
        }
        const m = /^\s*([\d,.]+)\s+(\d{1,3})%/.exec(line);
        if (m && !inStats) { job.onProgress?.(num(m[1]), Number(m[2])); return; }
        if (/^Number of files:/.test(line)) inStats = true;
        if (inStats && statsText.length < 8192) statsText += line + "\n";
      };
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (d: string) => {
        carry += d;
        const parts = carry.split(/[\r\n]/);
        carry = parts.pop() ?? "";
        for (const p of parts) if (p) onLine(p);
      });
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (d: string) => { stderr = (stderr + d).slice(-4000); });
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
        if (carry) onLine(carry);
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
  } finally {
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}

/**
 * The files a push would send, as rsync itself selects them: a dry run from localDir into an empty
 * directory, with the same filter rules. Returns relative paths and sizes (directories left out).
 */
export async function listPushTree(localDir: string, filterArgs: string[], timeoutMs = 120_000): Promise<{ path: string; bytes: number }[]> {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-empty-"));
  try {
    return await new Promise((resolve, reject) => {
      const child = spawn("rsync", ["-rlpt", "-n", "-8", "--no-inc-recursive", `--out-format=${FILE_TAG}%l\t%n`, ...filterArgs, "--", `${localDir.replace(/\/+$/, "")}/`, `${empty}/`], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      const out: { path: string; bytes: number }[] = [];
      let carry = "";
      let stderr = "";
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (d: string) => {
        carry += d;
        const lines = carry.split("\n");
        carry = lines.pop() ?? "";
        for (const l of lines) {
          if (!l.startsWith(FILE_TAG)) continue;
          const tab = l.indexOf("\t");
          const name = decodeRsyncName(l.slice(tab + 1));
          if (name.endsWith("/")) continue;
          out.push({ path: name, bytes: Number(l.slice(FILE_TAG.length, tab)) || 0 });
        }
      });
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (d: string) => { stderr = (stderr + d).slice(-2000); });
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        if (code !== 0 && code !== 23 && code !== 24) reject(new Error(`rsync listing failed (exit ${code}): ${stderr.trim().slice(-400)}`));
        else resolve(out);
      });
    });
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
}

let rsyncPresent: boolean | undefined;
export function localRsyncAvailable(): boolean {
  if (rsyncPresent === undefined) {
    rsyncPresent = (process.env.PATH ?? "").split(":").some((d) => {
      try { fs.accessSync(path.join(d, "rsync"), fs.constants.X_OK); return true; } catch { return false; }
    });
  }
  return rsyncPresent;
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
 * One round trip: (optionally create and) resolve a directory on the box, and learn whether rsync is there.
 * Throws RefusalError BAD_INPUT naming `field` when the directory cannot be created.
 */
export async function prepareRemoteDir(
  remote: Remote,
  host: string,
  dir: string,
  field: string,
  opts: { create?: boolean; timeoutMs?: number } = {},
): Promise<RemoteDirInfo> {
  const create = opts.create ?? true;
  const cmd =
    `d=${remotePathWord(dir)}; ` +
    (create ? `mkdir -p -- "$d" || exit 41; ` : "") +
    `if cd -- "$d" 2>/dev/null; then printf 'DIR=%s\\n' "$(pwd -P)"; else echo NODIR=1; fi; ` +
    `if command -v rsync >/dev/null 2>&1; then echo RSYNC=1; v=$(rsync --version 2>/dev/null | head -n 1); v=\${v#*version }; echo "RSYNCV=\${v%% *}"; else echo RSYNC=0; fi`;
  const r = await remote.exec(host, cmd, { timeoutMs: opts.timeoutMs ?? 30_000 });
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
