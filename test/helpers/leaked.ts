/** A redaction leak: the value, or any `piece`-character piece of a longer one, survives in `out` (the value's first characters, to name it). */
export function leaked(out: string, vals: string[], piece = 16): string | null {
  for (const v of vals) {
    const pieces = v.length <= piece ? [v] : Array.from({ length: v.length - piece + 1 }, (_, i) => v.slice(i, i + piece));
    if (pieces.some((p) => out.includes(p))) return v.slice(0, 10);
  }
  return null;
}
