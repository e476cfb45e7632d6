/**
 * The lifecycle `rgt demo` walks an agent's way, through the real built server over stdio:
 *
 *   probe_env → push_code → push_secret → launch_queue (3 cells) → run_status until done →
 *   request_teardown (refused: nothing pulled yet) → pull_verify → request_teardown (a human must approve)
 *
 * It never approves anything itself. Every step checks what the tool said and stops the demo with a
 * clear failure (DemoFailure) when a tool did not do what the step needs; nothing is faked.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { connectServer, type ServerConnection } from "../lab/client.js";
import { writeProject } from "./project.js";
import { Transcript } from "./transcript.js";

export class DemoFailure extends Error {}

export interface DemoTarget {
  /** ssh alias of the box */
  host: string;
  /** environment for the server process (RGT_SSH_CONFIG, RGT_HOME, HOME, PATH, the demo key variable) */
  env: Record<string, string>;
  /** a local scratch directory the demo owns (project and pulled results go here) */
  localRoot: string;
  /** directory on the box for the code */
  workdir: string;
  /** the profile launch_queue uses instead of the detected one (the embedded box shares this machine's filesystem) */
  launchProfile?: string;
  /** file on the box the API key goes to */
  keyPath: string;
  /** name of the environment variable (in env) holding the demo's made-up API key */
  keyEnv: string;
  /** the key's value, only to prove it never comes back in a tool result */
  keyValue: string;
  /** whether the box's python3 imports torch, when the caller knows; else the probe's answer is used */
  torch?: boolean;
}

export interface DemoOutcome {
  calls: number;
  bytes: number;
  run_id: string;
  receipt_id: string;
  approval_id: string;
  status_polls: number;
  elapsed_s: number;
}

function fail(msg: string, r?: Record<string, any>): never {
  const why = r?.refused ? ` — refused ${r.refused.code}: ${r.refused.reason}` : r ? ` — ${JSON.stringify(r).slice(0, 400)}` : "";
  throw new DemoFailure(`${msg}${why}`);
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}


const LRS = ["0.02", "0.05", "0.1"];

export async function runLifecycle(target: DemoTarget, out: Transcript, opts: { statusTimeoutMs?: number } = {}): Promise<DemoOutcome> {
  const { host } = target;
  const projectDir = path.join(target.localRoot, "demo-project");
  const pulledDir = path.join(target.localRoot, "pulled");
  writeProject(projectDir);
  fs.mkdirSync(pulledDir, { recursive: true });

  const conn: ServerConnection = await connectServer(target.env, { timeoutMs: 120_000 });
  const texts: string[] = [];
  const call = async (tool: string, args: Record<string, unknown>, label: string, timeoutMs?: number) => {
    const r = await out.call(conn, tool, args, label, timeoutMs);
    texts.push(JSON.stringify(r));
    return r;
  };
  try {
    // 1. probe
    const p = await call("probe_env", { host }, host);
    if (!p.ok) fail("probe_env failed", p);
    const gpus: any[] = p.gpus ?? [];
    out.detail(`platform: ${p.profile?.name ?? "?"} (detected by ${p.profile?.detected_by ?? "?"})`);
    out.detail(`${gpus.length ? `${gpus.length} GPU(s): ${p.gpu_name ?? gpus[0].name}` : "no GPU (CPU only)"}; python ${p.python?.version ?? "missing"}` +
      `${p.python?.torch?.version ? `, torch ${p.python.torch.version}` : ", no torch (pure-Python stand-in)"}; tmux ${p.tools?.tmux ? "yes" : "no"}, rsync ${p.tools?.rsync ? "yes" : "no"}`);
    for (const s of (p.surface_to_user ?? []).slice(0, 2)) out.detail(`tell the user: ${String(s).slice(0, 150)}`);
    const torch = target.torch ?? !!p.python?.torch?.version;
    const weights = torch ? "best.pth" : "best.json";

    // 2. code
    const pc = await call("push_code", { host, local_dir: projectDir, remote_dir: target.workdir }, `→ ${target.workdir}`);
    if (!pc.ok) fail("push_code failed", pc);
    out.detail(`over ${pc.method}: ${pc.files_sent} file(s) sent (${pc.bytes_total} bytes of code); a re-push sends only what changed`);

    // 3. the secret: named by its environment variable; the value goes over stdin only
    const ps = await call("push_secret", { host, source: { env: target.keyEnv }, remote_path: target.keyPath }, `$${target.keyEnv} → ${target.keyPath}`);
    if (!ps.ok) fail("push_secret failed", ps);
    out.detail(`${ps.bytes} bytes into a 0600 file; the value is in no command line and no result`);

    // 4. launch
    const cells = LRS.map((lr, i) => ({ name: `lr${i}`, command: "python3 train.py", env: { LR: lr, DEMO_KEY_FILE: target.keyPath } }));
    const l = await call("launch_queue", { host, run_name: "demo-sweep", workdir: target.workdir, ...(target.launchProfile ? { profile: target.launchProfile } : {}), cells, expect: [weights, "metrics.json"] }, "3 cells (lr 0.02 / 0.05 / 0.1)");
    if (!l.ok) fail("launch_queue failed", l);
    const lanesText = (l.placement ?? []).map((x: any) => `${x.cell}→${x.gpu_indices?.length ? `gpu ${x.gpu_indices.join(",")}` : "cpu"}`).join(", ");
    out.detail(`run ${l.run_id}: detached in ${l.session ?? "the background"}; ${lanesText}`);
    const runId: string = l.run_id;

    // 5. patrol: one run_status that holds its answer (wait_s) until the sweep is no longer running,
    //    instead of a polling loop of calls; repeated only if the sweep outlasts one wait
    const launchedAt = Date.now();
    const limitMs = opts.statusTimeoutMs ?? 90_000;
    let polls = 0;
    let st: Record<string, any> = {};
    for (;;) {
      polls++;
      const waitS = Math.max(1, Math.min(60, Math.round((limitMs - (Date.now() - launchedAt)) / 1000)));
      st = await call("run_status", { run_id: runId, wait_s: waitS }, runId);
      if (st.ok === false && st.refused) fail("run_status failed", st);
      const cellsLine = (st.cells ?? []).map((c: any) => `${c.name} ${c.state}${c.progress?.step !== undefined ? ` ${c.progress.step}/${c.progress.total_steps ?? "?"}` : ""}`).join(", ");
      out.detail(`state ${st.state}: ${cellsLine}`);
      if (st.state !== "running") break;
      if (Date.now() - launchedAt > limitMs) fail(`the run did not finish within ${Math.round(limitMs / 1000)} s`, st);
    }
    const doneCells = (st.cells ?? []).filter((c: any) => c.state === "done").length;
    if (st.state !== "done" || doneCells !== cells.length) fail(`the run ended ${st.state} with ${doneCells}/${cells.length} cells done`, st);
    out.detail(`${doneCells}/${cells.length} cells done`);

    // 6. the gate, before any pull: must refuse
    const t1 = await call("request_teardown", { host }, "(before the pull)");
    if (t1.refused?.code !== "UNVERIFIED_ARTIFACTS") fail("expected the teardown gate to refuse UNVERIFIED_ARTIFACTS before the pull", t1);
    out.detail(`refused UNVERIFIED_ARTIFACTS: ${clip(String(t1.refused.reason), 150)}`);

    // 7. pull and verify
    const pv = await call("pull_verify", { host, run_id: runId, local_dir: pulledDir }, `${runId} → ./pulled`);
    if (!pv.ok || !pv.receipt_id) fail("pull_verify failed", pv);
    const files: any[] = pv.files ?? [];
    const loaded = files.filter((f) => f.load_check && (f.load_check === "ok" || f.load_check?.ok === true)).length;
    out.detail(`receipt ${pv.receipt_id}: ${files.length || pv.files_total} file(s) hashed on both ends, all match: ${files.every((f) => f.match)}` +
      `${loaded ? `; ${loaded} checkpoint(s) load-checked` : ""}`);

    // 8. the gate again: now it wants a human
    const t2 = await call("request_teardown", { host }, "(after the pull)");
    if (t2.refused?.code !== "APPROVAL_REQUIRED" || !t2.approval_id) fail("expected the teardown gate to ask for approval after the pull", t2);
    out.detail(`refused APPROVAL_REQUIRED: approval ${t2.approval_id}`);
    if (t2.approval?.will_do) out.detail(`would run, once approved: ${t2.approval.will_do}`);
    out.detail(`a human approves with: ${t2.how_to_approve ?? `rgt approve ${t2.approval_id}`} — the demo stops here and approves nothing`);
    out.detail("(the approval lives in this demo's own state dir, which is removed with the box)");

    const leaked = texts.filter((t) => t.includes(target.keyValue)).length;
    if (leaked) fail(`the demo API key came back in ${leaked} tool result(s)`);

    return {
      calls: out.calls.length,
      bytes: out.totalBytes,
      run_id: runId,
      receipt_id: pv.receipt_id,
      approval_id: t2.approval_id,
      status_polls: polls,
      elapsed_s: Number(out.elapsedS()),
    };
  } finally {
    await conn.close();
  }
}
