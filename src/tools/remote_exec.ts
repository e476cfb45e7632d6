/**
 * remote_exec — the guarded escape hatch for one ad-hoc command on a box.
 * Before anything is sent: inline credentials are refused (SECRET_INLINE → push_secret) and destructive
 * commands are refused (DESTROY_UNAPPROVED → request_teardown / delete by hand after pull_verify).
 * The command is bounded in time (killed on the box past timeout_s) and its output is cut to short
 * tails; the full text, redacted, stays in a local file whose path is returned.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import * as z from "zod";
import { quote } from "shell-quote";
import { defineTool } from "../server/tool.js";
import { refuse, warning, type Warning } from "../common/result.js";
import { assertNoInlineSecrets } from "../guard/secrets.js";
import { assertNotDestructive } from "../guard/destroy.js";
import { redactText } from "../guard/redact.js";
import { hostInfo, ownSlurmJobIds, protectedPathsFor, runsOnHost } from "../ledger/hostinfo.js";

const STDOUT_TAIL = 1200;
const STDERR_TAIL = 500;
const CAPTURE_BYTES = 4 * 1024 * 1024;

function tailOf(s: string, n: number): { text: string; cut: boolean } {
  if (s.length <= n) return { text: s, cut: false };
  const t = s.slice(-n);
  const nl = t.indexOf("\n");
  return { text: nl >= 0 && nl < 200 ? t.slice(nl + 1) : t, cut: true };
}

export const remoteExec = defineTool({
  name: "remote_exec",
  title: "Run one guarded command on a box",
  description:
    "Run one short shell command on a host and get its exit code and output tails. Refuses inline credentials (use push_secret) and destructive commands such as instance destroy, rm -rf of data/checkpoint dirs, shutdown, scancel of others' jobs (use request_teardown). Killed on the box after timeout_s (default 60). For long work use launch_queue.",
  input: {
    host: z.string().min(1).max(300).describe("ssh alias or user@host[:port]"),
    command: z.string().min(1).max(65_536).describe("shell command line, run by the login shell"),
    timeout_s: z.number().int().min(1).max(3600).optional().describe("wall-clock limit, default 60"),
    cwd: z.string().min(1).max(4096).optional().describe("directory to run in (must already exist)"),
  },
  output: {
    exit_code: z.number().nullable().optional(),
    stdout_tail: z.string().optional(),
    stderr_tail: z.string().optional(),
    truncated: z.boolean().optional(),
    timed_out: z.boolean().optional(),
    elapsed_ms: z.number().optional(),
    full_output: z.string().optional(),
  },
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
  async handler(args, ctx) {
    const { host, command } = args;
    const timeoutS = args.timeout_s ?? 60;
    if (/[\0\n\r]/.test(args.cwd ?? "")) refuse("BAD_INPUT", "cwd: must be one path without newlines or NUL", "Pass a single directory path as cwd.");
    if (command.includes("\0")) refuse("BAD_INPUT", "command: contains a NUL byte", "Remove the NUL byte from command.");

    // 1. credentials never travel in command text
    assertNoInlineSecrets({ command, cwd: args.cwd });

    // 2. destroys go through request_teardown, never through here
    const info = hostInfo(ctx.ledger, host);
    const runs = runsOnHost(ctx.ledger, host);
    const guardCtx = { protectedPaths: protectedPathsFor(info, runs), ownJobIds: ownSlurmJobIds(runs) };
    assertNotDestructive(command, guardCtx);
    const full = args.cwd ? `cd ${quote([args.cwd])} && ${command}` : command;
    if (args.cwd) assertNotDestructive(full, guardCtx);

    // 3. run, bounded
    const r = await ctx.remote.exec(host, full, { timeoutMs: timeoutS * 1000, maxOutputBytes: CAPTURE_BYTES, signal: ctx.signal });
    const out = tailOf(r.stdout, STDOUT_TAIL);
    const err = tailOf(r.stderr, STDERR_TAIL);
    const truncated = r.truncated || out.cut || err.cut;
    const warnings: Warning[] = [];
    let fullOutput: string | undefined;
    if (truncated) {
      try {
        const dir = path.join(ctx.ledger.dir, "exec");
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        fullOutput = path.join(dir, `${new Date().toISOString().replace(/[:.]/g, "-")}-${randomBytes(3).toString("hex")}.log`);
        fs.writeFileSync(fullOutput, redactText(`$ ${command}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}\n`), { mode: 0o600 });
      } catch {
        fullOutput = undefined;
      }
    }
    if (r.timedOut) {
      warnings.push(warning("TIMEOUT", "warn", `The command ran past ${timeoutS}s and was killed on the box with its process group. For long work use launch_queue.`));
    }
    return {
      ok: !r.timedOut && r.exitCode === 0,
      exit_code: r.exitCode,
      stdout_tail: out.text,
      stderr_tail: err.text,
      truncated,
      ...(r.timedOut ? { timed_out: true } : {}),
      elapsed_ms: r.elapsedMs,
      ...(fullOutput ? { full_output: fullOutput } : {}),
      warnings,
    };
  },
});
