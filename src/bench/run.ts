/**
 * `npm run bench`: times the tools against the plain tools a user would otherwise use (OpenSSH, rsync,
 * sha256sum), side by side in one run, on local boxes started for the purpose, and prints ratios.
 * Machines are noisy: read the ratio column, not the milliseconds.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { startLab } from "../lab/box.js";
import type { BenchRow } from "./types.js";

const MODULES = ["probe", "transfer", "parallel", "pushwan", "smallfiles", "launch", "fanout", "economy"];

interface BenchModule { bench(lab: unknown, want: (id: string) => boolean): Promise<BenchRow[]>; ROWS?: readonly string[] }

/** `--only a,b` (or `--only a --only b`, or bare names): module names or row ids; nothing = everything */
function parseOnly(argv: string[]): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = a === "--only" ? argv[++i] : a.startsWith("--only=") ? a.slice(7) : a.startsWith("-") ? undefined : a;
    for (const x of (v ?? "").split(",")) if (x) out.add(x);
  }
  return out;
}

function fmt(rows: BenchRow[]): string {
  const head = ["benchmark", "ours ms", "baseline ms", "ratio", "target", "ok"];
  const lines = rows.map((r) => [r.name, r.ours_ms.toFixed(1), r.baseline_ms.toFixed(1), r.ratio.toFixed(3), r.target !== undefined ? `≤ ${r.target}` : "", r.target === undefined ? "" : r.ratio <= r.target ? "yes" : "NO"]);
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const out = [head, w.map((n) => "-".repeat(n)), ...lines].map((l) => l.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  "));
  return out.join("\n");
}

async function main(): Promise<void> {
  const only = parseOnly(process.argv.slice(2));
  const lab = await startLab([{ name: "bench-8gpu", gpus: 8, torch: true, profile: "autodl" }]);
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  try {
    for (const m of MODULES) {
      let mod: BenchModule;
      try {
        mod = await import(`./${m}.js`);
      } catch (e) {
        if (only.size === 0 || only.has(m)) notes.push(`${m}: not available (${(e as Error).message.split("\n")[0]})`);
        continue;
      }
      const whole = only.size === 0 || only.has(m);
      if (!whole && !(mod.ROWS ?? []).some((r) => only.has(r))) continue;
      process.stderr.write(`bench: ${m}…\n`);
      try {
        rows.push(...(await mod.bench(lab, (id) => whole || only.has(id))));
      } catch (e) {
        notes.push(`${m}: FAILED ${(e as Error).stack ?? e}`);
      }
    }
  } finally {
    await lab.stop();
  }
  process.stdout.write(fmt(rows) + "\n");
  for (const n of notes) process.stdout.write(`note: ${n}\n`);
  const dir = path.resolve(".bench");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "last.json"), JSON.stringify({ at: new Date().toISOString(), rows, notes }, null, 2));
  if (rows.some((r) => r.target !== undefined && r.ratio > r.target) || notes.some((n) => n.includes("FAILED"))) process.exitCode = 1;
}

main().catch((e) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.stack : e}\n`);
  process.exit(1);
});
