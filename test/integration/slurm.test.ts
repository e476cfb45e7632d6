/**
 * The Slurm backend against a real single-node Slurm (slurmctld + slurmd + munged from Debian's
 * slurm-wlm/munge), started by this file inside a lab box's own namespace, reached over real ssh.
 * Needs root; fails (never skips) without it.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startLab, type Lab, type Box } from "../../src/lab/box.js";
import { connectServer } from "../../src/lab/client.js";
import { startSlurm, type SlurmCluster } from "../../src/lab/slurm.js";
import { SshRemote } from "../../src/remote/pool.js";
import { Ledger } from "../../src/ledger/store.js";
import { slurmBackend, mapCellState } from "../../src/backends/slurm.js";
import type { BackendContext, RunRecord, StatusOutcome } from "../../src/backends/types.js";
import type { SchedulerLaunchRequest } from "../../src/backends/k8s.js";

let lab: Lab;
let box: Box;
let slurm: SlurmCluster;
let remote: SshRemote;
let ctx: BackendContext;
let tmp: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const opts = { stall_after_s: 600, tail_lines: 3 };

async function waitFor(run: RunRecord, done: (s: StatusOutcome) => boolean, timeoutMs: number): Promise<StatusOutcome> {
  const end = Date.now() + timeoutMs;
  let last: StatusOutcome | undefined;
  while (Date.now() < end) {
    last = await slurmBackend.status(ctx, run, opts);
    if (done(last)) return last;
    await sleep(1000);
  }
  throw new Error(`timed out; last status: ${JSON.stringify(last?.cells.map((c) => [c.name, c.state, c.reason]))}\n${await slurm.logs()}`);
}

async function sh(cmd: string): Promise<string> {
  const r = await box.exec(cmd, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`box exec failed (${r.code}): ${cmd}\n${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-slurm-test-"));
  lab = await startLab([{ name: "hpc", gpus: 0 }]);
  box = lab.boxes.hpc;
  slurm = await startSlurm({ exec: (c, t) => box.exec(c, { timeoutMs: t }), installConf: true });
  remote = new SshRemote({ sshConfig: lab.sshConfig });
  ctx = { remote, ledger: new Ledger(path.join(tmp, "ledger")) };
  await sh("mkdir -p /root/proj");
}, 120_000);

afterAll(async () => {
  await remote?.close().catch(() => {});
  await slurm?.stop().catch(() => {});
  await lab?.stop().catch(() => {});
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("single-node Slurm harness", () => {
  it("is up, and ssh sessions on the box reach it without SLURM_CONF", async () => {
    const r = await remote.exec("hpc", "sinfo -h -o '%P %a %T'; command -v sbatch");
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^debug\* up (idle|mixed|allocated)/m);
    expect(r.stdout).toContain("/sbatch");
  });
});

describe("slurm backend", () => {
  let walltimeRun: RunRecord;

  it("a cell that exceeds its --time is submitted first (checked later)", async () => {
    const req: SchedulerLaunchRequest = {
      run_id: "wall", run_name: "wall", hosts: ["hpc"], workdir: "/root/proj",
      cells: [
        { name: "quick", command: 'echo ok > "$RGT_OUTPUT_DIR/best.pth"', env: {} },
        { name: "slow", command: 'echo starting; sleep 600; echo never > "$RGT_OUTPUT_DIR/best.pth"', env: {} },
      ],
      expect: ["best.pth"],
      scheduler: { walltime: "1", lanes: 2 },
    };
    const out = await slurmBackend.launch(ctx, req);
    expect(out.started).toEqual(["quick", "slow"]);
    expect(out.extra?.sbatch).toContain("--time=1");
    walltimeRun = out.record;
  });

  it("the same sweep on the single-node Slurm: 6 cells done via sbatch --array, roster present", async () => {
    const cells = Array.from({ length: 6 }, (_, i) => ({
      name: `lr${i}`,
      command: `echo "epoch 1/2 seed=$SEED cell=$RGT_CELL"; sleep 1; echo "epoch 2/2"; printf 'w%s' "$SEED" > "$RGT_OUTPUT_DIR/best.pth"; echo '{"acc":0.9}' > "$RGT_OUTPUT_DIR/metrics.json"`,
      env: { SEED: String(i) },
    }));
    const req: SchedulerLaunchRequest = {
      run_id: "sweep6", run_name: "sweep6", hosts: ["hpc"], workdir: "/root/proj", cells,
      expect: ["best.pth", "metrics.json"], scheduler: { lanes: 2 },
    };
    const t0 = Date.now();
    const out = await slurmBackend.launch(ctx, req);
    const launchMs = Date.now() - t0;
    expect(launchMs).toBeLessThan(15_000);
    expect(out.started).toHaveLength(6);
    const job = out.record.slurm_job_id!;
    expect(job).toMatch(/^\d+$/);
    expect(out.session).toContain(`slurm job ${job} (array 0,1,2,3,4,5%2)`);
    // the scheduler itself holds one array job with a throttle of 2, requeue on, the USR1 warning armed
    const sc = await sh(`scontrol -o show job ${job} | head -n 1`);
    expect(sc).toMatch(/ArrayTaskThrottle=2/);
    expect(sc).toMatch(/Requeue=1/);
    expect(sc).toContain(`JobName=rgt-sweep6`);

    const st = await waitFor(out.record, (s) => s.cells.every((c) => c.state === "done" || c.state === "failed"), 90_000);
    expect(st.cells.map((c) => `${c.name}:${c.state}`)).toEqual(cells.map((c) => `${c.name}:done`));
    // roster artifacts, each in its own cell's output dir, with the cell's own env
    for (const [i, c] of out.record.cells.entries()) {
      expect(c.output_dir).toBe(`/root/proj/rgt-out/sweep6/lr${i}`);
      expect(await sh(`cat ${c.output_dir}/best.pth`)).toBe(`w${i}`);
      expect(await sh(`test -s ${c.output_dir}/metrics.json && echo y`)).toBe("y\n");
    }
    // per-cell scheduler output and the runner's per-cell log
    const sd = out.record.state_dir;
    const files = await sh(`ls ${sd}/slurm`);
    for (let i = 0; i < 6; i++) expect(files).toContain(`${job}_${i}.out`);
    expect(await sh(`cat ${sd}/cells/lr3/log`)).toContain("epoch 1/2 seed=3 cell=lr3");
    expect(await sh(`cat ${sd}/cells/lr3/slurm_task`)).toMatch(new RegExp(`^${job}_3 \\d+ 0`));

    // the same run again: every cell is done, nothing is submitted
    const again = await slurmBackend.launch(ctx, { ...req, existing: out.record });
    expect(again.started).toEqual([]);
    expect(again.skipped_done.sort()).toEqual(cells.map((c) => c.name));
    expect(again.record.slurm_job_id).toBe(job);
  });

  it("the cell past its walltime maps to failed / walltime; its sibling is done", async () => {
    const st = await waitFor(walltimeRun, (s) => s.cells.find((c) => c.name === "slow")?.state === "failed", 150_000);
    const slow = st.cells.find((c) => c.name === "slow")!;
    const quick = st.cells.find((c) => c.name === "quick")!;
    expect(quick.state).toBe("done");
    expect(slow.cause?.cause).toBe("walltime");
    expect(slow.cause?.evidence).toContain("TIMEOUT");
    expect(slow.reason).toMatch(/walltime/);
  }, 200_000);

  it("stop cancels only this run's job: an unrelated job submitted first survives", async () => {
    const other = (await sh("sbatch --parsable -J someone-else --wrap 'sleep 300'")).trim();
    expect(other).toMatch(/^\d+$/);
    const out = await slurmBackend.launch(ctx, {
      run_id: "long", run_name: "long", hosts: ["hpc"], workdir: "/root/proj",
      cells: [0, 1, 2].map((i) => ({ name: `l${i}`, command: "echo up; sleep 300", env: {} })),
      expect: [],
      scheduler: { lanes: 2 },
    } as SchedulerLaunchRequest);
    const job = out.record.slurm_job_id!;
    await waitFor(out.record, (s) => s.cells.filter((c) => c.state === "running").length === 2, 30_000);

    const stop = await slurmBackend.stop(ctx, out.record);
    expect(stop.still_alive).toEqual([]);
    expect(stop.stopped.sort()).toEqual(["l0", "l1", "l2"]);
    expect(stop.evidence[0]).toBe(`scancel ${job} (this run's own jobs only)`);

    const q = await sh(`squeue -h -o '%i %j %T'`);
    expect(q).toContain(`${other} someone-else RUNNING`);
    expect(q).not.toContain("rgt-long");
    const st = await slurmBackend.status(ctx, out.record, opts);
    expect(st.cells.map((c) => c.state)).toEqual(["stopped", "stopped", "stopped"]);
    // the cell processes are gone from the box, the other job's sleep is not
    expect(await sh("pgrep -x -f 'sleep 300' | wc -l")).toBe("1\n");
    await sh(`scancel ${other}`);
  });

  it("refuses bad scheduler input naming the field", async () => {
    const base = { run_id: "bad", run_name: "bad", hosts: ["hpc"], workdir: "/root/proj", cells: [{ name: "a", command: "true", env: {} }], expect: [] };
    await expect(slurmBackend.launch(ctx, { ...base, scheduler: { walltime: "soon" } } as SchedulerLaunchRequest)).rejects.toMatchObject({ refusal: { code: "BAD_INPUT", reason: expect.stringContaining("scheduler.walltime") } });
    await expect(slurmBackend.launch(ctx, { ...base, scheduler: { partition: "x;rm" } } as SchedulerLaunchRequest)).rejects.toMatchObject({ refusal: { code: "BAD_INPUT", reason: expect.stringContaining("scheduler.partition") } });
    await expect(slurmBackend.launch(ctx, { ...base, workdir: "/root/nope" })).rejects.toMatchObject({ refusal: { code: "BAD_INPUT", reason: expect.stringContaining("workdir") } });
    const r = await slurmBackend.launch(ctx, { ...base, scheduler: { partition: "gpu-nonexistent" } } as SchedulerLaunchRequest).then(() => undefined, (e) => e);
    expect(r.refusal.code).toBe("SLURM_SUBMIT_FAILED");
    expect(r.refusal.reason).toMatch(/partition/i);
  });
});

describe("through the MCP server", () => {
  it("launch_queue detach slurm: a 6-cell sweep ends done via sbatch --array, run_status agrees, roster present", async () => {
    const server = await connectServer(lab.env);
    try {
      const cells = Array.from({ length: 6 }, (_, i) => ({
        name: `s${i}`,
        command: `echo "step ${i}"; printf 'ckpt-%s' "$RGT_CELL" > "$RGT_OUTPUT_DIR/best.pth"`,
      }));
      const t0 = Date.now();
      const r = await server.call("launch_queue", {
        host: "hpc", run_name: "mcp-sweep", workdir: "/root/proj", cells, expect: ["best.pth"],
        detach: "slurm", scheduler: { lanes: 3 },
      });
      expect(r.ok, JSON.stringify(r)).toBe(true);
      expect(Date.now() - t0).toBeLessThan(20_000);
      expect(r.backend).toBe("slurm");
      expect(r.started).toHaveLength(6);
      expect(r.session).toMatch(/^slurm job \d+ \(array 0,1,2,3,4,5%3\)$/);
      expect(r.sbatch).toContain("--requeue");
      expect(r.sbatch).toContain("--signal=B:USR1@120");
      let st: Record<string, any> = {};
      const end = Date.now() + 90_000;
      while (Date.now() < end) {
        st = await server.call("run_status", { run_id: r.run_id });
        if (st.state !== "running") break;
        await sleep(1000);
      }
      expect(st.state, JSON.stringify(st)).toBe("done");
      expect(st.cells.map((c: any) => c.state)).toEqual(Array(6).fill("done"));
      expect(JSON.stringify(st).length).toBeLessThan(4000);
      for (let i = 0; i < 6; i++) expect(await sh(`cat /root/proj/rgt-out/mcp-sweep/s${i}/best.pth`)).toBe(`ckpt-s${i}`);
    } finally {
      await server.close();
    }
  });
});

describe("scheduler state mapping", () => {
  const f = (state: string, extra: Partial<Parameters<typeof mapCellState>[0]> = {}) => ({ state, stop: false, term: false, hbAge: 1, logAge: 1, ...extra });
  const s = (state: string, restarts = 0) => ({ state, reason: "None", restarts, timeLimit: "00:01:00" });
  it("maps every scheduler state the issue names", () => {
    expect(mapCellState(f("pending"), s("PENDING"), 600).state).toBe("pending");
    expect(mapCellState(f("running"), s("RUNNING"), 600).state).toBe("running");
    expect(mapCellState(f("running", { hbAge: 900, logAge: 900 }), s("RUNNING"), 600).state).toBe("stalled");
    expect(mapCellState(f("done"), s("COMPLETED"), 600).state).toBe("done");
    expect(mapCellState(f("failed"), s("FAILED"), 600).state).toBe("failed");
    const oom = mapCellState(f("failed"), s("OUT_OF_MEMORY"), 600);
    expect([oom.state, oom.cause?.cause]).toEqual(["failed", "oom"]);
    const wt = mapCellState(f("failed"), s("TIMEOUT"), 600);
    expect([wt.state, wt.cause?.cause]).toEqual(["failed", "walltime"]);
    const pre = mapCellState(f("failed"), s("PENDING", 1), 600);
    expect([pre.state, pre.requeued]).toEqual(["pending", true]);
    expect(mapCellState(f("running"), s("PREEMPTED"), 600)).toMatchObject({ state: "pending", requeued: true });
    expect(mapCellState(f("running"), s("CANCELLED"), 600).state).toBe("stopped");
    expect(mapCellState(f("running"), undefined, 600).state).toBe("vanished");
  });
});
