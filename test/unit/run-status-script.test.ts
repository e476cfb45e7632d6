/**
 * scripts/run_status.sh run for real (bash on this machine) over a hand-made state dir, read back by the
 * same parser and classifier run_status uses. The moment between a cell's command ending and its runner
 * writing the exit code must read as "running", never as a vanish; a runner that is gone too is a vanish.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { classifyCell, parseStatus } from "../../src/backends/classify.js";
import { inlineIncludes } from "../../src/remote/pool.js";

const scripts = path.resolve(__dirname, "..", "..", "scripts");
const body = inlineIncludes(fs.readFileSync(path.join(scripts, "run_status.sh"), "utf8"), scripts);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-status-"));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  fs.rmSync(tmp, { recursive: true, force: true });
});

const pstart = (pid: number) => fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[19]!;
const status = (sd: string, env: NodeJS.ProcessEnv = process.env) => {
  const r = spawnSync("bash", ["-s", "--", sd, "3", "-1"], { input: body, encoding: "utf8", env });
  expect(r.status, r.stderr).toBe(0);
  return parseStatus("h", r.stdout);
};
const cell = { name: "c", host: "h", gpu_indices: [0], output_dir: `${tmp}/out/c` };
const opts = { stall_after_s: 600, tail_lines: 3 };

function stateDir(name: string, runner: string | undefined): string {
  const sd = path.join(tmp, name);
  const cd = path.join(sd, "cells", "c");
  fs.mkdirSync(cd, { recursive: true });
  // a command that has already ended: a real pid that exited (start time no longer matches anything)
  const done = spawnSync("bash", ["-c", "echo $$"], { encoding: "utf8" });
  fs.writeFileSync(path.join(cd, "pid"), `${done.stdout.trim()}\n`);
  fs.writeFileSync(path.join(cd, "pstart"), "1\n");
  fs.writeFileSync(path.join(cd, "state"), "running\n");
  fs.writeFileSync(path.join(cd, "started_at"), `${Math.floor(Date.now() / 1000) - 30}\n`);
  fs.writeFileSync(path.join(cd, "log"), "step 6/6\nfinished\n");
  if (runner !== undefined) fs.writeFileSync(path.join(cd, "runner"), `${runner}\n`);
  return sd;
}

describe("run_status.sh: a command that ended before its runner wrote the exit code", () => {
  it("reads as running while the runner lives, with the runner's liveness on the CELL line", () => {
    const runner = spawn("sleep", ["60"], { stdio: "ignore" });
    children.push(runner);
    const sd = stateDir("live", `${runner.pid} ${pstart(runner.pid!)}`);
    const b = status(sd);
    const row = b.cells.get("c")!;
    expect(row.alive).toBe(false);
    expect(row.runner_alive).toBe(true);
    const c = classifyCell(b, row, cell, opts);
    expect(c.state).toBe("running");
    expect(c.cause).toBeUndefined();
  });

  it("is a vanish once the runner is gone as well, and a recycled runner pid does not count as alive", () => {
    const runner = spawn("sleep", ["60"], { stdio: "ignore" });
    children.push(runner);
    // right pid, wrong start time: some other process now holds the number
    const b = status(stateDir("recycled", `${runner.pid} 1`));
    expect(b.cells.get("c")!.runner_alive).toBe(false);
    expect(classifyCell(b, b.cells.get("c"), cell, opts).state).toBe("vanished");
  });

  it("reads the kernel log only when a cell is gone, and passes its OOM lines on", () => {
    const bin = path.join(tmp, "bin");
    fs.mkdirSync(bin, { recursive: true });
    const calls = path.join(tmp, "dmesg.calls");
    // the real kernel log cannot be written from here: a stand-in prints the kernel's own line format
    fs.writeFileSync(path.join(bin, "dmesg"), `#!/bin/bash\necho x >> ${calls}\necho '[ 812.4] eth0: link up'\necho '[ 900.1] Out of memory: Killed process 31337 (python3) total-vm:812kB, anon-rss:400kB'\n`, { mode: 0o755 });
    const run = (sd: string) => status(sd, { ...process.env, PATH: `${bin}:${process.env.PATH}` });
    const gone = run(stateDir("oom", undefined));
    expect(gone.dmesg).toEqual(["[ 900.1] Out of memory: Killed process 31337 (python3) total-vm:812kB, anon-rss:400kB"]);
    expect(fs.readFileSync(calls, "utf8").trim().split("\n")).toHaveLength(1);
    const runner = spawn("sleep", ["60"], { stdio: "ignore" });
    children.push(runner);
    // a live cell: the kernel log is not read at all
    const sd = stateDir("alive", undefined);
    fs.writeFileSync(path.join(sd, "cells", "c", "pid"), `${runner.pid}\n`);
    fs.writeFileSync(path.join(sd, "cells", "c", "pstart"), `${pstart(runner.pid!)}\n`);
    expect(run(sd).dmesg).toEqual([]);
    expect(fs.readFileSync(calls, "utf8").trim().split("\n")).toHaveLength(1);
  });

  it("a state dir from before the runner was recorded keeps the old reading (no runner field)", () => {
    const b = status(stateDir("old", undefined));
    expect(b.cells.get("c")!.runner_alive).toBeUndefined();
    expect(classifyCell(b, b.cells.get("c"), cell, opts).state).toBe("vanished");
  });
});

describe("run_status.sh: a cell caught between its exit code and its state being written", () => {
  it("exit non-zero while state still says running: read as failed, with the full log and the OOM ladder's knobs", () => {
    const sd = stateDir("between", undefined);
    const cd = path.join(sd, "cells", "c");
    fs.writeFileSync(path.join(cd, "exit_code"), "1\n");
    fs.writeFileSync(path.join(cd, "cmd"), "python3 train.py --batch_size 64\n");
    fs.writeFileSync(path.join(cd, "log"), "step 1\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.\n");
    const b = status(sd);
    const row = b.cells.get("c")!;
    expect(row.knobs).toMatch(/--batch_size 64/);
    const c = classifyCell(b, row, cell, opts);
    expect(c.state).toBe("failed");
    expect(c.cause?.cause).toBe("cuda_oom");
    expect(c.knobs).toMatch(/--batch_size 64/);
  });

  it("exit 0 while state still says running: no failure evidence gathered", () => {
    const sd = stateDir("between0", undefined);
    const cd = path.join(sd, "cells", "c");
    fs.writeFileSync(path.join(cd, "exit_code"), "0\n");
    fs.writeFileSync(path.join(cd, "cmd"), "python3 train.py --batch_size 64\n");
    const row = status(sd).cells.get("c")!;
    expect(row.knobs).toBeUndefined();
  });
});
