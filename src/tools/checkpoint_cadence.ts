/**
 * checkpoint_cadence — how often to checkpoint given the mean time between preemptions (M), the
 * checkpoint write cost (δ) and the time per iteration. First-order Young/Daly interval
 * W = sqrt(2·δ·M) by default; Daly's higher-order form on request. The iteration count is W divided
 * by the iteration time, rounded DOWN (checkpointing a little early is the safe side), at least 1.
 */
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { refuse, warning, type Warning } from "../common/result.js";

export function youngInterval(deltaS: number, mtbfS: number): number {
  return Math.sqrt(2 * deltaS * mtbfS);
}

/**
 * Daly (2006) higher-order estimate of the optimal compute time between checkpoints:
 * for δ < 2M: sqrt(2δM)·[1 + (1/3)·sqrt(δ/2M) + (1/9)·(δ/2M)] − δ ; otherwise M.
 */
export function dalyInterval(deltaS: number, mtbfS: number): number {
  if (deltaS >= 2 * mtbfS) return mtbfS;
  const x = deltaS / (2 * mtbfS);
  return Math.sqrt(2 * deltaS * mtbfS) * (1 + Math.sqrt(x) / 3 + x / 9) - deltaS;
}

const POSITIVE = ["mtbf_s", "checkpoint_write_s", "seconds_per_iter"] as const;

export const checkpointCadence = defineTool({
  name: "checkpoint_cadence",
  title: "Checkpoint interval for a preemptible run",
  description:
    "Young/Daly checkpoint interval in seconds and whole iterations, from MTBF, checkpoint write time and s/iteration. Pure math.",
  input: {
    mtbf_s: z.number().describe("s between preemptions"),
    checkpoint_write_s: z.number(),
    seconds_per_iter: z.number(),
    formula: z.enum(["young", "daly"]).optional(),
  },
  output: {
    formula: z.string(),
    interval_s: z.number(),
    interval_iters: z.number(),
    young_interval_s: z.number(),
    daly_interval_s: z.number(),
    checkpoint_overhead_pct: z.number(),
    explanation: z.string(),
  },
  effect: "read",
  local: true,
  async handler(args) {
    for (const f of POSITIVE) {
      const v = (args as Record<string, unknown>)[f];
      if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
        refuse("BAD_INPUT", `${f}: must be a finite number > 0, got ${JSON.stringify(v) ?? "nothing"}`, `Pass ${f} in seconds as a positive number.`);
      }
    }
    const formula = args.formula ?? "young";
    if (formula !== "young" && formula !== "daly") refuse("BAD_INPUT", `formula: must be "young" or "daly"`, 'Omit formula for the first-order Young/Daly interval, or pass "daly".');
    const { mtbf_s: M, checkpoint_write_s: d, seconds_per_iter: it } = args;
    const young = youngInterval(d, M);
    const daly = dalyInterval(d, M);
    const interval = formula === "daly" ? daly : young;
    const iters = Math.max(1, Math.floor(interval / it));
    const effective = iters * it;
    const overhead = (d / (effective + d)) * 100;
    const warnings: Warning[] = [];
    if (d >= M / 2) warnings.push(warning("CKPT_COST_HIGH", "danger", `A checkpoint takes ${d}s against a ${M}s mean time between preemptions; most time goes to saving and re-computing. Make checkpoints cheaper (smaller state, faster disk) or find a steadier host.`));
    if (it > interval) warnings.push(warning("ITER_LONGER_THAN_INTERVAL", "warn", `One iteration (${it}s) is longer than the ideal interval (${Math.round(interval)}s); checkpointing every iteration is the closest you can get.`));
    else if (overhead > 20) warnings.push(warning("CKPT_OVERHEAD", "warn", `Checkpointing costs about ${overhead.toFixed(0)}% of wall-clock at this cadence.`));
    const round = (x: number) => Math.round(x * 100) / 100;
    return {
      ok: true,
      formula,
      interval_s: round(interval),
      interval_iters: iters,
      young_interval_s: round(young),
      daly_interval_s: round(daly),
      checkpoint_overhead_pct: round(overhead),
      explanation: `${formula === "daly" ? "Daly higher-order" : "Young/Daly sqrt(2·δ·M)"} with δ=${d}s, M=${M}s gives ${round(interval)}s; at ${it}s/iter that is ${iters} iteration(s) (rounded down).`,
      warnings,
    };
  },
});
