/**
 * pull_verify — get artifacts off a box and prove they arrived whole. The work is the transfer
 * service's (src/transfer/pull.ts): the box lists and hashes its own files, files come over per unit
 * (rsync --partial or SFTP with resume), every local sha256 is compared, checkpoints are load-checked.
 * A complete, matching, loadable pull writes a receipt (src/ledger/receipts.ts) that request_teardown requires.
 */
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { pull } from "../transfer/index.js";
import { hostText, nameText, pathText } from "./fields.js";

export const pullVerify = defineTool({
  name: "pull_verify",
  title: "Pull artifacts and verify them (hash both ends, load-check)",
  description:
    "Pull a dir or a run's outputs resumably; hash both ends, load-check checkpoints, check the roster. A full match writes the receipt teardown needs.",
  input: {
    host: hostText(),
    run_id: nameText().optional(),
    remote_path: pathText("remote_path").optional(),
    local_dir: pathText("local_dir"),
    expect: z.array(z.string().min(1).max(1024)).max(500).optional(),
  },
  output: {
    receipt_id: z.string().nullable().optional(),
    complete: z.boolean().optional(),
    files: z.array(z.looseObject({ path: z.string(), bytes: z.number(), sha256: z.string().nullable(), remote_sha256: z.string(), match: z.boolean(),
        load_check: z.unknown() })).optional(),
    files_total: z.number().optional(),
    missing: z.array(z.string()).optional(),
    mismatched: z.array(z.string()).optional(),
    bytes_transferred: z.number().optional(),
    bytes_total: z.number().optional(),
    bytes_reused: z.number().optional(),
    manifest_sha256: z.string().optional(),
    local_dir: z.string().optional(),
    failed_units: z.array(z.string()).optional(),
    uncarriable: z.array(z.string()).optional(),
    links_total: z.number().optional(),
    links_outside: z.array(z.string()).optional(),
    manifest_path: z.string().optional(),
    streams: z.number().optional().describe("parallel streams used for big files (absent: one stream)"),
    elapsed_ms: z.number().optional(),
  },
  // write: it adds local copies and a receipt; nothing on the box changes
  effect: "write",
  async handler(args, ctx) {
    return pull(ctx, { host: args.host, runId: args.run_id, remotePath: args.remote_path, localDir: args.local_dir, expect: args.expect });
  },
});
