/**
 * Checking one tool result against a replay step's expectation.
 *
 * Field assertions are small expressions: `<path> <op> [value]`
 *   path  : dotted, with numeric indexes and `.length` (e.g. `gpus.length`, `disks.0.role`, `profile.name`)
 *   op    : == != > >= < <= | contains (array member or substring) | matches (regex) | exists | absent
 *   value : JSON (`"autodl"`, `8`, `true`, `null`); a bare word is taken as a string
 */
import type { StepExpect } from "./cases.js";

export interface ToolOutcome {
  structured: Record<string, unknown> | undefined;
  isError: boolean;
  /** the raw text content, for size checks and diagnostics */
  text: string;
}

const OPS = ["==", "!=", ">=", "<=", ">", "<", "contains", "matches", "exists", "absent"] as const;
type Op = (typeof OPS)[number];

export interface FieldExpr {
  path: string;
  op: Op;
  value?: unknown;
}

export function parseFieldExpr(expr: string): FieldExpr {
  const m = /^\s*([A-Za-z0-9_.\-[\]]+)\s+(==|!=|>=|<=|>|<|contains|matches|exists|absent)(?:\s+([\s\S]+?))?\s*$/.exec(expr);
  if (!m) throw new Error(`bad field assertion '${expr}' (want '<path> <op> <value>')`);
  const op = m[2] as Op;
  const rawVal = m[3];
  if ((op === "exists" || op === "absent") && rawVal !== undefined) throw new Error(`'${op}' takes no value in '${expr}'`);
  if (op !== "exists" && op !== "absent" && rawVal === undefined) throw new Error(`'${op}' needs a value in '${expr}'`);
  let value: unknown = rawVal;
  if (rawVal !== undefined) {
    try {
      value = JSON.parse(rawVal);
    } catch {
      value = rawVal;
    }
  }
  return { path: m[1], op, value };
}

/** Resolve a dotted path; `undefined` when any segment is missing. */
export function getPath(obj: unknown, p: string): unknown {
  const segs = p.replace(/\[(\d+)\]/g, ".$1").split(".").filter(Boolean);
  let cur: unknown = obj;
  for (const s of segs) {
    if (cur === null || cur === undefined) return undefined;
    if (s === "length" && (Array.isArray(cur) || typeof cur === "string")) {
      cur = cur.length;
      continue;
    }
    if (typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[s];
  }
  return cur;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function evalField(obj: unknown, e: FieldExpr): { ok: boolean; actual: unknown } {
  const actual = getPath(obj, e.path);
  const num = (v: unknown) => (typeof v === "number" ? v : NaN);
  switch (e.op) {
    case "exists":
      return { ok: actual !== undefined && actual !== null, actual };
    case "absent":
      return { ok: actual === undefined || actual === null, actual };
    case "==":
      return { ok: deepEqual(actual, e.value), actual };
    case "!=":
      return { ok: !deepEqual(actual, e.value), actual };
    case ">":
      return { ok: num(actual) > num(e.value), actual };
    case ">=":
      return { ok: num(actual) >= num(e.value), actual };
    case "<":
      return { ok: num(actual) < num(e.value), actual };
    case "<=":
      return { ok: num(actual) <= num(e.value), actual };
    case "contains":
      if (Array.isArray(actual)) return { ok: actual.some((x) => deepEqual(x, e.value) || (typeof x === "string" && typeof e.value === "string" && x.includes(e.value))), actual };
      if (typeof actual === "string") return { ok: actual.includes(String(e.value)), actual };
      return { ok: false, actual };
    case "matches":
      return { ok: typeof actual === "string" && new RegExp(String(e.value)).test(actual), actual };
  }
}

function short(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? "undefined" : s.length > 120 ? s.slice(0, 117) + "..." : s;
}

/** The placeholder every unimplemented tool returns: such a replay must fail, never pass. */
export function isPlaceholder(o: ToolOutcome): boolean {
  const r = o.structured?.refused as { code?: string; reason?: string } | undefined;
  return r?.code === "INTERNAL" && /not implemented/i.test(r.reason ?? "");
}

export function checkOutcome(o: ToolOutcome, ex: StepExpect): string[] {
  const fails: string[] = [];
  const s = o.structured;
  if (!s) return [`no structuredContent (text: ${o.text.slice(0, 200)})`];
  if (isPlaceholder(o)) return [`tool is still the "not implemented" placeholder`];
  const refused = s.refused as { code?: string; reason?: string } | undefined;
  if (ex.ok !== undefined && s.ok !== ex.ok) {
    fails.push(`ok: want ${ex.ok}, got ${String(s.ok)}${refused ? ` (refused ${refused.code}: ${String(refused.reason).slice(0, 200)})` : ""}`);
  }
  if (ex.code !== undefined) {
    if (!refused) fails.push(`want refusal ${ex.code}, got none (ok=${String(s.ok)})`);
    else if (refused.code !== ex.code) fails.push(`want refusal ${ex.code}, got ${refused.code}: ${String(refused.reason).slice(0, 200)}`);
    if (s.ok !== false) fails.push(`a refusal must carry ok:false`);
    if (!o.isError) fails.push(`a refusal must carry isError:true`);
  }
  const codes = Array.isArray(s.warnings) ? (s.warnings as { code?: string }[]).map((w) => w?.code) : [];
  for (const w of ex.warnings ?? []) if (!codes.includes(w)) fails.push(`warning ${w} missing (got ${codes.join(",") || "none"})`);
  for (const w of ex.no_warnings ?? []) if (codes.includes(w)) fails.push(`warning ${w} present but must be absent`);
  for (const f of ex.fields ?? []) {
    let e: FieldExpr;
    try {
      e = parseFieldExpr(f);
    } catch (err) {
      fails.push((err as Error).message);
      continue;
    }
    const r = evalField(s, e);
    if (!r.ok) fails.push(`${f} (actual ${short(r.actual)})`);
  }
  if (ex.max_bytes !== undefined) {
    const n = Buffer.byteLength(JSON.stringify(s));
    if (n > ex.max_bytes) fails.push(`result is ${n} bytes, over ${ex.max_bytes}`);
  }
  if (ex.absent_text?.length) {
    const all = `${JSON.stringify(s)}\n${o.text}`;
    for (const t of ex.absent_text) if (all.includes(t)) fails.push(`the result contains text that must not appear (${t.slice(0, 4)}…)`);
  }
  return fails;
}

/** What a step's string arguments may refer to. */
export interface SubstVars {
  /** the case's box alias ("{box}") */
  alias?: string;
  /** the package root ("{root}") */
  root?: string;
  /** a local scratch directory of this eval run ("{tmp}") */
  tmp?: string;
  /** structured results of the case's earlier steps, in order ("{prev.<path>}", "{stepN.<path>}") */
  steps?: (Record<string, unknown> | undefined)[];
  /** the ssh aliases of the case's fake listener ("{listener}") and of its route through it ("{jump}") */
  listener?: string;
  jump?: string;
}

const PLACEHOLDER = /\{(box|root|tmp|listener|jump|prev\.[A-Za-z0-9_.\-[\]]+|step[1-9][0-9]?\.[A-Za-z0-9_.\-[\]]+)\}/g;

function lookup(name: string, vars: SubstVars): unknown {
  if (name === "box") {
    if (vars.alias === undefined) throw new Error(`argument uses {box} but the case declares no box`);
    return vars.alias;
  }
  if (name === "root") {
    if (vars.root === undefined) throw new Error(`argument uses {root} but no package root was given`);
    return vars.root;
  }
  if (name === "listener" || name === "jump") {
    const v = vars[name];
    if (v === undefined) throw new Error(`argument uses {${name}} but the case declares no ${name}`);
    return v;
  }
  if (name === "tmp") {
    if (vars.tmp === undefined) throw new Error(`argument uses {tmp} but no scratch directory was given`);
    return vars.tmp;
  }
  const dot = name.indexOf(".");
  const head = name.slice(0, dot);
  const p = name.slice(dot + 1);
  const steps = vars.steps ?? [];
  let idx: number;
  if (head === "prev") {
    idx = steps.length - 1;
    if (idx < 0) throw new Error(`argument uses {${name}} in the first step`);
  } else {
    idx = Number(head.slice(4)) - 1;
    if (idx >= steps.length) throw new Error(`argument uses {${name}} but only ${steps.length} step(s) ran before`);
  }
  const v = getPath(steps[idx], p);
  if (v === undefined || v === null) throw new Error(`argument uses {${name}} but step ${idx + 1}'s result has no ${p}`);
  return v;
}

/**
 * Replace placeholders in the string leaves of step args (see StepSchema): "{box}", "{root}", "{tmp}", "{listener}", "{jump}",
 * "{prev.<path>}", "{stepN.<path>}". A string that is exactly one placeholder becomes the value itself
 * (a number stays a number); inside a longer string the value is written as text (objects as JSON).
 */
export function substituteArgs<T>(v: T, vars: SubstVars): T {
  if (typeof v === "string") {
    const whole = /^\{([^{}]+)\}$/.exec(v);
    if (whole && new RegExp(`^${PLACEHOLDER.source}$`).test(v)) return lookup(whole[1], vars) as T;
    return v.replace(PLACEHOLDER, (_m, name: string) => {
      const x = lookup(name, vars);
      return typeof x === "string" ? x : typeof x === "object" ? JSON.stringify(x) : String(x);
    }) as T;
  }
  if (Array.isArray(v)) return v.map((x) => substituteArgs(x, vars)) as T;
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = substituteArgs(x, vars);
    return out as T;
  }
  return v;
}

/** Replace every "{box}" (the case's box alias) and "{root}" (the package root) in string leaves of the args. */
export function substituteBox<T>(v: T, alias: string | undefined, root?: string): T {
  return substituteArgs(v, { alias, root });
}
