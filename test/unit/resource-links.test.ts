/**
 * Every rgt:// link the code, the skill hub or the references hand to an agent must resolve to a resource
 * the server serves (a drift guard: a renamed reference breaks this, not an agent mid-task).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const root = path.resolve(__dirname, "..", "..");

function files(dir: string, ext: RegExp): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...files(rel, ext));
    else if (ext.test(e.name)) out.push(rel);
  }
  return out;
}

describe("rgt:// links", () => {
  it("all resolve to a profile, a reference or the skill hub", () => {
    const sources = [...files("src", /\.ts$/), ...files("references", /\.md$/), ...files("profiles", /\.md$/), "skill/SKILL.md"];
    const bad: string[] = [];
    let seen = 0;
    for (const f of sources) {
      const text = fs.readFileSync(path.join(root, f), "utf8");
      for (const m of text.matchAll(/rgt:\/\/(profiles|references)\/([a-z0-9_-]+)/g)) {
        seen++;
        const target = path.join(root, m[1], `${m[2]}.md`);
        if (!fs.existsSync(target)) bad.push(`${f}: ${m[0]}`);
      }
    }
    expect(seen).toBeGreaterThanOrEqual(5); // the rest are built from profile names at run time
    expect(bad).toEqual([]);
  });
});
