/**
 * The result envelope every tool returns (TOOLS.md "Common shapes").
 * A refusal is a normal result with ok:false and `refused`, never a thrown error across the MCP boundary.
 */
import * as z from "zod";

export const SeveritySchema = z.enum(["info", "warn", "danger"]);
export type Severity = z.infer<typeof SeveritySchema>;

export const WarningSchema = z.object({
  code: z.string(),
  severity: SeveritySchema,
  message: z.string(),
  ref: z.string().optional(),
});
export type Warning = z.infer<typeof WarningSchema>;

export const RefusalSchema = z.object({
  code: z.string(),
  reason: z.string(),
  remedy: z.string(),
  /** connection refusals (UNREACHABLE / TIMEOUT / AUTH_FAILED): one line on the likely cause, from what this machine can see */
  diagnosis: z.string().optional(),
});
export type Refusal = z.infer<typeof RefusalSchema>;

/** Fields present on every tool result. Tool output schemas extend this. */
export const baseResultShape = {
  ok: z.boolean(),
  warnings: z.array(WarningSchema),
  refused: RefusalSchema.optional(),
};

/** Stable refusal codes (TOOLS.md). Extend, never reuse a code for another meaning. */
export const RefusalCode = {
  SECRET_INLINE: "SECRET_INLINE",
  SECRET_FILE: "SECRET_FILE",
  DESTROY_UNAPPROVED: "DESTROY_UNAPPROVED",
  LIVE_SCRIPT_MUTATION: "LIVE_SCRIPT_MUTATION",
  CRLF_SCRIPT: "CRLF_SCRIPT",
  RUN_ACTIVE: "RUN_ACTIVE",
  UNVERIFIED_ARTIFACTS: "UNVERIFIED_ARTIFACTS",
  ROSTER_MISMATCH: "ROSTER_MISMATCH",
  HASH_MISMATCH: "HASH_MISMATCH",
  EMPTY_ARTIFACT_SET: "EMPTY_ARTIFACT_SET",
  APPROVAL_REQUIRED: "APPROVAL_REQUIRED",
  APPROVAL_DENIED: "APPROVAL_DENIED",
  APPROVAL_INVALID: "APPROVAL_INVALID",
  HOST_KEY_UNKNOWN: "HOST_KEY_UNKNOWN",
  HOST_KEY_CHANGED: "HOST_KEY_CHANGED",
  UNREACHABLE: "UNREACHABLE",
  AUTH_FAILED: "AUTH_FAILED",
  TIMEOUT: "TIMEOUT",
  BAD_INPUT: "BAD_INPUT",
  NOT_FOUND: "NOT_FOUND",
  INTERNAL: "INTERNAL",
} as const;
export type RefusalCodeName = keyof typeof RefusalCode;

/**
 * Throw this anywhere below the tool layer to end a call with a structured refusal.
 * The tool wrapper (src/server/tool.ts) turns it into { ok:false, refused, isError:true }.
 * `extra` fields are merged into the result (e.g. approval_id on APPROVAL_REQUIRED).
 */
export class RefusalError extends Error {
  readonly refusal: Refusal;
  readonly extra: Record<string, unknown>;
  constructor(code: string, reason: string, remedy: string, extra: Record<string, unknown> = {}) {
    super(`${code}: ${reason}`);
    this.name = "RefusalError";
    this.refusal = { code, reason, remedy };
    this.extra = extra;
  }
}

export function refuse(code: string, reason: string, remedy: string, extra: Record<string, unknown> = {}): never {
  throw new RefusalError(code, reason, remedy, extra);
}

export function warning(code: string, severity: Severity, message: string, ref?: string): Warning {
  return ref ? { code, severity, message, ref } : { code, severity, message };
}
