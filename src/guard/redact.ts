/**
 * Redaction of everything an agent reads back: remote output, log tails, error messages, whole
 * tool results. Driven by the same catalog as detection (catalog.ts), so what findSecrets would
 * refuse on the way in is exactly what is masked on the way out.
 *
 * A secret is replaced by `[REDACTED:<rule>]`; the text around it (the variable name, the URL's
 * host, the rest of the log line) stays, so the output remains useful.
 */
import { createHmac } from "node:crypto";
import { scanSecrets, type SecretSpan } from "./catalog.js";
import { spansInReadings, viewSpans } from "./views.js";

/**
 * Salted fingerprints of what push_secret delivered (never the values): HMAC-SHA256(salt, token) of
 * each token of ≥ 8 characters. The ledger loads them (src/ledger/fingerprints.ts) and passes them in;
 * any output token that matches is redacted, whatever its format.
 */
export interface Fingerprints {
  salt: Buffer;
  set: Set<string>;
}

export const MIN_FINGERPRINT_TOKEN = 8;

export function fingerprint(salt: Buffer, token: string): string {
  return createHmac("sha256", salt).update(token, "utf8").digest("hex").slice(0, 32);
}

/** The tokens of a credential that get a fingerprint: the whole value, each line, each word, each part of KEY=VALUE / user:pass. */
export function secretTokens(value: string): string[] {
  const out = new Set<string>();
  const add = (t: string): void => { const x = t.trim(); if (x.length >= MIN_FINGERPRINT_TOKEN && x.length <= 4096) out.add(x); };
  add(value);
  for (const line of value.split(/\r?\n/)) {
    add(line);
    for (const w of line.split(/\s+/)) {
      add(w);
      for (const part of w.split(/[=:"',;]/)) add(part);
    }
  }
  return [...out].slice(0, 512);
}

const TOKEN = /[^\s"'`,;=:(){}[\]<>]{8,4096}/g;

function fingerprintSpans(s: string, fp: Fingerprints): SecretSpan[] {
  const out: SecretSpan[] = [];
  TOKEN.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = TOKEN.exec(s)) !== null) {
    if (fp.set.has(fingerprint(fp.salt, m[0]))) out.push({ rule: "pushed-secret", start: m.index, end: m.index + m[0].length });
  }
  return out;
}

/** spans sorted by start, overlapping ones merged (the earlier one names the merged span) */
function mergeSpans(spans: SecretSpan[]): SecretSpan[] {
  if (spans.length < 2) return spans;
  const sorted = [...spans].sort((a, b) => a.start - b.start || b.end - a.end);
  const out: SecretSpan[] = [{ ...sorted[0]! }];
  for (const sp of sorted.slice(1)) {
    const last = out[out.length - 1]!;
    if (sp.start < last.end) last.end = Math.max(last.end, sp.end);
    else out.push({ ...sp });
  }
  return out;
}

/** texts above this size are scanned as they are, without the other readings (views.ts) */
const VIEW_MAX = 2 * 1024 * 1024;

export function redactText(s: string, fp?: Fingerprints): string {
  if (typeof s !== "string") return s;
  let spans = scanSecrets(s);
  // what a terminal shows, wrapped lines joined, JSON escapes undone, base64 decoded: a secret split by any of them
  if (s.length <= VIEW_MAX && s.length >= 8) {
    const extra = viewSpans(s);
    if (extra.length) spans = mergeSpans([...spans, ...extra]);
  }
  if (fp && fp.set.size > 0) {
    // exact matches of what push_secret delivered, also through ANSI escapes and JSON escapes
    const found = fingerprintSpans(s, fp);
    if (s.length <= VIEW_MAX) found.push(...spansInReadings(s, (t) => fingerprintSpans(t, fp)));
    const extra = found.filter((f) => !spans.some((x) => f.start < x.end && x.start < f.end));
    if (extra.length) spans = mergeSpans([...spans, ...extra]);
  }
  if (spans.length === 0) return s;
  let out = "";
  let at = 0;
  for (const sp of spans) {
    if (sp.start < at) continue;
    out += s.slice(at, sp.start) + `[REDACTED:${sp.rule}]`;
    at = sp.end;
  }
  return out + s.slice(at);
}

/**
 * Redact the WHOLE text, then cut it to its last `n` characters at a line boundary: a secret that
 * straddles the cut, or a key block whose BEGIN line falls before it, is never returned in part.
 */
export function redactThenTail(s: string, n: number, fp?: Fingerprints): { text: string; cut: boolean } {
  const r = redactText(s, fp);
  if (r.length <= n) return { text: r, cut: false };
  const t = r.slice(-n);
  const nl = t.indexOf("\n");
  if (nl >= 0 && nl < n / 2) return { text: t.slice(nl + 1), cut: true };
  // one long line: start at a word boundary, never inside a redaction marker
  const sp = t.search(/\s/);
  let text = sp >= 0 && sp < n / 2 ? t.slice(sp + 1) : t;
  const open = text.indexOf("[REDACTED:");
  const close = text.indexOf("]");
  if (close >= 0 && (open < 0 || close < open)) text = text.slice(close + 1);
  return { text, cut: true };
}

/**
 * Object keys whose string values are credentials whatever they look like:
 * password / passwd / passphrase / token / secret / api_key / apiKey / access_key / private_key /
 * client_secret / credential(s) / authorization / cookie, alone or as the last word of the key
 * (`hf_token`, `wandbApiKey`); anything ending in password (`PGPASSWORD`). `max_tokens`, `token_env`, `secret_path`, `key` are not such keys.
 */
const SECRET_KEY = /(?:password|passwd|passphrase)$|(?:^|_)(?:pwd|token|secret|api_?key|apikey|access_?key|secret_?key|private_?key|auth_?token|credentials?|authorization|cookie)$/;

function normKey(k: string): string {
  return k.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/[-.\s]/g, "_").toLowerCase();
}

export function isSecretKey(k: string): boolean {
  return SECRET_KEY.test(normKey(k));
}

function redactValueUnderKey(v: string): string {
  // a reference (env-var name, $VAR, <placeholder>) or an empty value carries nothing to hide
  if (v.length === 0 || /^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$|^[A-Z][A-Z0-9]*_[A-Z0-9_]*$|^<[^>]*>$/.test(v)) return v;
  return "[REDACTED:secret-field]";
}

export function redactDeep<T>(v: T, fp?: Fingerprints): T {
  return walk(v, 0, fp) as T;
}

function walk(v: unknown, depth: number, fp?: Fingerprints): unknown {
  if (typeof v === "string") return redactText(v, fp);
  if (v === null || typeof v !== "object") return v;
  if (depth > 64) return v; // cycles / absurd nesting: leave as is rather than overflow
  if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1, fp));
  if (Buffer.isBuffer(v) || v instanceof Date) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    out[k] = typeof x === "string" && isSecretKey(k) ? redactValueUnderKey(x) : walk(x, depth + 1, fp);
  }
  return out;
}

/**
 * Lines a box cut before they reached us (the last bytes of a log, each line capped at `cap`): the
 * possibly partial first line is dropped, a capped line loses its trailing partial word, and what is
 * left is redacted as one text (a key block spanning lines is caught whole) — so no credential comes
 * back in part because the box cut it.
 */
export function redactCutLines(lines: string[], opts: { firstPartial: boolean; cap: number }, fp?: Fingerprints): string[] {
  const ls = opts.firstPartial ? lines.slice(1) : lines.slice();
  if (opts.firstPartial) dropWrapTail(lines[0] ?? "", ls);
  const safe = ls.map((l) => {
    if (l.length < opts.cap) return l;
    const sp = l.lastIndexOf(" ");
    return sp > opts.cap / 2 ? `${l.slice(0, sp)} …` : `[a line of ${l.length}+ characters, cut]`;
  });
  if (safe.length === 0) return safe;
  return redactText(safe.join("\n"), fp).split("\n");
}

/**
 * The dropped partial line may have been wrapped (by a terminal, `fold`, a logger): a secret that began
 * on it goes on at the start of the next line, without the prefix or name that would mark it. When the
 * dropped line ends inside a word and the next line starts with a long token, that token is cut too
 * (and a line that is one token throughout, the middle of a long wrapped secret, is dropped whole).
 */
function dropWrapTail(dropped: string, ls: string[]): void {
  let prev = dropped;
  while (ls.length > 0 && /[A-Za-z0-9_+\/=.:-]\r?$/.test(prev)) {
    const next = ls[0]!;
    const m = /^[A-Za-z0-9_+\/=.-]{8,}/.exec(next);
    if (!m) return;
    if (m[0].length === next.replace(/\r$/, "").length) { prev = ls.shift()!; continue; }
    ls[0] = "…" + next.slice(m[0].length);
    return;
  }
}

/** Text cut at its end by the box (`capped`): the partial last line dropped, then redacted. */
export function redactCutText(text: string, capped: boolean, fp?: Fingerprints): string {
  // the last line may end inside a token: with a newline it is dropped, without one its trailing word is
  const t = !capped ? text : text.includes("\n") ? text.slice(0, text.lastIndexOf("\n") + 1) : text.replace(/[A-Za-z0-9+/=_.~-]+$/, "…");
  return redactText(t, fp);
}
