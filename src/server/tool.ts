/**
 * How a tool is declared (one file per tool in src/tools/) and how its handler's return value
 * becomes an MCP result: structuredContent + the same JSON as text, refusals as ok:false/isError,
 * every string redacted, result hooks (meter clocks, etc.) applied.
 */
import * as z from "zod";
import type { ToolAnnotations } from "@modelcontextprotocol/sdk/types.js";
import { RefusalError, type Warning, type Refusal } from "../common/result.js";
import { redactDeep } from "../guard/redact.js";
import type { Remote } from "../remote/types.js";
import type { Ledger } from "../ledger/store.js";

export interface ElicitResult {
  action: "accept" | "decline" | "cancel";
  content?: Record<string, unknown>;
}

export interface ToolContext {
  remote: Remote;
  ledger: Ledger;
  /** report progress on long calls (no-op when the client sent no progressToken) */
  progress(progress: number, total?: number, message?: string): Promise<void>;
  /** MCP logging (notifications/message); diagnostics never go to stdout */
  log(level: "debug" | "info" | "warning" | "error", data: unknown): Promise<void>;
  /**
   * Ask the human through the client, if (and only if) the client declared elicitation.
   * Returns undefined when the client cannot elicit. Times out (rejects) after timeoutMs.
   */
  elicit?: (message: string, requestedSchema: Record<string, unknown>, timeoutMs: number) => Promise<ElicitResult | undefined>;
  signal: AbortSignal;
}

/** What a handler returns: anything with ok + warnings; the wrapper adds nothing else. */
export type HandlerResult = { ok: boolean; warnings: Warning[]; refused?: Refusal } & Record<string, unknown>;

export interface ToolDef<In extends z.ZodRawShape = z.ZodRawShape, Out extends z.ZodRawShape = z.ZodRawShape> {
  name: string;
  title: string;
  description: string;
  input: In;
  output: Out;
  annotations: ToolAnnotations;
  handler: (args: z.infer<z.ZodObject<In>>, ctx: ToolContext) => Promise<HandlerResult>;
}

export function defineTool<In extends z.ZodRawShape, Out extends z.ZodRawShape>(def: ToolDef<In, Out>): ToolDef<In, Out> {
  return def;
}

/**
 * Post-processors run on every tool result before redaction (e.g. IDLE_METER warnings).
 * They receive the tool name, the validated arguments and the result; they may add warnings/fields.
 */
export type ResultHook = (tool: string, args: Record<string, unknown>, result: HandlerResult, ctx: ToolContext) => Promise<void> | void;
const hooks: ResultHook[] = [];
export function addResultHook(h: ResultHook): void {
  if (!hooks.includes(h)) hooks.push(h);
}

export interface McpToolResult {
  [k: string]: unknown;
  content: { type: "text"; text: string }[];
  structuredContent: Record<string, unknown>;
  isError?: boolean;
}

export function toMcpResult(result: HandlerResult): McpToolResult {
  const clean = redactDeep(result) as HandlerResult;
  return {
    content: [{ type: "text", text: JSON.stringify(clean) }],
    structuredContent: clean,
    ...(clean.ok ? {} : { isError: true }),
  };
}

export function refusalResult(e: RefusalError): HandlerResult {
  return { ok: false, warnings: [], ...e.extra, refused: e.refusal };
}

/** Run a handler with refusal conversion and hooks. Unexpected errors become an INTERNAL refusal. */
export async function runTool<In extends z.ZodRawShape, Out extends z.ZodRawShape>(
  def: ToolDef<In, Out>,
  args: z.infer<z.ZodObject<In>>,
  ctx: ToolContext,
): Promise<McpToolResult> {
  let result: HandlerResult;
  try {
    result = await def.handler(args, ctx);
  } catch (e) {
    if (e instanceof RefusalError) {
      result = refusalResult(e);
    } else {
      const msg = e instanceof Error ? e.message : String(e);
      await ctx.log("error", { tool: def.name, error: msg }).catch(() => {});
      result = { ok: false, warnings: [], refused: { code: "INTERNAL", reason: msg, remedy: "This is a bug in remote-gpu-trainer; the call changed nothing it did not report. Retry, or run `rgt doctor`." } };
    }
  }
  for (const h of hooks) {
    try { await h(def.name, args as Record<string, unknown>, result, ctx); } catch { /* a hook never breaks a result */ }
  }
  return toMcpResult(result);
}
