/**
 * rgt evals [--knowledge-only] [--filter <substr>] [--cases <file>] [--root <dir>]
 *
 * Runs evals/cases.jsonl: the knowledge drift guard for every case, and (unless --knowledge-only)
 * the replays through the real server against lab boxes. Ends with `N passed, N failed`; exits 1 on
 * any failure, 2 on a usage error.
 */
import { runEvals } from "../evals/run.js";

export async function run(argv: string[]): Promise<number> {
  let knowledgeOnly = false;
  let filter: string | undefined;
  let casesFile: string | undefined;
  let root: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string | undefined => {
      const v = argv[i + 1];
      i++;
      return v === undefined || v.startsWith("--") ? undefined : v;
    };
    if (a === "--knowledge-only") knowledgeOnly = true;
    else if (a === "--filter") filter = value();
    else if (a.startsWith("--filter=")) filter = a.slice("--filter=".length);
    else if (a === "--cases") casesFile = value();
    else if (a === "--root") root = value();
    else if (a === "-h" || a === "--help") {
      process.stdout.write("usage: rgt evals [--knowledge-only] [--filter <substr>] [--cases <file>] [--root <dir>]\n");
      return 0;
    } else {
      process.stderr.write(`rgt evals: unknown argument '${a}'\n`);
      return 2;
    }
    if ((a === "--filter" && filter === undefined) || (a === "--cases" && casesFile === undefined) || (a === "--root" && root === undefined)) {
      process.stderr.write(`rgt evals: ${a} needs a value\n`);
      return 2;
    }
  }
  const s = await runEvals({ knowledgeOnly, filter, casesFile, root });
  return s.failed > 0 ? 1 : 0;
}
