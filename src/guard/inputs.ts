/**
 * The one guard for every tool input that can reach a shell on a box, run before any connection.
 * Each tool declares which of its fields reach a shell and how (a command line, a directory, a file
 * path, a name, an env map, a pattern); every other string of any tool — including tools added later
 * that declare nothing — is still scanned for credentials, and a field named like a command is judged
 * as one. Same findings and codes whichever tool: SECRET_INLINE, DESTROY_UNAPPROVED, BAD_INPUT.
 * Pure: the caller (the server pipeline) gathers the context from the ledger.
 */
import { RefusalCode, type Refusal } from "../common/result.js";
import { findInlineCredentials, judgeNameValue } from "./credentials.js";
import { destroyRefusal, findDestroys, type DestroyContext } from "./destroy.js";
import { CELL_OUTPUT } from "./destroy/paths.js";

export type FieldKind = "runname" | "command" | "dir" | "localdir" | "path" | "file" | "name" | "env" | "pattern" | "text";

export interface InputField {
  /** dotted path of the field in the arguments, e.g. "cells[2].command" */
  field: string;
  kind: FieldKind;
  value: string;
  /** env map that the command will see (a cell's env) */
  env?: Record<string, string>;
  /** directory the command runs in */
  cwd?: string;
}

export type GuardContext = Omit<DestroyContext, "cwd" | "env">;
/** what the pipeline hands in (src/server/record.ts guardContextFor): every fact optional */
export type GuardInputContext = Partial<GuardContext>;

/** a refusal; `extra` fields (field, rule, destroys) are merged into the tool's result */
export type GuardRefusal = Refusal & { extra?: Record<string, unknown> };
export type InputRefusal = GuardRefusal;

/** names that travel into paths, tmux sessions and scripts: refused when they carry anything else */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NAME_RULE = "1-64 of letters, digits, . _ - starting with a letter or digit";
/** a run's display name may also hold spaces and colons (its run_id is derived from it) */
export const RUN_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9 ._:-]{0,99}$/;
const RUN_NAME_RULE = "1-100 of letters, digits, space, . _ : - starting with a letter or digit";

type Args = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** what rgt sets for every cell: its own output dir stands for itself (writing there is the cell's job) */
const CELL_ENV = { RGT_OUTPUT_DIR: CELL_OUTPUT, RGT_SCRATCH_DIR: `${CELL_OUTPUT}/.scratch` };

/** Which fields reach a shell on the box, per tool. */
export const SHELL_FIELDS: Record<string, (a: Args) => InputField[]> = {
  remote_exec: (a) => [
    ...opt("cwd", "path", a.cwd),
    ...opt("command", "command", a.command, { ...(str(a.cwd) ? { cwd: str(a.cwd)! } : {}) }),
  ],
  launch_queue: (a) => [
    ...opt("run_name", "runname", a.run_name),
    ...opt("workdir", "path", a.workdir),
    ...(str(a.data_dir) ? opt("data_dir", "path", a.data_dir) : []),
    ...(str(a.durable_dir) ? opt("durable_dir", "path", a.durable_dir) : []),
    ...arr(a.cells).flatMap((c, i) => {
      const cell = (c ?? {}) as Args;
      const env = (cell.env && typeof cell.env === "object" ? cell.env : {}) as Record<string, string>;
      return [
        ...opt(`cells[${i}].name`, "name", cell.name),
        ...Object.entries(env).map(([k, v]) => ({ field: `cells[${i}].env.${k}`, kind: "env" as const, value: `${k}=${String(v)}` })),
        ...opt(`cells[${i}].command`, "command", cell.command, { env: { ...env, ...CELL_ENV }, ...(str(a.workdir) ? { cwd: str(a.workdir)! } : {}) }),
      ];
    }),
  ],
  push_code: (a) => [...opt("remote_dir", "dir", a.remote_dir), ...opt("local_dir", "localdir", a.local_dir), ...arr(a.exclude).flatMap((e, i) => opt(`exclude[${i}]`, "pattern", e))],
  push_secret: (a) => opt("remote_path", "file", a.remote_path),
  pull_verify: (a) => [...opt("remote_path", "file", a.remote_path), ...opt("local_dir", "localdir", a.local_dir)],
  stop_run: (a) => [...opt("run_id", "name", a.run_id), ...arr(a.cells).flatMap((c, i) => opt(`cells[${i}]`, "name", c))],
};

function opt(field: string, kind: FieldKind, v: unknown, extra: Partial<InputField> = {}): InputField[] {
  return typeof v === "string" ? [{ field, kind, value: v, ...extra }] : [];
}

/** Every string of the arguments with its path (the generic rule for fields no tool declared). */
export function allStrings(v: unknown, at = "", out: InputField[] = [], depth = 0): InputField[] {
  if (depth > 12 || out.length > 4096) return out;
  if (typeof v === "string") {
    const key = at.slice(at.lastIndexOf(".") + 1).replace(/\[\d+\]$/, "");
    out.push({ field: at || "input", kind: /^(command|cmd|script|shell|run|exec)$/i.test(key) ? "command" : "text", value: v });
  } else if (Array.isArray(v)) v.forEach((x, i) => allStrings(x, `${at}[${i}]`, out, depth + 1));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) allStrings(x, at ? `${at}.${k}` : k, out, depth + 1);
  return out;
}

/** an input echoed back in a reason: one line, cut short */
export function clip(s: string, n = 80): string {
  const one = s.replace(/[\0-\x1f\x7f]/g, "?");
  return one.length > n ? `${one.slice(0, n)}…` : one;
}

const SYSTEM_DIRS = /^\/(etc|usr|bin|sbin|lib|lib32|lib64|libx32|var|boot|proc|sys|dev|run|srv|opt|snap|home|root|mnt|media|lost\+found)$/;
const UNDER_SYSTEM = /^\/(etc|bin|sbin|lib|lib32|lib64|boot|proc|sys|dev|usr\/(bin|sbin|lib|lib64|include|share|libexec)|var\/(lib|log|spool|cache|run|mail|backups))(\/|$)/;

/** Why a directory argument could do harm as a push/pull/launch target; null when it is fine. */
export function harmfulDir(p: string, local = false): string | null {
  const t = p.trim().replace(/\/+$/, "") || "/";
  if (t === "/" || /^\/+$/.test(p.trim())) return "is the filesystem root";
  if (/^(~|\$HOME|\$\{HOME\}|~[A-Za-z0-9_.-]*)$/.test(t)) return "is the home directory itself";
  if (!local && /^\/home\/[^/]+$/.test(t)) return "is a home directory itself";
  if (SYSTEM_DIRS.test(t)) return `is the system directory ${t}`;
  if (UNDER_SYSTEM.test(t)) return `lies in the system directory ${t.split("/").slice(0, 2).join("/")}`;
  if (/(^|\/)\.\.(\/|$)/.test(t)) return "climbs out with ..";
  return null;
}

function refusal(code: string, reason: string, remedy: string, extra?: Record<string, unknown>): GuardRefusal {
  return { code, reason: reason.slice(0, 600), remedy, ...(extra ? { extra } : {}) };
}

const SECRET_REMEDY =
  "Never put a credential in a tool input. Put it on the box once with push_secret (source {env: \"NAME\"} reads it from your local environment and streams it over stdin into a 0600 file), then refer to it by name only, e.g. `$WANDB_API_KEY` or `export HF_TOKEN=$(cat <file>)` inside the command.";

/** Judge one field. */
export function guardField(f: InputField, ctx0: GuardInputContext = {}): GuardRefusal | null {
  const ctx: GuardContext = { ...ctx0, protectedPaths: ctx0.protectedPaths ?? [] };
  if (f.value.includes("\0")) return refusal(RefusalCode.BAD_INPUT, `${f.field}: contains a NUL byte`, "Remove it.", { field: f.field });
  if (f.kind === "env" && !/^[A-Za-z_][A-Za-z0-9_]*=/.test(f.value)) {
    return refusal(RefusalCode.BAD_INPUT, `${f.field}: "${clip(f.value.slice(0, f.value.indexOf("=")), 40)}" is not a valid variable name`, "Use letters, digits and _, not starting with a digit.", { field: f.field });
  }
  const cred = f.kind === "env" ? judgeNameValue(f.value.slice(0, f.value.indexOf("=")), f.value.slice(f.value.indexOf("=") + 1)) : findInlineCredentials(f.value);
  if (cred) {
    return refusal(RefusalCode.SECRET_INLINE, `Field "${f.field}" contains what looks like a credential (rule ${cred.rule}); it was not sent anywhere.`, SECRET_REMEDY, { field: f.field, rule: cred.rule });
  }
  switch (f.kind) {
    case "runname":
      if (!RUN_NAME_PATTERN.test(f.value)) return refusal(RefusalCode.BAD_INPUT, `${f.field}: "${clip(f.value, 60)}" is not a valid run name: it must be ${RUN_NAME_RULE} (no shell characters)`, `Rename it to match ${RUN_NAME_PATTERN.source}; names are refused, never rewritten.`, { field: f.field });
      return null;
    case "name":
      if (!NAME_PATTERN.test(f.value)) return refusal(RefusalCode.BAD_INPUT, `${f.field}: "${clip(f.value, 60)}" is not a valid name: it must be ${NAME_RULE} (no spaces or shell characters)`, `Rename it to match ${NAME_PATTERN.source}; names are refused, never rewritten.`, { field: f.field });
      return null;
    case "dir": case "localdir": case "file": case "path": {
      if (/[\n\r]/.test(f.value)) return refusal(RefusalCode.BAD_INPUT, `${f.field}: must be one path without newlines`, "Pass a single path.", { field: f.field });
      if (f.kind === "path") return null;
      if (f.kind !== "file") {
        const why = harmfulDir(f.value, f.kind === "localdir");
        if (why) return refusal(RefusalCode.BAD_INPUT, `${f.field}: "${clip(f.value, 60)}" ${why}; a transfer or launch there could overwrite or expose the whole system`, "Pass a project directory of its own, e.g. ~/proj or /root/autodl-tmp/proj.", { field: f.field });
      } else if (UNDER_SYSTEM.test(f.value.trim())) {
        return refusal(RefusalCode.BAD_INPUT, `${f.field}: "${clip(f.value, 60)}" lies in a system directory`, "Write under the home directory or the project, e.g. ~/.netrc.", { field: f.field });
      }
      return null;
    }
    case "command": {
      if (f.value.trim() === "") return null;
      const found = findDestroys(f.value, { ...ctx, ...(f.cwd ? { cwd: f.cwd } : {}), ...(f.env ? { env: f.env } : {}) });
      const r = destroyRefusal(found, f.field);
      if (r) return refusal(r.refusal.code, r.refusal.reason, r.refusal.remedy, { field: f.field, destroys: r.destroys });
      return null;
    }
    default:
      return null;
  }
}

/**
 * The guard entry point: every declared field of `tool`, then every other string of the arguments
 * (credentials everywhere; a `command`-named field is judged as a command). First refusal wins.
 */
export function guardInputs(tool: string, args: Record<string, unknown>, ctx: GuardInputContext = {}): GuardRefusal | null {
  const declared = SHELL_FIELDS[tool]?.(args ?? {}) ?? [];
  const seen = new Set(declared.map((f) => f.field));
  for (const f of declared) {
    const r = guardField(f, ctx);
    if (r) return r;
  }
  for (const f of allStrings(args ?? {})) {
    if (seen.has(f.field) || /\.env\.[A-Za-z_][A-Za-z0-9_]*$/.test(f.field)) continue;
    const r = guardField(f, ctx);
    if (r) return r;
  }
  return null;
}
