/**
 * push_code — put a project tree on a box, resumably. The work is the transfer service's
 * (src/transfer/push.ts): scan, refusals before a byte leaves, live-run guard, rsync or SFTP.
 */
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { push } from "../transfer/index.js";
import { pathText } from "./fields.js";

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
    bytes_reused: z.number().optional(),
    links_outside: z.array(z.string()).optional(),
    elapsed_ms: z.number().optional(),
  },
  // destructive: it overwrites or kills what is there (files on the box / the run's processes), though it deletes nothing
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
  async handler(args, ctx) {
    return push(ctx, {
      host: args.host, localDir: args.local_dir, remoteDir: args.remote_dir,
      exclude: args.exclude, allowSecretFiles: args.allow_secret_files, dryRun: args.dry_run,
    });
  },
});
