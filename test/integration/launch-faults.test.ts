/**
 * Faults against real boxes, real tmux / setsid+nohup and a real torch training script that checkpoints
 * atomically: the tmux server killed mid-run (hang-up) and a relaunch that resumes from the checkpoint
 * step; `kill -9` of a cell; a stuck cell; a real OOM kill in a memory-limited cgroup; a poll whose SSH
 * connection drops (unknown, never dead); the nohup backend on a box without tmux; the profile's hooks
 * (AutoDL proxy hook, data dir, durable dir); and a durable copy that fails, failing the cell.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Box, type Lab } from "../../src/lab/box.js";
import { connectServer } from "../../src/lab/client.js";
import { until } from "../helpers/until.js";

type R = Record<string, any>;
let lab: Lab;
let srv: Awaited<ReturnType<typeof connectServer>>;
const TRAIN = fs.readFileSync(path.join(__dirname, "..", "fixtures", "train_ckpt.py"), "utf8");
const WORKDIR = "/root/proj";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const status = (run_id: string, extra: R = {}) => srv.call("run_status", { run_id, ...extra }) as Promise<R>;
const launch = (args: R) => srv.call("launch_queue", { workdir: WORKDIR, ...args }) as Promise<R>;

beforeAll(async () => {
  lab = await startLab([
    { name: "ft-tmux", gpus: 1 },
    { name: "ft-nohup", gpus: 0, without: ["tmux"] },
    { name: "ft-oom", gpus: 0, without: ["tmux"] },
    { name: "ft-autodl", gpus: 1, profile: "autodl" },
    { name: "ft-tiny", gpus: 0, mounts: [{ path: "/mnt/tiny", size: "1m" }] },
  ]);
  for (const b of Object.values(lab.boxes)) await b.writeFile(`${WORKDIR}/train_ckpt.py`, TRAIN);
  srv = await connectServer(lab.env);
});
afterAll(async () => { await srv?.close(); await lab?.stop(); });

describe("fault classification", () => {
  it("tmux server killed mid-run → vanished/hangup; relaunch resumes from the checkpoint step, not step 0", async () => {
    const box = lab.boxes["ft-tmux"];
    const args = { host: "ft-tmux", run_name: "resume-1", expect: ["best.pth"], cells: [{ name: "c", command: "python3 train_ckpt.py --steps 40 --sleep 0.2 --ckpt-every 5" }] };
    const r = await launch(args);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const mid = await until("step >= 12", () => status("resume-1"), (s) => (s.cells?.[0]?.progress?.step ?? 0) >= 12);
    expect(mid.state).toBe("running");
    await box.exec("tmux kill-server");
    const dead = await until("not running", () => status("resume-1"), (s) => s.state !== "running", 20_000);
    expect(dead.state, JSON.stringify(dead)).toBe("vanished");
    expect(dead.vanished_cause.cause).toBe("hangup");
    expect(dead.vanished_cause.evidence).toMatch(/SIGHUP/);
    expect(dead.next_action).toMatch(/launch_queue again/);
    expect((await box.exec("pgrep -fc 'train_ckpt[.]py --steps 40' || true")).stdout.trim()).toBe("0");

    const again = await launch(args);
    expect(again.ok, JSON.stringify(again)).toBe(true);
    expect(again.started).toEqual(["c"]);
    const done = await until("done", () => status("resume-1"), (s) => s.state !== "running");
    expect(done.state, JSON.stringify(done)).toBe("done");
    const log = (await box.exec("cat ~/.rgt/runs/resume-1/cells/c/log")).stdout;
    expect(log).toContain("starting from step 0");
    const m = /resumed from step (\d+)/.exec(log);
    expect(m, log.slice(-800)).not.toBeNull();
    const resumedAt = Number(m![1]);
    expect(resumedAt).toBeGreaterThanOrEqual(10);
    const metrics = JSON.parse((await box.exec(`cat ${WORKDIR}/rgt-out/resume-1/c/metrics.json`)).stdout);
    expect(metrics.resumed_from).toBe(resumedAt);
    // the second attempt did not redo the saved steps
    const secondAttempt = log.slice(log.indexOf("attempt=2"));
    expect(secondAttempt).not.toMatch(/^step 1\/40 /m);
    expect(secondAttempt).toMatch(new RegExp(`^step ${resumedAt + 1}/40 `, "m"));
  });

  it("the box reboots mid-run → vanished/reboot with the boot time as evidence; relaunch resumes from the checkpoint", async () => {
    const box = lab.boxes["ft-nohup"];
    const args = { host: "ft-nohup", run_name: "reboot-1", expect: ["best.pth"], cells: [{ name: "c", command: "python3 train_ckpt.py --steps 30 --sleep 0.2 --ckpt-every 5" }] };
    expect((await launch(args)).ok).toBe(true);
    await until("step >= 8", () => status("reboot-1"), (s) => (s.cells?.[0]?.progress?.step ?? 0) >= 8);
    await box.reboot();
    const dead = await until("not running", () => status("reboot-1"), (s) => s.state !== "running", 30_000);
    expect(dead.state, JSON.stringify(dead)).toBe("vanished");
    expect(dead.vanished_cause.cause).toBe("reboot");
    expect(dead.vanished_cause.evidence).toMatch(/booted at .* after the cell started/);
    const again = await launch(args);
    expect(again.started).toEqual(["c"]);
    const done = await until("done", () => status("reboot-1"), (s) => s.state !== "running");
    expect(done.state, JSON.stringify(done)).toBe("done");
    expect((await box.exec("cat ~/.rgt/runs/reboot-1/cells/c/log")).stdout).toMatch(/resumed from step ([5-9]|[12]\d)\b/);
  });

  it("kill -9 of a cell → failed, cause killed, with evidence", async () => {
    const box = lab.boxes["ft-tmux"];
    const r = await launch({ host: "ft-tmux", run_name: "kill-1", cells: [{ name: "k", command: "python3 train_ckpt.py --steps 500 --sleep 0.2" }] });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    await until("running with steps", () => status("kill-1"), (s) => (s.cells?.[0]?.progress?.step ?? 0) >= 1);
    const k = await box.exec("kill -9 -- -$(cat ~/.rgt/runs/kill-1/cells/k/pgid)");
    expect(k.code, k.stderr).toBe(0);
    const s = await until("failed", () => status("kill-1"), (x) => x.state !== "running", 20_000);
    expect(s.state, JSON.stringify(s)).toBe("failed");
    expect(s.cells[0].exit_code).toBe(137);
    expect(s.cells[0].cause.cause).toBe("killed");
    expect(s.vanished_cause.cause).toBe("killed");
    expect(s.vanished_cause.evidence).toMatch(/SIGKILL/);
    expect(s.vanished_cause.evidence).toMatch(/no OOM kill/);
  });

  it("a cell alive but silent past the threshold → stalled", async () => {
    const r = await launch({ host: "ft-tmux", run_name: "stuck-1", cells: [{ name: "s", command: "python3 train_ckpt.py --steps 50 --sleep 0.05 --hang-at 3" }] });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    await until("step 2", () => status("stuck-1"), (s) => (s.cells?.[0]?.progress?.step ?? 0) >= 2);
    expect((await status("stuck-1", { stall_after_s: 600 })).state).toBe("running");
    await sleep(4500);
    const s = await status("stuck-1", { stall_after_s: 3 });
    expect(s.state, JSON.stringify(s)).toBe("stalled");
    expect(s.cells[0].state).toBe("stalled");
    expect(s.cells[0].log_age_s).toBeGreaterThanOrEqual(3);
    expect(s.cells[0].reason).toMatch(/alive/);
    expect(s.next_action).toMatch(/stop_run/);
    const st = (await srv.call("stop_run", { run_id: "stuck-1" })) as R;
    expect(st.stopped).toEqual(["s"]);
  });

  it("a real OOM kill in a memory-limited cgroup → failed, cause oom, with the cgroup counter as evidence", async () => {
    const box = lab.boxes["ft-oom"];
    const cg = await limitBoxMemory(box, 256 << 20);
    try {
      const r = await launch({ host: "ft-oom", run_name: "oom-1", cells: [{ name: "big", command: "python3 -c 'x = b\"\\x01\" * (1200 << 20); print(len(x))'" }] });
      expect(r.ok, JSON.stringify(r)).toBe(true);
      const s = await until("oom", () => status("oom-1"), (x) => x.state !== "running", 60_000);
      expect(s.state, JSON.stringify(s)).toBe("failed");
      expect(s.cells[0].exit_code).toBe(137);
      expect(s.vanished_cause.cause).toBe("oom");
      expect(s.vanished_cause.evidence).toMatch(/oom_kill/);
      expect(s.next_action).toMatch(/memory/);
    } finally {
      await cg.release();
    }
  });

  it("a poll whose SSH connection drops is re-checked and reported unknown, never dead; it reads running again once the box answers", async () => {
    const box = lab.boxes["ft-tmux"];
    const r = await launch({ host: "ft-tmux", run_name: "drop-1", cells: [{ name: "d", command: "python3 train_ckpt.py --steps 500 --sleep 0.2" }] });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    await until("running", () => status("drop-1"), (s) => s.state === "running" && (s.cells?.[0]?.progress?.step ?? 0) >= 1);
    await box.stopSshd();
    for (const pid of box.pids()) {
      if (pid === box.sshdPid) continue;
      let cmd = "";
      try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8"); } catch { continue; }
      if (cmd.startsWith("sshd:")) try { process.kill(pid, "SIGTERM"); } catch { /* gone */ }
    }
    const s = await status("drop-1");
    expect(s.ok).toBe(true);
    expect(s.state, JSON.stringify(s)).toBe("unknown");
    expect(s.vanished_cause).toBeUndefined();
    expect(s.cells[0].state).toBe("unknown");
    expect(s.warnings.map((w: R) => w.code)).toContain("HOST_UNREACHABLE");
    expect(s.next_action).toMatch(/do not relaunch/);
    await box.startSshd();
    const back = await until("running again", () => status("drop-1"), (x) => x.state !== "unknown", 30_000);
    expect(back.state).toBe("running");
    const st = (await srv.call("stop_run", { run_id: "drop-1" })) as R;
    expect(st.ok, JSON.stringify(st)).toBe(true);
  });
});

describe("backends and profile parameters", () => {
  it("runs under setsid nohup on a box without tmux, and stop_run still works", async () => {
    const box = lab.boxes["ft-nohup"];
    const r = await launch({ host: "ft-nohup", run_name: "nohup-1", expect: ["best.pth", "metrics.json"], cells: [{ name: "n", command: "python3 train_ckpt.py --steps 5 --sleep 0.05" }, { name: "long", command: "sleep 300" }] });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.warnings.map((w: R) => w.code)).toContain("NO_TMUX");
    expect(r.placement.map((p: R) => p.gpu_indices)).toEqual([[], []]);
    const s = await until("n done", () => status("nohup-1"), (x) => x.cells?.[0]?.state === "done");
    expect(s.cells[1].state).toBe("running");
    // the lane has no controlling terminal and its own session
    const lanePid = (await box.exec("cut -d' ' -f1 ~/.rgt/runs/nohup-1/lanes/*.pid")).stdout.trim();
    const stat = (await box.exec(`cat /proc/${lanePid}/stat`)).stdout;
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    expect(fields[3]).toBe(lanePid); // session id = its own pid (setsid)
    expect(fields[4]).toBe("0"); // tty_nr: none
    const st = (await srv.call("stop_run", { run_id: "nohup-1", cells: ["long"] })) as R;
    expect(st.ok, JSON.stringify(st)).toBe(true);
    expect(st.stopped).toEqual(["long"]);
    expect((await box.exec("pgrep -fc '^sleep 300$' || true")).stdout.trim()).toBe("0");
  });

  it("uses the AutoDL profile: proxy hook sourced before the command, data dir for outputs, durable copy on autodl-fs", async () => {
    const box = lab.boxes["ft-autodl"];
    const r = await launch({
      host: "ft-autodl", profile: "autodl", run_name: "ad-1", expect: ["env.txt"],
      cells: [{ name: "p", command: "env | grep -E '^(RGT_LAB_NETWORK_TURBO|http_proxy|HF_HOME|RGT_OUTPUT_DIR)=' | sort > $RGT_OUTPUT_DIR/env.txt" }],
    });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const s = await until("done", () => status("ad-1"), (x) => x.state !== "running", 30_000);
    expect(s.state, JSON.stringify(s)).toBe("done");
    const env = (await box.exec("cat /root/autodl-fs/rgt/ad-1/p/env.txt")).stdout;
    expect(env).toContain("RGT_LAB_NETWORK_TURBO=1");
    expect(env).toContain("http_proxy=");
    expect(env).toContain("HF_HOME=/root/autodl-tmp/huggingface_cache");
    expect(env).toContain("RGT_OUTPUT_DIR=/root/autodl-tmp/rgt-out/ad-1/p");
    // state is under $HOME, not on the inode-starved shared FS
    expect((await box.exec("test -d /root/.rgt/runs/ad-1/cells/p && echo yes")).stdout).toContain("yes");
  });

  it("a durable copy that fails makes the cell fail even though training exited 0", async () => {
    const box = lab.boxes["ft-tiny"];
    const r = await launch({
      host: "ft-tiny", run_name: "tiny-1", durable_dir: "/mnt/tiny", expect: ["big.bin"],
      cells: [{ name: "t", command: "head -c 3000000 /dev/urandom > $RGT_OUTPUT_DIR/big.bin" }],
    });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const s = await until("finished", () => status("tiny-1"), (x) => x.state !== "running", 30_000);
    expect(s.state, JSON.stringify(s)).toBe("failed");
    expect(s.cells[0].exit_code).toBe(0);
    expect(s.cells[0].reason).toMatch(/durable sync failed/);
    const log = (await box.exec("cat ~/.rgt/runs/tiny-1/cells/t/log")).stdout;
    expect(log).not.toMatch(/\] done:/);
    // nothing half-copied is left looking like the artifact
    expect((await box.exec("test -e /mnt/tiny/rgt/tiny-1/t/big.bin && echo present || echo absent")).stdout).toContain("absent");
  });
});

/** Put the box's sshd (so every later session and what it starts) into a fresh memory cgroup with a hard limit. */
async function limitBoxMemory(box: Box, bytes: number): Promise<{ release(): Promise<void> }> {
  const own = fs.readFileSync(`/proc/${box.sshdPid}/cgroup`, "utf8");
  const v1 = /^\d+:[^:]*\bmemory\b[^:]*:(.*)$/m.exec(own);
  let dir: string;
  let parentProcs: string;
  if (v1 && fs.existsSync("/sys/fs/cgroup/memory")) {
    const parent = path.join("/sys/fs/cgroup/memory", v1[1]);
    dir = path.join(parent, `rgt-oom-${process.pid}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "memory.limit_in_bytes"), String(bytes));
    try { fs.writeFileSync(path.join(dir, "memory.memsw.limit_in_bytes"), String(bytes)); } catch { /* no swap accounting */ }
    parentProcs = path.join(parent, "cgroup.procs");
  } else {
    const v2 = /^0::(.*)$/m.exec(own);
    if (!v2) throw new Error(`no memory cgroup found for sshd: ${own}`);
    const parent = path.join("/sys/fs/cgroup", v2[1]);
    dir = path.join(parent, `rgt-oom-${process.pid}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "memory.max"), String(bytes));
    try { fs.writeFileSync(path.join(dir, "memory.swap.max"), "0"); } catch { /* no swap control */ }
    parentProcs = path.join(parent, "cgroup.procs");
  }
  fs.writeFileSync(path.join(dir, "cgroup.procs"), String(box.sshdPid));
  return {
    async release() {
      for (const pid of fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) {
        try { fs.writeFileSync(parentProcs, pid); } catch { /* exited */ }
      }
      for (let i = 0; i < 20; i++) {
        try { fs.rmdirSync(dir); return; } catch { await sleep(250); }
      }
    },
  };
}
