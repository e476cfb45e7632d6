/** Small text helpers shared by every layer. */

/** Single-quote a string for a POSIX shell ('it'\''s'). */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Dotted version compare: "3.2.7" ≥ "3.1.3", "12.2" ≥ "11.8". An unknown ("", "n/a") version is never enough. */
export function versionAtLeast(have: string, need: string): boolean {
  if (!/^\d+(\.\d+)*$/.test(have)) return false;
  const a = have.split(".").map(Number);
  const b = need.split(".").map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}
