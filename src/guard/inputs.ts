/**
 * The check-inputs stage of the pipeline (src/server/tool.ts): policy on a call's arguments, decided
 * before the handler runs and before anything reaches a box. Pure: no I/O; the ledger facts it needs
 * arrive in `ctx`.
 *
 *   guardInputs(tool, args, ctx?) → Refusal | null
 *
 * - tool: the tool's name ("remote_exec", "launch_queue", …)
 * - args: the arguments, already validated against the tool's input schema
 * - ctx:  optional facts about the first host named in args (protected paths, our own Slurm job ids)
 * Returns null to let the call proceed, or the refusal the tool's result carries:
 * { code, reason, remedy, extra? } — extra fields (e.g. field, rule, count) are merged into the result.
 */
import { RefusalError, type Refusal } from "../common/result.js";
import { shq } from "../common/text.js";
import { assertNotDestructive, findDestroys, type DestroyKind } from "./destroy.js";

const MACHINE_KINDS = new Set<DestroyKind>(["instance", "power", "k8s", "scancel"]);
import { assertNoInlineSecrets } from "./secrets.js";

export interface GuardInputContext {
  /** data/durable/output dirs an rm -rf of which is a destroy */
  protectedPaths?: string[];
  /** Slurm job ids this server submitted (scancel of those is allowed) */
  ownJobIds?: string[];
}

export type InputRefusal = Refusal & { extra?: Record<string, unknown> };

type Args = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

function remoteExec(args: Args, ctx: Required<GuardInputContext>): void {
  const command = str(args.command) ?? "";
  const cwd = str(args.cwd);
  // 1. credentials never travel in command text
  assertNoInlineSecrets({ command, cwd });
  // 2. destroys go through request_teardown, never through here
  assertNotDestructive(command, ctx);
  if (cwd) assertNotDestructive(`cd ${shq(cwd)} && ${command}`, ctx);
}

function launchQueue(args: Args, ctx: Required<GuardInputContext>): void {
  const fields: Record<string, string | undefined> = { run_name: str(args.run_name), workdir: str(args.workdir) };
  const cells = Array.isArray(args.cells) ? (args.cells as { command?: unknown; env?: Record<string, unknown> }[]) : [];
  cells.forEach((c, i) => {
    fields[`cells[${i}].command`] = str(c.command);
    for (const [k, v] of Object.entries(c.env ?? {})) {
      // a value alone may not look like a key; NAME=value is how the catalog recognises most of them
      if (typeof v === "string") fields[`cells[${i}].env.${k}`] = `${k}=${v}`;
    }
  });
  assertNoInlineSecrets(fields);
  // a queued cell may write (and overwrite) its own outputs, so only machine-level destroys are refused
  // here: instance destroy/release, power-off, cluster deletes, scancel of others' jobs
  for (const c of cells) {
    if (typeof c.command !== "string") continue;
    if (findDestroys(c.command, ctx).some((f) => MACHINE_KINDS.has(f.kind))) assertNotDestructive(c.command, ctx);
  }
}

const CHECKS: Record<string, (args: Args, ctx: Required<GuardInputContext>) => void> = {
  remote_exec: remoteExec,
  launch_queue: launchQueue,
};

export function guardInputs(tool: string, args: Record<string, unknown>, ctx?: GuardInputContext): InputRefusal | null {
  const check = CHECKS[tool];
  if (!check) return null;
  try {
    check(args, { protectedPaths: ctx?.protectedPaths ?? [], ownJobIds: ctx?.ownJobIds ?? [] });
    return null;
  } catch (e) {
    if (e instanceof RefusalError) return { ...e.refusal, ...(Object.keys(e.extra).length ? { extra: e.extra } : {}) };
    throw e;
  }
}
