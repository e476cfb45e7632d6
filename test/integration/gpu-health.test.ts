/**
 * GPU health on a lab box with 8 stub "NVIDIA H100 80GB HBM3" GPUs: the stub reports an uncorrected ECC
 * error, pending retired pages and a thermal slowdown on GPU 3, a dmesg stand-in an Xid since boot, and
 * two VRAM holders — a pid that no process has, and a real process left behind by a finished cell of an
 * earlier run (a worker that outlived its command). probe_env names all of it within 2 KB; stop_run
 * reclaims the leftover because it is in that cell's recorded process group and carries the run's id,
 * and nothing else is touched (a process of someone else holding GPU memory stays alive). A GPU that goes
 * bad under a running cell is named by run_status too, with the cells on it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer } from "../../src/lab/client.js";

type R = Record<string, any>;
let lab: Lab;
let srv: Awaited<ReturnType<typeof connectServer>>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  lab = await startLab([{ name: "gh-h100", gpus: 8, gpuModel: "NVIDIA H100 80GB HBM3", without: ["sbatch"] }]);
  srv = await connectServer(lab.env);
}, 120_000);
afterAll(async () => { await srv?.close(); await lab?.stop(); });

describe("GPU health and VRAM zombies", () => {
  it("probe_env names faults, Xid and zombies with their owners in ≤ 2 KB; stop_run reclaims only our leftover", async () => {
    const box = lab.boxes["gh-h100"];
    const healthy = (await srv.call("probe_env", { host: "gh-h100" })) as R;
    expect(healthy.ok, JSON.stringify(healthy)).toBe(true);
    expect(healthy.gpu_health).toBeUndefined();
    expect(healthy.gpu_name).toBe("NVIDIA H100 80GB HBM3");
    const healthyBytes = Buffer.byteLength(JSON.stringify(healthy));
    expect(healthyBytes, JSON.stringify(healthy)).toBeLessThanOrEqual(2048);

    // a finished cell that left a child behind in its process group
    await box.exec("mkdir -p /root/proj");
    const r = (await srv.call("launch_queue", { host: "gh-h100", run_name: "leaky", workdir: "/root/proj", cells: [{ name: "c", command: "sleep 300 >/dev/null 2>&1 & echo started" }] })) as R;
    expect(r.ok, JSON.stringify(r)).toBe(true);
    let st: R = {};
    for (let i = 0; i < 40 && st.state !== "done"; i++) { await sleep(500); st = (await srv.call("run_status", { run_id: r.run_id })) as R; }
    expect(st.state, JSON.stringify(st)).toBe("done");
    const left = (await box.exec(`pg=$(cat ~/.rgt/runs/${r.run_id}/cells/c/pgid); pgrep -g "$pg" sleep`)).stdout.trim();
    expect(left, "the leftover child").toMatch(/^\d+$/);
    // someone else's process holding GPU 6, alive and not ours
    const other = (await box.exec("setsid sleep 300 >/dev/null 2>&1 & echo $!")).stdout.trim();

    await box.writeFile(`${box.dir}/gpu_state`, `2 999999 40000\n5 ${left} 30000\n6 ${other} 20000\n`);
    await box.writeFile(`${box.dir}/gpu_state.health`, "3 clocks_throttle_reasons.hw_thermal_slowdown=Active ecc.errors.uncorrected.volatile.total=2 retired_pages.pending=Yes\n");
    await box.writeFile(`${box.dir}/bin/dmesg`, "#!/bin/bash\necho '[ 4242.170] NVRM: Xid (PCI:0000:48:00): 48, pid=1234, name=python3, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.'\n");
    await box.exec(`chmod 755 ${box.dir}/bin/dmesg`);

    const p = (await srv.call("probe_env", { host: "gh-h100" })) as R;
    const bytes = Buffer.byteLength(JSON.stringify(p));
    expect(bytes, JSON.stringify(p)).toBeLessThanOrEqual(2048);
    const h = p.gpu_health;
    expect(h.status).toBe("faulty");
    expect(h.faulty_gpus).toEqual([3]);
    expect(h.issues.join(" ")).toMatch(/GPU 3: 2 uncorrected ECC error\(s\), retired pages pending.*slowdown: hw_thermal/);
    expect(h.xid).toEqual([expect.stringMatching(/^Xid 48 \(PCI:0000:48:00\): An uncorrectable double bit error/)]);
    const byPid = new Map(h.zombies.map((z: R) => [z.pid, z]));
    expect(byPid.get(999999)).toMatchObject({ gpu: 2, owner: expect.stringMatching(/gone/) });
    expect(byPid.get(Number(left))).toMatchObject({ gpu: 5, owner: `rgt run ${r.run_id} cell c (done)`, reclaim: `stop_run { run_id: "${r.run_id}" }` });
    expect(byPid.has(Number(other)), "a live process of someone else is not a zombie").toBe(false);
    expect(p.warnings.map((w: R) => w.code)).toEqual(expect.arrayContaining(["GPU_FAULT", "VRAM_ZOMBIE"]));

    const s = (await srv.call("stop_run", { run_id: r.run_id })) as R;
    expect(s.evidence.join(" "), JSON.stringify(s)).toMatch(/left in its group .* reclaimed/);
    expect((await box.exec(`kill -0 ${left} 2>/dev/null && echo alive || echo gone`)).stdout.trim()).toBe("gone");
    expect((await box.exec(`kill -0 ${other} 2>/dev/null && echo alive || echo gone`)).stdout.trim(), "never touched").toBe("alive");
    await box.exec(`kill ${other}`);
    process.stdout.write(`probe_env bytes on 8× H100: healthy ${healthyBytes}, with health findings ${bytes}\n`);
  }, 120_000);

  it("a GPU that goes bad while cells run: run_status names it and the cells on it (GPU_FAULT / GPU_SLOWDOWN)", async () => {
    const box = lab.boxes["gh-h100"];
    await box.writeFile(`${box.dir}/gpu_state`, "");
    await box.writeFile(`${box.dir}/gpu_state.health`, "");
    await box.exec("mkdir -p /root/proj");
    const cells = Array.from({ length: 8 }, (_, i) => ({ name: `c${i}`, command: "sleep 120" }));
    const r = (await srv.call("launch_queue", { host: "gh-h100", run_name: "eightlanes", workdir: "/root/proj", cells })) as R;
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const onGpu = (g: number) => r.placement.find((p: R) => p.gpu_indices.includes(g)).cell;
    const before = (await srv.call("run_status", { run_id: r.run_id })) as R;
    expect(before.warnings.map((w: R) => w.code), JSON.stringify(before.warnings)).not.toContain("GPU_FAULT");

    await box.writeFile(`${box.dir}/gpu_state.health`,
      "3 ecc.errors.uncorrected.volatile.total=4\n5 clocks_throttle_reasons.hw_thermal_slowdown=Active\n6 clocks_throttle_reasons.sw_power_cap=Active\n");
    const s = (await srv.call("run_status", { run_id: r.run_id })) as R;
    expect(Buffer.byteLength(JSON.stringify(s)), JSON.stringify(s)).toBeLessThanOrEqual(2048);
    const fault = s.warnings.find((w: R) => w.code === "GPU_FAULT");
    expect(fault, JSON.stringify(s.warnings)).toMatchObject({ severity: "danger" });
    expect(fault.message).toMatch(new RegExp(`GPU 3 \\(${onGpu(3)}\\): 4 uncorrected ECC error`));
    const slow = s.warnings.find((w: R) => w.code === "GPU_SLOWDOWN");
    expect(slow.message).toMatch(new RegExp(`GPU 5 \\(${onGpu(5)}\\): slowdown: hw_thermal`));
    expect(slow.message, "a software power cap is normal operation").not.toMatch(/GPU 6/);
    await srv.call("stop_run", { run_id: r.run_id });
    await box.writeFile(`${box.dir}/gpu_state.health`, "");
  }, 120_000);

  it("GPU memory in use with no process listed (another container's job): probe_env says so, launch_queue keeps off it", async () => {
    const box = lab.boxes["gh-h100"];
    await box.writeFile(`${box.dir}/gpu_state`, "");
    await box.writeFile(`${box.dir}/gpu_state.health`, "4 memory.used=30000\n");
    const p = (await srv.call("probe_env", { host: "gh-h100" })) as R;
    const w = p.warnings.find((x: R) => x.code === "GPU_MEMORY_UNSEEN");
    expect(w?.message, JSON.stringify(p.warnings)).toMatch(/^GPU 4 \(30000 MiB\): memory in use, no process listed/);
    expect(p.warnings.map((x: R) => x.code)).not.toContain("GPU_BUSY");
    const cells = Array.from({ length: 8 }, (_, i) => ({ name: `u${i}`, command: "sleep 60" }));
    const r = (await srv.call("launch_queue", { host: "gh-h100", run_name: "unseen", workdir: "/root/proj", cells })) as R;
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const used = r.placement.flatMap((x: R) => x.gpu_indices);
    expect(used.length).toBeGreaterThan(0);
    expect(used).not.toContain(4);
    await srv.call("stop_run", { run_id: r.run_id });
    await box.writeFile(`${box.dir}/gpu_state.health`, "");
  }, 120_000);
});

