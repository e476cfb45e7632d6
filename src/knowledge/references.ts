/**
 * The reference documents (references/*.md, including references/<dir>/*.md as "dir/name") and the
 * skill hub (skill/SKILL.md), read as text. Names are validated so a caller can never escape the folder.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { packageRoot } from "../common/config.js";

export interface ReferenceDoc {
  /** "spot-resilience" or "training/oom-memory" */
  name: string;
  file: string;
  /** first markdown heading, else the name */
  title: string;
  bytes: number;
}

const NAME = /^[a-z0-9][a-z0-9_.-]*(\/[a-z0-9][a-z0-9_.-]*)?$/i;

export function referencesDir(root: string = packageRoot()): string {
  return path.join(root, "references");
}

export function skillFile(root: string = packageRoot()): string {
  return path.join(root, "skill", "SKILL.md");
}

function titleOf(file: string, fallback: string): string {
  try {
    const head = fs.readFileSync(file, "utf8").slice(0, 4000);
    const m = /^#[ \t]+(.+)$/m.exec(head);
    return m ? m[1].trim() : fallback;
  } catch {
    return fallback;
  }
}

/** All reference docs, sorted by name; [] when the folder does not exist yet. */
export function listReferences(dir: string = referencesDir()): ReferenceDoc[] {
  const out: ReferenceDoc[] = [];
  const walk = (sub: string) => {
    let entries: fs.Dirent[];
    try { entries = fs.readdirSync(path.join(dir, sub), { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory() && !sub) walk(rel);
      else if (e.isFile() && e.name.endsWith(".md")) {
        const file = path.join(dir, rel);
        const name = rel.slice(0, -3);
        if (!NAME.test(name)) continue;
        out.push({ name, file, title: titleOf(file, name), bytes: fs.statSync(file).size });
      }
    }
  };
  walk("");
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** The text of one reference, or undefined when the name is unknown or malformed. */
export function getReference(name: string, dir: string = referencesDir()): string | undefined {
  const n = name.replace(/\.md$/, "");
  if (!NAME.test(n) || n.includes("..")) return undefined;
  const file = path.join(dir, `${n}.md`);
  if (!path.resolve(file).startsWith(path.resolve(dir) + path.sep)) return undefined;
  try { return fs.readFileSync(file, "utf8"); } catch { return undefined; }
}

/** skill/SKILL.md as text, or undefined when it has not been written. */
export function getSkill(root?: string): string | undefined {
  try { return fs.readFileSync(skillFile(root), "utf8"); } catch { return undefined; }
}
