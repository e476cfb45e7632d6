/**
 * Redaction of everything an agent reads back: remote output, log tails, error messages, whole
 * tool results. Driven by the same catalog as detection (catalog.ts), so what findSecrets would
 * refuse on the way in is exactly what is masked on the way out.
 *
 * A secret is replaced by `[REDACTED:<rule>]`; the text around it (the variable name, the URL's
 * host, the rest of the log line) stays, so the output remains useful.
 */
import { scanSecrets } from "./catalog.js";

export function redactText(s: string): string {
  if (typeof s !== "string") return s;
  const spans = scanSecrets(s);
  if (spans.length === 0) return s;
  let out = "";
  let at = 0;
  for (const sp of spans) {
    out += s.slice(at, sp.start) + `[REDACTED:${sp.rule}]`;
    at = sp.end;
  }
  return out + s.slice(at);
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

export function redactDeep<T>(v: T): T {
  return walk(v, 0) as T;
}

function walk(v: unknown, depth: number): unknown {
  if (typeof v === "string") return redactText(v);
  if (v === null || typeof v !== "object") return v;
  if (depth > 64) return v; // cycles / absurd nesting: leave as is rather than overflow
  if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
  if (Buffer.isBuffer(v) || v instanceof Date) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    out[k] = typeof x === "string" && isSecretKey(k) ? redactValueUnderKey(x) : walk(x, depth + 1);
  }
  return out;
}
