/**
 * push_code — put a project tree on a box, resumably. The work is the transfer service's
 * (src/transfer/push.ts): scan, refusals before a byte leaves, live-run guard, rsync or SFTP.
 */
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { push } from "../transfer/index.js";
import { hostText, pathText } from "./fields.js";

export const pushCode = defineTool({
  name: "push_code",
  title: "Push a code tree to a box (resumable)",
  description:
    "Copy a local project dir to a box resumably, honouring .gitignore/.rgtignore; refuses credential files and CRLF scripts. Re-runs send only changes.",
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
    streams: z.number().optional(),
    elapsed_ms: z.number().optional(),
    secret_files: z.array(z.string()).optional(),
    crlf_scripts: z.array(z.string()).optional(),
    failed_files: z.array(z.string()).optional(),
    live_runs: z.array(z.unknown()).optional(),
    run_ids: z.array(z.string()).optional(),
    changed_files: z.array(z.string()).optional(),
    links_outside: z.array(z.string()).optional(),
    bad_names: z.array(z.string()).optional(),
  },
  // destroy: it overwrites files already on the box, though it deletes nothing
  effect: "destroy",
  idempotent: true,
  async handler(args, ctx) {
    return push(ctx, {
      host: args.host, localDir: args.local_dir, remoteDir: args.remote_dir,
      exclude: args.exclude, allowSecretFiles: args.allow_secret_files, dryRun: args.dry_run,
    });
  },
});
