/**
 * Loads profiles/<name>.md: a `---` YAML frontmatter block validated by ProfileFrontmatterSchema,
 * then the markdown body. Any problem throws ProfileError naming the file and the field.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { packageRoot, setting } from "../common/config.js";
import { ProfileFrontmatterSchema, PROFILE_SECTIONS, type Profile, type Variant } from "./schema.js";

export class ProfileError extends Error {
  constructor(readonly file: string, readonly field: string, detail: string) {
    super(`${path.basename(file)}: ${field ? `field ${field}: ` : ""}${detail}`);
    this.name = "ProfileError";
  }
}

/** profiles/ of the package, or $RGT_PROFILES_DIR (a site's own copies; the test lab's stand-ins) */
export function defaultProfilesDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = setting("RGT_PROFILES_DIR", env);
  return dir ? path.resolve(dir) : path.join(packageRoot(), "profiles");
}

/** Split `---\n<yaml>\n---\n<body>`; returns undefined when the file has no frontmatter. */
export function splitFrontmatter(text: string): { yaml: string; body: string } | undefined {
  const t = text.replace(/^\uFEFF/, "");
  const m = /^---[ \t]*\r?\n([\s\S]*?)\r?\n---[ \t]*(?:\r?\n|$)([\s\S]*)$/.exec(t);
  if (!m) return undefined;
  return { yaml: m[1], body: m[2] };
}

function fieldPath(p: readonly PropertyKey[]): string {
  return p.map((k, i) => (typeof k === "number" ? `[${k}]` : `${i === 0 ? "" : "."}${String(k)}`)).join("");
}

/** Parse and validate one profile file. Throws ProfileError naming the file + field. */
export function parseProfile(file: string, text: string = fs.readFileSync(file, "utf8")): Profile {
  const parts = splitFrontmatter(text);
  if (!parts) throw new ProfileError(file, "", "missing `---` YAML frontmatter block at the top of the file");
  let raw: unknown;
  try {
    raw = parseYaml(parts.yaml);
  } catch (e) {
    throw new ProfileError(file, "", `frontmatter is not valid YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new ProfileError(file, "", "frontmatter must be a YAML mapping");
  const r = ProfileFrontmatterSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    const more = r.error.issues.length > 1 ? ` (+${r.error.issues.length - 1} more issue(s))` : "";
    throw new ProfileError(file, fieldPath(issue.path) || "(root)", `${issue.message}${more}`);
  }
  const name = path.basename(file, ".md");
  if (r.data.platform !== name) throw new ProfileError(file, "platform", `is "${r.data.platform}" but the file is named ${name}.md`);
  checkBody(file, parts.body, r.data.gotchas.map((g) => g.id));
  return { ...r.data, name, body: parts.body, file: path.resolve(file) };
}

/** The body must carry the 8 sections in order and one `### <ID> — title` heading per gotcha id. */
function checkBody(file: string, body: string, gotchaIds: string[]): void {
  const headings = [...body.matchAll(/^##[ \t]+(.+?)\s*$/gm)].map((m) => m[1]);
  let at = -1;
  for (const s of PROFILE_SECTIONS) {
    const i = headings.findIndex((h, k) => k > at && h.toLowerCase() === s.toLowerCase());
    if (i < 0) throw new ProfileError(file, "body", `section "## ${s}" is missing or out of order`);
    at = i;
  }
  const gotchaHeadings = new Set([...body.matchAll(/^###[ \t]+([A-Z][A-Z0-9_-]*)[ \t]+—/gm)].map((m) => m[1]));
  for (const id of gotchaIds) {
    if (!gotchaHeadings.has(id)) throw new ProfileError(file, "gotchas", `id ${id} has no "### ${id} — …" heading in the body`);
  }
  for (const h of gotchaHeadings) {
    if (!gotchaIds.includes(h)) throw new ProfileError(file, "gotchas", `heading ### ${h} has no entry in frontmatter gotchas`);
  }
}

const cache = new Map<string, Profile[]>();

/** Every profiles/*.md, validated, sorted by name. Cached per directory; throws on the first bad file. */
export function loadProfiles(dir: string = defaultProfilesDir()): Profile[] {
  const key = path.resolve(dir);
  const hit = cache.get(key);
  if (hit) return hit;
  let names: string[];
  try {
    names = fs.readdirSync(key).filter((f) => f.endsWith(".md") && !f.startsWith("_")).sort();
  } catch (e) {
    throw new ProfileError(key, "", `cannot read profiles directory: ${(e as Error).message}`);
  }
  const profiles = names.map((f) => parseProfile(path.join(key, f)));
  const fallbacks = profiles.filter((p) => p.detect.fallback);
  if (profiles.length && fallbacks.length !== 1) {
    throw new ProfileError(key, "detect.fallback", `exactly one profile must be the fallback, found ${fallbacks.length}`);
  }
  cache.set(key, profiles);
  return profiles;
}

export function clearProfileCache(): void {
  cache.clear();
}

/**
 * A profile by name. `name` may be "family/variant" (e.g. "china/gpushare"), or pass the variant
 * separately; a variant's fields replace the family's.
 */
export function getProfile(name: string, variant?: string, dir?: string): Profile | undefined {
  let base = name;
  let v = variant;
  if (name.includes("/")) [base, v] = name.split("/", 2);
  const p = loadProfiles(dir).find((x) => x.name === base);
  if (!p) return undefined;
  if (!v) return p;
  const found = p.variants.find((x) => x.id === v);
  return found ? mergeVariant(p, found) : undefined;
}

export function profileNames(dir?: string): string[] {
  return loadProfiles(dir).map((p) => p.name);
}

export function mergeVariant(p: Profile, v: Variant): Profile {
  const { id, title, detect, ...over } = v;
  const defined = Object.fromEntries(Object.entries(over).filter(([, x]) => x !== undefined));
  return {
    ...p,
    ...defined,
    title: `${p.title} — ${title}`,
    detect: detect ?? p.detect,
    variant: id,
  } as Profile;
}

/** The section of a profile's body under a `## ` heading (without the heading), or "" when absent. */
export function profileSection(p: Profile, heading: string): string {
  const re = new RegExp(`^##[ \\t]+${heading.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}\\s*$`, "im");
  const m = re.exec(p.body);
  if (!m) return "";
  const rest = p.body.slice(m.index + m[0].length);
  const next = /^##[ \t]+/m.exec(rest);
  return (next ? rest.slice(0, next.index) : rest).trim();
}
