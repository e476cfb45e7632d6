/**
 * Every line of on-box shell lives in scripts/ (issue 10.3): request_teardown, push_secret and the
 * services and adapters behind them send scripts by name (runScript / the secret writer), never shell
 * assembled in TypeScript. Comments may name shell; code may not build it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/common/config.js";

const ROOT = packageRoot();
const FILES = [
  "src/tools/request_teardown.ts", "src/tools/push_secret.ts",
  ...["src/teardown", "src/secret", "src/providers"].flatMap((d) => fs.readdirSync(path.join(ROOT, d)).filter((f) => f.endsWith(".ts")).map((f) => `${d}/${f}`)),
];
// shell that only appears when a command line is being put together
const SHELL = [/2>\/dev\/null/, /\bumask\b/, /mkdir -p/, /;\s*then\b/, /\bfi\b;/, /\$\(\s*(ls|cat|dirname|basename|realpath)\b/, /\bprintf '/, /\|\| true/, /"\$HOME/];

function code(text: string): string {
  // drop comments (block and line) so a doc comment may describe what a script does
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

describe("no on-box shell assembled in TypeScript", () => {
  it("the teardown and push_secret paths send scripts/ by name only", () => {
    const hits: string[] = [];
    for (const f of FILES) {
      const text = code(fs.readFileSync(path.join(ROOT, f), "utf8"));
      for (const re of SHELL) if (re.test(text)) hits.push(`${f}: ${re}`);
    }
    expect(hits).toEqual([]);
  });

  it("the scripts they name exist", () => {
    for (const s of ["teardown_facts.sh", "secret_where.sh", "secret_write.sh", "slurm_jobs.sh"]) {
      expect(fs.existsSync(path.join(ROOT, "scripts", s)), s).toBe(true);
    }
  });
});
