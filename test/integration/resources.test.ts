/**
 * The knowledge over the wire: the real built server (`node dist/cli/main.js serve`) over stdio lists
 * and reads the profile / reference / skill resources, completes profile names, renders the lifecycle
 * prompt, and answers check_staleness and checkpoint_cadence. Build first: npx tsc -p tsconfig.json.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";
import { listReferences } from "../../src/knowledge/references.js";
import { loadProfiles } from "../../src/knowledge/profiles.js";

const home = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-res-"));
let s: ServerConnection;

beforeAll(async () => {
  s = await connectServer({ RGT_HOME: home });
});
afterAll(async () => {
  await s?.close();
  fs.rmSync(home, { recursive: true, force: true });
});

describe("resources", () => {
  it("lists every profile as rgt://profiles/<name> and the skill hub", async () => {
    const { resources } = await s.client.listResources();
    const uris = resources.map((r) => r.uri);
    for (const p of loadProfiles()) expect(uris).toContain(`rgt://profiles/${p.name}`);
    expect(uris).toContain("rgt://skill");
    for (const r of listReferences()) expect(uris).toContain(`rgt://references/${r.name}`);
    const autodl = resources.find((r) => r.uri === "rgt://profiles/autodl")!;
    expect(autodl.mimeType).toBe("text/markdown");
    expect(autodl.description).toMatch(/关机/);
  });

  it("exposes the profile and reference templates", async () => {
    const { resourceTemplates } = await s.client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate).sort()).toEqual(["rgt://profiles/{name}", "rgt://references/{+name}"]);
  });

  it("reads rgt://profiles/autodl: the file itself, frontmatter and sections", async () => {
    const r = await s.client.readResource({ uri: "rgt://profiles/autodl" });
    const text = (r.contents[0] as { text: string }).text;
    expect(text.startsWith("---\nplatform: autodl\n")).toBe(true);
    expect(text).toContain("durable_dir: /root/autodl-fs");
    expect(text).toContain("## 5. Teardown / billing");
    expect(text).toContain("### AD4 — ");
  });

  it("an unknown profile is an error naming the known ones, not a crash", async () => {
    await expect(s.client.readResource({ uri: "rgt://profiles/aws" })).rejects.toThrow(/autodl/);
    // the server is still answering
    const r = await s.client.readResource({ uri: "rgt://profiles/slurm" });
    expect((r.contents[0] as { text: string }).text).toContain("scancel {job_id}");
  });

  it("reads the skill hub", async () => {
    const r = await s.client.readResource({ uri: "rgt://skill" });
    expect((r.contents[0] as { text: string }).text.length).toBeGreaterThan(20);
  });

  it("completes profile names", async () => {
    const r = await s.client.complete({ ref: { type: "ref/resource", uri: "rgt://profiles/{name}" }, argument: { name: "name", value: "c" } });
    expect(r.completion.values.sort()).toEqual(["china", "colab-kaggle"]);
    const p = await s.client.complete({ ref: { type: "ref/prompt", name: "lifecycle" }, argument: { name: "profile", value: "run" } });
    expect(p.completion.values).toEqual(["runpod"]);
  });
});

describe("lifecycle prompt", () => {
  it("walks the tools in order for the given host and profile", async () => {
    const { prompts } = await s.client.listPrompts();
    const lc = prompts.find((p) => p.name === "lifecycle")!;
    expect(lc.arguments?.map((a) => [a.name, a.required])).toEqual([["host", true], ["profile", false]]);
    const r = await s.client.getPrompt({ name: "lifecycle", arguments: { host: "gpu1", profile: "vastai" } });
    const text = (r.messages[0].content as { text: string }).text;
    const order = ["probe_env", "push_code", "push_secret", "launch_queue", "run_status", "pull_verify", "request_teardown"].map((t) => text.indexOf(t));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(text).toContain('host: "gpu1"');
    expect(text).toContain('"destroy"');
    expect(text).toMatch(/IRREVERSIBLE/);
    expect(text.length).toBeLessThan(3000);
  });

  it("works without a profile", async () => {
    const r = await s.client.getPrompt({ name: "lifecycle", arguments: { host: "me@10.0.0.5:2222" } });
    expect((r.messages[0].content as { text: string }).text).toContain('probe_env { host: "me@10.0.0.5:2222" }');
  });
});

describe("knowledge tools over the wire", () => {
  it("check_staleness two years after the newest stamp flags billing facts; at the newest stamp none", async () => {
    const now = await s.call("check_staleness", { today: "2026-06" });
    expect(now.isError).toBe(false);
    expect(now.stale).toEqual([]);
    const later = await s.call("check_staleness", { today: "2028-06" });
    expect(later.ok).toBe(true);
    expect(later.stale_total).toBeGreaterThan(later.stale.length);
    expect(new Set(later.stale.filter((x: any) => x.billing).map((x: any) => x.platform)).size).toBe(11);
      // ten rentals and schedulers + the local workstation profile
  });

  it("checkpoint_cadence answers, and refuses a non-positive number as BAD_INPUT", async () => {
    const ok = await s.call("checkpoint_cadence", { mtbf_s: 10800, checkpoint_write_s: 30, seconds_per_iter: 2 });
    expect(ok).toMatchObject({ ok: true, interval_iters: 402 });
    const bad = await s.call("checkpoint_cadence", { mtbf_s: -1, checkpoint_write_s: 30, seconds_per_iter: 2 });
    expect(bad.isError).toBe(true);
    expect(bad.refused.code).toBe("BAD_INPUT");
    expect(bad.refused.reason).toMatch(/mtbf_s/);
    const wrongType = await s.call("checkpoint_cadence", { mtbf_s: "lots", checkpoint_write_s: 30, seconds_per_iter: 2 });
    expect(wrongType.refused.code).toBe("BAD_INPUT");
    expect(wrongType.refused.reason).toMatch(/mtbf_s/);
  });
});
