/**
 * push_code — put a project tree on a box, resumably.
 * Order: scan locally (rsync's own filter evaluation) → refuse credential files / CRLF scripts before a
 * byte leaves → one round trip to create and resolve the destination and learn whether the box has rsync →
 * rsync --partial over the pool's ssh settings, or SFTP with per-file resume when the box has none.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { refuse, warning, RefusalError, type Warning } from "../common/result.js";
import { runRsync, localRsyncAvailable, prepareRemoteDir } from "../remote/rsync.js";
import { sftpPush } from "../remote/sftp.js";
import { crlfScripts, scanPushTree, secretFiles, PROJECT_IGNORE } from "../verify/tree.js";

const HUGE_FILES = 20_000;
const HUGE_BYTES = 5 * 1024 ** 3;

const pathText = (field: string) =>
  z.string().min(1).max(4096).refine((s) => !/[\0\n\r]/.test(s), `${field} must be one path without newlines or NUL`);

export const pushCode = defineTool({
  name: "push_code",
  title: "Push a code tree to a box (resumable)",
  description:
    "Copy a local project directory to a directory on the box with rsync --partial (SFTP with per-file resume when the box has no rsync). " +
    "Honours .gitignore, .git/info/exclude and .rgtignore plus `exclude`. Refuses, before sending anything, credential files " +
    "(SECRET_FILE: .env, *.pem, id_* keys, .netrc, cloud credentials — use push_secret, or list them in allow_secret_files) and shell scripts " +
    "with CRLF line endings (CRLF_SCRIPT). Re-running sends only what changed; an interrupted push resumes. dry_run scans and reports without sending.",
  input: {
    host: z.string().min(1).max(300).describe("ssh alias or user@host[:port]"),
    local_dir: pathText("local_dir").describe("local project directory"),
    remote_dir: pathText("remote_dir").describe("destination directory on the box (created if absent; ~/ and relative paths are under the remote home)"),
    exclude: z.array(z.string().min(1).max(1024).refine((s) => !/[\0\n\r]/.test(s), "exclude patterns are single lines")).max(200).optional()
      .describe("extra rsync-style exclude patterns, e.g. [\"data/\", \"*.ckpt\"]"),
    allow_secret_files: z.array(z.string().min(1).max(4096)).max(100).optional()
      .describe("relative paths (or base names) of credential-looking files the user explicitly wants pushed"),
    dry_run: z.boolean().optional().describe("scan and report only; nothing is sent"),
  },
  output: {
    method: z.enum(["rsync", "sftp", "dry_run"]).optional(),
    files_sent: z.number().optional(),
    bytes_sent: z.number().optional(),
    bytes_total: z.number().optional(),
    files_total: z.number().optional(),
    remote_dir: z.string().optional(),
    resumed_files: z.number().optional(),
    elapsed_ms: z.number().optional(),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
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
    await ctx.progress(0, bytesTotal, `pushing ${files.length} files`);
    const timeoutMs = 600_000 + Math.ceil(bytesTotal / 1000);

    if (prep.hasRsync && localRsyncAvailable() && files.length) {
      const transport = await ctx.remote.sshTransport(args.host);
      let lastTick = 0;
      const r = await runRsync({
        transport,
        direction: "push",
        localDir,
        remoteDir: prep.dir,
        files: files.map((f) => f.path),
        timeoutMs,
        signal: ctx.signal,
        onProgress: (done) => {
          const now = Date.now();
          if (now - lastTick > 500) { lastTick = now; void ctx.progress(done, bytesTotal); }
        },
      });
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
    if (!prep.hasRsync) warnings.push(warning("NO_RSYNC", "info", "The box has no rsync; pushed over SFTP with per-file resume (slower on many small files).", "rgt://references/ssh_transport"));
    const sftp = await ctx.remote.sftp(args.host);
    let lastTick = 0;
    try {
      const r = await sftpPush(sftp, localDir, prep.dir, files, {
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
