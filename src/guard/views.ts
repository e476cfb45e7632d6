/**
 * Other readings of an output, for redaction: what a terminal shows (ANSI escapes and lone carriage
 * returns removed), JSON string escapes undone, lines a terminal or `fold` wrapped joined back, and
 * base64 / hex runs decoded. A secret split by any of these is found in the reading and its span mapped
 * back to the original text, so the whole of it — escapes and line breaks included — is redacted. Pure.
 *
 * Cost: a reading is built only when its trigger is in the text (ESC, CR, a backslash); wrapped lines are
 * joined in small windows around each candidate break, not as a second copy of the whole text.
 */
import { scanSecrets, type SecretSpan } from "./catalog.js";

/**
 * A transformed text. `pieces` cover it in order: a piece of `len` view characters that came from
 * `olen` original characters at `o` — a plain copy when len === olen, else every character of it stands
 * for the whole original range (a replaced escape).
 */
interface View {
  text: string;
  pieces: { v: number; o: number; len: number; olen: number }[];
}

function identity(s: string, base = 0): View {
  return { text: s, pieces: [{ v: 0, o: base, len: s.length, olen: s.length }] };
}

function pieceAt(view: View, i: number): View["pieces"][number] {
  let lo = 0;
  let hi = view.pieces.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (view.pieces[mid]!.v <= i) lo = mid;
    else hi = mid - 1;
  }
  return view.pieces[lo]!;
}

/** original [start, end) of view characters [a, b) */
function toOriginal(view: View, a: number, b: number): [number, number] {
  const p = pieceAt(view, a);
  const q = pieceAt(view, b - 1);
  const start = p.len === p.olen ? p.o + (a - p.v) : p.o;
  const end = q.len === q.olen ? q.o + (b - 1 - q.v) + 1 : q.o + q.olen;
  return [start, end];
}

/** rewrite a view: `re` matches replaced by `rep(match)`; the rest copied */
function rewrite(view: View, re: RegExp, rep: (m: RegExpExecArray) => string): View {
  const parts: string[] = [];
  const pieces: View["pieces"] = [];
  let vlen = 0;
  const copy = (a: number, b: number): void => {
    // a copied range of the view may span several of its pieces: keep their mapping
    let i = a;
    while (i < b) {
      const p = pieceAt(view, i);
      const end = Math.min(b, p.v + p.len);
      if (p.len === p.olen) pieces.push({ v: vlen, o: p.o + (i - p.v), len: end - i, olen: end - i });
      else pieces.push({ v: vlen, o: p.o, len: end - i, olen: p.olen });
      parts.push(view.text.slice(i, end));
      vlen += end - i;
      i = end;
    }
  };
  let at = 0;
  re.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(view.text)) !== null) {
    if (m[0].length === 0) { re.lastIndex++; continue; }
    copy(at, m.index);
    const r = rep(m);
    if (r.length > 0) {
      const [o, oe] = toOriginal(view, m.index, m.index + m[0].length);
      pieces.push({ v: vlen, o, len: r.length, olen: oe - o });
      parts.push(r);
      vlen += r.length;
    }
    at = m.index + m[0].length;
  }
  copy(at, view.text.length);
  return { text: parts.join(""), pieces: pieces.length ? pieces : [{ v: 0, o: 0, len: 0, olen: 0 }] };
}

function spansOf(view: View, spans: SecretSpan[], keep: (a: number, b: number) => boolean = () => true): SecretSpan[] {
  const out: SecretSpan[] = [];
  for (const sp of spans) {
    if (sp.end <= sp.start || !keep(sp.start, sp.end)) continue;
    const [start, end] = toOriginal(view, sp.start, sp.end);
    out.push({ rule: sp.rule, start, end });
  }
  return out;
}

const ANSI = /\x1b\[[0-9;?<=>]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\|\x1b[@-Z\\-_()#%*+][0-9A-Za-z]?|\r(?!\n)/g;
const JSON_ESC = /\\u([0-9a-fA-F]{4})|\\([\\\/"nrtbf'])/g;
const WRAP_MIN = 24;
/** widths a terminal, `fold` or an encoder wraps at */
const WRAP_WIDTHS = new Set([60, 64, 72, 76, 78, 79, 80, 100, 110, 120, 128, 132, 140, 150, 160, 180, 200, 220, 240, 250, 256]);
const WINDOW = 256;

function unescapeJson(m: RegExpExecArray): string {
  if (m[1]) return String.fromCharCode(parseInt(m[1], 16));
  return ({ n: "\n", r: "\r", t: "\t", b: "\b", f: "\f" } as Record<string, string>)[m[2]!] ?? m[2]!;
}

const TOKEN_END = /[A-Za-z0-9_+\/=.:-]+$/;
const TOKEN_START = /^[A-Za-z0-9_+\/=.-]+/;

/**
 * Lines a terminal, `fold` or `base64` wrapped: where a line of ≥ WRAP_MIN characters ends inside a word
 * and the next begins with one, and the two pieces together are long enough to be a secret (≥ 16, with a
 * letter), the break is removed in a window around it (consecutive breaks of one long token join into one
 * window); secrets found across a removed break are returned in the view's offsets.
 */
function wrapSpans(view: View): SecretSpan[] {
  const t = view.text;
  const out: SecretSpan[] = [];
  let lineStart = 0;
  let group: { from: number; breaks: number[]; lens: number[] } | null = null;
  const flush = (lastLineEnd: number): void => {
    if (!group) return;
    const g = group;
    group = null;
    const end = Math.min(t.length, lastLineEnd, g.breaks[g.breaks.length - 1]! + WINDOW);
    // the window's text with its breaks removed, and where each removed break sits in it
    let win = "";
    const joins: number[] = [];
    const starts: number[] = [];
    let at = g.from;
    for (const b of g.breaks) {
      const cr = t[b - 1] === "\r" ? 1 : 0;
      starts.push(at);
      win += t.slice(at, b - cr);
      joins.push(win.length);
      at = b + 1;
    }
    starts.push(at);
    win += t.slice(at, end);
    const local: View = { text: win, pieces: [] };
    let v = 0;
    for (let k = 0; k < starts.length; k++) {
      const segEnd = k < g.breaks.length ? g.breaks[k]! - (t[g.breaks[k]! - 1] === "\r" ? 1 : 0) : end;
      local.pieces.push({ v, o: starts[k]!, len: segEnd - starts[k]!, olen: segEnd - starts[k]! });
      v += segEnd - starts[k]!;
    }
    const found = [...scanSecrets(win), ...encodedSpans(win)];
    // a secret that is whole before a break is a line that ended there (`loaded hf_…` then `step 2/2`): joined,
    // the match would run on into the next line's first word. Joined anyway only when the line has a wrapping
    // width (a common terminal/fold/base64 width, or the width of another broken line of the group).
    const wrapped = (k: number): boolean => WRAP_WIDTHS.has(g.lens[k]!) || g.lens.filter((x) => x === g.lens[k]).length >= 2;
    // so a match ends at the first break where it is already whole and the line does not look wrapped
    const trimmed = found.map((sp) => {
      for (let k = 0; k < joins.length; k++) {
        const j = joins[k]!;
        if (j <= sp.start || j >= sp.end || wrapped(k)) continue;
        const pre = win.slice(sp.start, j);
        if (scanSecrets(pre).some((x) => x.end === pre.length)) return { ...sp, end: j };
      }
      return sp;
    });
    out.push(...spansOf(local, trimmed, (a, b) => joins.some((j) => j > a && j < b)));
  };
  for (let i = 0; i < t.length; i++) {
    if (t[i] !== "\n") continue;
    const cr = t[i - 1] === "\r" ? 1 : 0;
    const line = t.slice(lineStart, i - cr);
    const nextEnd = t.indexOf("\n", i + 1);
    const next = t.slice(i + 1, nextEnd < 0 ? t.length : nextEnd);
    const a = line.length >= WRAP_MIN ? TOKEN_END.exec(line)?.[0] ?? "" : "";
    const b = a ? TOKEN_START.exec(next)?.[0] ?? "" : "";
    if (a && b && a.length + b.length >= 16 && /[A-Za-z]/.test(a + b)) {
      if (!group) group = { from: Math.max(lineStart, i - cr - WINDOW), breaks: [], lens: [] };
      group.breaks.push(i);
      group.lens.push(line.length);
    } else flush(i - cr);
    lineStart = i + 1;
  }
  flush(t.length);
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
    if (scanSecrets(dec).length > 0 || (/^[^:\s]{1,64}:[^\s]{8,}$/.test(dec) && scanSecrets(`https://${dec}@h`).length > 0)) out.push({ rule: "base64-secret", start: m.index, end: m.index + run.length });
  }
  return out;
}

/**
 * `find` run over the terminal reading (ANSI escapes, lone CRs removed) and the JSON-unescaped reading of `s`,
 * its spans in original offsets: how exact-match redaction of pushed secrets sees through the same disguises.
 */
export function spansInReadings(s: string, find: (text: string) => SecretSpan[]): SecretSpan[] {
  const out: SecretSpan[] = [];
  let base = identity(s);
  if (/[\x1b\r]/.test(s)) { base = rewrite(base, ANSI, () => ""); out.push(...spansOf(base, find(base.text))); }
  if (s.includes("\\")) { const j = rewrite(base, JSON_ESC, unescapeJson); out.push(...spansOf(j, find(j.text))); }
  return out;
}

/** Secret spans that only another reading of `s` shows, in original offsets (may overlap the plain scan's). */
export function viewSpans(s: string): SecretSpan[] {
  const out: SecretSpan[] = [];
  let base = identity(s);
  if (/[\x1b\r]/.test(s)) {
    base = rewrite(base, ANSI, () => "");
    out.push(...spansOf(base, scanSecrets(base.text)));
  }
  if (s.includes("\\")) {
    let j = rewrite(base, JSON_ESC, unescapeJson);
    out.push(...spansOf(j, scanSecrets(j.text)));
    // JSON inside JSON (a JSON-escaped string that itself held escapes): once more
    if (/\\["u\/]/.test(j.text)) { j = rewrite(j, JSON_ESC, unescapeJson); out.push(...spansOf(j, scanSecrets(j.text))); }
  }
  out.push(...encodedSpans(s));
  if (s.length >= WRAP_MIN && s.includes("\n")) out.push(...spansOf(base, wrapSpans(base)));
  return out;
}
