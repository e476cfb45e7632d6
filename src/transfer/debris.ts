/**
 * What a cut transfer leaves in a local tree, and its removal: rsync's temp files (".<name>.XXXXXX"
 * beside <name>, left when rsync itself was SIGKILLed) and the ".rgt-partial/" dirs that hold resumable
 * partial files. Only names the box's listing explains are touched: a temp file is removed only when
 * the file it stands for is listed and the temp name itself is not.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PARTIAL_DIR } from "../remote/rsync.js";

const TEMP = /^\.(.+)\.[A-Za-z0-9]{6}$/;

export interface DebrisOptions {
  /** also deal with .rgt-partial dirs: "empty" removes empty ones, "all" removes them with their content */
  partialDirs?: "empty" | "all";
}

/** Clean rsync temp files (and partial dirs as asked) in the directories of `listed` (paths relative to root). */
export function cleanDebris(root: string, listed: string[], o: DebrisOptions = {}): { removed: string[] } {
  const names = new Set(listed);
  const dirs = new Set<string>([""]);
  for (const f of listed) for (let d = path.posix.dirname(f); d !== "." && !dirs.has(d); d = path.posix.dirname(d)) dirs.add(d);
  const removed: string[] = [];
  for (const d of dirs) {
    const abs = d ? path.join(root, d) : root;
    let ents: fs.Dirent[];
    try { ents = fs.readdirSync(abs, { withFileTypes: true }); } catch { continue; }
    for (const e of ents) {
      const rel = d ? `${d}/${e.name}` : e.name;
      if (e.isFile()) {
        const m = TEMP.exec(e.name);
        if (m && !names.has(rel) && names.has(d ? `${d}/${m[1]}` : m[1])) {
          try { fs.unlinkSync(path.join(abs, e.name)); removed.push(rel); } catch { /* raced */ }
        }
      } else if (e.isDirectory() && e.name === PARTIAL_DIR && o.partialDirs) {
        const p = path.join(abs, e.name);
        try {
          if (o.partialDirs === "all") fs.rmSync(p, { recursive: true, force: true });
          else fs.rmdirSync(p);
          removed.push(`${rel}/`);
        } catch { /* holds a partial: kept for the resume */ }
      }
    }
  }
  return { removed };
}
