import { describe, it, expect, vi, afterEach } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { runEvals } from "../../src/evals/run.js";
import { parseCases } from "../../src/evals/cases.js";
import { checkKnowledge, hasHeading, profileGotchaIds, frontmatterOf } from "../../src/evals/knowledge.js";
import { checkOutcome, parseFieldExpr, getPath, substituteBox, substituteArgs } from "../../src/evals/expect.js";
import { planBoxes, mergeServerEnv, runStep, runReplays, plantTripwire, TRIPWIRE_CLIS } from "../../src/evals/replay.js";
import { spawnSync } from "node:child_process";
import { run as cliRun } from "../../src/cli/evals.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

function tmpRoot(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-evals-"));
  fs.mkdirSync(path.join(d, "references"));
  fs.mkdirSync(path.join(d, "profiles"));
  fs.mkdirSync(path.join(d, "evals"));
  fs.writeFileSync(
    path.join(d, "references", "gotchas-universal.md"),
    "# Gotchas\n\n### U7 — inodes run out before bytes\nWatch df -i as well as df -h.\n\n### U70\nanother\n",
  );
  fs.writeFileSync(
    path.join(d, "profiles", "demo.md"),
    "---\nplatform: demo\ngotchas:\n  - id: DEMO1\n    title: the meter keeps running\n---\n# Demo\n\n### DEMO1 — the meter keeps running\nstop still bills.\n\n### DEMO2 — heading only\nnot in frontmatter\n",
  );
  return d;
}

function lines(): { out: (l: string) => void; got: string[] } {
  const got: string[] = [];
  return { out: (l) => got.push(l), got };
}

describe("knowledge half of the evals", () => {
  it("runs green over this project's evals/cases.jsonl with at least 40 cases", async () => {
    const { out, got } = lines();
    const s = await runEvals({ root: ROOT, knowledgeOnly: true, out });
    const fails = s.results.filter((r) => r.status === "fail");
    expect(fails, got.join("\n")).toEqual([]);
    expect(s.passed).toBeGreaterThanOrEqual(30);
    expect(s.results.length).toBeGreaterThanOrEqual(40);
    expect(got.at(-1)).toMatch(/^\d+ passed, 0 failed$/);
  });

  it("replays every tool the server exposes, each with a success and a refusal, and never approves a teardown", async () => {
    const { allTools } = await import("../../src/tools/index.js");
    const { cases } = parseCases(fs.readFileSync(path.join(ROOT, "evals", "cases.jsonl"), "utf8"));
    const steps = cases.flatMap((c) => c.replay?.steps ?? []);
    for (const t of allTools) {
      const mine = steps.filter((st) => st.tool === t.name);
      // request_teardown's furthest point in an eval is the human gate (APPROVAL_REQUIRED): nothing approves
      if (t.name !== "request_teardown") expect(mine.some((st) => st.expect.ok === true), `no replay step where ${t.name} succeeds`).toBe(true);
      else expect(mine.some((st) => st.expect.code === "APPROVAL_REQUIRED"), "no replay reaches the teardown's human gate").toBe(true);
      expect(mine.some((st) => st.expect.code !== undefined), `no replay step where ${t.name} refuses`).toBe(true);
    }
    const known = new Set(allTools.map((t) => t.name));
    for (const st of steps) expect(known.has(st.tool), `replay names unknown tool ${st.tool}`).toBe(true);
    // a teardown goes through only against a stand-in provider the case plants, approved by the case's own
    // human; everywhere else the tripwire CLIs stay in place and nothing approves (issue 15.6)
    for (const c of cases) {
      for (const st of (c.replay?.steps ?? []).filter((x) => x.tool === "request_teardown")) {
        if (st.expect.ok === true) {
          expect(c.replay!.provider_stub, `${c.id}: a teardown that goes through needs a provider_stub`).toBeDefined();
          expect(c.replay!.human, `${c.id}`).toBe("approve");
        }
      }
    }
    // the lifecycle chain is there: launch → poll until done → pull with a receipt → the human gate
    const life = cases.find((c) => c.id === "replay-lifecycle-two-cells")!;
    expect(life.replay!.steps.map((x) => x.tool)).toEqual(["probe_env", "push_code", "launch_queue", "run_status", "request_teardown", "pull_verify", "request_teardown"]);
    expect(life.replay!.steps[3].until?.fields).toContain('state == "done"');
    expect(life.replay!.steps.at(-1)!.expect.code).toBe("APPROVAL_REQUIRED");
  });

  it("covers every profile and reaches every reference and the skill hub", () => {
    const { cases, errors } = parseCases(fs.readFileSync(path.join(ROOT, "evals", "cases.jsonl"), "utf8"));
    expect(errors).toEqual([]);
    const platforms = new Set(cases.flatMap((c) => c.platforms));
    for (const p of ["autodl", "vastai", "runpod", "lambda", "paperspace", "china", "generic-ssh", "slurm", "kubernetes", "colab-kaggle"]) {
      expect(platforms.has(p), `no case for ${p}`).toBe(true);
    }
    const files = new Set(cases.flatMap((c) => [...(c.knowledge?.files ?? []), ...Object.keys(c.knowledge?.ids ?? {})]));
    for (const f of fs.readdirSync(path.join(ROOT, "references"))) expect(files.has(`references/${f}`), `no case reaches references/${f}`).toBe(true);
    expect(files.has("skill/SKILL.md")).toBe(true);
  });

  it("fails a case that points at a missing id, file or term, and passes a correct one", async () => {
    const d = tmpRoot();
    const cases = [
      { id: "good", prompt: "df -h shows space but writes fail", knowledge: { ids: { "references/gotchas-universal.md": ["U7"] }, terms: ["df -i"] } },
      { id: "missing-id", prompt: "a gotcha that was renamed away", knowledge: { ids: { "references/gotchas-universal.md": ["U99"] } } },
      { id: "missing-file", prompt: "a reference that was deleted", knowledge: { files: ["references/gone.md"] } },
      { id: "missing-term", prompt: "a fact rewritten away from its key term", knowledge: { files: ["references/gotchas-universal.md"], terms: ["hf-mirror"] } },
      { id: "profile-ok", prompt: "what does stop keep billing here", knowledge: { ids: { "profiles/demo.md": ["DEMO1"] } } },
      { id: "profile-heading-only", prompt: "a gotcha missing from the frontmatter", knowledge: { ids: { "profiles/demo.md": ["DEMO2"] } } },
    ];
    const file = path.join(d, "evals", "cases.jsonl");
    fs.writeFileSync(file, cases.map((c) => JSON.stringify(c)).join("\n") + "\n");
    const { out, got } = lines();
    const s = await runEvals({ root: d, casesFile: file, knowledgeOnly: true, out });
    const status = Object.fromEntries(s.results.map((r) => [r.id, r.status]));
    expect(status).toEqual({
      good: "pass",
      "missing-id": "fail",
      "missing-file": "fail",
      "missing-term": "fail",
      "profile-ok": "pass",
      "profile-heading-only": "fail",
    });
    expect(got.at(-1)).toBe("2 passed, 4 failed");
    expect(got.join("\n")).toContain('no heading "### U99"');
    expect(got.join("\n")).toContain("DEMO2 not in frontmatter");
  });

  it("counts a malformed line as a failed case, and --filter narrows the run", async () => {
    const d = tmpRoot();
    const file = path.join(d, "evals", "cases.jsonl");
    fs.writeFileSync(
      file,
      [
        JSON.stringify({ id: "good", prompt: "inodes run out first", knowledge: { ids: { "references/gotchas-universal.md": ["U7"] } } }),
        "{not json",
        JSON.stringify({ id: "Bad_Id", prompt: "ids must be kebab case", knowledge: { files: ["references/gotchas-universal.md"] } }),
        JSON.stringify({ id: "good", prompt: "a duplicate id is an error", knowledge: { files: ["references/gotchas-universal.md"] } }),
      ].join("\n"),
    );
    const all = await runEvals({ root: d, casesFile: file, knowledgeOnly: true, out: () => {} });
    expect([all.passed, all.failed]).toEqual([1, 3]);
    const { out, got } = lines();
    const one = await runEvals({ root: d, casesFile: file, knowledgeOnly: true, filter: "goo", out });
    expect([one.passed, one.failed]).toEqual([1, 1]); // the duplicate "good" line still fails
    expect(got.at(-1)).toBe("1 passed, 1 failed");
  });

  it("skips replay-only cases under --knowledge-only without counting them", async () => {
    const d = tmpRoot();
    const file = path.join(d, "evals", "cases.jsonl");
    fs.writeFileSync(
      file,
      JSON.stringify({ id: "probe-only", prompt: "probe the autodl box", replay: { box: { profile: "autodl" }, steps: [{ tool: "probe_env", args: { host: "{box}" }, expect: { ok: true } }] } }) + "\n",
    );
    const { out, got } = lines();
    const s = await runEvals({ root: d, casesFile: file, knowledgeOnly: true, out });
    expect([s.passed, s.failed, s.skipped]).toEqual([0, 0, 1]);
    expect(got.at(-1)).toBe("0 passed, 0 failed");
  });

  it("the CLI exits non-zero on a failing case and zero on a passing one", async () => {
    const d = tmpRoot();
    const bad = path.join(d, "evals", "bad.jsonl");
    const good = path.join(d, "evals", "good.jsonl");
    fs.writeFileSync(bad, JSON.stringify({ id: "x", prompt: "a renamed gotcha id", knowledge: { ids: { "references/gotchas-universal.md": ["U8"] } } }) + "\n");
    fs.writeFileSync(good, JSON.stringify({ id: "y", prompt: "inodes run out first", knowledge: { ids: { "references/gotchas-universal.md": ["U7"] } } }) + "\n");
    const written: string[] = [];
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => { written.push(String(s)); return true; });
    try {
      expect(await cliRun(["--knowledge-only", "--root", d, "--cases", bad])).toBe(1);
      expect(await cliRun(["--knowledge-only", "--root", d, "--cases", good])).toBe(0);
      expect(await cliRun(["--bogus"])).toBe(2);
    } finally {
      spy.mockRestore();
    }
    expect(written.join("")).toMatch(/^0 passed, 1 failed$/m);
    expect(written.join("")).toMatch(/^1 passed, 0 failed$/m);
  });
});

describe("the knowledge files themselves", () => {
  const REFS = ["ssh-transport", "spot-resilience", "china-network", "gotchas-universal", "monitoring-patterns", "lifecycle-checklist", "principles", "parallel-ablation", "artifact-layout", "training-failures"];
  // most references are a short read; the training-failures handbook is allowed more (issue 14: <= 25 KB)
  const MAX_KB: Record<string, number> = { "training-failures": 25, "gotchas-universal": 12 };

  it("has exactly the ten references, each compact, with unique heading ids", () => {
    const names = fs.readdirSync(path.join(ROOT, "references")).filter((f) => f.endsWith(".md")).map((f) => f.slice(0, -3)).sort();
    expect(names).toEqual([...REFS].sort());
    for (const n of REFS) {
      const text = fs.readFileSync(path.join(ROOT, "references", `${n}.md`), "utf8");
      const bytes = Buffer.byteLength(text);
      expect(bytes, n).toBeGreaterThanOrEqual(3 * 1024);
      expect(bytes, n).toBeLessThanOrEqual((MAX_KB[n] ?? 10) * 1024);
      expect(text.includes("\r"), `${n} has CR characters`).toBe(false);
      const ids = [...text.matchAll(/^###[ \t]+([A-Z][A-Z0-9_-]*)\b/gm)].map((m) => m[1]);
      expect(new Set(ids).size, `${n} repeats a heading id`).toBe(ids.length);
    }
  });

  it("keeps the Young/Daly worked number and the round-down rule", () => {
    const text = fs.readFileSync(path.join(ROOT, "references", "spot-resilience.md"), "utf8");
    expect(Math.round(Math.sqrt(2 * 10800 * 30))).toBe(805);
    expect(text).toMatch(/805 s/);
    expect(text).toMatch(/round(ing)? down/i);
  });

  it("ships a skill hub with standard frontmatter under 16 KB that names every tool and resource family", () => {
    const text = fs.readFileSync(path.join(ROOT, "skill", "SKILL.md"), "utf8");
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(16 * 1024);
    const fm = frontmatterOf(text)!;
    expect(fm.name).toBe("remote-gpu-trainer");
    expect(typeof fm.description).toBe("string");
    expect(String(fm.description).length).toBeGreaterThan(50);
    expect(String(fm.description).length).toBeLessThanOrEqual(1024);
    for (const tool of ["probe_env", "push_code", "push_secret", "launch_queue", "run_status", "stop_run", "pull_verify", "request_teardown", "remote_exec", "check_staleness", "checkpoint_cadence"]) {
      expect(text, tool).toContain(tool);
    }
    expect(text).toContain("rgt://profiles/{name}");
    for (const n of REFS) expect(text, n).toContain(`rgt://references/${n}`);
  });
});

describe("heading and frontmatter rules", () => {
  it("accepts `### ID` and `### ID — title`, not a longer id or a deeper heading", () => {
    const t = "### U7 — inodes\n### AD4\n### AD-DANGER — 15 days\n#### U9 — too deep\n### U70 - other\n### SLURM2: signal\n";
    expect(hasHeading(t, "U7")).toBe(true);
    expect(hasHeading(t, "AD4")).toBe(true);
    expect(hasHeading(t, "SLURM2")).toBe(true);
    expect(hasHeading(t, "U70")).toBe(true);
    expect(hasHeading(t, "U9")).toBe(false);
    expect(hasHeading("### U70 — x\n", "U7")).toBe(false);
    expect(hasHeading("### AD-DANGER — x\n", "AD")).toBe(false);
    expect(hasHeading(t, "AD-DANGER")).toBe(true);
  });

  it("reads profile gotcha ids from the frontmatter", () => {
    const t = "---\nplatform: x\ngotchas:\n  - {id: X1, title: a}\n  - {id: X2, title: b}\n---\nbody\n";
    expect(profileGotchaIds(t)).toEqual(["X1", "X2"]);
    expect(frontmatterOf("no frontmatter")).toBeUndefined();
    const r = checkKnowledge({ files: [], ids: {}, terms: [] }, ROOT);
    expect(r.ok).toBe(false);
  });

  it("refuses to read outside the root", () => {
    const r = checkKnowledge({ files: ["../../etc/passwd"], ids: {}, terms: [] }, ROOT);
    expect(r.failures[0]).toMatch(/missing file/);
  });
});

describe("replay expectations (pure)", () => {
  const ok = (sc: Record<string, unknown>, isError = false) => ({ structured: sc, isError, text: JSON.stringify(sc) });

  it("fails the not-implemented placeholder even when a case expects INTERNAL", () => {
    const placeholder = ok({ ok: false, warnings: [], refused: { code: "INTERNAL", reason: "probe_env is not implemented yet", remedy: "wait" } }, true);
    expect(checkOutcome(placeholder, { code: "INTERNAL" })).toEqual([`tool is still the "not implemented" placeholder`]);
    expect(checkOutcome(placeholder, { ok: false })).toHaveLength(1);
  });

  it("checks ok, refusal code, warnings present/absent, fields and size", () => {
    const r = ok({ ok: true, warnings: [{ code: "INODE_HIGH", severity: "warn", message: "m" }], profile: { name: "autodl" }, gpus: [{}, {}], disks: [{ role: "data", inodes_used_pct: 96 }] });
    expect(checkOutcome(r, { ok: true, warnings: ["INODE_HIGH"], no_warnings: ["DISK_HIGH"], fields: ['profile.name == "autodl"', "gpus.length == 2", "disks.0.inodes_used_pct >= 90", "disks[0].role == data"] })).toEqual([]);
    const f = checkOutcome(r, { ok: false, warnings: ["DISK_HIGH"], no_warnings: ["INODE_HIGH"], fields: ["gpus.length == 8"], max_bytes: 10 });
    expect(f).toHaveLength(5);
    const refusal = ok({ ok: false, warnings: [], refused: { code: "BAD_INPUT", reason: "host: required", remedy: "r" } }, true);
    expect(checkOutcome(refusal, { code: "BAD_INPUT" })).toEqual([]);
    expect(checkOutcome(refusal, { code: "SECRET_INLINE" })[0]).toMatch(/want refusal SECRET_INLINE, got BAD_INPUT/);
    expect(checkOutcome({ ...refusal, isError: false }, { code: "BAD_INPUT" })).toEqual(["a refusal must carry isError:true"]);
  });

  it("parses field expressions and substitutes {box}", () => {
    expect(parseFieldExpr('profile.name == "autodl"')).toEqual({ path: "profile.name", op: "==", value: "autodl" });
    expect(parseFieldExpr("surface_to_user.length > 0")).toEqual({ path: "surface_to_user.length", op: ">", value: 0 });
    expect(parseFieldExpr("refused absent")).toEqual({ path: "refused", op: "absent", value: undefined });
    expect(() => parseFieldExpr("gpus.length")).toThrow(/bad field assertion/);
    expect(getPath({ a: [{ b: "x" }] }, "a.0.b.length")).toBe(1);
    expect(substituteBox({ host: "{box}", list: ["root@{box}"] }, "rgt-eval-0")).toEqual({ host: "rgt-eval-0", list: ["root@rgt-eval-0"] });
    expect(() => substituteBox({ host: "{box}" }, undefined)).toThrow(/declares no box/);
  });

  it("groups cases that share a box spec onto one box", () => {
    const { cases } = parseCases(
      [
        { id: "a", prompt: "probe autodl one", replay: { box: { profile: "autodl", gpus: 8 }, steps: [{ tool: "probe_env", args: {}, expect: { ok: true } }] } },
        { id: "b", prompt: "probe autodl two", replay: { box: { gpus: 8, profile: "autodl" }, steps: [{ tool: "probe_env", args: {}, expect: { ok: true } }] } },
        { id: "c", prompt: "probe a bare box", replay: { box: { profile: "generic", gpus: 0 }, steps: [{ tool: "probe_env", args: {}, expect: { ok: true } }] } },
        { id: "d", prompt: "host-less staleness", replay: { steps: [{ tool: "check_staleness", args: {}, expect: { ok: true } }] } },
      ].map((c) => JSON.stringify(c)).join("\n"),
    );
    const plan = planBoxes(cases);
    expect(plan.specs.map((s) => s.name)).toEqual(["rgt-eval-0", "rgt-eval-1"]);
  });
});

describe("chaining steps: placeholders, until, leak checks", () => {
  const outcome = (sc: Record<string, unknown>, isError = false) => ({ structured: sc, isError, text: JSON.stringify(sc) });

  it("substitutes {prev.*}, {stepN.*} and {tmp}, keeping the type of a whole-string placeholder", () => {
    const steps = [{ run_id: "r-1", placement: [{ cell: "a" }], n: 3 }, { receipt_id: "rc-9", ok: true }];
    const args = { run_id: "{step1.run_id}", receipt: "{prev.receipt_id}", dir: "{tmp}/pull-{step1.run_id}", n: "{step1.n}", first: "{step1.placement.0.cell}", shell: "echo ${HOME} {not-a-placeholder}" };
    expect(substituteArgs(args, { tmp: "/t", steps })).toEqual({ run_id: "r-1", receipt: "rc-9", dir: "/t/pull-r-1", n: 3, first: "a", shell: "echo ${HOME} {not-a-placeholder}" });
    expect(substituteArgs(["n={step1.n}", "{step1.placement}"], { steps })).toEqual(["n=3", [{ cell: "a" }]]);
  });

  it("refuses a placeholder that points at nothing instead of sending a literal", () => {
    expect(() => substituteArgs({ a: "{prev.run_id}" }, { steps: [] })).toThrow(/first step/);
    expect(() => substituteArgs({ a: "{prev.run_id}" }, { steps: [{ ok: false }] })).toThrow(/step 1's result has no run_id/);
    expect(() => substituteArgs({ a: "{step3.x}" }, { steps: [{}, {}] })).toThrow(/only 2 step/);
    expect(() => substituteArgs({ a: "{tmp}/x" }, {})).toThrow(/scratch/);
    expect(() => substituteArgs({ a: "{prev.gone}" }, { steps: [{ gone: null }] })).toThrow(/has no gone/);
  });

  it("absent_text fails a result that carries the text anywhere", () => {
    const r = outcome({ ok: true, warnings: [], remote_path: "/root/.k", bytes: 9 });
    expect(checkOutcome(r, { ok: true, absent_text: ["s3cr3t-value"] })).toEqual([]);
    const leaked = outcome({ ok: true, warnings: [], note: "value was s3cr3t-value" });
    const f = checkOutcome(leaked, { ok: true, absent_text: ["s3cr3t-value"] });
    expect(f).toHaveLength(1);
    expect(f[0]).not.toContain("s3cr3t-value"); // the failure line does not repeat the secret either
  });

  it("until: polls until the fields hold, then checks expect on the last answer", async () => {
    const answers = ["running", "running", "done"];
    let calls = 0;
    const call = async () => outcome({ ok: true, warnings: [], state: answers[Math.min(calls++, answers.length - 1)], cells: [{ state: "done" }] });
    const step = { tool: "run_status", args: {}, until: { fields: ['state == "done"'], timeout_s: 5, interval_ms: 100 }, expect: { ok: true, fields: ["cells.0.state == done"] } };
    const r = await runStep(call, step, {});
    expect(r.failures).toEqual([]);
    expect(r.calls).toBe(3);
    expect(r.outcome.structured?.state).toBe("done");
  });

  it("until: gives up after timeout_s and says what it last saw", async () => {
    let calls = 0;
    const call = async () => { calls++; return outcome({ ok: true, warnings: [], state: "running" }); };
    const step = { tool: "run_status", args: {}, until: { fields: ['state == "done"'], timeout_s: 0.35, interval_ms: 100 }, expect: { ok: true } };
    const t0 = Date.now();
    const r = await runStep(call, step, {});
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]).toMatch(/until not reached within 0.35 s .*state="running"/);
  });

  it("the schema bounds until and validates server_env", () => {
    const mk = (until: unknown, extra: Record<string, unknown> = {}) =>
      JSON.stringify({ id: "u", prompt: "poll a run until it ends", replay: { steps: [{ tool: "run_status", args: {}, until, expect: { ok: true } }], ...extra } });
    expect(parseCases(mk({ fields: ['state == "done"'] })).cases[0].replay!.steps[0].until).toEqual({ fields: ['state == "done"'], timeout_s: 30, interval_ms: 1000 });
    expect(parseCases(mk({ fields: ['state == "done"'], timeout_s: 600 })).errors[0].message).toMatch(/timeout_s/);
    expect(parseCases(mk({ fields: [] })).errors).toHaveLength(1);
    expect(parseCases(mk(undefined, { server_env: { "BAD-NAME": "x" } })).errors[0].message).toMatch(/server_env/);
  });

  it("merges server_env over cases and rejects two values for one name", () => {
    const { cases } = parseCases(
      [
        { id: "a", prompt: "push a key from env", replay: { server_env: { K: "1" }, steps: [{ tool: "t", expect: {} }] } },
        { id: "b", prompt: "push the same key again", replay: { server_env: { K: "1", L: "2" }, steps: [{ tool: "t", expect: {} }] } },
        { id: "c", prompt: "a clashing value", replay: { server_env: { K: "3" }, steps: [{ tool: "t", expect: {} }] } },
      ].map((c) => JSON.stringify(c)).join("\n"),
    );
    expect(mergeServerEnv(cases.slice(0, 2))).toEqual({ K: "1", L: "2" });
    expect(() => mergeServerEnv(cases)).toThrow(/K differs between cases a and c/);
  });

  it("runReplays chains results through placeholders in args and expectations, with the merged env", async () => {
    const seen: { name: string; args: Record<string, unknown> }[] = [];
    let env: Record<string, string> = {};
    let statusCalls = 0;
    const server = {
      async call(name: string, args: Record<string, unknown>) {
        seen.push({ name, args });
        if (name === "launch_queue") return { ok: true, warnings: [], run_id: "run-42" };
        if (name === "run_status") return { ok: true, warnings: [], run_id: args.run_id, state: ++statusCalls >= 2 ? "done" : "running" };
        if (name === "pull_verify") return { ok: true, warnings: [], receipt_id: `rc-for-${String(args.run_id)}` };
        return { ok: false, warnings: [], refused: { code: "APPROVAL_REQUIRED", reason: "human", remedy: "ask" }, approval: { receipts: ["rc-for-run-42"] } };
      },
      async close() {},
    };
    const lab = {
      startLab: async () => ({ env: { RGT_HOME: "/x" }, stop: async () => {} }),
      connectServer: async (e: Record<string, string>) => { env = e; return server; },
    };
    const { cases } = parseCases(JSON.stringify({
      id: "chain", prompt: "launch, wait, pull, tear down", replay: {
        box: { profile: "generic" }, server_env: { RGT_EVAL_K: "v" },
        steps: [
          { tool: "launch_queue", args: { host: "{box}" }, expect: { ok: true } },
          { tool: "run_status", args: { run_id: "{prev.run_id}" }, until: { fields: ['state == "done"'], timeout_s: 5, interval_ms: 100 }, expect: { ok: true } },
          { tool: "pull_verify", args: { host: "{box}", run_id: "{step1.run_id}", local_dir: "{tmp}/p" }, expect: { ok: true } },
          { tool: "request_teardown", args: { host: "{box}" }, expect: { code: "APPROVAL_REQUIRED", fields: ["approval.receipts contains {prev.receipt_id}"] } },
        ],
      },
    }));
    const res = await runReplays(cases, { lab, tmp: "/scratch" });
    expect(res).toEqual([{ id: "chain", failures: [] }]);
    expect(env).toEqual({ RGT_HOME: "/x", RGT_EVAL_K: "v" });
    expect(seen.map((s) => s.name)).toEqual(["launch_queue", "run_status", "run_status", "pull_verify", "request_teardown"]);
    expect(seen[3].args).toEqual({ host: "rgt-eval-0", run_id: "run-42", local_dir: "/scratch/p" });

    // the same chain fails when the teardown's evidence is not the receipt the pull produced
    const wrong = JSON.parse(JSON.stringify(cases));
    wrong[0].replay.steps[3].expect.fields = ["approval.receipts contains {step1.run_id}-other"];
    statusCalls = 0;
    const res2 = await runReplays(wrong, { lab, tmp: "/scratch" });
    expect(res2[0].failures[0]).toMatch(/step 4 request_teardown: approval.receipts contains run-42-other/);
  });
});

describe("fake listeners and jump routes in a replay", () => {
  it("the schema: banner/reply need text, a jump needs a listener, a jump to the box needs a box", () => {
    const mk = (replay: Record<string, unknown>) => JSON.stringify({ id: "l", prompt: "a port that is not sshd", replay: { steps: [{ tool: "remote_exec", expect: {} }], ...replay } });
    expect(parseCases(mk({ listener: { kind: "silent" } })).errors).toEqual([]);
    expect(parseCases(mk({ listener: { kind: "banner" } })).errors[0].message).toMatch(/need text/);
    expect(parseCases(mk({ listener: { kind: "closed", text: "x" } })).errors[0].message).toMatch(/need text/);
    expect(parseCases(mk({ jump: { target: "closed" } })).errors[0].message).toMatch(/declare one/);
    expect(parseCases(mk({ listener: { kind: "closed" }, jump: {} })).errors[0].message).toMatch(/needs the case's box/);
    expect(parseCases(mk({ listener: { kind: "hangup" }, jump: { target: "closed" } })).cases[0].replay!.jump).toEqual({ target: "closed" });
  });

  it("starts each case's listener and route as aliases, fills {listener}/{jump} in args and expectations, closes them after", async () => {
    const made: string[] = [];
    const closed: string[] = [];
    const jumps: string[][] = [];
    const seen: Record<string, unknown>[] = [];
    const labObj = {
      env: {},
      stop: async () => {},
      fakePort: async (alias: string, spec: { kind: string }) => { made.push(`${alias}:${spec.kind}`); return { alias, close: async () => { closed.push(alias); } }; },
      jumpAlias: (alias: string, via: string, target: string) => { jumps.push([alias, via, target]); },
    };
    const server = {
      async call(_name: string, args: Record<string, unknown>) {
        seen.push(args);
        return { ok: false, warnings: [], refused: { code: "UNREACHABLE", reason: `jump host ${String(args.host).replace("jump", "port")}: refused`, remedy: "r" } };
      },
      async close() {},
    };
    const lab = { startLab: async () => labObj, connectServer: async () => server };
    const { cases, errors } = parseCases([
      { id: "direct", prompt: "a silent port", replay: { listener: { kind: "silent" }, steps: [{ tool: "remote_exec", args: { host: "{listener}" }, expect: { code: "UNREACHABLE" } }] } },
      { id: "hop", prompt: "a refusing jump host", replay: { box: { gpus: 0 }, listener: { kind: "closed" }, jump: {},
        steps: [{ tool: "remote_exec", args: { host: "{jump}" }, expect: { code: "UNREACHABLE", fields: ["refused.reason matches ^jump host {listener}"] } }] } },
      { id: "hop-closed", prompt: "a hop to a closed target", replay: { listener: { kind: "hangup" }, jump: { target: "closed" },
        steps: [{ tool: "remote_exec", args: { host: "{jump}" }, expect: { fields: ["refused.reason contains rgt-eval-port-9"] } }] } },
    ].map((c) => JSON.stringify(c)).join("\n"));
    expect(errors).toEqual([]);
    const res = await runReplays(cases, { lab, tmp: "/scratch" });
    expect(res[0]).toEqual({ id: "direct", failures: [] });
    expect(res[1]).toEqual({ id: "hop", failures: [] });
    expect(res[2].failures[0]).toMatch(/rgt-eval-port-9/); // a wrong expectation still fails
    expect(seen.map((a) => a.host)).toEqual(["rgt-eval-port-0", "rgt-eval-jump-1", "rgt-eval-jump-2"]);
    expect(made).toEqual(["rgt-eval-port-0:silent", "rgt-eval-port-1:closed", "rgt-eval-port-2:hangup", "rgt-eval-dest-2:closed"]);
    expect(jumps).toEqual([["rgt-eval-jump-1", "rgt-eval-port-1", "rgt-eval-0"], ["rgt-eval-jump-2", "rgt-eval-port-2", "rgt-eval-dest-2"]]);
    expect(closed.sort()).toEqual(["rgt-eval-dest-2", "rgt-eval-port-0", "rgt-eval-port-1", "rgt-eval-port-2"]);
  });

  it("a lab that cannot start listeners fails only the cases that need one", async () => {
    const server = { async call() { return { ok: true, warnings: [] }; }, async close() {} };
    const lab = { startLab: async () => ({ env: {}, stop: async () => {} }), connectServer: async () => server };
    const { cases } = parseCases([
      { id: "needs", prompt: "a silent port", replay: { listener: { kind: "silent" }, steps: [{ tool: "remote_exec", expect: {} }] } },
      { id: "plain", prompt: "no listener here", replay: { steps: [{ tool: "check_staleness", expect: { ok: true } }] } },
    ].map((c) => JSON.stringify(c)).join("\n"));
    const res = await runReplays(cases, { lab, tmp: "/scratch" });
    expect(res[0].failures[0]).toMatch(/listener setup failed: this lab cannot start fake listeners/);
    expect(res[1]).toEqual({ id: "plain", failures: [] });
  });
});

describe("the provider-CLI tripwire", () => {
  it("plants failing stand-ins that record their argv", () => {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-trip-"));
    const log = plantTripwire(bin);
    expect(TRIPWIRE_CLIS).toContain("vastai");
    const r = spawnSync(path.join(bin, "vastai"), ["destroy", "instance", "7"], { encoding: "utf8" });
    expect(r.status).toBe(97);
    expect(r.stderr).toMatch(/never reach a provider CLI/);
    expect(fs.readFileSync(log, "utf8")).toBe("vastai destroy instance 7\n");
  });

  it("fails exactly the case during which a provider CLI ran", async () => {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-trip-"));
    const server = {
      async call(name: string) {
        if (name === "request_teardown") spawnSync(path.join(bin, "runpodctl"), ["remove", "pod", "p1"]);
        return { ok: true, warnings: [] };
      },
      async close() {},
    };
    const lab = { startLab: async () => ({ env: {}, localBin: bin, stop: async () => {} }), connectServer: async () => server };
    const { cases } = parseCases(
      [
        { id: "quiet", prompt: "probe only, nothing billed", replay: { steps: [{ tool: "probe_env", expect: { ok: true } }] } },
        { id: "loud", prompt: "a teardown that reached the CLI", replay: { steps: [{ tool: "request_teardown", expect: { ok: true } }] } },
        { id: "after", prompt: "a later case stays clean", replay: { steps: [{ tool: "probe_env", expect: { ok: true } }] } },
      ].map((c) => JSON.stringify(c)).join("\n"),
    );
    const res = await runReplays(cases, { lab, tmp: bin });
    expect(res.map((r) => [r.id, r.failures.length])).toEqual([["quiet", 0], ["loud", 1], ["after", 0]]);
    expect(res[1].failures[0]).toMatch(/provider CLI was run.*runpodctl remove pod p1/);
  });
});

afterEach(() => vi.restoreAllMocks());
