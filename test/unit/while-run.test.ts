/**
 * The while-run pieces that need no box: park policy from the profiles (AutoDL allowed, vast.ai VAST3 and
 * RunPod refused, generic none), the frontmatter's park rules, what the cells' env files get (budget,
 * mirrors, watcher), reading the GATE/WATCH rows back, the run-level state, and scripts/run_watch.sh's
 * park decision run for real (bash) over hand-made state dirs: one park per approval, none when a roster
 * is missing or lies on a mount the park does not keep.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { getProfile } from "../../src/knowledge/profiles.js";
import { ProfileFrontmatterSchema, type Profile } from "../../src/knowledge/schema.js";
import { keptByPark, planPark } from "../../src/backends/park.js";
import { cellEnvAdditions, mirrorEnv, networkView, parseGate, parseWatch, runEnvAdditions, watchEnv, whileRunView } from "../../src/backends/while_run.js";
import { summarize } from "../../src/backends/index.js";
import { classifyCell, parseStatus } from "../../src/backends/classify.js";
import { inlineIncludes } from "../../src/remote/pool.js";
import type { CellStatus } from "../../src/backends/types.js";

const adl = getProfile("autodl")!;
const ask = (profile: Profile | undefined, over: Record<string, unknown> = {}) => ({ hosts: ["h"], run_id: "r", profile, expect: ["best.pth"], backend: "tmux", ...over });

describe("planPark", () => {
  it("AutoDL: 关机 keeps every mount, nothing on-box documented (PARK_READY path), still-ticking facts carried", () => {
    const p = planPark(ask(adl));
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(p.verb).toBe("关机 (shutdown)");
    expect(p.command).toBe("");
    expect(p.mounts.every((m) => m.keeps)).toBe(true);
    expect(p.still_ticking.join(" ")).toMatch(/storage/);
    expect(p.still_ticking.join(" ")).toMatch(/15 days/);
  });
  it("refuses vast.ai (VAST3), RunPod (stop wipes the container disk), generic-ssh (none documented), no profile", () => {
    const v = planPark(ask(getProfile("vastai")));
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.reason).toMatch(/VAST3.*bound to the GPU/);
    const rp = planPark(ask(getProfile("runpod")));
    if (!rp.ok) expect(rp.reason).toMatch(/wipes the container disk/); else throw new Error("runpod parked");
    const g = planPark(ask(getProfile("generic-ssh")));
    if (!g.ok) expect(g.reason).toMatch(/documents no reversible meter-stop/); else throw new Error("generic parked");
    expect(planPark(ask(undefined)).ok).toBe(false);
  });
  it("refuses several hosts, no roster, a backend without a watcher, and a roster dir on a mount the park does not keep", () => {
    const reason = (a: ReturnType<typeof ask>) => { const p = planPark(a); return p.ok ? "" : p.reason; };
    expect(reason(ask(adl, { hosts: ["a", "b"] }))).toMatch(/one host/);
    expect(reason(ask(adl, { expect: [] }))).toMatch(/roster/);
    expect(reason(ask(adl, { backend: "slurm" }))).toMatch(/no on-box watcher/);
    const lossy = { ...adl, park: { ...adl.park!, keeps_mounts: ["/", "/root/autodl-tmp"] } } as Profile;
    expect(reason(ask(lossy))).toMatch(/\/root\/autodl-fs, on a mount 关机 \(shutdown\) does not keep/);
  });
  it("keptByPark takes the longest listed mount", () => {
    const p = { ...adl, park: { ...adl.park!, keeps_mounts: ["/root/autodl-fs"] } } as Profile;
    expect(keptByPark(p, "/root/autodl-fs/rgt/x")).toBe(true);
    expect(keptByPark(p, "/root/autodl-tmp/x")).toBe(false);
    expect(keptByPark(p, "/root/autodl-fsx")).toBe(false);
  });
});

describe("park frontmatter", () => {
  const base = () => JSON.parse(JSON.stringify({ ...adl, name: undefined, body: undefined, file: undefined }));
  it("a refused park needs why_not; kept mounts must be listed; a safe park names a reversible compute-stopping action", () => {
    const a = base(); a.park = { ...a.park, safe: false }; delete a.park.why_not;
    expect(ProfileFrontmatterSchema.safeParse(a).success).toBe(false);
    const b = base(); b.park.keeps_mounts = ["/nowhere"];
    expect(ProfileFrontmatterSchema.safeParse(b).success).toBe(false);
    const c = base(); c.park.verb = "释放 (release)";
    expect(ProfileFrontmatterSchema.safeParse(c).success).toBe(false);
    expect(ProfileFrontmatterSchema.safeParse(base()).success).toBe(true);
  });
});

describe("env files", () => {
  it("budget in bytes, the cell's own in its env0; mirrors only on China profiles; cell overrides named", () => {
    expect(runEnvAdditions({ min_free_gb: 1.5, min_free_inodes: 10, on_disk_low: "wait", disk_wait_s: 60 }, undefined)).toEqual({
      RGT_MIN_FREE_BYTES: "1500000000", RGT_MIN_FREE_INODES: "10", RGT_ON_DISK_LOW: "wait", RGT_DISK_WAIT_S: "60",
    });
    expect(cellEnvAdditions({ name: "c", command: "x", env: {}, min_free_gb: 0.001 })).toEqual({ RGT_MIN_FREE_BYTES: "1000000" });
    const m = mirrorEnv(adl)!;
    expect(m.env.HF_ENDPOINT).toBe("https://hf-mirror.com");
    expect(m.env.PIP_INDEX_URL).toMatch(/tuna/);
    expect(m.env.RGT_NO_PROXY_ADD.split(",")).toContain(".modelscope.cn");
    expect(m.proxy_hook).toMatch(/network_turbo/);
    expect(mirrorEnv(getProfile("generic-ssh"))).toBeUndefined();
    expect(mirrorEnv(getProfile("vastai"))).toBeUndefined();
    const view = networkView(adl, [{ name: "a", command: "x", env: { HF_ENDPOINT: "y", FOO: "1" } }, { name: "b", command: "x", env: {} }], [])!;
    expect(view.cell_overrides).toEqual({ a: ["HF_ENDPOINT"] });
    expect(JSON.stringify(view).length).toBeLessThan(1200);
  });
  it("watch.env0: cap in seconds, an unarmed park is written as 0 so a relaunch without approval disarms it", () => {
    const w = watchEnv({ max_hours: 0.5, park: { token: "t", verb: "v", command: "c", mounts: [{ path: "/", keeps: true }, { path: "/x", keeps: false }] } }, { watch: "/w", stop: "/s" });
    expect(w).toMatchObject({ RGT_MAX_S: "1800", RGT_PARK: "1", RGT_PARK_TOKEN: "t", RGT_PARK_CMD: "c", RGT_PARK_MOUNTS: "1 /\n0 /x", RGT_STOP_SCRIPT: "/s" });
    expect(watchEnv(undefined, { watch: "/w", stop: "/s" })).toMatchObject({ RGT_PARK: "0", RGT_MAX_S: "" });
  });
});

describe("reading back", () => {
  it("GATE and WATCH rows", () => {
    const b = parseStatus("h", [
      "NOW\t100\t5\t1",
      "GATE\tc\t5000000 2 default(last finished cell a: 5000000 bytes, 2 files)\t100 5000000 7 2 - /data/out",
      "GATE\td\t0 100 set\t\t",
      "WATCH\t90\t0.01\tmax_hours 0.01 reached at X\t1\t0\tnot_parked\tnot parked: cell c is blocked\t95",
    ].join("\n"));
    expect(b.gates!.get("c")).toEqual({ need_bytes: 5000000, need_inodes: 2, source: "default(last finished cell a: 5000000 bytes, 2 files)", blocked: { code: "DISK_LOW", dir: "/data/out", free_bytes: 100, need_bytes: 5000000, free_inodes: 7, need_inodes: 2 } });
    expect(b.gates!.get("d")!.blocked).toBeUndefined();
    expect(b.watch).toMatchObject({ deadline: 90, max_hours: 0.01, park_armed: true, watcher_alive: false, park_state: "not_parked" });
    const v = whileRunView(new Map([["h", b.watch!]]), [...b.gates!].map(([cell, gate]) => ({ cell, gate })))!;
    expect((v.hosts as Record<string, unknown>[])[0]).toMatchObject({ park: "not_parked", stop_reason: "max_hours 0.01 reached at X" });
    expect(v.disk_budget).toHaveLength(2);
    expect(parseWatch(["WATCH", "", "", "", "0", "0", "", "", ""])).toEqual({ deadline: undefined, max_hours: undefined, park_armed: false, watcher_alive: false });
    expect(parseGate("1 2 set", "- 1 - 2 99 /d").blocked).toMatchObject({ free_bytes: undefined, waiting_until: 99 });
  });
  it("a cell gone while the box's time cap is stopping the run reads stopped, not vanished", () => {
    const rows = (watch: string) => parseStatus("h", ["NOW\t100\t50\t1", "CELL\tc\trunning\t\t0\t10\t90\t0\t0\t80\t\tTERM 99\t\t\t\t4242\t\t\t0", "LANE\tL1\t0\tTERM 99\tc,\t", watch].join("\n"));
    const cell = { name: "c", host: "h", gpu_indices: [], output_dir: "/o" };
    const stopping = classifyCell(rows("WATCH\t90\t0.01\tmax_hours 0.01 reached at X\t0\t1\t\t\t"), rows("").cells.get("c"), cell, { stall_after_s: 600, tail_lines: 3 });
    expect(stopping).toMatchObject({ state: "stopped", cause: { cause: "stopped", evidence: "max_hours 0.01 reached at X" } });
    expect(classifyCell(rows(""), rows("").cells.get("c"), cell, { stall_after_s: 600, tail_lines: 3 }).state).toBe("vanished");
  });
  it("run state: blocked, waiting counts as running, stopped only with the box's stop reason", () => {
    const C = (state: CellStatus["state"], extra: Partial<CellStatus> = {}): CellStatus => ({ name: state, host: "h", state, log_age_s: 0, ...extra });
    expect(summarize([C("done"), C("blocked", { blocked: { code: "DISK_LOW", dir: "/d" } })]).state).toBe("blocked");
    expect(summarize([C("done"), C("blocked", { blocked: { code: "DISK_LOW", dir: "/d", waiting_until: 5 } })]).state).toBe("running");
    expect(summarize([C("stopped"), C("done")], "max_hours 1 reached").state).toBe("stopped");
    expect(summarize([C("stopped"), C("done")]).state).toBe("failed");
    expect(summarize([C("failed"), C("blocked")]).state).toBe("failed");
  });
});

describe("run_watch.sh park decision (bash, hand-made state dirs)", () => {
  const scripts = path.resolve(__dirname, "..", "..", "scripts");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-watch-"));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const watch = path.join(tmp, "run_watch.sh");
  fs.writeFileSync(watch, inlineIncludes(fs.readFileSync(path.join(scripts, "run_watch.sh"), "utf8"), scripts));
  const env0 = (o: Record<string, string>) => Object.entries(o).map(([k, v]) => `${k}=${v}\0`).join("");

  function run(name: string, cells: Record<string, { state: string; roster?: boolean }>, mounts: string, cmd?: string) {
    const sd = path.join(tmp, name), dur = path.join(tmp, `${name}-durable`), calls = path.join(tmp, `${name}.calls`);
    fs.mkdirSync(path.join(sd, "lanes"), { recursive: true });
    fs.writeFileSync(path.join(sd, "run.env0"), env0({ RGT_RUN_ID: name, RGT_DURABLE_ROOT: dur }));
    fs.writeFileSync(path.join(sd, "expect"), "best.pth\n");
    for (const [c, v] of Object.entries(cells)) {
      fs.mkdirSync(path.join(sd, "cells", c), { recursive: true });
      fs.writeFileSync(path.join(sd, "cells", c, "state"), `${v.state}\n`);
      fs.writeFileSync(path.join(sd, "cells", c, "env0"), env0({ RGT_OUTPUT_DIR: path.join(tmp, "out", c) }));
      if (v.roster) { fs.mkdirSync(path.join(dur, "rgt", name, c), { recursive: true }); fs.writeFileSync(path.join(dur, "rgt", name, c, "best.pth"), c); }
    }
    fs.writeFileSync(path.join(sd, "watch.env0"), env0({ RGT_PARK: "1", RGT_PARK_TOKEN: "tok", RGT_PARK_VERB: "stop", RGT_PARK_CMD: cmd ?? `echo parked >>${calls}`, RGT_PARK_MOUNTS: mounts, RGT_WATCH_TICK_S: "1" }));
    const r = spawnSync("bash", [watch, sd], { encoding: "utf8", timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    const read = (f: string) => (fs.existsSync(path.join(sd, "park", f)) ? fs.readFileSync(path.join(sd, "park", f), "utf8").trim() : "");
    return { sd, state: read("state"), reason: read("reason"), calls: fs.existsSync(calls) ? fs.readFileSync(calls, "utf8").split("\n").filter(Boolean).length : 0, rerun: () => spawnSync("bash", [watch, sd], { encoding: "utf8" }) };
  }

  it("every roster durable on a kept mount: parks once, hashes recorded; the same token never parks again", () => {
    const r = run("ok", { a: { state: "done", roster: true }, b: { state: "done", roster: true } }, `1 /\n0 /nope`);
    expect(r.state).toBe("done");
    expect(r.calls).toBe(1);
    expect(fs.readFileSync(path.join(r.sd, "park", "roster.sha256"), "utf8").trim().split("\n")).toHaveLength(2);
    r.rerun();
    expect(fs.readFileSync(path.join(tmp, "ok.calls"), "utf8").trim().split("\n")).toHaveLength(1);
  });
  it("a missing roster, a cell not done, a roster on a mount the park drops: not parked, with the reason", () => {
    const miss = run("miss", { a: { state: "done", roster: true }, b: { state: "done" } }, "1 /");
    expect([miss.state, miss.calls]).toEqual(["not_parked", 0]);
    expect(miss.reason).toMatch(/roster of b is not durable/);
    const failed = run("failed", { a: { state: "failed" } }, "1 /");
    expect(failed.reason).toMatch(/cell a is failed, not done/);
    const drop = run("drop", { a: { state: "done", roster: true } }, `1 /\n0 ${tmp}`);
    expect([drop.state, drop.calls]).toEqual(["not_parked", 0]);
    expect(drop.reason).toMatch(/on a mount the stop does not keep/);
  });
  it("no on-box command documented: PARK_READY (state ready), nothing run", () => {
    const r = run("ready", { a: { state: "done", roster: true } }, "1 /", "");
    expect([r.state, r.calls]).toEqual(["ready", 0]);
    expect(r.reason).toMatch(/no on-box way/);
  });
});

describe("china_mirrors.sh (bash, a temp HOME)", () => {
  const script = path.resolve(__dirname, "..", "..", "scripts", "china_mirrors.sh");
  const run = (home: string, ...args: string[]) => {
    const r = spawnSync("bash", [script, ...args], { encoding: "utf8", env: { PATH: process.env.PATH, HOME: home } });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout;
  };
  it("sets pip, conda and the HF cache once, then reports them ok; --check writes nothing; a user's own index is kept", () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-mirrors-"));
    try {
      const args = ["https://pypi.example.cn/simple", "~/hf", "https://conda.example.cn/main"];
      expect(run(home, "--check", ...args)).toMatch(/^pip missing.*\nconda missing.*\nhf_home missing/);
      expect(fs.existsSync(path.join(home, ".config"))).toBe(false);
      expect(run(home, ...args)).toMatch(/^pip set .*\nconda set .*\nhf_home created /);
      expect(run(home, ...args)).toMatch(/^pip ok .*\nconda ok .*\nhf_home ok /);
      expect(fs.readFileSync(path.join(home, ".config", "pip", "pip.conf"), "utf8")).toBe("[global]\nindex-url = https://pypi.example.cn/simple\n");
      expect(fs.readFileSync(path.join(home, ".condarc"), "utf8").match(/conda\.example\.cn/g)).toHaveLength(1);
      expect(run(home, "https://other.example/simple", "")).toMatch(/^pip kept .*names its own index/);
    } finally { fs.rmSync(home, { recursive: true, force: true }); }
  });
});
