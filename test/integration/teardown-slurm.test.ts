/**
 * Teardown on a real single-node Slurm (slurmctld + slurmd + munge started by the suite inside a lab
 * box): RUN_ACTIVE while our array job runs; remote_exec may scancel our own job id but not someone
 * else's; after the real pull the approved teardown touches only our jobs — the unrelated job survives.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { startLab, type Lab, type Box } from "../../src/lab/box.js";
import { startSlurm, type SlurmCluster } from "../../src/lab/slurm.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";

let lab: Lab;
let box: Box;
let slurm: SlurmCluster;
let s: ServerConnection;
let other = "";

async function sh(cmd: string): Promise<string> {
  const r = await box.exec(cmd, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`box exec failed (${r.code}): ${cmd}\n${r.stderr}`);
  return r.stdout;
}

async function waitRun(runId: string, pred: (st: { state: string }) => boolean, ms: number) {
  const t0 = Date.now();
  for (;;) {
    const st = await s.call("run_status", { run_id: runId });
    if (pred(st as never)) return st;
    if (Date.now() - t0 > ms) throw new Error(`run ${runId} did not get there: ${JSON.stringify(st).slice(0, 600)}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

beforeAll(async () => {
  lab = await startLab([{ name: "hpc", gpus: 0 }]);
  box = lab.boxes.hpc;
  slurm = await startSlurm({ exec: (c, t) => box.exec(c, { timeoutMs: t }), installConf: true });
  await sh("mkdir -p /root/proj /root/other");
  // somebody else's job on the same cluster
  other = (await sh("cd /root/other && sbatch --parsable --wrap 'sleep 600'")).trim().split(";")[0];
  expect(other).toMatch(/^\d+$/);
  fs.writeFileSync(path.join(lab.env.RGT_HOME!, "registry.yaml"), "hpc: { profile: slurm }\n");
  s = await connectServer(lab.env, { elicitation: () => ({ action: "accept", content: { confirm_host: "hpc" } }) });
}, 180_000);

afterAll(async () => {
  await s?.close().catch(() => {});
  await slurm?.stop().catch(() => {});
  await lab?.stop().catch(() => {});
});

describe("teardown on Slurm", () => {
  let runId = "";
  let ourJob = "";

  it("RUN_ACTIVE while our array job runs", async () => {
    const l = await s.call("launch_queue", {
      host: "hpc", run_name: "td-slurm", workdir: "/root/proj", detach: "slurm",
      cells: [0, 1].map((i) => ({ name: `c${i}`, command: `sleep 4; python3 -c "import os; open(os.environ['RGT_OUTPUT_DIR'] + '/best.bin', 'w').write('w${i}')"` })),
      expect: ["best.bin"],
    });
    expect(l.ok, JSON.stringify(l).slice(0, 600)).toBe(true);
    runId = l.run_id;
    const r = await s.call("request_teardown", { host: "hpc" });
    expect(r.refused.code).toBe("RUN_ACTIVE");
    const runs = JSON.parse(fs.readFileSync(path.join(lab.env.RGT_HOME!, "runs.json"), "utf8")).runs;
    ourJob = runs[runId].slurm_job_id;
    expect(ourJob).toMatch(/^\d+$/);
  });

  it("remote_exec: scancel of someone else's job is refused; the job lives on", async () => {
    const r = await s.call("remote_exec", { host: "hpc", command: `scancel ${other}` });
    expect(r.refused.code).toBe("DESTROY_UNAPPROVED");
    expect(await sh(`squeue -h -o %i -j ${other}`)).toContain(other);
  });

  it("after the run is done and pulled, the approved teardown leaves the unrelated job alone", async () => {
    await waitRun(runId, (st) => st.state === "done", 120_000);
    const p = await s.call("pull_verify", { host: "hpc", run_id: runId, local_dir: fs.mkdtempSync(path.join(lab.root, "pull-")) });
    expect(p.ok, JSON.stringify(p).slice(0, 600)).toBe(true);
    const r = await s.call("request_teardown", { host: "hpc" });
    expect(r.ok, JSON.stringify(r).slice(0, 600)).toBe(true);
    expect(r.status).toBe("done");
    expect(r.action).toBe("scancel");
    expect(r.evidence.receipt_ids).toEqual([p.receipt_id]);
    expect(await sh(`squeue -h -o '%i %T' -j ${other}`)).toMatch(new RegExp(`^${other} RUNNING`));
  });

  it("remote_exec may scancel our own job id (it is ours)", async () => {
    const r = await s.call("remote_exec", { host: "hpc", command: `scancel ${ourJob} || true` });
    expect(r.refused, JSON.stringify(r.refused)).toBeUndefined();
    expect(await sh(`squeue -h -o %i -j ${other}`)).toContain(other);
  });
});
