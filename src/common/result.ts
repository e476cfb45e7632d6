/**
 * The result contract every tool returns (docs/TOOLS.md "Common shapes"): `ok`, `summary`, `warnings`,
 * `refused?`, then the tool's own fields. A refusal is a normal result with ok:false and `refused`,
 * never a thrown error across the MCP boundary.
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

/**
 * Every refusal code, once. Extend here (and in docs/TOOLS.md), never reuse a code for another meaning;
 * test/unit/refusal-codes.test.ts fails on a code used in src/ but missing here.
 */
export const REFUSAL_CODES = [
  "SECRET_INLINE", "SECRET_FILE", "SECRET_ON_SHARED_MOUNT",
  "DESTROY_UNAPPROVED", "DESTROY_BLOCKED_ON_BOX",
  "LIVE_SCRIPT_MUTATION", "CRLF_SCRIPT", "SHELL_NOT_CLEAN",
  "RUN_ACTIVE", "UNVERIFIED_ARTIFACTS",
  "ROSTER_MISMATCH", "HASH_MISMATCH", "EMPTY_ARTIFACT_SET", "LOAD_CHECK_FAILED", "TRANSFER_INTERRUPTED", "TRANSFER_BUSY", "UNCARRIABLE",
  "APPROVAL_REQUIRED", "APPROVAL_DENIED", "APPROVAL_INVALID",
  "HOST_KEY_UNKNOWN", "HOST_KEY_CHANGED", "UNREACHABLE", "AUTH_FAILED", "TIMEOUT",
  "DISK_LOW", "GPU_BUSY", "PARK_READY", "PARK_REFUSED",
  "SLURM_SUBMIT_FAILED", "K8S_APPLY_FAILED", "K8S_PATCH_FAILED", "METER_STOP_FAILED",
  "BAD_INPUT", "NOT_FOUND", "INTERNAL",
] as const;
export const RefusalCodeSchema = z.enum(REFUSAL_CODES);
export type RefusalCodeName = (typeof REFUSAL_CODES)[number];
/** RefusalCode.BAD_INPUT === "BAD_INPUT": the union as named constants. */
export const RefusalCode = Object.fromEntries(REFUSAL_CODES.map((c) => [c, c])) as { readonly [K in RefusalCodeName]: K };

export const RefusalSchema = z.object({
  code: z.string(),
  reason: z.string(),
  remedy: z.string(),
  /** connection refusals (UNREACHABLE / TIMEOUT / AUTH_FAILED): one line on the likely cause, from what this machine can see */
  diagnosis: z.string().optional(),
});
export type Refusal = z.infer<typeof RefusalSchema>;

/** Fields present on every tool result; tool output schemas add their own (all optional) after these. */
export const baseResultShape = {
  ok: z.boolean(),
  summary: z.string().describe("one sentence: what happened, or what was refused and the remedy"),
  warnings: z.array(WarningSchema),
  refused: RefusalSchema.optional(),
  // extras the input checks' refusals carry: BAD_INPUT and SECRET_INLINE name the field (SECRET_INLINE also
  // the catalog rule and how many hits); DESTROY_UNAPPROVED lists what it found
  field: z.string().optional(),
  rule: z.string().optional(),
  count: z.number().optional(),
  destroys: z.array(z.object({ kind: z.string(), verb: z.string(), detail: z.string() })).optional(),
};

/**
 * Throw this anywhere below the tool layer to end a call with a structured refusal.
 * The pipeline (src/server/tool.ts) turns it into { ok:false, summary, refused, isError:true }.
 * `extra` fields are merged into the result (e.g. approval_id on APPROVAL_REQUIRED); declare them in the
 * tool's output schema.
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
