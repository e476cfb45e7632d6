/**
 * Other readings of an output, for redaction: what a terminal shows (ANSI escapes and lone carriage
 * returns removed), lines a terminal or `fold` wrapped joined back, JSON string escapes undone, and
 * base64 runs decoded. A secret split by any of these is found in the view and its span mapped back to
 * the original text, so the whole of it — escapes and line breaks included — is redacted. Pure.
 */
import { scanSecrets, type SecretSpan } from "./catalog.js";

/** a transformed text; char i of `text` came from original [from[i], to[i]) */
interface View {
  text: string;
  from: number[];
  to: number[];
  /** view indices where two original pieces were joined (a wrap point) */
  joins?: number[];
}

function identity(s: string): View {
  const from = new Array<number>(s.length);
  const to = new Array<number>(s.length);
  for (let i = 0; i < s.length; i++) { from[i] = i; to[i] = i + 1; }
  return { text: s, from, to };
}

/** rewrite a view: `re` matches are replaced by `rep(match)` (each output char spans the whole match) */
function rewrite(v: View, re: RegExp, rep: (m: RegExpExecArray) => string): View {
  const out: string[] = [];
  const from: number[] = [];
  const to: number[] = [];
  let at = 0;
  re.lastIndex = 0;
  let m: RegExpExecArray | null;
  const keep = (a: number, b: number): void => { for (let i = a; i < b; i++) { out.push(v.text[i]!); from.push(v.from[i]!); to.push(v.to[i]!); } };
  while ((m = re.exec(v.text)) !== null) {
    if (m[0].length === 0) { re.lastIndex++; continue; }
    keep(at, m.index);
    const r = rep(m);
    const a = v.from[m.index]!;
    const b = v.to[m.index + m[0].length - 1]!;
    for (const c of r) { out.push(c); from.push(a); to.push(b); }
    at = m.index + m[0].length;
  }
  keep(at, v.text.length);
  return { text: out.join(""), from, to };
}

const ANSI = /\x1b\[[0-9;?<=>]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\|\x1b[@-Z\\-_()#%*+][0-9A-Za-z]?|\r(?!\n)/g;
const JSON_ESC = /\\u([0-9a-fA-F]{4})|\\([\\\/"nrtbf'])/g;
const WRAP_MIN = 24;

function unescapeJson(m: RegExpExecArray): string {
  if (m[1]) return String.fromCharCode(parseInt(m[1], 16));
  return ({ n: "\n", r: "\r", t: "\t", b: "\b", f: "\f" } as Record<string, string>)[m[2]!] ?? m[2]!;
}

/** lines a terminal or `fold` cut: a line of ≥ WRAP_MIN characters ending in a word character, the next starting with one */
function joinWraps(v: View): View | null {
  const t = v.text;
  const joins: number[] = [];
  const drop = new Set<number>();
  let lineStart = 0;
  for (let i = 0; i < t.length; i++) {
    if (t[i] !== "\n") continue;
    const cr = t[i - 1] === "\r" ? 1 : 0;
    const len = i - cr - lineStart;
    if (len >= WRAP_MIN && /[A-Za-z0-9_+\/=.:-]/.test(t[i - 1 - cr] ?? "") && /[A-Za-z0-9_+\/=.-]/.test(t[i + 1] ?? "")) { drop.add(i); if (cr) drop.add(i - 1); }
    lineStart = i + 1;
  }
  if (drop.size === 0) return null;
  const out: string[] = [];
  const from: number[] = [];
  const to: number[] = [];
  for (let i = 0; i < t.length; i++) {
    if (drop.has(i)) { if (t[i] === "\n") joins.push(out.length); continue; }
    out.push(t[i]!); from.push(v.from[i]!); to.push(v.to[i]!);
  }
  return { text: out.join(""), from, to, joins };
}

function mapBack(v: View, spans: SecretSpan[], onlyJoins: boolean): SecretSpan[] {
  const out: SecretSpan[] = [];
  for (const sp of spans) {
    if (onlyJoins && !(v.joins ?? []).some((j) => j > sp.start && j < sp.end)) continue;
    out.push({ rule: sp.rule, start: v.from[sp.start]!, end: v.to[sp.end - 1]! });
  }
  return out;
}

const B64_RUN = /(?<![A-Za-z0-9+\/_-])[A-Za-z0-9+\/_-]{16,8192}={0,2}(?![A-Za-z0-9+\/=_-])/g;

/** base64 (or base64url) and hex runs that decode to text holding a secret: the whole run is one */
function encodedSpans(s: string): SecretSpan[] {
  const out: SecretSpan[] = [];
  B64_RUN.lastIndex = 0;
  let m: RegExpExecArray | null;
  let tried = 0;
  while ((m = B64_RUN.exec(s)) !== null && tried < 256) {
    const run = m[0];
    const isHex = /^(?:[0-9a-f]{2}){12,}$|^(?:[0-9A-F]{2}){12,}$/.test(run);
    if (!isHex && (!/[A-Z]/.test(run) || !/[a-z]/.test(run))) continue;
    tried++;
    const dec = Buffer.from(run, isHex ? "hex" : "base64").toString("latin1");
    if (dec.length < 8) continue;
    let printable = 0;
    for (let i = 0; i < dec.length; i++) { const c = dec.charCodeAt(i); if ((c >= 0x20 && c < 0x7f) || c === 9 || c === 10 || c === 13) printable++; }
    if (printable < dec.length * 0.95) continue;
    if (scanSecrets(dec).length > 0 || /^[^:\s]{1,64}:[^\s]{8,}$/.test(dec) && scanSecrets(`https://${dec}@h`).length > 0) out.push({ rule: "base64-secret", start: m.index, end: m.index + run.length });
  }
  return out;
}

/** Secret spans that only another reading of `s` shows, in original offsets (may overlap the plain scan's). */
export function viewSpans(s: string): SecretSpan[] {
  const out: SecretSpan[] = [];
  let base: View | null = null;
  if (/[\x1b\r]/.test(s)) {
    base = rewrite(identity(s), ANSI, () => "");
    out.push(...mapBack(base, scanSecrets(base.text), false));
  }
  if (s.includes("\\")) {
    let j = rewrite(base ?? identity(s), JSON_ESC, unescapeJson);
    out.push(...mapBack(j, scanSecrets(j.text), false));
    if (j.text.includes("\\")) { j = rewrite(j, JSON_ESC, unescapeJson); out.push(...mapBack(j, scanSecrets(j.text), false)); }
  }
  out.push(...encodedSpans(s));
  if (s.length >= WRAP_MIN && s.includes("\n")) {
    const w = joinWraps(base ?? identity(s));
    if (w) {
      out.push(...mapBack(w, scanSecrets(w.text), true));
      // `base64` / `xxd -p` output wraps at 76 / 60 columns: decoded whole
      out.push(...mapBack(w, encodedSpans(w.text), true));
    }
  }
  return out;
}
