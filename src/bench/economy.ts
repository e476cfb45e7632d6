/**
 * Agent economy: what the whole demo lifecycle (probe → push code → push a key → 3-cell sweep →
 * status until done → gate refuses → pull + verify → gate asks a human) costs an agent, counted as tool
 * calls and as bytes of tool-result text it has to read. The budget: at most 8 calls and 12 KB.
 * Rows compare the measured numbers to those budgets (ratio ≤ 1 passes); the milliseconds columns carry
 * counts here, as the probe module's size row does.
 */
import type { Lab } from "../lab/box.js";
import { demoBoxInLab, LAB_BOX } from "../demo/boxes.js";
import { runLifecycle } from "../demo/lifecycle.js";
import { Transcript } from "../demo/transcript.js";
import { row, type BenchRow } from "./types.js";

export const CALL_BUDGET = 8;
export const BYTE_BUDGET = 12 * 1024;

export async function bench(lab: Lab): Promise<BenchRow[]> {
  const name = `econ-${process.pid}`;
  const box = lab.boxes[name] ?? (await lab.addBox({ ...LAB_BOX, name }));
  const demo = demoBoxInLab(lab, box, { stop: () => box.stop() });
  const lines: string[] = [];
  const t = new Transcript((l) => lines.push(l));
  try {
    const res = await runLifecycle(demo, t);
    const provider = demo.providerCalls();
    if (provider.length) throw new Error(`the provider CLI was called during the lifecycle: ${provider.join(" | ")}`);
    const perTool = t.calls.map((c) => `${c.tool}:${c.bytes}`).join(" ");
    return [
      row("demo lifecycle: tool calls (vs 8)", res.calls, CALL_BUDGET, 1, `${res.status_polls} status check(s); ${t.elapsedS()} s end to end`),
      row("demo lifecycle: bytes of tool output (vs 12 KB)", res.bytes, BYTE_BUDGET, 1, perTool),
    ];
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${lines.slice(-12).join("\n")}`);
  } finally {
    await demo.stop();
  }
}
