/**
 * Cells that really fail, on lab boxes, classified by run_status in the same round trip: CPU torch's own
 * allocator error, a real NaN caught by anomaly detection, torch without CUDA, torch without NCCL, a real
 * segfault, a real missing module and file, a really full tmpfs (bytes) and one out of inodes, a real
 * kill -9, a real stop_run. The GPU-only ones go through the stand-ins: CUDA OOM is torch's own
 * OutOfMemoryError class raised with the caching allocator's wording (there is no GPU to exhaust), the
 * GPU fault is an NVIDIA Xid line from a dmesg stand-in on the box's PATH.
 * Every cell must carry its class, the evidence, a ref into training-failures, and a next_action that is
 * not a blind retry; the failed 8-cell reply stays ≤ 2 KB on a box with driver-length GPU names.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer } from "../../src/lab/client.js";
import { until } from "../helpers/until.js";

type R = Record<string, any>;
let lab: Lab;
let srv: Awaited<ReturnType<typeof connectServer>>;
const WORKDIR = "/root/proj";
/** each failing program is a file in the workdir (written to every box before the tests) */
const SCRIPTS: Record<string, string> = {};
const py = (code: string) => {
  const name = `f${Object.keys(SCRIPTS).length}.py`;
  SCRIPTS[name] = `${code}\n`;
  return `python3 ${name}`;
};

const status = (run_id: string, extra: R = {}) => srv.call("run_status", { run_id, ...extra }) as Promise<R>;
const launch = (args: R) => srv.call("launch_queue", { workdir: WORKDIR, ...args }) as Promise<R>;
const settled = (s: R) => s.state !== "running";

const CELLS: { name: string; cls: string; command: string; evidence: RegExp }[] = [
  { name: "cuoom", cls: "cuda_oom", evidence: /CUDA out of memory/, command: py("import torch\nprint('step 1', flush=True)\nraise torch.cuda.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.10 GiB of which 1.06 GiB is free.')") + " --batch_size 64" },
  { name: "hostoom", cls: "oom", evidence: /DefaultCPUAllocator/, command: py("import torch\ntorch.empty(1 << 42, dtype=torch.uint8)") },
  { name: "nan", cls: "nan_inf", evidence: /returned nan values/, command: py("import torch\ntorch.autograd.set_detect_anomaly(True)\nx = torch.zeros(3, requires_grad=True)\nfor step in range(3):\n    loss = (x.log() * 0).sum()\n    print(f'step {step} loss {loss.item()}', flush=True)\n    loss.backward()") },
  { name: "nccl", cls: "nccl", evidence: /NCCL built in/, command: py("import os, torch.distributed as d\nos.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT='29533')\nd.init_process_group('nccl', rank=0, world_size=1)") },
  { name: "nomod", cls: "missing_module", evidence: /No module named 'timm_lab_absent'/, command: py("import timm_lab_absent") },
  { name: "nofile", cls: "missing_file", evidence: /can't open file|No such file/, command: "python3 train_that_is_not_there.py" },
  { name: "nocuda", cls: "cuda_unavailable", evidence: /not compiled with CUDA/i, command: py("import torch\ntorch.zeros(1, device='cuda')") },
  { name: "segv", cls: "crash", evidence: /Segmentation fault|SIGSEGV/, command: py("import ctypes\nctypes.string_at(0)") },
];

const fill = py("import os\nopen(os.environ['RGT_OUTPUT_DIR'] + '/ckpt.pt', 'wb').write(b'x' * (4 << 20))");
const many = py("import os\nfor i in range(1000):\n    open(os.environ['RGT_OUTPUT_DIR'] + f'/s_{i}.npy', 'w').close()");
const LONG = py("import time\nfor i in range(600):\n    print(f'step {i}', flush=True)\n    time.sleep(0.2)");
const LAUNCH_FAILURE = py("import sys, time\ntime.sleep(1)\nprint('RuntimeError: CUDA error: unspecified launch failure', file=sys.stderr)\nsys.exit(1)");

beforeAll(async () => {
  lab = await startLab([
    { name: "fc-h100", gpus: 8, gpuModel: "NVIDIA H100 80GB HBM3" },
    { name: "fc-full", gpus: 0, mounts: [{ path: "/mnt/full", size: "1m" }] },
    { name: "fc-ino", gpus: 0, mounts: [{ path: "/mnt/ino", size: "16m", inodes: 40 }] },
    { name: "fc-xid", gpus: 1 },
  ]);
  for (const b of Object.values(lab.boxes)) for (const [n, code] of Object.entries(SCRIPTS)) await b.writeFile(`${WORKDIR}/${n}`, code);
  srv = await connectServer(lab.env);
}, 120_000);
afterAll(async () => { await srv?.close(); await lab?.stop(); });

function checkCause(c: R, cls: string, evidence: RegExp) {
  expect(c.state, JSON.stringify(c)).toBe("failed");
  expect(c.cause?.cause, JSON.stringify(c)).toBe(cls);
  expect(c.cause.evidence, JSON.stringify(c)).toMatch(evidence);
  expect(c.cause.ref).toBe(`rgt://references/training-failures#${cls.replace(/_/g, "-")}`);
}

describe("real failures, classified in the run_status round trip", () => {
  it("eight cells failing eight ways on an 8-GPU box: each class right, with evidence and ref; the reply ≤ 2 KB", async () => {
    const r = await launch({ host: "fc-h100", run_name: "fail8", cells: CELLS.map(({ name, command }) => ({ name, command })) });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const s = await until("all failed", () => status(r.run_id), (x) => settled(x) && x.cells.every((c: R) => c.state === "failed"), 120_000);
    for (const want of CELLS) checkCause(s.cells.find((c: R) => c.name === want.name), want.cls, want.evidence);
    const bytes = Buffer.byteLength(JSON.stringify(s));
    expect(bytes, JSON.stringify(s)).toBeLessThanOrEqual(2048);
    // one remedy for the biggest class, the others named; never "retry"
    expect(s.next_action).not.toMatch(/retry/i);
    expect(s.next_action).toMatch(/Also /);
    // with log_offset 0 every cell has new text: still ≤ 2 KB, the rest in local files
    const full = await status(r.run_id, { log_offset: 0 });
    expect(Buffer.byteLength(JSON.stringify(full)), JSON.stringify(full)).toBeLessThanOrEqual(2048);
  }, 180_000);

  it("the OOM remedy names this cell's next rung (its batch size halved, accumulation doubled)", async () => {
    const r = await launch({ host: "fc-h100", run_name: "cuoom-only", cells: [{ name: "big", command: CELLS[0].command }] });
    const s = await until("failed", () => status(r.run_id), settled);
    checkCause(s.cells[0], "cuda_oom", /Tried to allocate/);
    expect(s.next_action).toMatch(/batch_size 64 -> 32 .*accumulation/);
    expect(s.next_action).not.toMatch(/retry/i);
  }, 60_000);

  it("a really full tmpfs → disk_full with the df reading; an inode-starved one → inode_full", async () => {
    const a = await launch({ host: "fc-full", run_name: "full", data_dir: "/mnt/full", cells: [{ name: "w", command: fill }] });
    const b = await launch({ host: "fc-ino", run_name: "ino", data_dir: "/mnt/ino", cells: [{ name: "w", command: many }] });
    expect(a.ok && b.ok, JSON.stringify([a, b])).toBe(true);
    const sa = await until("disk failed", () => status(a.run_id), settled);
    const sb = await until("inode failed", () => status(b.run_id), settled);
    checkCause(sa.cells[0], "disk_full", /No space left on device.*df: \/mnt\/full 100% full/);
    checkCause(sb.cells[0], "inode_full", /No space left on device.*inodes 100% used/);
    expect(sa.next_action).toMatch(/free space.*done cells are kept/);
    expect(sb.next_action).toMatch(/pack small files/);
  }, 90_000);

  it("kill -9 → killed with the signal; stop_run → stopped", async () => {
    const box = lab.boxes["fc-h100"];
    const r = await launch({ host: "fc-h100", run_name: "kill", cells: [{ name: "k", command: LONG }, { name: "s", command: "sleep 300" }] });
    await until("running", () => status(r.run_id), (x) => x.cells.every((c: R) => c.state === "running") && (x.cells[0].progress?.step ?? 0) >= 1);
    expect((await box.exec(`kill -9 -- -$(cat ~/.rgt/runs/${r.run_id}/cells/k/pgid)`)).code).toBe(0);
    await srv.call("stop_run", { run_id: r.run_id, cells: ["s"] });
    const s = await until("settled", () => status(r.run_id), (x) => x.cells.every((c: R) => c.state === "failed" || c.state === "stopped"), 30_000);
    checkCause(s.cells[0], "killed", /SIGKILL.*no OOM kill/);
    expect(s.cells[1]).toMatchObject({ state: "stopped", cause: { cause: "stopped" } });
    expect(s.next_action).not.toMatch(/retry/i);
  }, 60_000);

  it("an NVIDIA Xid since the cell started → gpu_fault, the dmesg line as evidence", async () => {
    const box = lab.boxes["fc-xid"];
    // the kernel log of this box: a stand-in dmesg first on its PATH, an Xid stamped after the cell's start
    await box.writeFile(`${box.dir}/bin/dmesg`, "#!/bin/bash\nread -r up _ </proc/uptime\nprintf '[%s] NVRM: Xid (PCI:0000:07:00): 79, pid=4242, name=python3, GPU has fallen off the bus.\\n' \"$up\"\n");
    await box.exec(`chmod 755 ${box.dir}/bin/dmesg`);
    const r = await launch({ host: "fc-xid", run_name: "xid", cells: [{ name: "g", command: LAUNCH_FAILURE }] });
    const s = await until("failed", () => status(r.run_id), settled);
    checkCause(s.cells[0], "gpu_fault", /dmesg: .*Xid .*fallen off the bus/);
    expect(s.next_action).toMatch(/replacement box|another box/);
  }, 60_000);
});
