/**
 * probe_env through the real server over stdio (SDK Client), against real sshd boxes: an 8-GPU AutoDL box
 * whose shared FS is an inode-starved tmpfs, a GPU-less generic box, busy GPUs, missing tools; and the
 * server keeps serving after every kind of refusal.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer } from "../../src/lab/client.js";

let lab: Lab;
let srv: Awaited<ReturnType<typeof connectServer>>;

beforeAll(async () => {
  lab = await startLab([
    { name: "autodl-8", gpus: 8, profile: "autodl", torch: true },
    { name: "plain", gpus: 0, without: ["tmux", "rsync", "sbatch"] },
    { name: "busy", gpus: 2, busyGpus: [1] },
    { name: "full", gpus: 1, without: ["python3"], mounts: [{ path: "/data", size: "16m", fillBytesPct: 100 }] },
    { name: "login", gpus: 0 }, // sees the Slurm client (sbatch) but no controller

  ]);
  srv = await connectServer(lab.env);
});
afterAll(async () => { await srv?.close(); await lab?.stop(); });

type Probe = Record<string, any>;
const codes = (r: Probe) => (r.warnings as { code: string }[]).map((w) => w.code);

describe("probe_env", () => {
  it("recognises AutoDL, sees 8 GPUs and the inode trap on the shared FS while its bytes read nearly empty", async () => {
    const r = (await srv.call("probe_env", { host: "autodl-8" })) as Probe;
    expect(r.ok).toBe(true);
    expect(r.profile.name).toBe("autodl");
    expect(r.profile.detected_by).toMatch(/autodl|network_turbo/);
    expect(r.gpus).toHaveLength(8);
    // a memory size every GPU shares is said once
    expect(r.gpus[7]).toMatchObject({ index: 7 });
    expect(r.gpu_memory_total_mib ?? r.gpus[7].memory_total_mib).toBe(81920);
    expect(r.driver_version).toMatch(/^\d+\.\d+/);
    expect(r.cuda_version).toMatch(/^\d+\.\d+$/);
    const fsDisk = r.disks.find((d: Probe) => d.mount === "/root/autodl-fs");
    expect(fsDisk).toBeDefined();
    expect(fsDisk.role).toBe("durable");
    expect(fsDisk.inodes_used_pct).toBeGreaterThanOrEqual(95);
    expect(fsDisk.used_pct).toBeLessThan(10);
    expect(r.disks.find((d: Probe) => d.mount === "/root/autodl-tmp")?.role).toBe("data");
    expect(codes(r)).toContain("INODE_HIGH");
    expect(codes(r)).toContain("AD4");
    const inodeWarn = r.warnings.find((w: Probe) => w.code === "INODE_HIGH");
    expect(inodeWarn.message).toContain("/root/autodl-fs");
    expect(r.warnings.find((w: Probe) => w.code === "AD4").message).toContain("200K");
    expect(r.python.torch.version).toMatch(/^\d+\.\d+/);
    expect(r.python.torch.basis).toBe("metadata");
    expect(r.tools).toMatchObject({ tmux: true, rsync: true, python: true });
    expect(r.surface_to_user.length).toBeGreaterThan(0);
    expect(r.surface_to_user.join(" ")).toMatch(/15/);
    // compact enough for an agent to read, even on first sight (which adds the profile's surface-to-user lines)
    expect(Buffer.byteLength(JSON.stringify(r))).toBeLessThanOrEqual(3072);
  });

  it("surfaces the profile's danger clocks only the first time a host is seen (the ledger remembers)", async () => {
    const r = (await srv.call("probe_env", { host: "autodl-8" })) as Probe;
    expect(r.ok).toBe(true);
    expect(r.surface_to_user).toEqual([]);
    // the steady-state 8-GPU result fits the 2 KB budget
    expect(Buffer.byteLength(JSON.stringify(r))).toBeLessThanOrEqual(2048);
    const hosts = JSON.parse(fs.readFileSync(path.join(lab.env.RGT_HOME!, "hosts.json"), "utf8"));
    expect(hosts["autodl-8"].profile).toBe("autodl");
  });

  it("a deep probe imports torch for real", async () => {
    const r = (await srv.call("probe_env", { host: "autodl-8", deep: true })) as Probe;
    expect(r.python.torch.basis).toBe("import");
    expect(r.python.torch.cuda_available).toBe(false); // Debian's CPU build
  });

  it("degrades field by field on a GPU-less box without tmux or rsync", async () => {
    const r = (await srv.call("probe_env", { host: "plain" })) as Probe;
    expect(r.ok).toBe(true);
    expect(r.profile.name).toBe("generic-ssh");
    expect(r.gpus).toEqual([]);
    expect(r.driver_version).toBeNull();
    expect(codes(r)).toEqual(expect.arrayContaining(["NO_GPU", "NO_TMUX", "NO_RSYNC"]));
    expect(r.tools.tmux).toBe(false);
  });

  it("flags a full disk it was asked to measure and a box without python", async () => {
    const r = (await srv.call("probe_env", { host: "full", mounts: ["/data"] })) as Probe;
    expect(r.ok).toBe(true);
    const d = r.disks.find((x: Probe) => x.mount === "/data");
    expect(d.used_pct).toBeGreaterThanOrEqual(97);
    expect(d.role).toBe("other");
    const disk = r.warnings.find((w: Probe) => w.code === "DISK_HIGH");
    expect(disk.severity).toBe("danger");
    expect(disk.message).toContain("/data");
    expect(codes(r)).toContain("NO_PYTHON");
    expect(r.python).toBeNull();
  });

  it("a box that only has the Slurm client (sbatch, no controller) is not a login node: generic-ssh with a note", async () => {
    // detection needs evidence (issue 15.5); the login-node case with a live controller is in detect-evidence.test.ts
    const r = (await srv.call("probe_env", { host: "login" })) as Probe;
    expect(r.profile.name).toBe("generic-ssh");
    expect(codes(r)).toContain("DETECTION_NOTE");
    expect(r.warnings.find((x: Probe) => x.code === "NO_GPU").severity).toBe("danger");
  });

  it("names GPUs already holding another process's memory", async () => {
    const r = (await srv.call("probe_env", { host: "busy" })) as Probe;
    expect(codes(r)).toContain("GPU_BUSY");
    // the stub's holder pid exists on no box: it is named as a VRAM zombie (pid gone), not twice
    const holders = [...r.running, ...((r as any).gpu_health?.zombies ?? [])];
    expect(holders).toHaveLength(1);
    expect(holders[0].gpu).toBe(1);
  });

  it("takes the platform from the user's host registry over detection", async () => {
    const reg = path.join(lab.env.RGT_HOME!, "registry.yaml");
    fs.writeFileSync(reg, "hosts:\n  busy:\n    profile: lambda\n    price_per_hour: 1.1\n");
    try {
      const r = (await srv.call("probe_env", { host: "busy" })) as Probe;
      expect(r.profile.name).toBe("lambda");
      // the box's own markers do not say lambda (this lab box even sees the host's sbatch), and the result says so
      expect(r.profile.detected_by).toMatch(/^host registry; markers suggest (generic-ssh|slurm)$/);
    } finally { fs.rmSync(reg); }
  });

  it("answers bad input, unknown profiles and unreachable hosts with structured refusals and keeps serving", async () => {
    const bad = (await srv.call("probe_env", { host: 42 })) as Probe;
    expect(bad.ok).toBe(false);
    expect(bad.refused.code).toBe("BAD_INPUT");
    expect(bad.refused.reason).toContain("host");
    const smuggle = (await srv.call("probe_env", { host: "-oProxyCommand=touch /tmp/pwn" })) as Probe;
    expect(smuggle.refused.code).toBe("BAD_INPUT");
    const prof = (await srv.call("probe_env", { host: "plain", profile: "nope" })) as Probe;
    expect(prof.refused.code).toBe("BAD_INPUT");
    const down = (await srv.call("probe_env", { host: "root@127.0.0.1:1" })) as Probe;
    expect(down.refused.code).toBe("UNREACHABLE");
    const after = (await srv.call("probe_env", { host: "plain" })) as Probe;
    expect(after.ok).toBe(true);
  });
});
