/** What the transfer service needs from its caller (a tool's ToolContext satisfies it). */
import type { Remote } from "../remote/types.js";
import type { Ledger } from "../ledger/store.js";

export interface TransferContext {
  remote: Remote;
  ledger: Ledger;
  signal: AbortSignal;
  progress(progress: number, total?: number, message?: string): Promise<void>;
}

/** Progress reports at most every 500 ms (a client drowning in notifications slows the transfer). */
export function throttled(ctx: TransferContext, total: number, message?: string, base = (): number => 0): (done: number) => void {
  let last = 0;
  return (done) => {
    const now = Date.now();
    if (now - last < 500) return;
    last = now;
    void ctx.progress(Math.min(total, base() + done), total, message);
  };
}

/** What push and pull answer: a tool result body (ok, warnings, and the fields of the tool's output schema). */
export type TransferResult = { ok: boolean; warnings: import("../common/result.js").Warning[] } & Record<string, unknown>;
