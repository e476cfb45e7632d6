/**
 * Pure helpers for pull_verify: roster matching (an expected artifact list against what the box has)
 * and cutting a file list into transfer units (one failure loses one unit, not the pull).
 */

/** A roster entry as a regex: `**` any depth, `*` within one path segment, `?` one char; "dir/" = anything under dir. */
export function rosterRegex(entry: string): RegExp {
  let e = entry.replace(/^\.\//, "");
  if (e.endsWith("/")) e += "**";
  let re = "";
  for (let i = 0; i < e.length; i++) {
    const c = e[i];
    if (c === "*" && e[i + 1] === "*") {
      re += ".*";
      i++;
      if (e[i + 1] === "/") i++;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

export interface RosterResult {
  /** roster entries that match no file */
  missing: string[];
  /** entry → matched paths */
  matched: Record<string, string[]>;
}

export function matchRoster(expect: string[], paths: string[]): RosterResult {
  const missing: string[] = [];
  const matched: Record<string, string[]> = {};
  for (const entry of expect) {
    const re = rosterRegex(entry);
    const hits = paths.filter((p) => re.test(p));
    if (hits.length) matched[entry] = hits;
    else missing.push(entry);
  }
  return { missing, matched };
}

export interface Unit<T extends { path: string; bytes: number }> {
  /** top-level directory names (or "." for files at the root) the unit covers */
  label: string;
  files: T[];
  bytes: number;
}

/**
 * Group files by their top-level directory (root files together), then merge small neighbouring groups
 * so a tree of many tiny dirs does not become hundreds of transfers.
 */
export function transferUnits<T extends { path: string; bytes: number }>(files: T[], opts: { minBytes?: number; minFiles?: number } = {}): Unit<T>[] {
  const minBytes = opts.minBytes ?? 64 * 1024 * 1024;
  const minFiles = opts.minFiles ?? 500;
  const groups = new Map<string, T[]>();
  for (const f of files) {
    const slash = f.path.indexOf("/");
    const key = slash < 0 ? "." : f.path.slice(0, slash);
    let g = groups.get(key);
    if (!g) { g = []; groups.set(key, g); }
    g.push(f);
  }
  const keys = [...groups.keys()].sort();
  const units: Unit<T>[] = [];
  let cur: Unit<T> | undefined;
  for (const k of keys) {
    const g = groups.get(k)!;
    const bytes = g.reduce((a, f) => a + f.bytes, 0);
    if (cur && (cur.bytes + bytes <= minBytes && cur.files.length + g.length <= minFiles)) {
      cur.label += `,${k}`;
      cur.files.push(...g);
      cur.bytes += bytes;
      continue;
    }
    cur = { label: k, files: [...g], bytes };
    units.push(cur);
  }
  return units;
}
