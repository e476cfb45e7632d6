/**
 * Local child processes (rsync, provider CLIs) that must not outlive the server: whoever spawns one
 * tracks it here, and the server's shutdown ends them all.
 */
import type { ChildProcess } from "node:child_process";

const live = new Set<ChildProcess>();

export function trackChild<C extends ChildProcess>(child: C): C {
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

/** SIGTERM every tracked child still running. */
export function killChildren(): void {
  for (const c of live) {
    try { c.kill("SIGTERM"); } catch { /* already gone */ }
  }
  live.clear();
}
