/**
 * stop_run — stop exactly one run (or some of its cells): the process groups recorded on the box for
 * it, each checked to carry this run's id, TERM then KILL, then confirmed gone and off the GPU.
 * Never a name pattern (another tmux session with a similar name is untouched). Deletes no file.
 */
import * as z from "zod";
import { refuse, warning } from "../common/result.js";
import { getRun } from "../ledger/runs.js";
import { defineTool } from "../server/tool.js";
import { backendFor } from "../backends/index.js";
import { nameText } from "./fields.js";

export const stopRun = defineTool({
  name: "stop_run",
  title: "Stop a run",
  description:
    "Stop a run (or some cells) by killing exactly its recorded process groups; confirms they left the GPU. Keeps every file.",
  input: {
    run_id: nameText(),
    cells: z.array(nameText(64)).max(512).optional(),
  },
  output: {
    run_id: z.string().optional(),
    stopped: z.array(z.string()).optional(),
    already_stopped: z.array(z.string()).optional(),
    still_alive: z.array(z.string()).optional(),
    gpu_memory_freed: z.boolean().nullable().optional(),
    evidence: z.array(z.string()).optional(),
    elapsed_ms: z.number().optional(),
  },
  // destroy: it kills the run's processes, though it deletes no file
  effect: "destroy",
  idempotent: true,
  async handler(args, ctx) {
    const t0 = Date.now();
    const run = getRun(ctx.ledger, args.run_id);
    if (!run) refuse("NOT_FOUND", `run_id: no run ${args.run_id} in the ledger`, "Pass the run_id launch_queue returned (`rgt status` lists runs).");
    const names = new Set(run.cells.map((c) => c.name));
    const unknown = (args.cells ?? []).filter((c) => !names.has(c));
    if (unknown.length) refuse("BAD_INPUT", `cells: ${unknown.slice(0, 5).join(", ")} not in run ${run.run_id}`, `Known cells: ${[...names].slice(0, 20).join(", ")}.`);
    const backend = await backendFor(run.backend);
    const out = await backend.stop({ remote: ctx.remote, ledger: ctx.ledger, signal: ctx.signal, log: ctx.log }, run, args.cells);
    const warnings = [...out.warnings];
    if (out.gpu_memory_freed === false) warnings.push(warning("GPU_STILL_HELD", "danger", "a stopped pid still shows on the GPU; check nvidia-smi"));
    const evidence = out.evidence.length > 12 ? [...out.evidence.slice(0, 12), `… ${out.evidence.length - 12} more`] : out.evidence;
    return {
      ok: out.still_alive.length === 0,
      run_id: run.run_id,
      stopped: out.stopped,
      already_stopped: out.already_stopped,
      still_alive: out.still_alive,
      gpu_memory_freed: out.gpu_memory_freed,
      evidence,
      warnings,
      elapsed_ms: Date.now() - t0,
    };
  },
});
