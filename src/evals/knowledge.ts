/**
 * The knowledge half of an eval case: a drift guard over this project's own knowledge files.
 * It fails a case when a gotcha id is renamed, a file moves, or the key term of a fact disappears.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import type { Knowledge } from "./cases.js";

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** `### <ID>` alone, or followed by a separator (` — `, ` – `, ` - `, `:`) and a title; `### AD` never matches `### AD-DANGER`. */
export function hasHeading(text: string, id: string): boolean {
  const re = new RegExp(`^###[ \\t]+${escapeRe(id)}(?:[ \\t]*$|[ \\t]*:[ \\t]*\\S|[ \\t]+(?:—|–|-)[ \\t]*\\S)`, "m");
  return re.test(text);
}

/** Frontmatter (between the first two `---` lines) as an object, or undefined when absent/unparsable. */
export function frontmatterOf(text: string): Record<string, unknown> | undefined {
  const m = /^---\r?\n([\s\S]*?)\r?\n---\r?\n?/.exec(text);
  if (!m) return undefined;
  try {
    const v = parseYaml(m[1]) as unknown;
    return v && typeof v === "object" ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function isProfileFile(rel: string): boolean {
  return /^profiles\/[^/]+\.md$/.test(rel.replace(/\\/g, "/"));
}

/** Profile gotcha ids declared in the frontmatter `gotchas: [{id, …}]`. */
export function profileGotchaIds(text: string): string[] | undefined {
  const fm = frontmatterOf(text);
  if (!fm) return undefined;
  const g = fm.gotchas;
  if (!Array.isArray(g)) return [];
  return g.map((x) => (x && typeof x === "object" ? String((x as { id?: unknown }).id ?? "") : "")).filter(Boolean);
}

export interface KnowledgeReport {
  ok: boolean;
  failures: string[];
}

/** Check one case's knowledge expectation against the files under `root`. */
export function checkKnowledge(k: Knowledge, root: string, cache: Map<string, string | null> = new Map()): KnowledgeReport {
  const failures: string[] = [];
  const read = (rel: string): string | null => {
    if (!cache.has(rel)) {
      const abs = path.resolve(root, rel);
      if (!abs.startsWith(path.resolve(root) + path.sep)) {
        cache.set(rel, null);
      } else {
        try {
          cache.set(rel, fs.readFileSync(abs, "utf8"));
        } catch {
          cache.set(rel, null);
        }
      }
    }
    return cache.get(rel) ?? null;
  };

  const files = [...new Set([...k.files, ...Object.keys(k.ids)])];
  if (files.length === 0) failures.push("knowledge names no file");
  for (const f of files) if (read(f) === null) failures.push(`missing file ${f}`);

  for (const [file, ids] of Object.entries(k.ids)) {
    const text = read(file);
    if (text === null) continue;
    const fmIds = isProfileFile(file) ? profileGotchaIds(text) : undefined;
    for (const id of ids) {
      if (!hasHeading(text, id)) failures.push(`${file}: no heading "### ${id}"`);
      if (isProfileFile(file)) {
        if (fmIds === undefined) failures.push(`${file}: no parsable frontmatter to hold gotcha ${id}`);
        else if (!fmIds.includes(id)) failures.push(`${file}: gotcha ${id} not in frontmatter gotchas`);
      }
    }
  }

  for (const term of k.terms) {
    const needle = term.toLowerCase();
    const found = files.some((f) => (read(f) ?? "").toLowerCase().includes(needle));
    if (!found) failures.push(`term "${term}" not found in ${files.join(", ")}`);
  }
  return { ok: failures.length === 0, failures };
}
