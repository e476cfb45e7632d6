/**
 * The record of which byte ranges of a ranged partial file are already written, so a cut transfer
 * re-requests only what is missing. It sits beside the partial file: a first line naming the file it
 * is for (size, and the source's sha256 or mtime), then one "start end" line per finished range, appended as each
 * range lands (after its bytes were written). A record for another version of the file is discarded
 * together with its partial.
 */
import * as fs from "node:fs";
import type { Range } from "./plan.js";

/** which version of the source file: its size and its sha256 or its mtime (what is known when the pull starts) */
export interface SidecarId { size: number; sha256?: string; mtime?: number }

export const RANGED_SUFFIX = ".prange";
export const SIDECAR_SUFFIX = ".prange.ranges";

/** Ranges recorded for this file version, or [] when there is no record or it is for another version. */
export function loadSidecar(file: string, id: SidecarId): Range[] {
  let text: string;
  try { text = fs.readFileSync(file, "utf8"); } catch { return []; }
  const lines = text.split("\n");
  try {
    const head = JSON.parse(lines[0]) as Partial<SidecarId>;
    if (head.size !== id.size || head.sha256 !== id.sha256 || head.mtime !== id.mtime) return [];
  } catch { return []; }
  const out: Range[] = [];
  for (const l of lines.slice(1)) {
    const m = /^(\d+) (\d+)$/.exec(l);
    if (!m) continue; // a torn last line (cut while appending) is simply not counted
    const start = Number(m[1]);
    const end = Number(m[2]);
    if (end > start && end <= id.size) out.push({ start, end });
  }
  return out;
}

/** Start a fresh record (truncating any other). */
export function createSidecar(file: string, id: SidecarId): void {
  fs.writeFileSync(file, `${JSON.stringify({ size: id.size, sha256: id.sha256, mtime: id.mtime })}\n`);
}

/** Append one finished range. */
export function recordRange(file: string, r: Range): void {
  fs.appendFileSync(file, `${r.start} ${r.end}\n`);
}
