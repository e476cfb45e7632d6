/**
 * `rgt evals`: run evals/cases.jsonl — the knowledge half always, the replay half unless
 * --knowledge-only. Prints one line per case and ends with the plain line `N passed, N failed`.
 */
import * as path from "node:path";
import { packageRoot } from "../common/config.js";
import { loadCases, type EvalCase } from "./cases.js";
import { checkKnowledge } from "./knowledge.js";
import { runReplays, type ReplayOptions } from "./replay.js";

export interface EvalRunOptions {
  /** package root holding profiles/, references/, skill/ (default: this package) */
  root?: string;
  /** the cases file (default: <root>/evals/cases.jsonl) */
  casesFile?: string;
  knowledgeOnly?: boolean;
  /** only cases whose id contains this substring */
  filter?: string;
  out?: (line: string) => void;
  replay?: ReplayOptions;
}

export interface EvalSummary {
  passed: number;
  failed: number;
  skipped: number;
  results: { id: string; status: "pass" | "fail" | "skip"; failures: string[] }[];
}

export async function runEvals(opts: EvalRunOptions = {}): Promise<EvalSummary> {
  const root = path.resolve(opts.root ?? packageRoot());
  const file = path.resolve(opts.casesFile ?? path.join(root, "evals", "cases.jsonl"));
  const out = opts.out ?? ((l: string) => process.stdout.write(l + "\n"));
  const summary: EvalSummary = { passed: 0, failed: 0, skipped: 0, results: [] };

  let loaded;
  try {
    loaded = loadCases(file);
  } catch (e) {
    out(`FAIL cases file ${file}: ${(e as Error).message}`);
    summary.failed = 1;
    out(`${summary.passed} passed, ${summary.failed} failed`);
    return summary;
  }

  const match = (id: string | undefined) => !opts.filter || (id ?? "").includes(opts.filter);
  for (const err of loaded.errors) {
    if (!match(err.id)) continue;
    summary.results.push({ id: err.id ?? `line-${err.line}`, status: "fail", failures: [`line ${err.line}: ${err.message}`] });
  }
  const cases: EvalCase[] = loaded.cases.filter((c) => match(c.id));

  const failures = new Map<string, string[]>(cases.map((c) => [c.id, []]));
  const cache = new Map<string, string | null>();
  for (const c of cases) {
    if (!c.knowledge) continue;
    const r = checkKnowledge(c.knowledge, root, cache);
    failures.get(c.id)!.push(...r.failures.map((f) => `knowledge: ${f}`));
  }

  const replayable = opts.knowledgeOnly ? [] : cases.filter((c) => c.replay);
  if (replayable.length) {
    const rr = await runReplays(replayable, { log: (l) => out(`# ${l}`), root, ...opts.replay });
    for (const r of rr) failures.get(r.id)!.push(...r.failures.map((f) => `replay: ${f}`));
  }

  for (const c of cases) {
    const ran = !!c.knowledge || (!opts.knowledgeOnly && !!c.replay);
    if (!ran) {
      summary.results.push({ id: c.id, status: "skip", failures: [] });
      continue;
    }
    const f = failures.get(c.id)!;
    summary.results.push({ id: c.id, status: f.length ? "fail" : "pass", failures: f });
  }

  for (const r of summary.results) {
    if (r.status === "pass") summary.passed++;
    else if (r.status === "fail") summary.failed++;
    else summary.skipped++;
    if (r.status === "fail") {
      out(`FAIL ${r.id}`);
      for (const f of r.failures.slice(0, 8)) out(`  - ${f}`);
      if (r.failures.length > 8) out(`  - (+${r.failures.length - 8} more)`);
    } else if (r.status === "pass") {
      out(`PASS ${r.id}`);
    }
  }
  if (summary.skipped) out(`# ${summary.skipped} replay-only case(s) skipped (--knowledge-only)`);
  out(`${summary.passed} passed, ${summary.failed} failed`);
  return summary;
}
