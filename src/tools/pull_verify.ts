/**
 * pull_verify — get artifacts off a box and prove they arrived whole. The work is the transfer
 * service's (src/transfer/pull.ts): the box lists and hashes its own files, files come over per unit
 * (rsync --partial or SFTP with resume), every local sha256 is compared, checkpoints are load-checked.
 * A complete, matching, loadable pull writes a receipt (src/ledger/receipts.ts) that request_teardown requires.
 */
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { pull } from "../transfer/index.js";
import { pathText } from "./fields.js";

export const pullVerify = defineTool({
  name: "pull_verify",
  title: "Pull artifacts and verify them (hash both ends, load-check)",
  description:
    "Copy a directory (remote_path) or a run's per-cell outputs (run_id) from a box to local_dir, resumably (rsync --partial per directory; SFTP when the box has no rsync). " +
    "The box hashes its own files (sha256) in one round trip and every local copy is compared; checkpoints are load-checked (safetensors header, torch zip, torch.load(weights_only=True) when torch is installed locally). " +
    "`expect` is the roster of artifacts that must exist (paths or globs relative to remote_path / each cell's output dir). " +
    "ok:false with EMPTY_ARTIFACT_SET, ROSTER_MISMATCH, HASH_MISMATCH, LOAD_CHECK_FAILED or TRANSFER_INTERRUPTED (re-run resumes). A full match writes a receipt request_teardown needs.",
  input: {
    host: z.string().min(1).max(300).describe("ssh alias or user@host[:port]"),
    run_id: z.string().min(1).max(200).optional().describe("pull every cell of this run that lives on host"),
    remote_path: pathText("remote_path").optional().describe("directory on the box to pull (~/ = remote home)"),
    local_dir: pathText("local_dir").describe("local destination directory (created if absent)"),
    expect: z.array(z.string().min(1).max(1024)).max(500).optional().describe("roster: files that must be there, e.g. [\"best.pth\", \"logs/*.json\"]"),
  },
  output: {
    receipt_id: z.string().nullable().optional(),
    complete: z.boolean().optional(),
    files: z.array(z.looseObject({ path: z.string(), bytes: z.number(), sha256: z.string().nullable(), remote_sha256: z.string(), match: z.boolean(), load_check: z.unknown() })).optional(),
    files_total: z.number().optional(),
    missing: z.array(z.string()).optional(),
    mismatched: z.array(z.string()).optional(),
    bytes_transferred: z.number().optional(),
    bytes_reused: z.number().optional(),
    links_total: z.number().optional(),
    local_dir: z.string().optional(),
    bytes_total: z.number().optional(),
    elapsed_ms: z.number().optional(),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  async handler(args, ctx) {
    return pull(ctx, { host: args.host, runId: args.run_id, remotePath: args.remote_path, localDir: args.local_dir, expect: args.expect });
  },
});
