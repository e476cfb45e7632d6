/**
 * How a tool is declared (one file per tool in src/tools/) and the one pipeline every call goes through:
 *
 *   check inputs (zod → BAD_INPUT naming the field; guardInputs → SECRET_INLINE / DESTROY_UNAPPROVED)
 *   → act (the handler; RefusalError → refusal, anything else → INTERNAL)
 *   → redact (every string, and no input echoed past ECHO_MAX characters)
 *   → record (meter clocks, IDLE_METER warnings)
 *   → the result contract: ok, summary, warnings, refused?, tool fields; structuredContent + the same JSON as text.
 *
 * There are no result hooks: a tool declares what the stages need (effect, meter) and cannot skip one.
 */
import * as z from "zod";
import type { ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import { RefusalError, type Warning, type Refusal } from "../common/result.js";
import { redactDeep, type Fingerprints } from "../guard/redact.js";
import { loadFingerprints } from "../ledger/fingerprints.js";
import { guardInputs } from "../guard/inputs.js";
import type { Remote } from "../remote/types.js";
import type { Ledger } from "../ledger/store.js";
import { guardContextFor, recordMeter } from "./record.js";
import { boundEchoes, summarize } from "./summary.js";

export interface ElicitResult {
  action: "accept" | "decline" | "cancel";
  content?: Record<string, unknown>;
}

export interface ToolContext {
  remote: Remote;
  ledger: Ledger;
  /** report progress on long calls (no-op when the client sent no progressToken) */
  progress(progress: number, total?: number, message?: string): Promise<void>;
  /** MCP logging (notifications/message); diagnostics never go to stdout or stderr */
  log(level: "debug" | "info" | "warning" | "error", data: unknown): Promise<void>;
  /**
   * Ask the human through the client, if (and only if) the client declared elicitation.
   * Returns undefined when the client cannot elicit. Times out (rejects) after timeoutMs.
   */
  elicit?: (message: string, requestedSchema: Record<string, unknown>, timeoutMs: number) => Promise<ElicitResult | undefined>;
  signal: AbortSignal;
}

/** What a handler returns: ok + warnings (+ summary, refused) and the tool's declared fields. */
export type HandlerResult = { ok: boolean; warnings: Warning[]; summary?: string; refused?: Refusal } & Record<string, unknown>;

/**
 * What a tool does to the world, declared once. It gives the four annotation hints and the toolsets:
 * read    — changes nothing on a box and spends nothing (served under RGT_TOOLS=read-only)
 * write   — creates or adds (files, runs, local copies), never overwrites or kills
 * destroy — may overwrite, kill or delete something that was there
 */
export type Effect = "read" | "write" | "destroy";

export interface ToolDef<In extends z.ZodRawShape = z.ZodRawShape, Out extends z.ZodRawShape = z.ZodRawShape> {
  name: string;
  title: string;
  /** what the tool does and when to call it; the how-to lives in skill/SKILL.md */
  description: string;
  input: In;
  /** the tool's own result fields; the pipeline makes them optional and adds the common ones */
  output: Out;
  effect: Effect;
  /** the same call again changes nothing more (default: true for read/write, false for destroy) */
  idempotent?: boolean;
  /** touches no host and no network (openWorldHint false) */
  local?: boolean;
  /** how results move the host meter: `activity` marks live work; `reportsItself` skips IDLE_METER warnings */
  meter?: { activity?: (result: HandlerResult) => boolean; reportsItself?: boolean };
  handler: (args: z.infer<z.ZodObject<In>>, ctx: ToolContext) => Promise<HandlerResult>;
}

export type Tool<In extends z.ZodRawShape = z.ZodRawShape, Out extends z.ZodRawShape = z.ZodRawShape> = ToolDef<In, Out> & {
  readonly annotations: ToolAnnotations;
};

export function annotationsFor(def: Pick<ToolDef, "effect" | "idempotent" | "local" | "title">): ToolAnnotations {
  return {
    title: def.title,
    readOnlyHint: def.effect === "read",
    destructiveHint: def.effect === "destroy",
    idempotentHint: def.idempotent ?? def.effect !== "destroy",
    openWorldHint: !def.local,
  };
}

export function defineTool<In extends z.ZodRawShape, Out extends z.ZodRawShape>(def: ToolDef<In, Out>): Tool<In, Out> {
  return { ...def, annotations: annotationsFor(def) };
}

export interface McpToolResult {
  [k: string]: unknown;
  content: { type: "text"; text: string }[];
  structuredContent: Record<string, unknown>;
  isError?: boolean;
}

/** The common envelope in a fixed key order: ok, summary, warnings, refused?, then the tool's fields. */
function envelope(r: HandlerResult, summary: string): HandlerResult {
  const { ok, warnings, refused, summary: _s, ...rest } = r;
  return { ok, summary, warnings: Array.isArray(warnings) ? warnings : [], ...(refused ? { refused } : {}), ...rest };
}

export function toMcpResult(result: HandlerResult): McpToolResult {
  return {
    content: [{ type: "text", text: JSON.stringify(result) }],
    structuredContent: result,
    ...(result.ok ? {} : { isError: true }),
  };
}

function refusalResult(r: Refusal & { extra?: Record<string, unknown> }): HandlerResult {
  const { extra, ...refused } = r;
  return { ok: false, warnings: [], ...(extra ?? {}), refused: { code: refused.code, reason: refused.reason, remedy: refused.remedy,
    ...(refused.diagnosis ? { diagnosis: refused.diagnosis } : {}) } };
}

/** "cells[0].name" from a zod issue path. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || "arguments";
}

/** Malformed arguments → BAD_INPUT naming the field(s); the input itself is never echoed. */
export function badInput(error: z.ZodError): HandlerResult {
  const issues = error.issues.slice(0, 3).map((i) => `${fieldPath(i.path)}: ${i.message.slice(0, 160)}`);
  const more = error.issues.length > 3 ? ` (+${error.issues.length - 3} more)` : "";
  return refusalResult({
    code: "BAD_INPUT",
    reason: `${issues.join("; ")}${more}`,
    remedy: "Fix the named field and call again; nothing was sent to any host.",
    extra: { field: fieldPath(error.issues[0]?.path ?? []) },
  });
}

const inputSchemas = new WeakMap<object, z.ZodObject>();
function inputSchemaOf(def: ToolDef): z.ZodObject {
  let s = inputSchemas.get(def);
  if (!s) { s = z.object(def.input); inputSchemas.set(def, s); }
  return s;
}

async function act(def: ToolDef, args: Record<string, unknown>, ctx: ToolContext): Promise<HandlerResult> {
  try {
    return await def.handler(args as never, ctx);
  } catch (e) {
    if (e instanceof RefusalError) return refusalResult({ ...e.refusal, extra: e.extra });
    const msg = e instanceof Error ? e.message : String(e);
    await ctx.log("error", { tool: def.name, error: msg.slice(0, 2000) }).catch(() => {});
    return refusalResult({
      code: "INTERNAL",
      reason: msg,
      remedy: "This is a bug in remote-gpu-trainer; the call changed nothing it did not report. Retry, or run `rgt doctor`.",
    });
  }
}

/** what push_secret delivered, as salted fingerprints, for exact-match redaction */
function fingerprintsOf(ctx: ToolContext): Fingerprints | undefined {
  try { return loadFingerprints(ctx.ledger); } catch { return undefined; }
}

/**
 * The guard refuses what it cannot read (opaque) rather than guess. For remote_exec, when the client can
 * ask its human (elicitation), the exact command is shown and may be run this once; nothing is
 * remembered, and the seatbelt on the box still stands. Any other finding is never asked about.
 */
async function humanRunsOpaqueOnce(tool: string, args: Record<string, unknown>, refusal: Refusal, ctx: ToolContext): Promise<boolean> {
  if (tool !== "remote_exec" || refusal.code !== "DESTROY_UNAPPROVED" || !ctx.elicit) return false;
  const found = ((refusal as Refusal & { extra?: { destroys?: { kind: string }[] } }).extra?.destroys ?? []);
  if (found.length === 0 || !found.every((d) => d.kind === "obfuscated")) return false;
  const command = String(args.command ?? "");
  if (command.length > 4000) return false;
  const message =
    `remote_exec wants to run, on ${String(args.host).slice(0, 100)}, a command whose effect the guard cannot read ` +
    `(it is computed at run time):\n\n${command}\n\nRun exactly this, once? (Provider CLIs and power verbs stay blocked on the box.)`;
  const schema = { type: "object", properties: { run_once: { type: "boolean", title: "Run this exact command once" } }, required: ["run_once"] };
  const r = await ctx.elicit(message, schema, 120_000).catch(() => undefined);
  return r?.action === "accept" && r.content?.run_once === true;
}

/** The pipeline. Every tool call — from the MCP server, the CLI or a test — goes through here. */
export async function runTool(def: ToolDef, rawArgs: unknown, ctx: ToolContext): Promise<McpToolResult> {
  // 1. check inputs
  const parsed = inputSchemaOf(def).safeParse(rawArgs ?? {});
  let result: HandlerResult;
  let args: Record<string, unknown> = {};
  if (!parsed.success) {
    result = badInput(parsed.error);
  } else {
    args = parsed.data as Record<string, unknown>;
    let refusal = guardInputs(def.name, args, guardContextFor(ctx.ledger, args));
    // an opaque remote_exec command may be run once when a human, shown the exact command, says so
    if (refusal && (await humanRunsOpaqueOnce(def.name, args, refusal, ctx))) refusal = null;
    // 2. act
    result = refusal ? refusalResult(refusal) : await act(def, args, ctx);
  }
  // 3. redact, and bound what comes back of the inputs
  result = redactDeep(result, fingerprintsOf(ctx)) as HandlerResult;
  if (!result.ok) result = boundEchoes(result, rawArgs);
  // 4. record
  if (parsed.success && result.refused?.code !== "BAD_INPUT") {
    try { await recordMeter(def, args, result, ctx); } catch { /* the meter never breaks a result */ }
  }
  return toMcpResult(envelope(result, summarize(def.title, result)));
}
