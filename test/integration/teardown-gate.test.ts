/**
 * The Iron Law gate through the real built server and real sshd boxes: no receipt, a stale receipt
 * (artifact changed on the box after the real pull), a live run, forged / pending / reused / expired /
 * other-host approval ids, `rgt approve` refused without a TTY and accepted on one (driven through
 * `script`), elicitation (wrong text, decline, the host name typed), IDLE_METER, `rgt status`.
 * The provider CLI is a stub on the server's PATH recording argv: nothing is called before the
 * approval, and the one approved destroy calls it with the exact argv.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";
import { packageRoot } from "../../src/common/config.js";

const MAIN = path.join(packageRoot(), "dist", "cli", "main.js");
const FAKE_VAST_KEY = "vastkey" + randomBytes(16).toString("hex");
const FAKE_LAMBDA_KEY = "secret_lambda_" + randomBytes(16).toString("hex");

let lab: Lab;
let s: ServerConnection;
let env: Record<string, string>;
let stubLog: string;
const results: unknown[] = [];
const servers: ServerConnection[] = [];

function stubCalls(): string[][] {
  if (!fs.existsSync(stubLog)) return [];
  return fs.readFileSync(stubLog, "utf8").split("\n").filter(Boolean).map((l) => l.split("\x1f"));
}
const destroys = () => stubCalls().filter((c) => c[1] === "destroy");

async function call(conn: ServerConnection, name: string, args: Record<string, unknown>) {
  const r = await conn.call(name, args);
  results.push(r);
  return r;
}
const td = (args: Record<string, unknown>, conn = s) => call(conn, "request_teardown", args);

async function pull(host: string, remote: string, expectList: string[]): Promise<string> {
  const local = fs.mkdtempSync(path.join(lab.root, `pull-${host}-`));
  const r = await call(s, "pull_verify", { host, remote_path: remote, local_dir: local, expect: expectList });
  expect(r.ok, JSON.stringify(r).slice(0, 600)).toBe(true);
  expect(r.receipt_id).toBeTruthy();
  return r.receipt_id;
}

/** `rgt approve <id>` on a real pseudo-terminal (util-linux script), typing `typed` at the prompt. */
function approveOnTty(id: string, typed: string, extraEnv: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn("script", ["-qec", `${process.execPath} ${MAIN} approve ${id}`, "/dev/null"], {
      env: { ...process.env, ...env, ...extraEnv, TERM: "dumb" }, stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let sent = false;
    const timer = setTimeout(() => { p.kill("SIGKILL"); reject(new Error(`approve timed out: ${out}`)); }, 20_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (!sent && out.includes("Type the host name")) { sent = true; p.stdin.write(`${typed}\r`); }
    };
    p.stdout.on("data", onData);
    p.stderr.on("data", onData);
    p.on("exit", (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

beforeAll(async () => {
  lab = await startLab([{ name: "v1", profile: "vastai", gpus: 1 }, { name: "v2", profile: "vastai", gpus: 1 }, { name: "ad1", profile: "autodl", gpus: 1 }]);
  stubLog = path.join(lab.root, "vastai-calls.log");
  fs.writeFileSync(path.join(lab.localBin, "vastai"),
    `#!/bin/bash\n{ printf '%s' vastai; for a in "$@"; do printf '\\x1f%s' "$a"; done; printf '\\n'; } >> ${stubLog}\n` +
    `if [ "$1" = show ]; then printf '7\\n1110\\n'; exit 0; fi\necho "destroying instance $3."\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(lab.env.RGT_HOME!, "registry.yaml"), [
    "hosts:",
    "  v1: { profile: vastai, instance_id: '111', price_per_hour: 0.5 }",
    "  v2: { profile: vastai, instance_id: '222', price_per_hour: 0.8 }",
    "  ad1: { profile: autodl, instance_id: 'ad-9', price_per_hour: 2.1, currency: CNY }",
    "",
  ].join("\n"));
  env = { ...lab.env, VAST_API_KEY: FAKE_VAST_KEY, LAMBDA_API_KEY: FAKE_LAMBDA_KEY };
  for (const b of ["v1", "v2"]) {
    await lab.boxes[b].writeFile("/workspace/out/best.bin", `weights of ${b} ${randomBytes(32).toString("hex")}`);
    await lab.boxes[b].writeFile("/workspace/out/log.txt", "epoch 3 done\n");
  }
  await lab.boxes.ad1.writeFile("/root/autodl-tmp/out/best.bin", `weights ${randomBytes(32).toString("hex")}`);
  s = await connectServer(env);
  servers.push(s);
}, 180_000);

afterAll(async () => {
  for (const c of servers) await c.close().catch(() => {});
  await lab?.stop();
});

describe("teardown gate", () => {
  let v1Receipt = "";
  let A1 = "";

  it("no receipt → UNVERIFIED_ARTIFACTS, nothing called", async () => {
    const r = await td({ host: "v1" });
    expect(r.refused.code).toBe("UNVERIFIED_ARTIFACTS");
    expect(r.refused.remedy).toContain("pull_verify");
    expect(stubCalls()).toEqual([]);
  });

  it("an unknown action is BAD_INPUT naming the field", async () => {
    const r = await td({ host: "v1", action: "nuke" });
    expect(r.refused.code).toBe("BAD_INPUT");
    expect(r.refused.reason).toContain("action");
  });

  it("nothing of ours on the box + explicit action → to the human with NO_EVIDENCE; that approval dies once evidence appears", async () => {
    const r = await td({ host: "v1", action: "destroy" });
    expect(r.refused.code).toBe("APPROVAL_REQUIRED");
    expect(r.warnings.map((w: { code: string }) => w.code)).toContain("NO_EVIDENCE");
    const early = r.approval_id as string;
    v1Receipt = await pull("v1", "/workspace/out", ["best.bin"]);
    const again = await td({ host: "v1", approval_id: early });
    expect(again.refused.code).toBe("APPROVAL_INVALID");
    expect(again.refused.reason).toMatch(/receipts/);
    expect(stubCalls()).toEqual([]);
  });

  it("a stale receipt (artifact changed on the box after the pull) → UNVERIFIED_ARTIFACTS; a new real pull clears it", async () => {
    await lab.boxes.v1.writeFile("/workspace/out/best.bin", `newer weights ${randomBytes(8).toString("hex")}`);
    const r = await td({ host: "v1" });
    expect(r.refused.code).toBe("UNVERIFIED_ARTIFACTS");
    expect(r.refused.reason).toMatch(/changed on the box/);
    expect(r.refused.reason).toContain(v1Receipt);
    v1Receipt = await pull("v1", "/workspace/out", ["best.bin"]);
    expect(stubCalls()).toEqual([]);
  });

  it("with evidence and no approval → APPROVAL_REQUIRED with id, summary and how_to_approve", async () => {
    const r = await td({ host: "v1" });
    expect(r.refused.code).toBe("APPROVAL_REQUIRED");
    A1 = r.approval_id;
    expect(A1).toMatch(/^apv_[A-Za-z0-9_-]{22}$/);
    expect(r.how_to_approve).toBe(`rgt approve ${A1}`);
    expect(r.approval).toMatchObject({ host: "v1", action: "destroy", irreversible: true, instance_id: "111", receipts: [v1Receipt] });
    expect(r.approval.will_do).toBe("vastai destroy instance 111");
    expect(JSON.stringify(r).length).toBeLessThan(2600);
    // the id is not stored in clear
    expect(fs.readFileSync(path.join(env.RGT_HOME, "approvals.json"), "utf8")).not.toContain(A1.slice(4));
    expect(stubCalls()).toEqual([]);
  });

  it("forged and malformed ids → APPROVAL_INVALID; a pending id → APPROVAL_REQUIRED", async () => {
    for (const id of [`apv_${randomBytes(16).toString("base64url")}`, "apv_x", "'; vastai destroy instance 111", A1.slice(0, -1) + (A1.endsWith("A") ? "B" : "A")]) {
      const r = await td({ host: "v1", approval_id: id });
      expect(r.refused.code, id).toBe("APPROVAL_INVALID");
    }
    const pending = await td({ host: "v1", approval_id: A1 });
    expect(pending.refused.code).toBe("APPROVAL_REQUIRED");
    expect(pending.approval_id).toBe(A1);
    expect(stubCalls()).toEqual([]);
  });

  it("`rgt approve` without a TTY is refused and approves nothing", async () => {
    const r = spawnSync(process.execPath, [MAIN, "approve", A1], { env: { ...process.env, ...env }, input: "v1\n", encoding: "utf8", timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/interactive terminal/);
    const still = await td({ host: "v1", approval_id: A1 });
    expect(still.refused.code).toBe("APPROVAL_REQUIRED");
  });

  it("`rgt approve` on a TTY: wrong text approves nothing; the host name approves", async () => {
    const wrong = await approveOnTty(A1, "yes");
    expect(wrong.code).toBe(1);
    expect(wrong.out).toContain("Not approved");
    expect((await td({ host: "v1", approval_id: A1 })).refused.code).toBe("APPROVAL_REQUIRED");
    const ok = await approveOnTty(A1, "v1");
    expect(ok.out).toContain("v1");
    expect(ok.out).toContain("IRREVERSIBLE");
    expect(ok.out).toContain(v1Receipt);
    expect(ok.out).toMatch(/cost so far\s+\d+\.\d\d USD/);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain("Approved");
  });

  it("an approval for v1 presented for v2 → APPROVAL_INVALID (bound to the host)", async () => {
    await pull("v2", "/workspace/out", ["best.bin"]);
    const r = await td({ host: "v2", approval_id: A1 });
    expect(r.refused.code).toBe("APPROVAL_INVALID");
    expect(r.refused.reason).toContain("host");
    expect(stubCalls()).toEqual([]);
  });

  it("the approved destroy calls the provider CLI with the exact argv, once; reuse → APPROVAL_INVALID", async () => {
    expect(stubCalls()).toEqual([]); // nothing was called before the approval was used
    const r = await td({ host: "v1", approval_id: A1 });
    expect(r.ok).toBe(true);
    expect(r.status).toBe("done");
    expect(r.action).toBe("destroy");
    expect(r.irreversible).toBe(true);
    expect(r.evidence.receipt_ids).toEqual([v1Receipt]);
    expect(r.recheck.gone).toBe(true);
    expect(destroys()).toEqual([["vastai", "destroy", "instance", "111"]]);
    expect(stubCalls()[1]).toEqual(["vastai", "show", "instances", "-q"]);
    const again = await td({ host: "v1", approval_id: A1 });
    expect(again.refused.code).toBe("APPROVAL_INVALID");
    expect(again.refused.reason).toMatch(/already used/);
    expect(destroys()).toHaveLength(1);
  });

  it("expired approvals are refused by `rgt approve` and by the gate", async () => {
    const short = await connectServer({ ...env, RGT_APPROVAL_TTL_S: "5" });
    servers.push(short);
    const a = await td({ host: "v2" }, short);
    expect(a.refused.code).toBe("APPROVAL_REQUIRED");
    await new Promise((r) => setTimeout(r, Date.parse(a.approval.expires_at) - Date.now() + 300));
    const late = await approveOnTty(a.approval_id, "v2");
    expect(late.code).toBe(1);
    expect(late.out).toMatch(/expired/);
    const r = await td({ host: "v2", approval_id: a.approval_id }, short);
    expect(r.refused.code).toBe("APPROVAL_INVALID");
    expect(r.refused.reason).toMatch(/expired/);
    // approved in time, used too late
    const b = await td({ host: "v2" }, short);
    const ok = await approveOnTty(b.approval_id, "v2");
    expect(ok.code, ok.out).toBe(0);
    await new Promise((res) => setTimeout(res, Date.parse(b.approval.expires_at) - Date.now() + 300));
    const used = await td({ host: "v2", approval_id: b.approval_id }, short);
    expect(used.refused.code).toBe("APPROVAL_INVALID");
    expect(destroys()).toHaveLength(1);
  });

  it("a live run → RUN_ACTIVE; once stopped, its roster without a receipt → UNVERIFIED_ARTIFACTS", async () => {
    const l = await call(s, "launch_queue", { host: "v2", run_name: "td-live", workdir: "/workspace", cells: [{ name: "c0", command: "sleep 120" }], expect: ["best.bin"] });
    expect(l.ok, JSON.stringify(l).slice(0, 500)).toBe(true);
    const r = await td({ host: "v2" });
    expect(r.refused.code).toBe("RUN_ACTIVE");
    expect(r.refused.reason).toContain(l.run_id);
    const st = await call(s, "stop_run", { run_id: l.run_id });
    expect(st.ok, JSON.stringify(st).slice(0, 400)).toBe(true);
    const after = await td({ host: "v2" });
    expect(after.refused.code).toBe("UNVERIFIED_ARTIFACTS");
    expect(after.refused.reason).toContain(l.run_id);
    expect(destroys()).toHaveLength(1);
  });

  it("elicitation: schema has no required field; wrong text or decline → APPROVAL_DENIED; the host name → manual steps (console-only platform)", async () => {
    await pull("ad1", "/root/autodl-tmp/out", ["best.bin"]);
    let answer: { action: "accept" | "decline" | "cancel"; content?: Record<string, unknown> } = { action: "accept", content: { confirm_host: "yes" } };
    const asked: { message: string; requestedSchema: Record<string, unknown> }[] = [];
    const e = await connectServer(env, { elicitation: (p) => { asked.push(p as never); return answer; } });
    servers.push(e);
    const wrong = await td({ host: "ad1" }, e);
    expect(wrong.refused.code).toBe("APPROVAL_DENIED");
    expect(asked[0].requestedSchema.required).toBeUndefined();
    expect(Object.values(asked[0].requestedSchema.properties as Record<string, { type: string }>).map((p) => p.type)).toEqual(["string"]);
    expect(asked[0].message).toContain("ad1");
    answer = { action: "decline" };
    expect((await td({ host: "ad1" }, e)).refused.code).toBe("APPROVAL_DENIED");
    answer = { action: "cancel" };
    const cancelled = await td({ host: "ad1" }, e);
    expect(cancelled.refused.code).toBe("APPROVAL_REQUIRED");
    answer = { action: "accept", content: { confirm_host: "ad1" } };
    const ok = await td({ host: "ad1" }, e);
    expect(ok.ok).toBe(true);
    expect(ok.status).toBe("manual_steps");
    expect(ok.steps.length).toBeGreaterThan(0);
    expect(destroys()).toHaveLength(1);
  });

  it("IDLE_METER with the cost so far rides on results for an idle host", async () => {
    const idle = await connectServer({ ...env, RGT_IDLE_METER_S: "0" });
    servers.push(idle);
    const r = await call(idle, "remote_exec", { host: "v2", command: "true" });
    const w = (r.warnings as { code: string; message: string }[]).find((x) => x.code === "IDLE_METER");
    expect(w, JSON.stringify(r.warnings)).toBeTruthy();
    expect(w!.message).toMatch(/cost so far \d+\.\d\d USD \(at 0\.8\/h\)/);
  });

  it("`rgt status` prints hosts, meter, teardown, receipts", () => {
    const r = spawnSync(process.execPath, [MAIN, "status"], { env: { ...process.env, ...env }, encoding: "utf8", timeout: 20_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/HOSTS[\s\S]*v1\s+vastai\s+111/);
    expect(r.stdout).toMatch(/done \(destroy\)/);
    expect(r.stdout).toContain(v1Receipt);
    expect(r.stdout).toMatch(/RUNS[\s\S]*td-live/);
  });

  it("summary: exactly one destroy, with the exact argv; no credential value anywhere", () => {
    expect(destroys()).toEqual([["vastai", "destroy", "instance", "111"]]);
    const blob = JSON.stringify(results) + servers.map((c) => c.stderr()).join("\n");
    for (const k of [FAKE_VAST_KEY, FAKE_LAMBDA_KEY]) expect(blob).not.toContain(k);
    const home = env.RGT_HOME;
    for (const f of fs.readdirSync(home, { recursive: true }) as string[]) {
      const p = path.join(home, f);
      if (fs.statSync(p).isFile()) for (const k of [FAKE_VAST_KEY, FAKE_LAMBDA_KEY]) expect(fs.readFileSync(p, "latin1"), p).not.toContain(k);
    }
    console.log(`[teardown] destroys performed: ${destroys().length} (the approved one); argv ${JSON.stringify(destroys()[0])}`);
  });
});
