/**
 * The lab harness itself: real OpenSSH servers in private mount namespaces, driven with the real
 * `ssh` client. Needs root and /usr/sbin/sshd; without them startLab throws and these tests fail.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { startLab, type Lab } from "../../src/lab/box.js";
import { startCutProxy } from "../../src/lab/proxy.js";
import { connectServer } from "../../src/lab/client.js";
import { packageRoot } from "../../src/common/config.js";

function ssh(lab: Lab, host: string, cmd: string, timeoutMs = 20000) {
  const r = spawnSync("ssh", ["-F", lab.sshConfig, host, cmd], { encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** ssh without blocking the event loop (needed when this process also runs the proxy) */
function sshAsync(lab: Lab, host: string, cmd: string, timeoutMs = 20000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn("ssh", ["-F", lab.sshConfig, host, cmd], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    const t = setTimeout(() => c.kill("SIGKILL"), timeoutMs);
    c.stdout.on("data", (d) => { stdout += d.toString(); });
    c.stderr.on("data", (d) => { stderr += d.toString(); });
    c.on("close", (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}

function lastPct(dfOut: string): number {
  const line = dfOut.trim().split("\n").pop() ?? "";
  const m = line.match(/(\d+)%/);
  if (!m) throw new Error(`no percentage in: ${dfOut}`);
  return Number(m[1]);
}

function live(pid: number): boolean {
  try { return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8")); } catch { return false; }
}

function connectRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.on("connect", () => { s.destroy(); resolve(false); });
    s.on("error", () => resolve(true));
  });
}

describe("lab boxes", () => {
  let lab: Lab;
  const startMs: Record<string, number> = {};

  beforeAll(async () => {
    lab = await startLab([]);
    const specs = [
      { name: "g8", gpus: 8, busyGpus: [2] },
      { name: "ad", profile: "autodl" as const },
      { name: "va", profile: "vastai" as const, without: ["rsync" as const], torch: false },
      { name: "full", gpus: 2, mounts: [{ path: "/data", size: "8m", fillBytesPct: 100 }] },
    ];
    for (const s of specs) {
      const t = Date.now();
      await lab.addBox(s);
      startMs[s.name] = Date.now() - t;
    }
    console.log(`lab box start times (ms): ${JSON.stringify(startMs)}`);
  }, 60_000);

  afterAll(async () => {
    await lab?.stop();
  });

  it("starts each box in well under 1.5 s", () => {
    for (const [name, ms] of Object.entries(startMs)) expect(ms, name).toBeLessThan(1500);
  });

  it("real OpenSSH reaches an 8-GPU box whose stub lists 8 GPUs in the driver's -L format", () => {
    const r = ssh(lab, "g8", "nvidia-smi -L");
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(8);
    lines.forEach((l, i) => expect(l).toMatch(new RegExp(`^GPU ${i}: NVIDIA A100-SXM4-80GB \\(UUID: GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\)$`)));
    expect(new Set(lines.map((l) => l.split("UUID: ")[1])).size).toBe(8);
    expect(lab.boxes.g8.nvidiaSmiCalls()).toContain("-L");
  });

  it("reports the busy GPU as a compute app, and follows setBusyGpus", () => {
    let r = ssh(lab, "g8", "nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits; nvidia-smi --query-gpu=index,memory.used --format=csv,noheader,nounits");
    expect(r.code, r.stderr).toBe(0);
    const [apps, ...gpuLines] = r.stdout.trim().split("\n");
    expect(apps).toMatch(/^\d+, 30250$/);
    expect(gpuLines).toHaveLength(8);
    expect(Number(gpuLines[2].split(", ")[1])).toBeGreaterThan(30000);
    expect(Number(gpuLines[0].split(", ")[1])).toBeLessThan(100);
    lab.boxes.g8.setBusyGpus([{ index: 5, pid: 4242, usedMiB: 1000 }, 6]);
    r = ssh(lab, "g8", "nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits");
    expect(r.stdout.trim().split("\n")).toEqual(["4242, 1000", "31343, 30250"]);
    lab.boxes.g8.setBusyGpus([]);
    r = ssh(lab, "g8", "nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits");
    expect(r.stdout).toBe("");
  });

  it("an AutoDL box has the inode trap: df -i at least 95 % while df bytes stays under 10 %", () => {
    const r = ssh(lab, "ad", "df -Pi /root/autodl-fs; echo ---; df -P /root/autodl-fs; echo ---; test -f /etc/network_turbo && echo turbo; test -d /root/autodl-tmp && echo tmp; hostname");
    expect(r.code, r.stderr).toBe(0);
    const [inodes, bytes, rest] = r.stdout.split("---\n");
    expect(lastPct(inodes)).toBeGreaterThanOrEqual(95);
    expect(lastPct(bytes)).toBeLessThan(10);
    expect(rest).toContain("turbo");
    expect(rest).toContain("tmp");
    expect(rest).toMatch(/autodl-container-/);
    // and a write that needs a new inode really fails there
    const w = ssh(lab, "ad", "for i in $(seq 1 200); do : > /root/autodl-fs/x$i || exit 7; done");
    expect(w.code).toBe(7);
    expect(w.stderr).toMatch(/No space left/);
  });

  it("two boxes at once carry different markers, and none of them leaks to the real machine", () => {
    const ad = ssh(lab, "ad", "ls -d /workspace /etc/network_turbo 2>&1; echo \"label=${VAST_CONTAINERLABEL:-}\"");
    const va = ssh(lab, "va", "ls -d /workspace /etc/network_turbo 2>&1; echo \"label=${VAST_CONTAINERLABEL:-}\"");
    expect(ad.stdout).toMatch(/cannot access '\/workspace'/);
    expect(ad.stdout).toMatch(/^\/etc\/network_turbo$/m);
    expect(ad.stdout).toMatch(/^label=$/m);
    expect(va.stdout).toMatch(/^\/workspace$/m);
    expect(va.stdout).toMatch(/cannot access '\/etc\/network_turbo'/);
    expect(va.stdout).toMatch(/^label=C\.\d+$/m);
    expect(fs.existsSync("/etc/network_turbo")).toBe(false);
    expect(fs.existsSync("/workspace")).toBe(false);
    expect(fs.existsSync("/root/autodl-fs")).toBe(false);
    expect(fs.existsSync("/data")).toBe(false);
    // each box has its own process table: a box's ps shows its own sshd, not another box's or the test's
    const ps = ssh(lab, "va", "ps -eo pid,args");
    expect(ps.stdout).toContain(lab.boxes.va.dir);
    expect(ps.stdout).not.toContain(lab.boxes.ad.dir);
    expect(ps.stdout).not.toMatch(/vitest|node /);
    expect(ps.stdout).toMatch(/^\s+1 /m);
  });

  it("without: ['rsync'] hides rsync on that box only; torch:false hides torch; python3 is Debian's", () => {
    const va = ssh(lab, "va", "command -v rsync; echo rc=$?; python3 -c 'import torch' 2>&1 | tail -1");
    expect(va.stdout).toMatch(/^rc=1$/m);
    expect(va.stdout).toMatch(/No module named 'torch'/);
    const g8 = ssh(lab, "g8", "command -v rsync; readlink -f \"$(command -v python3)\"; python3 -c 'import torch; print(\"torch\", torch.__version__)'");
    expect(g8.code, g8.stderr).toBe(0);
    expect(g8.stdout).toMatch(/rsync/);
    expect(g8.stdout).toMatch(/^\/usr\/bin\/python3(\.\d+)?$/m);
    expect(g8.stdout).toMatch(/^torch \d/m);
    expect(spawnSync("bash", ["-c", "command -v rsync"]).status).toBe(0);
  });

  it("a filled tmpfs makes the disk really full", () => {
    const r = ssh(lab, "full", "df -P /data | tail -1; head -c 1048576 /dev/zero > /data/more");
    expect(r.code).not.toBe(0);
    expect(lastPct(r.stdout)).toBeGreaterThanOrEqual(99);
    expect(r.stderr).toMatch(/No space left/);
  });

  it("box.exec / writeFile run inside the box and match what ssh sees; box.dir is shared", async () => {
    const box = lab.boxes.ad;
    await box.writeFile("/root/autodl-tmp/note.txt", "hello from the test\n");
    expect(ssh(lab, "ad", "cat /root/autodl-tmp/note.txt").stdout).toBe("hello from the test\n");
    const e = await box.exec("echo out; echo err >&2; hostname; exit 3");
    expect(e.code).toBe(3);
    expect(e.stdout).toBe(`out\n${box.hostname}\n`);
    expect(e.stderr).toBe("err\n");
    fs.writeFileSync(path.join(box.dir, "shared.txt"), "via dir\n");
    expect(ssh(lab, "ad", `cat ${box.dir}/shared.txt`).stdout).toBe("via dir\n");
    expect(fs.existsSync("/root/autodl-tmp")).toBe(false);
  });

  it("rotateHostKey makes strict OpenSSH refuse; retrust restores access on the same port", async () => {
    const box = lab.boxes.full;
    const port = box.port;
    const before = box.hostKey();
    await box.rotateHostKey();
    expect(box.port).toBe(port);
    expect(box.hostKey()).not.toBe(before);
    const r = ssh(lab, "full", "echo reached");
    expect(r.code).toBe(255);
    expect(r.stdout).not.toContain("reached");
    expect(r.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    lab.retrust("full");
    expect(ssh(lab, "full", "echo reached").stdout).toBe("reached\n");
  });

  it("the cut proxy drops an ssh stream after N bytes, counts cuts, and can be re-armed", async () => {
    const proxy = await lab.cutProxy("g8", { cutAfterBytes: 256 * 1024, maxCuts: 1 });
    const big = "head -c 4000000 /dev/zero | base64 -w0";
    const cut = await sshAsync(lab, proxy.alias, big);
    expect(cut.code).toBe(255);
    expect(cut.stdout.length).toBeLessThan(256 * 1024);
    expect(proxy.cuts).toBe(1);
    const whole = await sshAsync(lab, proxy.alias, big);
    expect(whole.code, whole.stderr).toBe(0);
    expect(whole.stdout.length).toBe(5333336);
    expect(proxy.cuts).toBe(1);
    proxy.setCutAfter(128 * 1024, 1);
    expect((await sshAsync(lab, proxy.alias, big)).code).toBe(255);
    expect(proxy.cuts).toBe(2);
  });

  it("reboot kills tmux and detached jobs on the box but keeps files, port and host key", async () => {
    const box = lab.boxes.va;
    const key = box.hostKey();
    const start = ssh(lab, "va", "echo kept > /workspace/f; tmux new-session -d -s job 'sleep 900'; nohup sleep 901 >/dev/null 2>&1 & tmux ls | wc -l");
    expect(start.stdout.trim()).toBe("1");
    const port = box.port;
    await box.reboot();
    expect(box.port).toBe(port);
    expect(box.hostKey()).toBe(key);
    const after = ssh(lab, "va", "cat /workspace/f; tmux ls 2>/dev/null | wc -l; pgrep -f 'sleep 90[01]' | wc -l");
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toBe("kept\n0\n0\n");
    // and the box says it has just booted; this machine's own boot time is untouched
    const boot = ssh(lab, "va", "sed -n 's/^btime //p' /proc/stat; cut -d' ' -f1 /proc/uptime").stdout.trim().split("\n");
    expect(Math.abs(Number(boot[0]) - Date.now() / 1000)).toBeLessThan(30);
    expect(Number(boot[1])).toBeLessThan(5);
    const hostBoot = Number(/^btime (\d+)$/m.exec(fs.readFileSync("/proc/stat", "utf8"))![1]);
    expect(hostBoot).toBeLessThan(Number(boot[0]) - 30);
  });

  it("the ssh2 library (what the server uses) can exec and sftp on a box", async () => {
    const { default: ssh2 } = await import("ssh2");
    const conn = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      conn.on("ready", () => resolve()).on("error", reject).connect({
        host: "127.0.0.1", port: lab.boxes.g8.port, username: "root",
        privateKey: fs.readFileSync(lab.identity), readyTimeout: 5000,
      });
    });
    try {
      const out = await new Promise<string>((resolve, reject) => {
        conn.exec("nvidia-smi --query-gpu=count --format=csv,noheader | head -1; echo $HOME", (err, stream) => {
          if (err) return reject(err);
          let text = "";
          stream.on("data", (d: Buffer) => { text += d.toString(); }).on("close", () => resolve(text));
          stream.stderr.resume();
        });
      });
      expect(out).toBe("8\n/root\n");
      const names = await new Promise<string[]>((resolve, reject) => {
        conn.sftp((err, sftp) => {
          if (err) return reject(err);
          sftp.writeFile("/root/sftp.txt", "via sftp", (e) => {
            if (e) return reject(e);
            sftp.readdir("/root", (e2, list) => (e2 ? reject(e2) : resolve(list.map((x) => x.filename))));
          });
        });
      });
      expect(names).toContain("sftp.txt");
      expect(await lab.boxes.g8.readFile("/root/sftp.txt")).toBe("via sftp");
    } finally {
      conn.end();
    }
  });

  it("connectServer drives the built server over stdio", async () => {
    if (!fs.existsSync(path.join(packageRoot(), "dist", "cli", "main.js"))) throw new Error("build first: npx tsc -p tsconfig.json");
    const s = await connectServer(lab.env);
    try {
      const tools = await s.client.listTools();
      const names = tools.tools.map((t) => t.name);
      expect(names).toContain("probe_env");
      expect(names).toContain("request_teardown");
      const r = await s.call("check_staleness", {});
      expect(typeof r.ok).toBe("boolean");
      expect(typeof r.isError).toBe("boolean");
      expect(Object.keys(r)).not.toContain("isError");
      expect(s.stderr()).toBe(""); // nothing on stderr in normal operation (RGT_DEBUG unset)
    } finally {
      await s.close();
    }
  }, 60_000);
});

describe("cut proxy byte accounting", () => {
  it("delivers exactly N bytes before the cut, then passes through once disarmed", async () => {
    const payload = Buffer.alloc(300_000, 7);
    const srv = net.createServer((c) => { c.on("error", () => undefined); c.end(payload); });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    const proxy = await startCutProxy(port, { cutAfterBytes: 100_000 });
    const fetchAll = () => new Promise<number>((resolve) => {
      let n = 0;
      const c = net.connect({ host: "127.0.0.1", port: proxy.port });
      c.on("data", (d) => { n += d.length; });
      c.on("close", () => resolve(n));
      c.on("error", () => undefined);
    });
    try {
      expect(await fetchAll()).toBe(100_000);
      expect(proxy.cuts).toBe(1);
      expect(await fetchAll()).toBe(100_000);
      expect(proxy.cuts).toBe(2);
      proxy.setCutAfter(null);
      expect(await fetchAll()).toBe(300_000);
      expect(proxy.cuts).toBe(2);
      expect(proxy.connections).toBe(3);
    } finally {
      await proxy.close();
      await new Promise((r) => srv.close(r));
    }
  });
});

describe("delay proxy", () => {
  it("adds its latency to each direction of a round trip and keeps the byte order of a large echo", async () => {
    const srv = net.createServer((c) => { c.on("error", () => undefined); c.pipe(c); });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    const proxy = await startCutProxy(port, { cutAfterBytes: null, delayMs: 60 });
    const payload = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 251));
    try {
      const c = net.connect({ host: "127.0.0.1", port: proxy.port });
      await new Promise<void>((r) => c.once("connect", () => r()));
      // one small round trip: at least 2 × 60 ms
      const t0 = Date.now();
      const first = new Promise<Buffer>((r) => c.once("data", (d) => r(d)));
      c.write("x");
      expect((await first).toString()).toBe("x");
      expect(Date.now() - t0).toBeGreaterThanOrEqual(115);
      // a bulk echo in many chunks comes back byte-identical
      const got: Buffer[] = [];
      let n = 0;
      const all = new Promise<void>((r) => c.on("data", (d: Buffer) => { got.push(d); n += d.length; if (n >= payload.length) r(); }));
      for (let i = 0; i < payload.length; i += 7000) c.write(payload.subarray(i, i + 7000));
      await all;
      expect(Buffer.concat(got).equals(payload)).toBe(true);
      c.destroy();
    } finally {
      await proxy.close();
      await new Promise((r) => srv.close(r));
    }
  });
});

describe("lab options and teardown", () => {
  it("hashes known_hosts, offers a locked key that cannot log in, and untrust makes the host unknown", async () => {
    const lab = await startLab([{ name: "h1", gpus: 0 }], { hashKnownHosts: true, encryptedKey: true });
    try {
      const kh = fs.readFileSync(lab.knownHosts, "utf8").trim().split("\n");
      expect(kh).toHaveLength(1);
      expect(kh[0]).toMatch(/^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 /);
      expect(kh[0]).not.toContain("127.0.0.1");
      const ok = ssh(lab, "h1", "command -v nvidia-smi; echo in");
      expect(ok.stdout).toBe("in\n");
      expect(lab.encryptedIdentity && fs.existsSync(lab.encryptedIdentity)).toBe(true);
      const locked = ssh(lab, "h1-locked", "echo in");
      expect(locked.code).toBe(255);
      expect(locked.stderr).toMatch(/Permission denied/);
      lab.untrust("h1");
      const unknown = ssh(lab, "h1", "echo in");
      expect(unknown.code).toBe(255);
      expect(unknown.stderr).toMatch(/Host key verification failed|No ED25519 host key is known/);
    } finally {
      await lab.stop();
    }
  }, 30_000);

  it("trustHostKeys:false leaves known_hosts empty so strict ssh refuses", async () => {
    const lab = await startLab([{ name: "u1" }], { trustHostKeys: false });
    try {
      expect(fs.readFileSync(lab.knownHosts, "utf8")).toBe("");
      const r = ssh(lab, "u1", "echo in");
      expect(r.code).toBe(255);
      expect(r.stderr).toMatch(/Host key verification failed|No ED25519 host key is known/);
    } finally {
      await lab.stop();
    }
  }, 30_000);

  it("stop() leaves no sshd, no process, no mount and no temp dir behind", async () => {
    const lab = await startLab([{ name: "s1", profile: "autodl" }, { name: "s2", gpus: 2 }]);
    const boxes = Object.values(lab.boxes);
    // leave work behind on purpose: a detached tmux session and a nohup'd sleeper
    expect(ssh(lab, "s1", "tmux new-session -d -s keep 'sleep 600'; nohup sleep 601 >/dev/null 2>&1 & echo ok").stdout).toBe("ok\n");
    const sshdPids = boxes.map((b) => b.sshdPid);
    const ports = boxes.map((b) => b.port);
    const nsPids = boxes.flatMap((b) => b.pids());
    expect(nsPids.length).toBeGreaterThanOrEqual(4);
    await lab.stop();
    for (const p of [...sshdPids, ...nsPids]) expect(live(p), `pid ${p}`).toBe(false);
    for (const b of boxes) expect(b.pids()).toEqual([]);
    for (const p of ports) expect(await connectRefused(p)).toBe(true);
    expect(fs.existsSync(lab.root)).toBe(false);
    expect(fs.readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(lab.root);
    const strays = fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e)).filter((e) => {
      try { return live(Number(e)) && fs.readFileSync(`/proc/${e}/cmdline`, "utf8").includes(lab.root); } catch { return false; }
    });
    expect(strays).toEqual([]);
  }, 30_000);

  it("refuses clearly when not root", () => {
    const entry = path.join(packageRoot(), "dist", "lab", "box.js");
    if (!fs.existsSync(entry)) throw new Error("build first: npx tsc -p tsconfig.json");
    const r = spawnSync(process.execPath, ["--input-type=module", "-e",
      `import { startLab } from ${JSON.stringify(entry)}; startLab([{name:"x"}]).then(() => process.exit(0), (e) => { console.error(e.message); process.exit(3); });`],
      { encoding: "utf8", uid: 65534, gid: 65534, cwd: "/" });
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/needs root/);
  });
});
