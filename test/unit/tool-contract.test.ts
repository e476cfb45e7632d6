/**
 * The public contract (TOOLS.md) at the declaration level: every tool exists under its exact name, declares
 * input and output schemas and a description, and its annotations tell a client the truth about it.
 */
import { describe, expect, it } from "vitest";
import { allTools } from "../../src/tools/index.js";

const byName = new Map(allTools.map((t) => [t.name, t]));

describe("tool declarations", () => {
  it("exposes every tool of the contract under its exact name", () => {
    for (const n of ["probe_env", "push_code", "push_secret", "launch_queue", "run_status", "stop_run", "pull_verify", "check_staleness", "request_teardown", "remote_exec", "checkpoint_cadence"]) {
      expect(byName.has(n), n).toBe(true);
    }
  });

  it("declares schemas, a real description, and all four annotations on every tool", () => {
    for (const t of allTools) {
      expect(Object.keys(t.input).length, t.name).toBeGreaterThan(0);
      expect(t.description.length, t.name).toBeGreaterThan(80);
      expect(t.description, t.name).not.toMatch(/not implemented/i);
      for (const k of ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"] as const) {
        expect(typeof t.annotations[k], `${t.name}.${k}`).toBe("boolean");
      }
    }
  });

  it("marks exactly the tools that change nothing as read-only, and the ones that kill, overwrite or destroy as destructive", () => {
    const readOnly = allTools.filter((t) => t.annotations.readOnlyHint).map((t) => t.name).sort();
    expect(readOnly).toEqual(["check_staleness", "checkpoint_cadence", "probe_env", "run_status"]);
    const destructive = allTools.filter((t) => t.annotations.destructiveHint).map((t) => t.name).sort();
    expect(destructive).toEqual(["push_code", "push_secret", "remote_exec", "request_teardown", "stop_run"]);
    // only the pure knowledge tools stay off the network
    expect(allTools.filter((t) => !t.annotations.openWorldHint).map((t) => t.name).sort()).toEqual(["check_staleness", "checkpoint_cadence"]);
  });
});
