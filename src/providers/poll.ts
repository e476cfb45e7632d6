/**
 * After a provider accepts a delete / destroy / terminate, its read side can keep showing the instance
 * for a minute or more (vast.ai VAST15, RunPod RP14 in the profiles, verified 2026-06): one look right
 * after the stop proves nothing. The post-stop check therefore polls until the provider says gone,
 * with exponential backoff, bounded in total (RGT_TEARDOWN_POLL_S, default 120 s); each poll is itself
 * a bounded provider call. The answer is gone: true (seen gone), false (still listed when the budget
 * ran out) or null (the provider could not be asked).
 */
import { setting } from "../common/config.js";
import { warning } from "../common/result.js";
import type { MeterStopOutcome } from "./types.js";

export interface PollSettings {
  /** total budget for the post-stop check, polls and waits together */
  totalMs: number;
  /** first wait between polls; doubled after each, up to capMs */
  baseMs: number;
  capMs: number;
}

export interface GoneCheck { gone: boolean | null; detail: string }

export interface PollResult extends GoneCheck {
  polls: number;
  waited_s: number;
}

export function pollSettings(env: NodeJS.ProcessEnv = process.env): PollSettings {
  const totalMs = setting("RGT_TEARDOWN_POLL_S", env) * 1000;
  const baseMs = setting("RGT_TEARDOWN_POLL_BASE_MS", env);
  return { totalMs, baseMs, capMs: Math.max(baseMs, 20_000) };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Ask `check(budgetMs)` until it answers gone: true or the budget is spent. `budgetMs` is what is left,
 * so a provider call can be bounded by the remaining time as well as by its own timeout.
 */
export async function pollUntilGone(check: (budgetMs: number) => Promise<GoneCheck>, s: PollSettings): Promise<PollResult> {
  const t0 = Date.now();
  let r = await check(Math.max(s.totalMs, 1000));
  let polls = 1;
  let delay = s.baseMs;
  while (r.gone !== true && Date.now() - t0 + delay <= s.totalMs) {
    await sleep(delay);
    delay = Math.min(delay * 2, s.capMs);
    r = await check(Math.max(s.totalMs - (Date.now() - t0), 1000));
    polls++;
  }
  const waited_s = Math.round((Date.now() - t0) / 100) / 10;
  return { ...r, detail: polls > 1 ? `${r.detail} (after ${polls} polls over ${waited_s} s)` : r.detail, polls, waited_s };
}

/**
 * A stop call that ran past its bound may still have landed: it is done only when the re-check saw the
 * instance gone (with STOP_CALL_TIMED_OUT saying so), else failed with what the re-check saw. Never a blind retry.
 */
export function timedOutOutcome(performed: string, recheck: PollResult, what: string, extra: { steps?: string[]; warnings?: MeterStopOutcome["warnings"] } = {}): MeterStopOutcome {
  const warnings = extra.warnings ?? [];
  if (recheck.gone === true) {
    return { status: "done", performed, detail: `${what} timed out, but the re-check shows it gone`, recheck, warnings: [warning("STOP_CALL_TIMED_OUT", "info", `${what} did not answer within the bound; the re-check shows it took effect.`), ...warnings] };
  }
  return { status: "failed", performed, detail: `${what} timed out and the instance is not confirmed gone (${recheck.detail})`, recheck, ...(extra.steps ? { steps: extra.steps } : {}), warnings };
}
