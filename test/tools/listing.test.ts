/** What a model reads every turn, and the toolsets derived from the declared effects. */
import { afterAll, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "./harness.js";
import { allTools, selectTools } from "../../src/tools/index.js";

const open: Harness[] = [];
afterAll(async () => { for (const h of open) await h.close(); });

describe("tool list", () => {
  it("all eleven tools; name + description + input schema ≤ 7 KB in all", async () => {
    const h = await startHarness();
    open.push(h);
    expect(h.tools.map((t) => t.name).sort()).toEqual(allTools.map((t) => t.name).sort());
    expect(h.tools).toHaveLength(11);
    const bytes = h.tools.reduce((a, t) => a + Buffer.byteLength(JSON.stringify({ name: t.name, description: t.description, input_schema: t.inputSchema })), 0);
    expect(bytes).toBeLessThanOrEqual(7000);
  });

  it("RGT_TOOLS=read-only serves only tools that change nothing and spend nothing; the rest are unknown to the client", async () => {
    const h = await startHarness({ tools: "read-only" });
    open.push(h);
    expect(h.tools.map((t) => t.name).sort()).toEqual(["check_staleness", "checkpoint_cadence", "probe_env", "run_status"]);
    for (const t of h.tools) expect(t.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false });
    await expect(h.client.callTool({ name: "request_teardown", arguments: { host: "x" } })).rejects.toThrow(/not found/);
    expect(selectTools("probe_env, run_status").map((t) => t.name)).toEqual(["probe_env", "run_status"]);
    expect(selectTools("all")).toHaveLength(11);
  });
});
