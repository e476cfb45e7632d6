/**
 * What the box does on its own between launch and pull, through the real server against real sshd boxes:
 * the disk gate on a really small data tmpfs (blocked with the numbers, nothing crashes mid-save, the
 * queue's other cells unaffected; a waiting cell starts once space is freed), max_hours enforced on the
 * box (stop_run's stop, checkpoints kept, reason recorded), park (approved on an AutoDL-profile box the
 * recording stand-in sees exactly one park, after the last roster is durable; unapproved, a roster that
 * never became durable, a vast.ai box: no park, and the result says why; AutoDL's real profile with no
 * on-box way: PARK_READY carried by later results and `rgt status`), and the China network (an AutoDL
 * cell sees HF_ENDPOINT, the mirrors, no_proxy and the proxy hook; its own env wins; a generic-ssh cell
 * sees none of them).
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer } from "../../src/lab/client.js";
import { packageRoot } from "../../src/common/config.js";
import { until, type R } from "../helpers/until.js";

type Srv = Awaited<ReturnType<typeof connectServer>>;
let lab: Lab;
let plain: Srv; // no elicitation, the package's own profiles
let human: Srv; // a human who approves by typing the host name; the lab's AutoDL profile has an on-box park stand-in
let asked: string[] = [];
let profDir: string;
const W = "/root/proj";

const MAIN = () => path.join(packageRoot(), "dist", "cli", "main.js");
/** `rgt approve <id>` typed into a real pseudo-terminal (script(1)), the way a human runs it */
function approveOnTty(id: string, typed: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn("script", ["-qec", `${process.execPath} ${MAIN()} approve ${id}`, "/dev/null"], { env: { ...process.env, ...lab.env, TERM: "dumb" }, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let sent = false;
    const timer = setTimeout(() => { p.kill("SIGKILL"); reject(new Error(`approve timed out: ${out}`)); }, 20_000);
    const onData = (d: Buffer) => { out += d.toString(); if (!sent && out.includes("Type the host name")) { sent = true; p.stdin.write(`${typed}\r`); } };
    p.stdout.on("data", onData);
    p.stderr.on("data", onData);
    p.on("exit", (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}
const settled = (srv: Srv, run_id: string) => until(`${run_id} settled`, () => srv.call("run_status", { run_id }), (s) => s.state !== "running");

/** A stand-in for the platform's on-box park: records its argv, when, and which rosters were durable then. */
const STANDIN = `#!/bin/bash
{ printf 'CALL %s %s\\n' "$(date +%s%N)" "$*"; find /root/autodl-fs/rgt -type f -name best.pth 2>/dev/null | sort | sed 's/^/SEEN /'; } >>/root/park-standin.log
`;

beforeAll(async () => {
  lab = await startLab([
    { name: "dg", gpus: 0, mounts: [{ path: "/data", size: "8m" }, { path: "/durable", size: "64m" }, { path: "/few", size: "64m", inodes: 40 }] },
    { name: "adl", profile: "autodl", gpus: 1 },
    { name: "adl2", profile: "autodl", gpus: 1 },
    { name: "vast", profile: "vastai", gpus: 1 },
  ]);
  for (const b of Object.values(lab.boxes)) {
    for (const [f, body] of Object.entries(SCRIPTS)) await b.writeFile(`${W}/${f}`, body);
    fs.writeFileSync(path.join(b.dir, "bin", "park-standin"), STANDIN, { mode: 0o755 });
  }
  // the lab's AutoDL profile: the package's, plus an on-box park command that resolves to the stand-in
  profDir = fs.mkdtempSync(path.join(lab.root, "profiles-"));
  for (const f of fs.readdirSync(path.join(packageRoot(), "profiles"))) fs.copyFileSync(path.join(packageRoot(), "profiles", f), path.join(profDir, f));
  const adl = fs.readFileSync(path.join(profDir, "autodl.md"), "utf8");
  fs.writeFileSync(path.join(profDir, "autodl.md"), adl.replace(/^park:\n  verb: (.*)\n/m, (m) => `${m}  on_box: { command: "park-standin 关机", verified: 2026-06 }\n`));
  expect(fs.readFileSync(path.join(profDir, "autodl.md"), "utf8")).toContain("park-standin");
  const env = { ...lab.env, RGT_WATCH_TICK_S: "1" };
  plain = await connectServer(env);
  human = await connectServer({ ...env, RGT_PROFILES_DIR: profDir }, {
    elicitation: (p) => { asked.push(String((p as R).message)); return { action: "accept", content: { confirm_host: String((p as R).message).match(/that (\S+) parks/)?.[1] ?? "" } }; },
  });
}, 180_000);
afterAll(async () => { await plain?.close(); await human?.close(); await lab?.stop(); });

// cells run small scripts in the workdir, the way a real trainer writes its own outputs
const mb = (n: number, f = "best.pth") => `bash mk.sh ${n} ${f}`;
const SCRIPTS: Record<string, string> = {
  "mk.sh": 'dd if=/dev/zero of="$RGT_OUTPUT_DIR/$2" bs=1M count="$1" status=none && echo wrote\n',
  "loop.sh": 'for i in $(seq 1 300); do echo "step $i" > "$RGT_OUTPUT_DIR/ckpt.txt"; echo "step $i"; sleep 0.2; done\n',
  "dump.sh": 'env | grep -E "^(HF_ENDPOINT|PIP_INDEX_URL|CONDA_CHANNELS|HF_HUB_ENABLE_HF_TRANSFER|no_proxy|NO_PROXY|http_proxy|RGT_LAB_NETWORK_TURBO)=" | sort > "$RGT_OUTPUT_DIR/env.txt"\n',
};

describe("probe_env on a fresh AutoDL box", () => {
  it("reports the box's own pip pointing nowhere as MIRRORS_MISSING", async () => {
    const r = (await plain.call("probe_env", { host: "adl" })) as R;
    expect(r.profile.name).toBe("autodl");
    expect(r.warnings.find((w: R) => w.code === "MIRRORS_MISSING")?.message).toMatch(/pip/);
  }, 60_000);
});

describe("disk gate", () => {
  it("an 8 MB data disk: the cell that would not fit is blocked with the numbers, nothing crashes mid-save, the other cells run", async () => {
    const r = (await plain.call("launch_queue", {
      host: "dg", run_name: "gate", workdir: W, data_dir: "/data", durable_dir: "/durable", expect: ["best.pth"],
      cells: [
        { name: "a", command: mb(3) },
        { name: "big", command: mb(50), min_free_gb: 0.05 },
        { name: "b", command: mb(3) },
        { name: "c", command: mb(3) },
      ],
    })) as R;
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.disk_gate).toMatchObject({ on_disk_low: "skip", source: "the last finished cell's outputs", per_cell: 1 });
    const s = await settled(plain, "gate");
    expect(s.summary, "the line a client shows says the run's state").toMatch(/^Run gate is blocked \((2 done, 2 blocked|2 blocked, 2 done)\)/);
    const by = Object.fromEntries(s.cells.map((c: R) => [c.name, c]));
    expect(s.state, JSON.stringify(s)).toBe("blocked");
    expect(by.a.state).toBe("done");
    expect(by.b.state).toBe("done"); // the default budget (what a left, ~3 MB) still fit after a
    // big: its own budget, 50 MB, against the ~5 MB left on /data
    expect(by.big.state).toBe("blocked");
    expect(by.big.blocked).toMatchObject({ code: "DISK_LOW", dir: "/data/rgt-out/gate", need_bytes: 50_000_000 });
    expect(by.big.blocked.free_bytes).toBeLessThan(8 * 2 ** 20);
    // near 2 KB the reply drops reasons before numbers (run_status's fit): the numbers are in blocked, the whole
    // reason on the box; where the reason survived it is the box's
    if (by.big.reason !== undefined) expect(by.big.reason).toMatch(/^DISK_LOW: \/data\/rgt-out\/gate has \d+ bytes/);
    expect((await lab.boxes.dg.exec("cat ~/.rgt/runs/gate/cells/big/reason")).stdout).toMatch(/has \d+ bytes \/ \d+ inodes free, the cell needs 50000000 bytes \/ \d+ inodes$/m);
    expect(Buffer.byteLength(JSON.stringify(s))).toBeLessThanOrEqual(2500);
    // c: the default budget from the last finished cell (b) no longer fits — it is not started to die mid-save
    expect(by.c.state).toBe("blocked");
    expect(by.c.blocked.need_bytes).toBeGreaterThanOrEqual(3 * 2 ** 20);
    expect(by.c.blocked.free_bytes).toBeLessThan(by.c.blocked.need_bytes);
    expect(s.warnings.map((w: R) => w.code)).toContain("DISK_LOW");
    expect(s.next_action).toMatch(/DISK_LOW/);
    // the budget list is the first thing a reply near 2 KB drops (each blocked cell keeps its numbers)
    const budgets = s.while_run.disk_budget as R[] | undefined;
    if (budgets) expect(budgets.some((b) => /last finished cell b/.test(b.source))).toBe(true);
    const box = lab.boxes.dg;
    for (const c of ["big", "c"]) {
      const log = await box.exec(`cat ~/.rgt/runs/gate/cells/${c}/log`);
      expect(log.stdout).toMatch(/blocked: DISK_LOW/);
      expect(log.stdout).not.toMatch(/wrote|done:|start cell/);
      expect((await box.exec(`test -e /data/rgt-out/gate/${c}/best.pth`)).code).toBe(1);
    }
    for (const c of ["a", "b"]) expect((await box.exec(`cmp /data/rgt-out/gate/${c}/best.pth /durable/rgt/gate/${c}/best.pth`)).code).toBe(0);
  }, 120_000);

  it("an inode-starved mount: plenty of bytes, too few inodes for the cell's budget → blocked on inodes", async () => {
    const r = (await plain.call("launch_queue", {
      host: "dg", run_name: "gate-inodes", workdir: W, data_dir: "/few", durable_dir: "", min_free_inodes: 100, cells: [{ name: "i", command: mb(1) }],
    })) as R;
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const s = await settled(plain, "gate-inodes");
    expect(s.state, JSON.stringify(s)).toBe("blocked");
    expect(s.cells[0].blocked).toMatchObject({ dir: "/few", need_inodes: 100 });
    expect(s.cells[0].blocked.free_inodes).toBeLessThan(100);
    expect(s.cells[0].blocked.free_bytes).toBeGreaterThan(32 * 2 ** 20);
  }, 60_000);

  it("on_disk_low: wait re-checks and starts the cell once space is freed", async () => {
    const box = lab.boxes.dg;
    const r = (await plain.call("launch_queue", {
      host: "dg", run_name: "gate-wait", workdir: W, data_dir: "/data", durable_dir: "/durable", on_disk_low: "wait", disk_wait_s: 120,
      cells: [{ name: "w", command: mb(4, "x.bin"), min_free_gb: 0.004, env: { RGT_DISK_RECHECK_S: "1" } }],
    })) as R;
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const waiting = await until("waiting", () => plain.call("run_status", { run_id: "gate-wait" }), (s) => s.cells?.[0]?.state === "blocked");
    expect(waiting.state).toBe("running");
    expect(waiting.cells[0].blocked.waiting_until).toBeGreaterThan(0);
    await box.exec("rm -f /data/rgt-out/gate/a/best.pth /data/rgt-out/gate/b/best.pth");
    const s = await settled(plain, "gate-wait");
    expect(s.state, JSON.stringify(s)).toBe("done");
    expect((await box.exec("cat ~/.rgt/runs/gate-wait/cells/w/log")).stdout).toMatch(/disk gate passed after waiting/);
  }, 120_000);
});

describe("max_hours", () => {
  it("the box stops the live cells at the cap like stop_run: checkpoints kept, the run stopped with the reason", async () => {
    const box = lab.boxes.dg;
    const loop = "bash loop.sh";
    const r = (await plain.call("launch_queue", {
      host: "dg", run_name: "capped", workdir: W, durable_dir: "/durable", max_hours: 0.0015,
      cells: [{ name: "long", command: loop }, { name: "next", command: "echo never" }],
    })) as R;
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.max_hours).toBe(0.0015);
    const s = await until("capped", () => plain.call("run_status", { run_id: "capped" }), (x) => x.state !== "running", 60_000);
    expect(s.state, JSON.stringify(s)).toBe("stopped");
    expect(s.cells.map((c: R) => c.state)).toEqual(["stopped", "stopped"]);
    expect(s.cells[0].reason).toMatch(/max_hours 0.0015 reached/);
    expect(s.while_run.hosts[0]).toMatchObject({ max_hours: 0.0015 });
    expect(s.while_run.hosts[0].stop_reason).toMatch(/^max_hours 0.0015 reached at /);
    expect(s.next_action).toMatch(/time cap/);
    const ck = await box.exec(`cat ${W}/rgt-out/capped/long/ckpt.txt`);
    expect(ck.stdout).toMatch(/^step \d+/);
    const pid = (await box.exec("cat ~/.rgt/runs/capped/cells/long/pid")).stdout.trim();
    expect((await box.exec(`kill -0 ${pid}`)).code).not.toBe(0);
    expect((await box.exec("cat ~/.rgt/runs/capped/cells/next/log 2>/dev/null")).stdout).not.toMatch(/never/);
  }, 90_000);
});

describe("park", () => {
  const cells = [
    { name: "p1", command: `sleep 1; ${mb(1)}` },
    { name: "p2", command: `sleep 2; ${mb(1)}` },
  ];
  it("approved on an AutoDL-profile box: the stand-in sees exactly one park, after the last roster is durable", async () => {
    asked = [];
    const r = (await human.call("launch_queue", { host: "adl", profile: "autodl", run_name: "park-ok", workdir: W, cells, expect: ["best.pth"], on_done: "park" })) as R;
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatch(/15-day clock/);
    expect(r.park).toMatchObject({ armed: true, on_box: true, approved_via: "elicitation", verb: "关机 (shutdown)" });
    expect(r.park.still_ticking.join(" ")).toMatch(/storage/);
    const s = await until("parked", () => human.call("run_status", { run_id: "park-ok" }), (x) => x.while_run?.hosts?.[0]?.park === "done", 60_000);
    expect(s.state).toBe("done");
    const log = (await lab.boxes.adl.readFile("/root/park-standin.log")).toString();
    const calls = log.split("\n").filter((l) => l.startsWith("CALL"));
    expect(calls, log).toHaveLength(1);
    expect(calls[0]).toMatch(/ 关机$/);
    expect(log).toContain("SEEN /root/autodl-fs/rgt/park-ok/p1/best.pth");
    expect(log).toContain("SEEN /root/autodl-fs/rgt/park-ok/p2/best.pth");
    // the last roster was durable before the park: its file is older than the call
    const mtime = Number((await lab.boxes.adl.exec("stat -c %Y /root/autodl-fs/rgt/park-ok/p2/best.pth")).stdout.trim());
    expect(Number(calls[0].split(" ")[1]) / 1e9).toBeGreaterThanOrEqual(mtime);
    expect((await lab.boxes.adl.exec("cat ~/.rgt/runs/park-ok/park/roster.sha256 | wc -l")).stdout.trim()).toBe("2");
    // the same approval is spent: a status poll or a second watcher does not park again
    await new Promise((res) => setTimeout(res, 2500));
    expect((await lab.boxes.adl.readFile("/root/park-standin.log")).toString().split("\n").filter((l) => l.startsWith("CALL"))).toHaveLength(1);
  }, 90_000);

  it("approved afterwards with `rgt approve` on a TTY: the relaunch with park_approval_id parks the finished sweep once; reuse is refused", async () => {
    const p = await connectServer({ ...lab.env, RGT_PROFILES_DIR: profDir, RGT_WATCH_TICK_S: "1" });
    const calls = async () => (await lab.boxes.adl.readFile("/root/park-standin.log")).toString().split("\n").filter((l) => l.startsWith("CALL"));
    try {
      const args = { host: "adl", profile: "autodl", run_name: "park-cli", workdir: W, cells, expect: ["best.pth"], on_done: "park" };
      const r = (await p.call("launch_queue", args)) as R;
      expect(r.park.refused.code, JSON.stringify(r.park)).toBe("APPROVAL_REQUIRED");
      expect((await settled(p, "park-cli")).state).toBe("done");
      expect(await calls()).toHaveLength(1); // the earlier approved run's park only
      const ok = await approveOnTty(r.park.approval_id, "adl");
      expect(ok.out).toContain("Park request");
      expect(ok.out).toMatch(/still ticking\s+data-disk storage/);
      expect(ok.code, ok.out).toBe(0);
      const again = (await p.call("launch_queue", { ...args, park_approval_id: r.park.approval_id })) as R;
      expect(again.park).toMatchObject({ armed: true, approved_via: "approval_id" });
      expect(again.skipped_done.sort()).toEqual(["p1", "p2"]);
      await until("parked", () => p.call("run_status", { run_id: "park-cli" }), (x) => x.while_run?.hosts?.[0]?.park === "done", 30_000);
      expect(await calls()).toHaveLength(2);
      const reuse = (await p.call("launch_queue", { ...args, park_approval_id: r.park.approval_id })) as R;
      expect(reuse.park.refused.code).toBe("APPROVAL_INVALID");
      await new Promise((res) => setTimeout(res, 2000));
      expect(await calls()).toHaveLength(2);
    } finally { await p.close(); }
  }, 90_000);

  it("unapproved: no park, the result says why and how a human approves it", async () => {
    const p = await connectServer({ ...lab.env, RGT_PROFILES_DIR: profDir, RGT_WATCH_TICK_S: "1" });
    try {
      const r = (await p.call("launch_queue", { host: "adl2", profile: "autodl", run_name: "park-unapproved", workdir: W, cells, expect: ["best.pth"], on_done: "park" })) as R;
      expect(r.ok, JSON.stringify(r)).toBe(true);
      expect(r.park).toMatchObject({ armed: false, refused: { code: "APPROVAL_REQUIRED" } });
      expect(r.park.how_to_approve).toMatch(/^rgt approve apv_/);
      expect(r.warnings.map((w: R) => w.code)).toContain("APPROVAL_REQUIRED");
      // an approval id that is not approved does not arm it either
      const again = (await p.call("launch_queue", { host: "adl2", profile: "autodl", run_name: "park-unapproved", workdir: W, cells, expect: ["best.pth"], on_done: "park", park_approval_id: r.park.approval_id })) as R;
      expect(again.park.armed).toBe(false);
      const s = await settled(p, "park-unapproved");
      expect(s.state).toBe("done");
      expect(s.while_run.hosts[0].park).toBe("off");
    } finally { await p.close(); }
    expect((await lab.boxes.adl2.exec("cat /root/park-standin.log 2>/dev/null | grep -c CALL")).stdout.trim()).toBe("0");
  }, 90_000);

  it("approved but a roster never became durable: no park, and run_status says which", async () => {
    const r = (await human.call("launch_queue", {
      host: "adl2", profile: "autodl", run_name: "park-missing", workdir: W, expect: ["best.pth"], on_done: "park",
      cells: [{ name: "ok", command: mb(1) }, { name: "forgot", command: "echo trained but saved nothing" }],
    })) as R;
    expect(r.park.armed, JSON.stringify(r.park)).toBe(true);
    const s = await until("decided", () => human.call("run_status", { run_id: "park-missing" }), (x) => !["armed", "off", undefined].includes(x.while_run?.hosts?.[0]?.park), 60_000);
    expect(s.while_run.hosts[0].park).toBe("not_parked");
    expect(s.while_run.hosts[0].park_reason).toMatch(/cell forgot is failed/);
    expect((await lab.boxes.adl2.exec("cat /root/park-standin.log 2>/dev/null | grep -c CALL")).stdout.trim()).toBe("0");
  }, 90_000);

  it("a vast.ai box: park refused with VAST3 before anything starts, the run goes on unparked", async () => {
    const r = (await human.call("launch_queue", { host: "vast", profile: "vastai", run_name: "park-vast", workdir: W, cells, expect: ["best.pth"], on_done: "park" })) as R;
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.park.armed).toBe(false);
    expect(r.park.refused.code).toBe("PARK_REFUSED");
    expect(r.park.refused.reason).toMatch(/VAST3/);
    expect(r.park.refused.reason).toMatch(/bound to the GPU/);
    await settled(human, "park-vast");
    expect((await lab.boxes.vast.exec("cat /root/park-standin.log 2>/dev/null | grep -c CALL")).stdout.trim()).toBe("0");
  }, 90_000);

  it("AutoDL's own profile documents no on-box 关机: PARK_READY, carried by later results and `rgt status`", async () => {
    const r = (await plain.call("launch_queue", { host: "adl2", profile: "autodl", run_name: "park-ready", workdir: W, cells, expect: ["best.pth"], on_done: "park" })) as R;
    expect(r.park).toMatchObject({ armed: true, on_box: false });
    const s = await until("ready", () => plain.call("run_status", { run_id: "park-ready" }), (x) => x.while_run?.hosts?.[0]?.park === "ready", 60_000);
    expect(s.warnings.find((w: R) => w.code === "PARK_READY")?.message).toMatch(/bills idle until a human/);
    const later = (await plain.call("probe_env", { host: "adl2" })) as R;
    expect(later.warnings.map((w: R) => w.code)).toContain("PARK_READY");
    const st = spawnSync(process.execPath, [path.join(packageRoot(), "dist", "cli", "main.js"), "status", "--json"], { env: { ...process.env, ...lab.env }, encoding: "utf8" });
    const host = JSON.parse(st.stdout).hosts.find((h: R) => h.host === "adl2");
    expect(host.park_ready).toMatch(/PARK_READY since .*billing idle/);
    expect((await lab.boxes.adl2.exec("cat /root/park-standin.log 2>/dev/null | grep -c CALL")).stdout.trim()).toBe("0");
  }, 90_000);
});

describe("China network", () => {
  const dump = "bash dump.sh";
  it("an AutoDL cell sees HF_ENDPOINT, the mirrors, no_proxy and the proxy hook; its own env wins; the box's pip points at the mirror", async () => {
    const r = (await plain.call("launch_queue", {
      host: "adl", profile: "autodl", run_name: "net-adl", workdir: W,
      cells: [{ name: "n1", command: dump }, { name: "n2", command: dump, env: { HF_ENDPOINT: "https://example.invalid" } }],
    })) as R;
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.network).toMatchObject({ profile: "autodl", env: { HF_ENDPOINT: "https://hf-mirror.com", PIP_INDEX_URL: "https://pypi.tuna.tsinghua.edu.cn/simple" }, proxy_hook: expect.stringContaining("/etc/network_turbo"), cell_overrides: { n2: ["HF_ENDPOINT"] } });
    expect(r.network.no_proxy_add).toContain(".hf-mirror.com");
    expect(r.network.box_setup.join(" ")).toMatch(/pip (set|ok)/);
    expect(Buffer.byteLength(JSON.stringify(r))).toBeLessThan(2500);
    await settled(plain, "net-adl");
    const e1 = (await lab.boxes.adl.readFile("/root/autodl-tmp/rgt-out/net-adl/n1/env.txt")).toString();
    expect(e1).toContain("HF_ENDPOINT=https://hf-mirror.com\n");
    expect(e1).toContain("PIP_INDEX_URL=https://pypi.tuna.tsinghua.edu.cn/simple\n");
    expect(e1).toMatch(/CONDA_CHANNELS=https:\/\/mirrors\.tuna/);
    expect(e1).toContain("RGT_LAB_NETWORK_TURBO=1\n");
    expect(e1).toContain("http_proxy=http://127.0.0.1:1\n");
    expect(e1).toMatch(/^no_proxy=.*\.hf-mirror\.com.*\.modelscope\.cn/m);
    expect(e1).toMatch(/^NO_PROXY=.*\.tuna\.tsinghua\.edu\.cn/m);
    const e2 = (await lab.boxes.adl.readFile("/root/autodl-tmp/rgt-out/net-adl/n2/env.txt")).toString();
    expect(e2).toContain("HF_ENDPOINT=https://example.invalid\n");
    expect((await lab.boxes.adl.exec("cat ~/.config/pip/pip.conf")).stdout).toContain("index-url = https://pypi.tuna.tsinghua.edu.cn/simple");
    // idempotent: a second launch finds it in place
    const again = (await plain.call("launch_queue", { host: "adl", profile: "autodl", run_name: "net-adl-2", workdir: W, cells: [{ name: "n1", command: "true" }] })) as R;
    expect(again.network.box_setup.join(" ")).toMatch(/pip ok/);
    expect((await lab.boxes.adl.exec("grep -c index-url ~/.config/pip/pip.conf")).stdout.trim()).toBe("1");
    expect(((await plain.call("probe_env", { host: "adl", deep: true })) as R).warnings.map((w: R) => w.code)).not.toContain("MIRRORS_MISSING");
  }, 90_000);

  it("a generic-ssh cell sees none of them", async () => {
    const r = (await plain.call("launch_queue", { host: "dg", profile: "generic-ssh", run_name: "net-gen", workdir: W, cells: [{ name: "g", command: dump }] })) as R;
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.network).toBeUndefined();
    await settled(plain, "net-gen");
    expect((await lab.boxes.dg.exec(`cat ${W}/rgt-out/net-gen/g/env.txt`)).stdout).toBe("");
    expect((await lab.boxes.dg.exec("test -e ~/.config/pip/pip.conf")).code).toBe(1);
  }, 60_000);
});
