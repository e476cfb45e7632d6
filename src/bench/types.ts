/** One benchmark row: our tool against the plain tool a user would otherwise use, timed in the same run. */
export interface BenchRow {
  name: string;
  ours_ms: number;
  baseline_ms: number;
  /** ours / baseline */
  ratio: number;
  /** the ceiling for the ratio, when it sets one */
  target?: number;
  note?: string;
}

export function row(name: string, ours_ms: number, baseline_ms: number, target?: number, note?: string): BenchRow {
  return { name, ours_ms: Math.round(ours_ms * 10) / 10, baseline_ms: Math.round(baseline_ms * 10) / 10,
      ratio: Math.round((ours_ms / baseline_ms) * 1000) / 1000, ...(target !== undefined ? { target } : {}), ...(note ? { note } : {}) };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}
