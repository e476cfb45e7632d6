/**
 * Redaction of result text. PLACEHOLDER until the guard's secret catalog lands:
 * the guard owner replaces this with catalog-driven redaction, keeping these two exports.
 */
export function redactText(s: string): string {
  return s.replace(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g, "[REDACTED:private-key]");
}

export function redactDeep<T>(v: T): T {
  if (typeof v === "string") return redactText(v) as unknown as T;
  if (Array.isArray(v)) return v.map((x) => redactDeep(x)) as unknown as T;
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = redactDeep(x);
    return out as T;
  }
  return v;
}
