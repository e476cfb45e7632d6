/**
 * push_code — put a project tree on a box, resumably.
 * Order: scan locally (rsync's own filter evaluation) → refuse credential files / CRLF scripts before a
 * byte leaves → one round trip to create and resolve the destination and learn whether the box has rsync →
 * live-run guard (never overwrite a file a running queue may be reading) → rsync --partial over the pool's
 * ssh settings, or SFTP with per-file resume when the box has none.
 */
// TODO(issue 10): the transfer service (src/transfer/) takes this file's fs/child_process work; then drop this disable.
/* eslint-disable @typescript-eslint/no-restricted-imports */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { refuse, warning, RefusalError, type Warning } from "../common/result.js";
import { runRsync, localRsyncAvailable, prepareRemoteDir, remotePathWord, rsyncShellArg, decodeRsyncName, SHELL_NOT_CLEAN_REMEDY } from "../remote/rsync.js";
import { remoteHashTree } from "../remote/hashes.js";
import { listRuns } from "../ledger/runs.js";
import { liveRunsOn } from "../backends/index.js";
import type { ToolContext } from "../server/tool.js";
import { sftpPush } from "../remote/sftp.js";
import { sha256FileSync } from "../verify/hash.js";
import { crlfScripts, scanPushTree, secretFiles, PROJECT_IGNORE } from "../verify/tree.js";
import { hostText, pathText } from "./fields.js";

const HUGE_FILES = 20_000;
const HUGE_BYTES = 5 * 1024 ** 3;


export const pushCode = defineTool({
  name: "push_code",
  title: "Push a code tree to a box (resumable)",
  description:
    "Copy a local project dir to the box, resumably, honouring .gitignore/.rgtignore; refuses credential files and CRLF scripts. A re-run sends only what changed.",
  input: {
    host: hostText(),
    local_dir: pathText("local_dir"),
    remote_dir: pathText("remote_dir"),
    exclude: z.array(z.string().min(1).max(1024).refine((s) => !/[\0\n\r]/.test(s), "exclude patterns are single lines")).max(200).optional(),
    allow_secret_files: z.array(z.string().min(1).max(4096)).max(100).optional(),
    dry_run: z.boolean().optional(),
  },
  output: {
    method: z.enum(["rsync", "sftp", "dry_run"]).optional(),
    files_sent: z.number().optional(),
    bytes_sent: z.number().optional(),
    bytes_total: z.number().optional(),
    files_total: z.number().optional(),
    remote_dir: z.string().optional(),
    resumed_files: z.number().optional(),
    bytes_reused: z.number().optional(),
    elapsed_ms: z.number().optional(),
    secret_files: z.array(z.string()).optional(),
    crlf_scripts: z.array(z.string()).optional(),
    failed_files: z.array(z.string()).optional(),
    live_runs: z.array(z.unknown()).optional(),
  },
  // destroy: it overwrites files already on the box, though it deletes nothing
  effect: "destroy",
  idempotent: true,
  async handler(args, ctx) {
    const t0 = Date.now();
    const warnings: Warning[] = [];
    const localDir = path.resolve(args.local_dir);
    let st: fs.Stats;
    try { st = fs.statSync(localDir); } catch {
      return refuse("BAD_INPUT", `local_dir: ${args.local_dir} does not exist`, "Pass an existing local directory as local_dir.");
    }
    if (!st.isDirectory()) refuse("BAD_INPUT", `local_dir: ${args.local_dir} is not a directory`, "Pass the project directory, not a file.");

    // 1. scan: exactly the files that would go, evaluated before anything leaves this machine
    const scan = await scanPushTree(localDir, args.exclude ?? []);
    const files = scan.files;
    if (scan.via === "walk") warnings.push(warning("NO_LOCAL_RSYNC", "warn", "rsync is not installed locally: .gitignore/.rgtignore were not applied and SFTP is used."));
    const secrets = secretFiles(files, args.allow_secret_files ?? []);
    if (secrets.length) {
      const shown = secrets.slice(0, 6).map((s) => `${s.path} (${s.rule})`).join(", ");
      refuse(
        "SECRET_FILE",
        `local_dir holds ${secrets.length} credential file(s) that would be uploaded: ${shown}${secrets.length > 6 ? ", …" : ""}. Nothing was sent.`,
        `Keep credentials out of the code push: add them to ${PROJECT_IGNORE} or exclude, and send each one with push_secret (stdin, 0600, per-instance disk). ` +
          "Only if the user explicitly wants the file on the box, list it in allow_secret_files.",
        { secret_files: secrets.slice(0, 20).map((s) => s.path) },
      );
    }
    const crlf = crlfScripts(localDir, files);
    if (crlf.length) {
      const q = crlf.slice(0, 6).map((f) => `'${f.replace(/'/g, "'\\''")}'`).join(" ");
      refuse(
        "CRLF_SCRIPT",
        `${crlf.length} shell script(s) have Windows (CRLF) line endings and would fail on the box with "$'\\r': command not found": ${crlf.slice(0, 6).join(", ")}. Nothing was sent.`,
        `Convert them to LF first, e.g. in ${localDir}: sed -i 's/\\r$//' ${q}  (or dos2unix ${q}); set git config core.autocrlf input to keep it fixed.`,
        { crlf_scripts: crlf.slice(0, 20) },
      );
    }
    const bytesTotal = files.reduce((a, f) => a + f.bytes, 0);
    const gitBytes = files.filter((f) => f.path === ".git" || f.path.startsWith(".git/")).reduce((a, f) => a + f.bytes, 0);
    if (files.length > HUGE_FILES) {
      warnings.push(warning("HUGE_TREE", "warn", `${files.length} files to push; many-small-file trees are slow and eat inodes on capped disks. Add data/cache dirs to ${PROJECT_IGNORE}.`));
    }
    if (bytesTotal > HUGE_BYTES) {
      warnings.push(warning("HUGE_TREE", "warn", `${(bytesTotal / 1024 ** 3).toFixed(1)} GiB to push; datasets and checkpoints usually belong on the box's data disk, not in the code push.`));
    }
    if (gitBytes > 10 * 1024 * 1024 && gitBytes > bytesTotal / 2) {
      warnings.push(warning("GIT_DOMINATES", "warn", `.git is ${Math.round((100 * gitBytes) / bytesTotal)}% of the push (${(gitBytes / 1024 ** 2).toFixed(0)} MiB); pass exclude: [".git"] unless the box needs the history.`));
    }
    if (args.dry_run) {
      return { ok: true, method: "dry_run", files_sent: 0, bytes_sent: 0, bytes_total: bytesTotal, files_total: files.length, elapsed_ms: Date.now() - t0, warnings };
    }
    if (files.length === 0) warnings.push(warning("EMPTY_PUSH", "info", "No files to push after ignore rules; only the destination directory was created."));

    // 2. one round trip: create + resolve the destination, learn whether the box has rsync
    const prep = await prepareRemoteDir(ctx.remote, args.host, args.remote_dir, "remote_dir");

    // 3. never change a file under a live run (ARCHITECTURE principle 7); refused before a byte is sent
    const useRsync = prep.hasRsync && localRsyncAvailable();
    if (files.length) await guardLiveRuns(ctx, args.host, args.remote_dir, prep.dir, localDir, files, useRsync);

    await ctx.progress(0, bytesTotal, `pushing ${files.length} files`);
    const timeoutMs = 600_000 + Math.ceil(bytesTotal / 1000);

    if (useRsync && files.length) {
      const transport = await ctx.remote.sshTransport(args.host);
      let lastTick = 0;
      const r = await runRsync({
        transport,
        direction: "push",
        localDir,
        remoteDir: prep.dir,
        remoteVersion: prep.rsyncVersion,
        files: files.map((f) => f.path),
        timeoutMs,
        signal: ctx.signal,
        onProgress: (done) => {
          const now = Date.now();
          if (now - lastTick > 500) { lastTick = now; void ctx.progress(done, bytesTotal); }
        },
      });
      if (!r.ok && r.shellNoise) {
        throw new RefusalError("SHELL_NOT_CLEAN", `rsync to ${args.host} could not start: the box's login shell printed text into the transfer stream (${r.stderrTail.split("\n")[0].slice(0, 120)})`, SHELL_NOT_CLEAN_REMEDY,
          { method: "rsync", files_sent: 0, bytes_sent: 0, bytes_total: bytesTotal, files_total: files.length, remote_dir: prep.dir, elapsed_ms: Date.now() - t0 });
      }
      if (!r.ok) {
        throw new RefusalError(
          "TRANSFER_INTERRUPTED",
          `rsync to ${args.host}:${prep.dir} stopped (exit ${r.exitCode}${r.timedOut ? ", timed out" : ""}): ${r.stderrTail.slice(-300) || "no message"}`,
          "Run the same push_code call again: finished files are skipped and a cut file resumes from its partial copy.",
          { method: "rsync", files_sent: r.filesTransferred, bytes_sent: r.bytesSent, bytes_total: bytesTotal, files_total: files.length, remote_dir: prep.dir, elapsed_ms: Date.now() - t0 },
        );
      }
      await ctx.progress(bytesTotal, bytesTotal, "done");
      return {
        ok: true, method: "rsync", files_sent: r.filesTransferred, bytes_sent: r.bytesSent, bytes_reused: r.matchedData, bytes_total: bytesTotal,
        files_total: files.length, remote_dir: prep.dir, elapsed_ms: Date.now() - t0, warnings,
      };
    }

    // SFTP: the box has no rsync (or this machine has none)
    if (!prep.hasRsync) warnings.push(warning("NO_RSYNC", "info", "The box has no rsync; pushed over SFTP with per-file resume (slower on many small files).", "rgt://references/ssh-transport"));
    const sftp = await ctx.remote.sftp(args.host);
    let lastTick = 0;
    try {
      // whole-second SFTP times cannot see a same-size edit made within the second: ask the box for hashes
      const force = new Set(await hashesWouldChange(ctx, args.host, localDir, prep.dir, files));
      const r = await sftpPush(sftp, localDir, prep.dir, files, {
        force,
        deadline: Date.now() + timeoutMs,
        onProgress: (done) => {
          const now = Date.now();
          if (now - lastTick > 500) { lastTick = now; void ctx.progress(done, bytesTotal); }
        },
      });
      const out = {
        method: "sftp" as const, files_sent: r.filesTransferred, bytes_sent: r.bytesTransferred, bytes_total: bytesTotal,
        files_total: files.length, remote_dir: prep.dir, resumed_files: r.resumedFiles, elapsed_ms: Date.now() - t0,
      };
      if (r.failed.length) {
        throw new RefusalError(
          "TRANSFER_INTERRUPTED",
          `${r.failed.length} file(s) did not reach ${args.host}: ${r.failed.slice(0, 3).map((f) => `${f.path}: ${f.error}`).join("; ")}`,
          "Run the same push_code call again: finished files are skipped and cut files resume.",
          { ...out, failed_files: r.failed.slice(0, 20).map((f) => f.path) },
        );
      }
      await ctx.progress(bytesTotal, bytesTotal, "done");
      return { ok: true, ...out, warnings };
    } finally {
      sftp.end();
    }
  },
});

// ---------------------------------------------------------------------------------------------
// live-run guard

const posixInside = (p: string, dir: string): boolean => dir === "/" || p === dir || p.startsWith(`${dir}/`);
const trimSlash = (p: string): string => (p.length > 1 ? p.replace(/\/+$/, "") : p);

interface LiveWorkdir { run_id: string; workdir: string; cells: string[] }

/**
 * Runs recorded for this box (under any spelling of the host that resolves to the same endpoint) whose
 * workdir, resolved on the box, is the push destination, lies inside it or contains it — and that still
 * have live cells. One round trip to resolve the workdirs, then liveRunsOn (which fails closed: an
 * unreachable host throws rather than answering "nothing live").
 */
async function liveWorkdirsAt(ctx: ToolContext, host: string, dest: string): Promise<LiveWorkdir[]> {
  const all = listRuns(ctx.ledger).slice(0, 200);
  if (!all.length) return [];
  const me = await ctx.remote.resolve(host).then((h) => h.key, () => undefined);
  const sameBox = new Map<string, boolean>();
  const matches = async (h: string): Promise<boolean> => {
    if (h === host) return true;
    if (!me) return false;
    if (!sameBox.has(h)) sameBox.set(h, await ctx.remote.resolve(h).then((r) => r.key === me, () => false));
    return sameBox.get(h)!;
  };
  // recorded host spelling -> runs with cells there
  const byHost = new Map<string, typeof all>();
  for (const run of all) {
    for (const h of new Set([...run.hosts, ...run.cells.map((c) => c.host)])) {
      if (!(await matches(h))) continue;
      if (!byHost.has(h)) byHost.set(h, []);
      byHost.get(h)!.push(run);
    }
  }
  if (!byHost.size) return [];
  const workdirs = [...new Set([...byHost.values()].flat().map((r) => r.workdir))];
  const script = workdirs
    .map((w, i) => `cd -P -- ${remotePathWord(w)} 2>/dev/null && printf 'WD\\t%s\\t%s\\n' ${i} "$PWD"`)
    .join("; ") + "; exit 0";
  const r = await ctx.remote.exec(host, script, { timeoutMs: 30_000 });
  if (r.timedOut) throw new RefusalError("TIMEOUT", `checking ${host} for live runs under ${dest} timed out`, "Retry; check the box with probe_env.");
  const resolved = new Map<string, string>();
  for (const m of r.stdout.matchAll(/^WD\t(\d+)\t(.+)$/gm)) resolved.set(workdirs[Number(m[1])], trimSlash(m[2]));
  const d = trimSlash(dest);
  const out: LiveWorkdir[] = [];
  for (const [h, runs] of byHost) {
    // a workdir that no longer exists on the box cannot be read by anything running there
    const overlapping = runs.filter((run) => {
      const w = resolved.get(run.workdir);
      return w !== undefined && (posixInside(d, w) || posixInside(w, d));
    });
    if (!overlapping.length) continue;
    const ids = new Set(overlapping.map((x) => x.run_id));
    for (const live of await liveRunsOn(ctx.remote, ctx.ledger, h)) {
      if (!ids.has(live.run_id) || out.some((o) => o.run_id === live.run_id)) continue;
      out.push({ run_id: live.run_id, workdir: resolved.get(overlapping.find((x) => x.run_id === live.run_id)!.workdir)!, cells: live.cells_running });
    }
  }
  return out;
}

/**
 * Of `files` (relative to the destination), those the push would change — existing files on the box whose
 * content differs — judged by rsync itself: a dry run with --checksum over the same file list, itemized.
 * Only a line for an existing file counts ("+++++++++" marks a file that does not exist yet).
 * Resolves undefined when rsync could not answer (the caller then compares hashes instead).
 */
async function rsyncWouldChange(transport: { argv: string[]; destination: string }, localDir: string, remoteDir: string, files: string[],
    timeoutMs: number): Promise<string[] | undefined> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-live-"));
  const list = path.join(tmp, "files");
  fs.writeFileSync(list, files.map((f) => `${f}\0`).join(""), { mode: 0o600 });
  try {
    return await new Promise((resolve) => {
      const args = [
        "-rlpt", "-8", "-n", "--checksum", "--no-inc-recursive", "--timeout=60", "--out-format=RGTI:%i %n",
        "-e", rsyncShellArg(transport.argv), "--from0", `--files-from=${list}`,
        "--", `${localDir.replace(/\/+$/, "")}/`, `${transport.destination}:${remoteDir.replace(/\/+$/, "")}/`,
      ];
      const child = spawn("rsync", args, { stdio: ["ignore", "pipe", "pipe"] });
      const changed: string[] = [];
      createInterface({ input: child.stdout, crlfDelay: Infinity }).on("line", (l) => {
        const m = /^RGTI:([<>ch.])([fLDS])(\S{9}) (.*)$/.exec(l);
        if (!m || m[3] === "+++++++++" || m[2] === "D") return;
        // `<f` (sent to the box) / `cL`: data or a link target goes over an existing path; `.f` = attributes only
        if (m[1] === "<" || m[1] === ">" || m[1] === "c") changed.push(decodeRsyncName(m[4]));
      });
      child.stderr.resume();
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.on("error", () => { clearTimeout(timer); resolve(undefined); });
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve(code === 0 ? changed : undefined);
      });
    });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}


/** The same question answered by hashes: the box hashes the files that exist there (one round trip), we hash ours. */
async function hashesWouldChange(ctx: ToolContext, host: string, localDir: string, remoteDir: string,
    files: { path: string; bytes: number }[]): Promise<string[]> {
  const tree = await remoteHashTree(ctx.remote, host, remoteDir, files.map((f) => f.path), { timeoutMs: 300_000, signal: ctx.signal });
  const there = new Map(tree.files.map((f) => [f.path, f]));
  const out: string[] = [];
  for (const f of files) {
    const r = there.get(f.path);
    if (!r) continue; // not on the box yet: adding it changes nothing a run reads
    if (r.bytes !== f.bytes || r.sha256 !== sha256FileSync(path.join(localDir, f.path))) out.push(f.path);
  }
  return out;
}

/**
 * Refuse LIVE_SCRIPT_MUTATION when the push would change a file under the workdir of a run still live on
 * this box. Only changes to EXISTING files count: a brand-new file is something no running process has
 * opened, so adding it is allowed; and push_code never deletes (no --delete), so removals cannot happen.
 * A run that is done, failed or stopped does not hold its workdir.
 */
async function guardLiveRuns(
  ctx: ToolContext, host: string, remoteDirArg: string, dest: string, localDir: string, files: { path: string; bytes: number }[], useRsync: boolean,
): Promise<void> {
  const live = await liveWorkdirsAt(ctx, host, dest);
  if (!live.length) return;
  const d = trimSlash(dest);
  const under = files.filter((f) => live.some((l) => posixInside(path.posix.join(d, f.path), l.workdir)));
  if (!under.length) return;
  let changed: string[] | undefined;
  if (useRsync) {
    const bytes = under.reduce((a, f) => a + f.bytes, 0);
    changed = await rsyncWouldChange(await ctx.remote.sshTransport(host), localDir, d, under.map((f) => f.path), 120_000 + Math.ceil(bytes / 50_000));
  }
  changed ??= await hashesWouldChange(ctx, host, localDir, d, under);
  if (!changed.length) return;
  const hit = live.filter((l) => changed!.some((f) => posixInside(path.posix.join(d, f), l.workdir)));
  const first = hit[0] ?? live[0];
  const shown = changed.slice(0, 5);
  const versioned = `${trimSlash(remoteDirArg)}-v2`;
  refuse(
    "LIVE_SCRIPT_MUTATION",
    `${changed.length} file(s) in ${d} would be overwritten under live run ${first.run_id} (workdir ${first.workdir}, running: ${first.cells.slice(0, 5).join(", ") || "?"}): ` +
      `${shown.join(", ")}${changed.length > shown.length ? ", …" : ""}. Nothing was sent.`,
    `Push the changed tree to a new versioned directory instead (e.g. remote_dir "${versioned}") and launch from there; ` +
      `or stop_run { run_id: "${first.run_id}" } first (its files are kept). Files that do not exist on the box yet may be added while it runs.`,
    { run_ids: hit.map((l) => l.run_id), changed_files: changed.slice(0, 20), remote_dir: d },
  );
}
