/**
 * remote_exec — the guarded escape hatch for one ad-hoc command on a box.
 * Before anything is sent, the pipeline's input guard (src/guard/inputs.ts) refuses inline credentials
 * (SECRET_INLINE → push_secret) and destructive commands (DESTROY_UNAPPROVED → request_teardown).
 * The command is bounded in time (killed on the box past timeout_s) and its output is cut to short
 * tails; the full text, redacted, stays in a local file whose path is returned.
 */
import * as z from "zod";
import { quote } from "shell-quote";
import { defineTool } from "../server/tool.js";
import { refuse, warning, type Warning } from "../common/result.js";
import { redactThenTail } from "../guard/redact.js";
import { saveExecOutput } from "../ledger/execlog.js";
import { loadFingerprints } from "../ledger/fingerprints.js";
import { blockedLines, ensureSeatbelt, withSeatbelt } from "../backends/seatbelt.js";
import { hostText, pathText } from "./fields.js";
import { provisioningRefusal, refFor, remedyFor } from "../knowledge/failures.js";

const STDOUT_TAIL = 1200;
const STDERR_TAIL = 500;
const CAPTURE_BYTES = 4 * 1024 * 1024;


export const remoteExec = defineTool({
  name: "remote_exec",
  title: "Run one guarded command on a box",
  description:
    "Run one short command on a box: exit code and output tails. Refuses credentials and destructive commands; long work goes to launch_queue.",
  input: {
    host: hostText(),
    command: z.string().min(1).max(65_536),
    timeout_s: z.number().int().min(1).max(3600).optional().describe("default 60"),
    cwd: pathText("cwd").optional(),
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
  effect: "destroy",
  async handler(args, ctx) {
    const { host, command } = args;
    const timeoutS = args.timeout_s ?? 60;
    // the seatbelt: provider CLIs and power verbs resolve to the shims first (installed once per host)
    // (its install shares the call's time bound: at most a third of it, the rest is the command's)
    const t0 = Date.now();
    const belted = await ensureSeatbelt(ctx.remote, host, Math.min(30_000, Math.ceil((timeoutS * 1000) / 3)));
    const leftMs = Math.max(1000, timeoutS * 1000 - (Date.now() - t0));
    const line = args.cwd ? `cd ${quote([args.cwd])} && ${command}` : command;
    const full = belted ? withSeatbelt(line) : line;

    // run, bounded (secrets and destroys were refused by the input guard before this point)
    const r = await ctx.remote.exec(host, full, { timeoutMs: leftMs, maxOutputBytes: CAPTURE_BYTES, signal: ctx.signal });
    // redact the whole output, then cut: nothing that straddles the cut comes back in part
    const fp = loadFingerprints(ctx.ledger);
    const out = redactThenTail(r.stdout, STDOUT_TAIL, fp);
    const err = redactThenTail(r.stderr, STDERR_TAIL, fp);
    const blocked = blockedLines(r.stderr);
    const truncated = r.truncated || out.cut || err.cut;
    const warnings: Warning[] = [];
    const fullOutput = truncated ? saveExecOutput(ctx.ledger, command, r.stdout, r.stderr, fp) : undefined;
    if (r.timedOut) {
      warnings.push(warning("TIMEOUT", "warn", `The command ran past ${timeoutS}s and was killed on the box with its process group. For long work use launch_queue.`));
    }
    // a provider CLI run here that was refused machines: an account setting is not a dry market (RP15)
    const prov = r.exitCode !== 0 ? provisioningRefusal(`${out.text}\n${err.text}`) : undefined;
    if (prov) {
      const what = remedyFor(prov.cause, { cells: ["the command"], relaunch: "run it again" });
      warnings.push(warning(prov.cause === "spot_not_enabled" ? "SPOT_NOT_ENABLED" : "NO_CAPACITY", prov.cause === "spot_not_enabled" ? "warn" : "info",
        `${what} (${prov.line.slice(0, 160)})`, refFor(prov.cause)));
    }
    if (!belted) warnings.push(warning("NO_SEATBELT", "warn", `the seatbelt shims could not be installed on ${host}; only the static guard stood between this command and a provider CLI`));
    if (blocked.length) {
      // a destroy the static guard could not see was stopped on the box by a shim
      return {
        ok: false,
        refused: { code: "DESTROY_BLOCKED_ON_BOX", reason: `The seatbelt on ${host} stopped a destroy at run time: ${blocked[0]!.slice(0, 240)}`, remedy: "Nothing was destroyed. Ending or powering off a machine goes through request_teardown; stop a run with stop_run." },
        summary: `A destroy was blocked on ${host} by the seatbelt.`,
        exit_code: r.exitCode, stdout_tail: out.text, stderr_tail: err.text, truncated, elapsed_ms: r.elapsedMs, warnings,
      };
    }
    return {
      ok: !r.timedOut && r.exitCode === 0,
      summary: r.timedOut ? `Killed after ${timeoutS}s on ${host}; use launch_queue for long work.` : `Exit ${r.exitCode} on ${host}${truncated ? "; output cut, full text in full_output" : ""}.`,
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
