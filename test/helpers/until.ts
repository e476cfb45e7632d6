/** Poll `fn` until `ok` holds (the integration tests' patrol loop); throws with the last answer on timeout. */
export type R = Record<string, any>;

export async function until(what: string, fn: () => Promise<R>, ok: (r: R) => boolean, timeoutMs = 90_000, everyMs = 700): Promise<R> {
  const t0 = Date.now();
  let last: R = {};
  while (Date.now() - t0 < timeoutMs) {
    last = await fn();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last).slice(0, 1500)}`);
}
