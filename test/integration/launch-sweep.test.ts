/**
 * launch_queue / run_status / stop_run through the real server against real sshd boxes and real tmux:
 * a 6-cell sweep of a real torch training script over two 2-GPU boxes (4 lanes), roster copied to the
 * durable dir and checked, relaunch = no-op, a live run is never started twice, stop_run kills exactly
 * the run (a look-alike tmux session survives), busy GPUs are skipped, and inputs that must be refused are.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer } from "../../src/lab/client.js";

type R = Record<string, any>;
let lab: Lab;
let srv: Awaited<ReturnType<typeof connectServer>>;
const TRAIN = fs.readFileSync(path.join(__dirname, "..", "fixtures", "train_ckpt.py"), "utf8");
const WORKDIR = "/root/proj";

async function until(what: string, fn: () => Promise<R>, ok: (r: R) => boolean, timeoutMs = 120_000): Promise<R> {
  const t0 = Date.now();
  let last: R = {};
  while (Date.now() - t0 < timeoutMs) {
    last = await fn();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last).slice(0, 1500)}`);
}

beforeAll(async () => {
  lab = await startLab([
    { name: "sw-a", gpus: 2, mounts: [{ path: "/mnt/durable", size: "256m" }] },
    { name: "sw-b", gpus: 2, mounts: [{ path: "/mnt/durable", size: "256m" }] },
    { name: "sw-busy", gpus: 2, busyGpus: [0] },
  ]);
  for (const b of Object.values(lab.boxes)) {
    await b.writeFile(`${WORKDIR}/train_ckpt.py`, TRAIN);
    await b.writeFile(`${WORKDIR}/crlf.sh`, "echo hi\r\necho there\r\n");
  }
  srv = await connectServer(lab.env);
});
afterAll(async () => { await srv?.close(); await lab?.stop(); });

describe("launch_queue sweep over two 2-GPU boxes", () => {
  const cells = Array.from({ length: 6 }, (_, i) => ({
    name: `lr${i}`,
    command: "python3 train_ckpt.py --steps 6 --sleep 0.05 --ckpt-every 3",
    env: { LR: String(0.01 * (i + 1)) },
  }));
  const launch = () => srv.call("launch_queue", {
    hosts: ["sw-a", "sw-b"], run_name: "sweep-1", workdir: WORKDIR, cells, expect: ["best.pth", "metrics.json"], durable_dir: "/mnt/durable",
  });

  it("places 6 cells on all 4 GPU lanes, returns within seconds, and every cell ends done with its roster in the durable dir", async () => {
    const t0 = Date.now();
    const r = (await launch()) as R;
    const took = Date.now() - t0;
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(took).toBeLessThan(10_000);
    expect(r.run_id).toBe("sweep-1");
    expect(r.started.sort()).toEqual(cells.map((c) => c.name).sort());
    expect(r.placement).toHaveLength(6);
    const lanes = new Set(r.placement.map((p: R) => `${p.host}:${p.gpu_indices.join(",")}`));
    expect([...lanes].sort()).toEqual(["sw-a:0", "sw-a:1", "sw-b:0", "sw-b:1"]);
    expect(typeof r.first_log_line).toBe("string");
    expect(r.session).toBe("rgt-sweep-1");

    const done = await until("sweep done", () => srv.call("run_status", { run_id: "sweep-1" }), (s) => s.state !== "running");
    expect(done.state, JSON.stringify(done)).toBe("done");
    expect(done.cells.map((c: R) => c.state)).toEqual(Array(6).fill("done"));
    expect(done.cells.every((c: R) => c.exit_code === 0)).toBe(true);
    expect(done.cells[0].progress).toMatchObject({ step: 6, total_steps: 6 });
    expect(done.next_action).toMatch(/pull_verify/);
    expect(Buffer.byteLength(JSON.stringify(done))).toBeLessThanOrEqual(2500);

    for (const p of r.placement as R[]) {
      const box = lab.boxes[p.host];
      const ls = await box.exec(`cd /mnt/durable/rgt/sweep-1/${p.cell} && sha256sum best.pth metrics.json && cat metrics.json`);
      expect(ls.code, ls.stderr).toBe(0);
      const src = await box.exec(`cd ${WORKDIR}/rgt-out/sweep-1/${p.cell} && sha256sum best.pth metrics.json`);
      expect(ls.stdout.split("\n").slice(0, 2).join("\n")).toBe(src.stdout.trim());
      // the cell saw only its own lane's GPU
      const log = await box.exec(`cat ~/.rgt/runs/sweep-1/cells/${p.cell}/log`);
      expect(log.stdout).toContain(`cuda_visible=${p.gpu_indices.join(",")}`);
      expect(log.stdout).toMatch(/\[rgt\] .*done: 2 artifact\(s\) verified in \/mnt\/durable\/rgt\/sweep-1\//);
    }
  });

  it("relaunching the same run_name starts nothing", async () => {
    const before = await lab.boxes["sw-a"].exec("ls ~/.rgt/runs/sweep-1/lanes | wc -l");
    const r = (await launch()) as R;
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.started).toEqual([]);
    expect(r.skipped_done.sort()).toEqual(cells.map((c) => c.name).sort());
    const after = await lab.boxes["sw-a"].exec("ls ~/.rgt/runs/sweep-1/lanes | wc -l");
    expect(after.stdout).toBe(before.stdout);
  });
});

describe("live runs", () => {
  it("never starts a second copy of a live run, and stop_run kills exactly its process groups", async () => {
    const box = lab.boxes["sw-a"];
    // an unrelated session whose name looks like ours
    await box.exec("tmux new-session -d -s rgt-live-1x 'sleep 600'");
    const args = { host: "sw-a", run_name: "live-1", workdir: WORKDIR, cells: [{ name: "slow", command: "python3 train_ckpt.py --steps 500 --sleep 0.2" }] };
    const r1 = (await srv.call("launch_queue", args)) as R;
    expect(r1.ok, JSON.stringify(r1)).toBe(true);
    expect(r1.started).toEqual(["slow"]);
    const r2 = (await srv.call("launch_queue", args)) as R;
    expect(r2.ok, JSON.stringify(r2)).toBe(true);
    expect(r2.started).toEqual([]);
    expect(r2.skipped_live).toEqual(["slow"]);
    const procs = await box.exec("pgrep -fc 'train_ckpt[.]py --steps 500' || true");
    expect(procs.stdout.trim()).toBe("1");

    // a changed command for the live cell is refused rather than written under it
    const r3 = (await srv.call("launch_queue", { ...args, cells: [{ name: "slow", command: "python3 train_ckpt.py --steps 7" }] })) as R;
    expect(r3.ok).toBe(false);
    expect(r3.refused.code).toBe("LIVE_SCRIPT_MUTATION");

    await until("running", () => srv.call("run_status", { run_id: "live-1" }), (s) => s.cells?.[0]?.state === "running");
    const pgid = (await box.exec("cat ~/.rgt/runs/live-1/cells/slow/pgid")).stdout.trim();
    const st = (await srv.call("stop_run", { run_id: "live-1" })) as R;
    expect(st.ok, JSON.stringify(st)).toBe(true);
    expect(st.stopped).toEqual(["slow"]);
    expect(st.still_alive).toEqual([]);
    expect(st.gpu_memory_freed).toBe(true);
    const left = await box.exec(`ps -o pid= -g ${pgid} || true`);
    expect(left.stdout.trim()).toBe("");
    expect((await box.exec("tmux has-session -t =rgt-live-1x && echo alive")).stdout).toContain("alive");
    // files kept
    expect((await box.exec("test -s ~/.rgt/runs/live-1/cells/slow/log && echo kept")).stdout).toContain("kept");
    const s = (await srv.call("run_status", { run_id: "live-1" })) as R;
    expect(s.state).toBe("failed");
    expect(s.cells[0].state).toBe("stopped");
    expect(s.next_action).toMatch(/stop_run/);
    await box.exec("tmux kill-session -t =rgt-live-1x");
  });

  it("skips a GPU that already holds another process's memory", async () => {
    const r = (await srv.call("launch_queue", {
      host: "sw-busy", run_name: "busy-1", workdir: WORKDIR, cells: [{ name: "a", command: "echo ok" }, { name: "b", command: "echo ok" }],
    })) as R;
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.placement.map((p: R) => p.gpu_indices)).toEqual([[1], [1]]);
    expect(r.warnings.map((w: R) => w.code)).toContain("GPU_BUSY");
    const s = await until("busy done", () => srv.call("run_status", { run_id: "busy-1" }), (x) => x.state !== "running", 30_000);
    expect(s.state).toBe("done");
  });
});

describe("refusals lose nothing and touch no box", () => {
  it("refuses a credential in a command or env value (SECRET_INLINE)", async () => {
    const token = "hf_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
    const r = (await srv.call("launch_queue", { host: "sw-a", run_name: "sec", workdir: WORKDIR, cells: [{ name: "a", command: "echo hi", env: { HF_TOKEN: token } }] })) as R;
    expect(r.ok).toBe(false);
    expect(r.refused.code).toBe("SECRET_INLINE");
    expect(JSON.stringify(r)).not.toContain(token);
    const r2 = (await srv.call("launch_queue", { host: "sw-a", run_name: "sec", workdir: WORKDIR, cells: [{ name: "a", command: `HF_TOKEN=${token} python3 x.py` }] })) as R;
    expect(r2.refused.code).toBe("SECRET_INLINE");
    expect((await lab.boxes["sw-a"].exec("test -e ~/.rgt/runs/sec && echo exists || echo none")).stdout).toContain("none");
  });

  it("refuses CRLF in a command and in a script the command runs (CRLF_SCRIPT)", async () => {
    const r = (await srv.call("launch_queue", { host: "sw-a", run_name: "crlf", workdir: WORKDIR, cells: [{ name: "a", command: "echo hi\r\necho x" }] })) as R;
    expect(r.refused.code).toBe("CRLF_SCRIPT");
    const r2 = (await srv.call("launch_queue", { host: "sw-a", run_name: "crlf", workdir: WORKDIR, cells: [{ name: "a", command: "bash crlf.sh" }] })) as R;
    expect(r2.ok).toBe(false);
    expect(r2.refused.code).toBe("CRLF_SCRIPT");
    expect(r2.refused.reason).toContain("crlf.sh");
  });

  it("names the bad field (BAD_INPUT)", async () => {
    const dup = (await srv.call("launch_queue", { host: "sw-a", run_name: "bad", workdir: WORKDIR, cells: [{ name: "a", command: "x" }, { name: "a", command: "y" }] })) as R;
    expect(dup.refused.code).toBe("BAD_INPUT");
    expect(dup.refused.reason).toContain("cells[1].name");
    const rel = (await srv.call("launch_queue", { host: "sw-a", run_name: "bad", workdir: "proj", cells: [{ name: "a", command: "x" }] })) as R;
    expect(rel.refused.reason).toContain("workdir");
    const missing = (await srv.call("launch_queue", { host: "sw-a", run_name: "bad", workdir: "/root/nope", cells: [{ name: "a", command: "x" }] })) as R;
    expect(missing.refused.code).toBe("BAD_INPUT");
    expect(missing.refused.reason).toContain("workdir");
    const exp = (await srv.call("launch_queue", { host: "sw-a", run_name: "bad", workdir: WORKDIR, expect: ["../etc/passwd"], cells: [{ name: "a", command: "x" }] })) as R;
    expect(exp.refused.reason).toContain("expect[0]");
    const nohost = (await srv.call("launch_queue", { run_name: "bad", workdir: WORKDIR, cells: [{ name: "a", command: "x" }] })) as R;
    expect(nohost.refused.reason).toContain("host");
    const st = (await srv.call("stop_run", { run_id: "no-such-run" })) as R;
    expect(st.refused.code).toBe("NOT_FOUND");
  });
});
