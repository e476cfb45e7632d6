/**
 * Declared once, derived everywhere: the refusal-code union is the catalog (every code used in src/ is in
 * it, every catalogued code is in docs/TOOLS.md); every RGT_* setting is in the one config schema and the
 * README's table is generated from it; docs/structure.md lists every file of src/.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { REFUSAL_CODES, RefusalCode } from "../../src/common/result.js";

const root = path.resolve(import.meta.dirname, "../..");
function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith(".ts") ? [p] : [];
  });
}

/** code literals in refusal positions: refuse("X", …), new RefusalError("X", …), badInput-like helpers, { code: "X", reason … }, RefusalCode.X */
export function codesUsed(text: string): string[] {
  const out = new Set<string>();
  const patterns = [
    /\b(?:refuse|RefusalError|fail|refusal)\(\s*"([A-Z][A-Z0-9_]+)"/g,
    /\bcode:\s*"([A-Z][A-Z0-9_]+)",\s*reason\b/g,
    /refused:\s*\{\s*code:\s*"([A-Z][A-Z0-9_]+)"/g,
    /\bRefusalCode\.([A-Z][A-Z0-9_]+)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) out.add(m[1]);
  return [...out];
}

describe("refusal codes", () => {
  const used = new Map<string, string>();
  for (const f of tsFiles(path.join(root, "src"))) for (const c of codesUsed(fs.readFileSync(f, "utf8"))) used.set(c, path.relative(root, f));

  it("the scan finds the codes it should (it would catch a new one)", () => {
    expect(used.get("BAD_INPUT")).toBeDefined();
    expect(used.has("SECRET_INLINE")).toBe(true);
    expect(used.has("APPROVAL_REQUIRED")).toBe(true);
    expect(codesUsed('refuse("NEW_THING", "x", "y")')).toEqual(["NEW_THING"]);
    expect(codesUsed('{ code: "OTHER_THING", reason: r }')).toEqual(["OTHER_THING"]);
  });

  it("every code used in src/ is catalogued in REFUSAL_CODES", () => {
    const missing = [...used].filter(([c]) => !(REFUSAL_CODES as readonly string[]).includes(c)).map(([c, f]) => `${c} (${f})`);
    expect(missing).toEqual([]);
  });

  it("every catalogued code is documented in docs/TOOLS.md, and RefusalCode names each one", () => {
    const doc = fs.readFileSync(path.join(root, "docs", "TOOLS.md"), "utf8");
    expect(REFUSAL_CODES.filter((c) => !doc.includes(`\`${c}\``))).toEqual([]);
    for (const c of REFUSAL_CODES) expect(RefusalCode[c]).toBe(c);
    expect(new Set(REFUSAL_CODES).size).toBe(REFUSAL_CODES.length);
  });
});

describe("settings", () => {
  it("every RGT_* setting the code reads is declared in the one config schema", async () => {
    const { SETTINGS } = await import("../../src/common/config.js");
    const read = new Map<string, string>();
    for (const f of tsFiles(path.join(root, "src"))) {
      if (f.includes(`${path.sep}lab${path.sep}`)) continue; // the lab's box env is not a server setting
      const text = fs.readFileSync(f, "utf8");
      for (const m of text.matchAll(/(?:env\.|env\[")(RGT_[A-Z0-9_]+)/g)) read.set(m[1], path.relative(root, f));
      for (const m of text.matchAll(/setting\("(RGT_[A-Z0-9_]+)"/g)) read.set(m[1], path.relative(root, f));
    }
    // RGT_HASH_PATHS and RGT_HASH_MARK are written into a remote script's environment, not read as settings
    read.delete("RGT_HASH_PATHS");
    read.delete("RGT_HASH_MARK");
    const undeclared = [...read].filter(([k]) => !(k in SETTINGS)).map(([k, f]) => `${k} (${f})`);
    expect(undeclared).toEqual([]);
    // and nothing but config.ts reads one straight from the environment
    const direct: string[] = [];
    for (const f of tsFiles(path.join(root, "src"))) {
      const rel = path.relative(root, f);
      if (rel === path.join("src", "common", "config.ts") || rel.startsWith(path.join("src", "lab"))) continue;
      for (const m of fs.readFileSync(f, "utf8").matchAll(/env\.(RGT_[A-Z0-9_]+)\b(?!\s*=[^=])/g)) if (m[1] !== "RGT_HASH_PATHS") direct.push(`${m[1]} in ${rel}`);
    }
    expect(direct).toEqual([]);
  });

  it("a malformed value falls back to the default and doctor says so", async () => {
    const { setting, settingsReport } = await import("../../src/common/config.js");
    expect(setting("RGT_IDLE_METER_S", { RGT_IDLE_METER_S: "soon" })).toBe(1800);
    expect(setting("RGT_IDLE_METER_S", { RGT_IDLE_METER_S: "0" })).toBe(0);
    expect(setting("RGT_APPROVAL_TTL_S", { RGT_APPROVAL_TTL_S: "0" })).toBe(900);
    const r = settingsReport({ RGT_IDLE_METER_S: "soon" }).find((x) => x.name === "RGT_IDLE_METER_S")!;
    expect(r).toMatchObject({ set: true, valid: false, value: 1800 });
  });
});

describe("README settings table", () => {
  it("is the table the config schema generates", async () => {
    const { settingsTable } = await import("../../src/common/config.js");
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
    const m = /<!-- settings:begin -->\n([\s\S]*?)\n<!-- settings:end -->/.exec(readme);
    expect(m, "README has the settings markers").toBeTruthy();
    expect(m![1].trim()).toBe(settingsTable());
  });
});

describe("docs/structure.md", () => {
  it("lists every file of src/, and nothing that is gone", () => {
    const doc = fs.readFileSync(path.join(root, "docs", "structure.md"), "utf8");
    const listed = new Set([...doc.matchAll(/^- `(src\/[^`]+)`/gm)].map((m) => m[1]));
    const all = (function walk(d: string): string[] {
      return fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => {
        const p = path.join(d, e.name);
        return e.isDirectory() ? walk(p) : /\.(ts|md)$/.test(e.name) ? [path.relative(root, p).split(path.sep).join("/")] : [];
      });
    })(path.join(root, "src"));
    expect(all.filter((f) => !listed.has(f))).toEqual([]);
    expect([...listed].filter((f) => !all.includes(f))).toEqual([]);
  });
});
