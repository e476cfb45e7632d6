/** The lab's nvidia-smi stand-in prints the driver's real output shapes (run here with bash, no box needed). */
import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { stubNvidiaSmi, type GpuStubSpec } from "../../src/lab/nvidia-smi.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-smi-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let seq = 0;
function stub(spec: GpuStubSpec) {
  const file = path.join(tmp, `nvidia-smi-${seq++}`);
  fs.writeFileSync(file, stubNvidiaSmi(spec), { mode: 0o755 });
  return (...args: string[]) => {
    const r = spawnSync(file, args, { encoding: "utf8" });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
}

const UUID = /GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

describe("stubNvidiaSmi", () => {
  it("is a bash script with LF endings that parses", () => {
    const text = stubNvidiaSmi({ gpus: 2 });
    expect(text.startsWith("#!/bin/bash\n")).toBe(true);
    expect(text).not.toContain("\r");
    const f = path.join(tmp, "parse-check");
    fs.writeFileSync(f, text);
    expect(spawnSync("bash", ["-n", f]).status).toBe(0);
  });

  it.each([1, 2, 8])("-L lists %i GPUs with UUIDs", (n) => {
    const r = stub({ gpus: n, seed: `box${n}` })("-L");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(n);
    lines.forEach((l, i) => {
      expect(l.startsWith(`GPU ${i}: NVIDIA A100-SXM4-80GB (UUID: GPU-`)).toBe(true);
      expect(l).toMatch(new RegExp(`\\(UUID: ${UUID.source}\\)$`));
    });
  });

  it("--query-gpu prints the csv header with units and values with units", () => {
    const r = stub({ gpus: 2 })("--query-gpu=index,name,memory.total,memory.used,utilization.gpu,temperature.gpu", "--format=csv");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      "index, name, memory.total [MiB], memory.used [MiB], utilization.gpu [%], temperature.gpu\n" +
      "0, NVIDIA A100-SXM4-80GB, 81920 MiB, 4 MiB, 0 %, 33\n" +
      "1, NVIDIA A100-SXM4-80GB, 81920 MiB, 4 MiB, 0 %, 33\n");
  });

  it("noheader and nounits behave like the driver", () => {
    const s = stub({ gpus: 2, busyGpus: [1] });
    expect(s("--query-gpu=memory.used,memory.total", "--format=csv,noheader,nounits").stdout).toBe("4, 81920\n30254, 81920\n");
    expect(s("--query-gpu=memory.used", "--format=csv,nounits").stdout).toBe("memory.used [MiB]\n4\n30254\n");
    expect(s("--query-gpu=memory.free,power.draw", "--format=csv,noheader").stdout).toBe("81916 MiB, 61.95 W\n51666 MiB, 312.48 W\n");
    // the separate "--query-gpu X" / "--format X" spellings work too
    expect(s("--query-gpu", "count", "--format", "csv,noheader").stdout).toBe("2\n2\n");
  });

  it("-i selects GPUs by index or UUID", () => {
    const s = stub({ gpus: 8, seed: "sel" });
    expect(s("--query-gpu=index", "--format=csv,noheader", "-i", "3,5").stdout).toBe("3\n5\n");
    const uuid = s("--query-gpu=uuid", "--format=csv,noheader", "-i", "6").stdout.trim();
    expect(uuid).toMatch(new RegExp(`^${UUID.source}$`));
    expect(s("--query-gpu=index", "--format=csv,noheader", `--id=${uuid}`).stdout).toBe("6\n");
    const bad = s("--query-gpu=index", "--format=csv", "-i", "9");
    expect(bad.code).not.toBe(0);
  });

  it("rejects unknown fields and a missing --format with exit 2", () => {
    const s = stub({ gpus: 1 });
    const bad = s("--query-gpu=index,bogus.field", "--format=csv");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('Field "bogus.field" is not a valid field to query.');
    expect(bad.stdout).toBe("");
    const nofmt = s("--query-gpu=index");
    expect(nofmt.code).toBe(2);
    expect(nofmt.stderr).toMatch(/--format/);
  });

  it("--query-compute-apps lists one app per busy GPU and nothing when idle", () => {
    const busy = stub({ gpus: 4, busyGpus: [0, 2] });
    expect(busy("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits").stdout).toBe("31337, 30250\n31339, 30250\n");
    expect(busy("--query-compute-apps=pid,process_name,used_memory", "--format=csv").stdout)
      .toBe("pid, process_name, used_gpu_memory [MiB]\n31337, python, 30250 MiB\n31339, python, 30250 MiB\n");
    const uuidLine = busy("--query-compute-apps=gpu_uuid,pid", "--format=csv,noheader").stdout.split("\n")[0];
    expect(uuidLine).toMatch(new RegExp(`^${UUID.source}, 31337$`));
    const idle = stub({ gpus: 4 });
    expect(idle("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits").stdout).toBe("");
    expect(idle("--query-compute-apps=pid,used_memory", "--format=csv").stdout).toBe("pid, used_gpu_memory [MiB]\n");
  });

  it("the plain table has the 535 layout, 89 columns wide", () => {
    const idle = stub({ gpus: 2 })();
    expect(idle.code).toBe(0);
    expect(idle.stdout).toContain("Driver Version: 535.129.03   CUDA Version: 12.2");
    expect(idle.stdout).toContain("NVIDIA-SMI 535.129.03");
    expect(idle.stdout).toContain("No running processes found");
    expect(idle.stdout).toMatch(/\|\s+4MiB \/ 81920MiB \|/);
    const boxed = idle.stdout.split("\n").filter((l) => /^[|+]/.test(l));
    expect(boxed.length).toBeGreaterThan(15);
    for (const l of boxed) expect(l.length, l).toBe(89);
    const busy = stub({ gpus: 2, busyGpus: [1] })();
    expect(busy.stdout).not.toContain("No running processes found");
    expect(busy.stdout).toMatch(/^\|\s+1\s+N\/A\s+N\/A\s+31338\s+C\s+python\s+30250MiB \|$/m);
    expect(busy.stdout).toMatch(/30254MiB \/ 81920MiB/);
  });

  it("follows the state file at call time and logs argv", () => {
    const stateFile = path.join(tmp, "state");
    const logFile = path.join(tmp, "calls.log");
    const s = stub({ gpus: 2, busyGpus: [0], stateFile, logFile });
    const q = () => s("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits").stdout;
    expect(q()).toBe("31337, 30250\n");
    fs.writeFileSync(stateFile, "1 777 12\n");
    expect(q()).toBe("777, 12\n");
    fs.writeFileSync(stateFile, "");
    expect(q()).toBe("");
    expect(fs.readFileSync(logFile, "utf8").trim().split("\n")).toEqual(Array(3).fill("--query-compute-apps=pid,used_memory --format=csv,noheader,nounits"));
  });

  it("honours model and memory overrides", () => {
    const s = stub({ gpus: 1, model: "NVIDIA H100 80GB HBM3", memoryMiB: 81559 });
    expect(s("--query-gpu=name,memory.total", "--format=csv,noheader").stdout).toBe("NVIDIA H100 80GB HBM3, 81559 MiB\n");
  });
});
