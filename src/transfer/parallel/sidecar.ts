/**
 * The record of which byte ranges of a ranged partial file are already written, so a cut transfer
 * re-requests only what is missing. It sits beside the partial file: a first line naming the file it
 * is for (size and the source's sha256), then one "start end" line per finished range, appended as each
 * range lands (after its bytes were written). A record for another version of the file is discarded
 * together with its partial. A pull keeps it beside the local partial; a push keeps it on the box, beside
 * the partial there, written over SFTP in the same format.
 */
import * as fs from "node:fs";
import type { Range } from "./plan.js";

/**
 * Which version of a file a record is for: its size and the source's sha256 or, where the hash is not
 * known when the transfer starts, `source`: what identifies the source file (a push: the local file; a
 * pull that starts while the box still hashes: the box's mtime).
 */
export interface SidecarId { size: number; sha256?: string; source?: string }

export const RANGED_SUFFIX = ".prange";
export const SIDECAR_SUFFIX = ".prange.ranges";

/** Ranges recorded for this file version, or [] when there is no record or it is for another version. */
export function loadSidecar(file: string, id: SidecarId): Range[] {
  let text: string;
  try { text = fs.readFileSync(file, "utf8"); } catch { return []; }
  return parseSidecar(text, id);
}

/** The ranges a record's text holds for this file version ([] for another version). Pure. */
export function parseSidecar(text: string, id: SidecarId): Range[] {
  const lines = text.split("\n");
  try {
    const head = JSON.parse(lines[0]) as Partial<SidecarId>;
    if (head.size !== id.size || head.sha256 !== id.sha256 || head.source !== id.source) return [];
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

/** A record's first line. */
export function sidecarHead(id: SidecarId): string {
  return `${JSON.stringify({ size: id.size, sha256: id.sha256, source: id.source })}\n`;
}

/** One finished range as a record line. */
export const rangeLine = (r: Range): string => `${r.start} ${r.end}\n`;

/** Start a fresh record (truncating any other). */
export function createSidecar(file: string, id: SidecarId): void {
  fs.writeFileSync(file, sidecarHead(id));
}

/** Append one finished range. */
export function recordRange(file: string, r: Range): void {
  fs.appendFileSync(file, rangeLine(r));
}
