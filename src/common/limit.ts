/**
 * Bounded concurrency for fan-out over many hosts: at most `limit` of the calls run at once, the rest
 * wait their turn in order. Sixty-four boxes asked at once would be 64 ssh handshakes on this machine's
 * CPU at the same instant (and 64 more file descriptors each way); a window of them keeps every host
 * in flight soon enough while the handshakes do not trample one another.
 */

import { setting } from "./config.js";

/** fan-out width: RGT_FANOUT (default 16) */
export function fanoutLimit(env: NodeJS.ProcessEnv = process.env): number {
  return setting("RGT_FANOUT", env);
}

/** A gate: `run(fn)` waits for one of `limit` slots, runs fn, frees the slot. */
export function limiter(limit: number): <T>(fn: () => Promise<T>) => Promise<T> {
  const max = Math.max(1, Math.floor(limit));
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= max) await new Promise<void>((r) => waiting.push(r));
    else active++;
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next(); // the slot passes straight on
      else active--;
    }
  };
}

/** map over items with at most `limit` in flight; results in input order. */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const gate = limiter(limit);
  return Promise.all(items.map((x, i) => gate(() => fn(x, i))));
}
