/**
 * Two pipeline stages on the way out: the one-line `summary` every result carries (Claude Code shows
 * the model structuredContent only, so the summary must say what happened or what to do), and the bound
 * on how much of an input a result may echo back.
 */
import type { HandlerResult } from "./tool.js";

/** no result repeats more than this many characters of one input string */
export const ECHO_MAX = 200;
const SUMMARY_MAX = 400;

function firstSentence(s: string, max: number): string {
  const t = s.replace(/\s+/g, " ").trim();
  const m = /^(.+?[.!?])(\s|$)/.exec(t);
  const one = m && m[1].length >= 20 ? m[1] : t;
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** The result's own summary if it wrote one, else one built from the refusal or the outcome. */
export function summarize(title: string, r: HandlerResult): string {
  if (typeof r.summary === "string" && r.summary.trim()) return firstSentence(r.summary, SUMMARY_MAX);
  const warns = Array.isArray(r.warnings) ? r.warnings : [];
  const danger = warns.filter((w) => w.severity === "danger").map((w) => w.code);
  const tail = warns.length ? ` ${warns.length} warning(s)${danger.length ? `, danger: ${[...new Set(danger)].slice(0, 4).join(", ")}` : ""}.` : "";
  if (r.refused) {
    return `Refused ${r.refused.code}: ${firstSentence(r.refused.reason, 200)} Remedy: ${firstSentence(r.refused.remedy, 160)}`;
  }
  return r.ok ? `${title}: done.${tail}` : `${title}: did not fully succeed; see the fields below.${tail}`;
}

function longStrings(v: unknown, out: Set<string>, depth = 0): void {
  if (depth > 8) return;
  if (typeof v === "string") { if (v.length > ECHO_MAX) out.add(v); return; }
  if (Array.isArray(v)) { for (const x of v.slice(0, 1000)) longStrings(x, out, depth + 1); return; }
  if (v && typeof v === "object") for (const x of Object.values(v).slice(0, 1000)) longStrings(x, out, depth + 1);
}

function cut(s: string, inputs: string[]): string {
  let out = s;
  for (const i of inputs) {
    if (out.length < i.length || !out.includes(i)) continue;
    out = out.split(i).join(`${i.slice(0, ECHO_MAX)}…[${i.length - ECHO_MAX} more chars of your input]`);
  }
  return out;
}

function walk(v: unknown, inputs: string[], depth = 0): unknown {
  if (typeof v === "string") return cut(v, inputs);
  if (depth > 12 || !v || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map((x) => walk(x, inputs, depth + 1));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, inputs, depth + 1)]));
}

/** Replace every verbatim echo of a long input string in the result with its first ECHO_MAX characters. */
export function boundEchoes(result: HandlerResult, rawArgs: unknown): HandlerResult {
  const set = new Set<string>();
  longStrings(rawArgs, set);
  if (set.size === 0) return result;
  const inputs = [...set].sort((a, b) => b.length - a.length).slice(0, 64);
  return walk(result, inputs) as HandlerResult;
}
