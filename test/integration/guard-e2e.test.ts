/**
 * The input guard end to end: the built server over stdio, a client that lists tools first, a sample of
 * every class of the generated corpus through BOTH remote_exec and launch_queue. The host does not exist
 * (x.invalid): a refusal proves the guard ran before any connection; harmless inputs get past the guard
 * and only then fail to connect.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";
import { negatives, positives, type GuardItem } from "../helpers/guardCorpus.js";
import { CREDS, DESTROYS, HARMLESS, SIBLING_DESTROYS } from "../helpers/redteam3Corpus.js";

let s: ServerConnection;
let home: string;
const HOST = "gpu.x.invalid";

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-guard-e2e-"));
  // the host's profile gives the protected data/durable dirs (AutoDL: /root/autodl-tmp, /root/autodl-fs)
  fs.writeFileSync(path.join(home, "registry.yaml"), `hosts:\n  ${HOST}:\n    profile: autodl\n`);
  s = await connectServer({ RGT_HOME: home, HOME: home });
  const tools = await s.client.listTools();
  expect(tools.tools.map((t) => t.name)).toEqual(expect.arrayContaining(["remote_exec", "launch_queue"]));
}, 60_000);

afterAll(async () => {
  await s?.close();
  fs.rmSync(home, { recursive: true, force: true });
});

function sample(items: GuardItem[], perClass: number): GuardItem[] {
  const by = new Map<string, GuardItem[]>();
  for (const it of items) by.set(it.cls, [...(by.get(it.cls) ?? []), it]);
  return [...by.values()].flatMap((xs) => Array.from({ length: Math.min(perClass, xs.length) }, (_, i) => xs[Math.floor((i * xs.length) / perClass)]!));
}

const call = (tool: string, it: GuardItem) =>
  tool === "remote_exec"
    ? s.call("remote_exec", { host: HOST, command: Object.entries(it.env ?? {}).map(([k, v]) => `export ${k}='${v}'; `).join("") + it.command, timeout_s: 5 })
    : s.call("launch_queue", { host: HOST, run_name: "guard-e2e", workdir: "/root/proj", cells: [{ name: "c1", command: it.command, ...(it.env ? { env: it.env } : {}) }] });

describe("guard end to end over stdio", () => {
  // scripts of a pushed tree need a push: covered at guard level (guard-inputs.test.ts)
  const P = sample(positives().filter((p) => p.cls !== "pushed-script"), 5);
  it(`refuses a sample of ${P.length} positives of every class through remote_exec and launch_queue, before any connection`, async () => {
    const missed: string[] = [];
    for (const it of P) {
      for (const tool of ["remote_exec", "launch_queue"]) {
        const r = await call(tool, it);
        if (r.refused?.code !== it.code) missed.push(`${tool} ${it.cls} ${JSON.stringify(it.command).slice(0, 100)} -> ${r.refused?.code ?? "ran"}: ${r.refused?.reason?.slice(0, 100)}`);
        else expect(JSON.stringify(r)).not.toMatch(/hf_[A-Za-z0-9]{30}/);
      }
    }
    console.log(`[guard-e2e] positives refused: ${P.length * 2 - missed.length}/${P.length * 2}`);
    expect(missed, missed.join("\n")).toEqual([]);
  }, 300_000);

  const N = sample(negatives(), 60).filter((_, i) => i % 3 === 0);
  it(`lets ${N.length} harmless look-alikes past the guard (they fail only at the unreachable host)`, async () => {
    const falses: string[] = [];
    for (const it of N) {
      for (const tool of ["remote_exec", "launch_queue"]) {
        if (it.cellOnly && tool === "remote_exec") continue;
        const r = await call(tool, it);
        if (["SECRET_INLINE", "DESTROY_UNAPPROVED", "BAD_INPUT"].includes(r.refused?.code)) falses.push(`${tool} ${JSON.stringify(it.command).slice(0, 100)} -> ${r.refused.code}: ${r.refused.reason.slice(0, 120)}`);
      }
    }
    console.log(`[guard-e2e] harmless refused by the guard: ${falses.length}/${N.length * 2}`);
    expect(falses, falses.join("\n")).toEqual([]);
  }, 300_000);

  // red-team set 3 (test/helpers/redteam3Corpus.ts): two of every class, and a spread of its harmless commands
  const byClass = (xs: [string, string][], code: string): GuardItem[] => sample(xs.map(([cls, command]) => ({ cls, command, code }) as GuardItem), 2);
  const R3 = [...byClass(DESTROYS, "DESTROY_UNAPPROVED"), ...byClass(CREDS, "SECRET_INLINE"), ...SIBLING_DESTROYS.filter((_, i) => i % 12 === 0).map((command) => ({ cls: "sibling", command, code: "DESTROY_UNAPPROVED" }) as GuardItem)];
  it(`red-team set 3: ${R3.length} attacks refused through both tools over stdio, ${Math.ceil(HARMLESS.length / 8)} harmless let past`, async () => {
    const missed: string[] = [];
    for (const it of R3) for (const tool of ["remote_exec", "launch_queue"]) { const r = await call(tool, it); if (r.refused?.code !== it.code) missed.push(`${tool} ${it.cls} ${JSON.stringify(it.command).slice(0, 100)} -> ${r.refused?.code ?? "ran"}`); }
    const falses: string[] = [];
    for (const command of HARMLESS.filter((_, i) => i % 8 === 0)) {
      for (const tool of ["remote_exec", "launch_queue"]) {
        const r = await call(tool, { cls: "negative", command, code: null } as unknown as GuardItem);
        if (["SECRET_INLINE", "DESTROY_UNAPPROVED", "BAD_INPUT"].includes(r.refused?.code)) falses.push(`${tool} ${JSON.stringify(command).slice(0, 100)} -> ${r.refused.code}`);
      }
    }
    expect({ missed, falses }).toEqual({ missed: [], falses: [] });
  }, 300_000);

  it("refuses harmful directories and shell-character names with BAD_INPUT before connecting", async () => {
    for (const d of ["/", "~", "/etc", "/usr"]) {
      const r = await s.call("push_code", { host: HOST, local_dir: home, remote_dir: d });
      expect(r.refused?.code, d).toBe("BAD_INPUT");
    }
    const r = await s.call("launch_queue", { host: HOST, run_name: "x;rm -rf /", workdir: "/root/p", cells: [{ name: "c", command: "true" }] });
    expect(r.refused?.code).toBe("BAD_INPUT");
    expect(r.refused?.remedy).toContain("never rewritten");
  });
});

describe("opaque remote_exec with a human to ask (elicitation)", () => {
  it("shows the exact command, runs it once on yes (it then meets the unreachable host), refuses on no; never asks about a readable destroy", async () => {
    const asked: string[] = [];
    let answer = true;
    const h = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-guard-elicit-"));
    const c = await connectServer({ RGT_HOME: h, HOME: h }, {
      elicitation: (p) => { asked.push(String(p.message)); return { action: "accept", content: { run_once: answer } }; },
    });
    try {
      await c.client.listTools();
      const cmd = "$(cat /tmp/which-tool) --version";
      const yes = await c.call("remote_exec", { host: HOST, command: cmd, timeout_s: 5 });
      expect(asked.length).toBe(1);
      expect(asked[0]).toContain(cmd);
      expect(yes.refused?.code).not.toBe("DESTROY_UNAPPROVED");
      answer = false;
      const no = await c.call("remote_exec", { host: HOST, command: cmd, timeout_s: 5 });
      expect(no.refused?.code).toBe("DESTROY_UNAPPROVED");
      const plain = await c.call("remote_exec", { host: HOST, command: "vastai destroy instance 1", timeout_s: 5 });
      expect(plain.refused?.code).toBe("DESTROY_UNAPPROVED");
      expect(asked.length).toBe(2);
    } finally {
      await c.close();
      fs.rmSync(h, { recursive: true, force: true });
    }
  }, 60_000);
});
