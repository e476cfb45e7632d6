/** Pure parts of launch / status: placement, cell classification, progress parsing, run summary, ids. */
import { describe, expect, it } from "vitest";
import { bundle, hashedScript } from "../../src/backends/scripts.js";
import { assignCells, lanesFor, type Lane } from "../../src/backends/placement.js";
import { parsePrep, scriptPathsIn, specSha, tmuxSessionName } from "../../src/backends/launch.js";
import { classifyCell, parseProgress, parseStatus, type BoxStatus } from "../../src/backends/classify.js";
import { nextAction, summarize } from "../../src/backends/index.js";
import { artifactRoot, runIdFor, type RunRecord } from "../../src/ledger/runs.js";
import type { StatusOptions } from "../../src/backends/types.js";

const opts: StatusOptions = { stall_after_s: 60, tail_lines: 3 };
const cell = { name: "c", host: "h", gpu_indices: [0], output_dir: "/o/c" };
const NOW = 1_800_000_000;

function box(cellLine: string, extra: string[] = []): BoxStatus {
  return parseStatus("h", [`NOW\t${NOW}\t5000\t${NOW - 5000}`, cellLine, ...extra].join("\n"));
}
// CELL name state exit alive log_bytes log_mtime beat_mtime hb_mtime started ended signal reason cause oom_before pid oom_now oom_file runner_alive
const row = (f: Partial<Record<string, string | number>>) =>
  ["CELL", "c", f.state ?? "running", f.exit ?? "", f.alive ?? 1, f.bytes ?? 100, f.log_mtime ?? NOW - 5, f.beat ?? 0, f.hb ?? NOW, f.started ?? NOW - 100, f.ended ?? "",
    f.signal ?? "", f.reason ?? "", f.cause ?? "", f.oom_before ?? 0, f.pid ?? 4242, f.oom_now ?? 0, f.oom_file ?? "/sys/fs/cgroup/memory.events", f.runner ?? ""].join("\t");

describe("classifyCell", () => {
  it("a live cell whose log grows is running, with progress and a clipped tail", () => {
    const b = box(row({}), ["TAIL\tc\tepoch 2/10", "TAIL\tc\tstep 120/1000 loss=0.3"]);
    const c = classifyCell(b, b.cells.get("c"), cell, opts);
    expect(c.state).toBe("running");
    expect(c.progress).toMatchObject({ step: 120, total_steps: 1000, epoch: 2, total_epochs: 10, pct: 12 });
    expect(c.log_age_s).toBe(5);
  });

  it("alive but silent past the threshold is stalled; the cell's own heartbeat file counts as progress", () => {
    const b = box(row({ log_mtime: NOW - 300 }));
    expect(classifyCell(b, b.cells.get("c"), cell, opts).state).toBe("stalled");
    const b2 = box(row({ log_mtime: NOW - 300, beat: NOW - 10 }));
    expect(classifyCell(b2, b2.cells.get("c"), cell, opts).state).toBe("running");
  });

  it("a dead process with no exit code: reboot when the box booted after the cell started", () => {
    const b = box(row({ alive: 0, started: NOW - 9000 }));
    const c = classifyCell(b, b.cells.get("c"), cell, opts);
    expect(c.state).toBe("vanished");
    expect(c.cause?.cause).toBe("reboot");
    expect(c.cause?.evidence).toMatch(/booted/);
  });

  it("the kernel log names the cell's pid: oom, with the dmesg line as evidence (for a vanish and for exit 137)", () => {
    const line = "DMESG\tMemory cgroup out of memory: Killed process 4242 (python3) total-vm:9000000kB, anon-rss:8000000kB";
    const v = box(row({ alive: 0 }), [line]);
    const vc = classifyCell(v, v.cells.get("c"), cell, opts);
    expect(vc.state).toBe("vanished");
    expect(vc.cause?.cause).toBe("oom");
    expect(vc.cause?.evidence).toMatch(/dmesg: .*Killed process 4242/);
    const k = box(row({ state: "failed", alive: 0, exit: 137 }), [line]);
    expect(classifyCell(k, k.cells.get("c"), cell, opts).cause?.cause).toBe("oom");
    // another process's OOM kill is not this cell's
    const other = box(row({ alive: 0 }), [line.replace("4242", "42420")]);
    expect(classifyCell(other, other.cells.get("c"), cell, opts).cause?.cause).toBe("unknown");
  });

  it("a dead process with no exit code whose runner is alive is still running (the outcome is being written), not vanished", () => {
    const r = box(row({ alive: 0, runner: 1 }));
    const rc = classifyCell(r, r.cells.get("c"), cell, opts);
    expect(rc.state).toBe("running");
    expect(rc.reason).toMatch(/runner is recording/);
    expect(rc.cause).toBeUndefined();
    const gone = box(row({ alive: 0, runner: 0 }));
    expect(classifyCell(gone, gone.cells.get("c"), cell, opts).state).toBe("vanished");
  });

  it("hangup when the runner recorded SIGHUP; oom when the cgroup counter grew; unknown otherwise", () => {
    const h = box(row({ alive: 0, signal: `HUP ${NOW - 3}` }));
    expect(classifyCell(h, h.cells.get("c"), cell, opts).cause?.cause).toBe("hangup");
    const o = box(row({ alive: 0, oom_before: 1, oom_now: 2 }));
    const oc = classifyCell(o, o.cells.get("c"), cell, opts);
    expect(oc.cause).toMatchObject({ cause: "oom" });
    expect(oc.cause?.evidence).toMatch(/oom_kill .* 1 -> 2/);
    const u = box(row({ alive: 0 }));
    expect(classifyCell(u, u.cells.get("c"), cell, opts).cause?.cause).toBe("unknown");
  });

  it("exit 137 is killed, or oom when the counter grew", () => {
    const k = box(row({ state: "failed", alive: 0, exit: 137, reason: "exit 137 (killed by SIGKILL)" }));
    const kc = classifyCell(k, k.cells.get("c"), cell, opts);
    expect(kc).toMatchObject({ state: "failed", exit_code: 137, cause: { cause: "killed" } });
    const o = box(row({ state: "failed", alive: 0, exit: 137, oom_before: 0, oom_now: 1 }));
    expect(classifyCell(o, o.cells.get("c"), cell, opts).cause?.cause).toBe("oom");
  });

  it("the moment between exit_code and state being written is not a vanished run", () => {
    const f = box(row({ state: "running", alive: 0, exit: 137 }));
    expect(classifyCell(f, f.cells.get("c"), cell, opts)).toMatchObject({ state: "failed", cause: { cause: "killed" } });
    // with no reason line written yet, the evidence still names the signal the exit code implies
    expect(classifyCell(f, f.cells.get("c"), cell, opts).cause?.evidence).toMatch(/^exit 137 \(128\+9: SIGKILL\)/);
    const ok = box(row({ state: "running", alive: 0, exit: 0 }));
    expect(classifyCell(ok, ok.cells.get("c"), cell, opts).state).toBe("running");
  });

  it("pending is fine under a live lane, vanished when its lane is gone", () => {
    const live = box(row({ state: "pending", alive: 0, started: "" }), ["LANE\tL1\t1\t\tc,"]);
    expect(classifyCell(live, live.cells.get("c"), cell, opts).state).toBe("pending");
    const gone = box(row({ state: "pending", alive: 0, started: "" }), [`LANE\tL1\t0\tHUP ${NOW}\tc,`]);
    const g = classifyCell(gone, gone.cells.get("c"), cell, opts);
    expect(g.state).toBe("vanished");
    expect(g.cause?.cause).toBe("hangup");
  });

  it("after a relaunch the new live lane speaks for the cell, not the dead lane of the earlier attempt", () => {
    const pending = row({ state: "pending", alive: 0, started: "" });
    const relaunched = box(pending, [`LANE\tLa\t0\tHUP ${NOW - 60}\tc,`, "LANE\tLb\t1\t\tc,"]);
    expect(classifyCell(relaunched, relaunched.cells.get("c"), cell, opts).state).toBe("pending");
    // both gone: the newest lane's record is the evidence
    const both = box(pending, [`LANE\tLa\t0\tHUP ${NOW - 60}\tc,`, `LANE\tLb\t0\tTERM ${NOW}\tc,`]);
    expect(classifyCell(both, both.cells.get("c"), cell, opts).cause?.cause).toBe("killed");
  });

  it("done keeps no tail; a missing state dir is vanished with evidence", () => {
    const d = box(row({ state: "done", alive: 0, exit: 0 }), ["TAIL\tc\tfinished"]);
    const dc = classifyCell(d, d.cells.get("c"), cell, opts);
    expect(dc.state).toBe("done");
    expect(dc.tail).toBeUndefined();
    const n = parseStatus("h", `NOW\t${NOW}\t10\t${NOW - 10}\nNOSTATE\t/root/.rgt/runs/x`);
    expect(classifyCell(n, undefined, cell, opts)).toMatchObject({ state: "vanished", cause: { cause: "unknown" } });
  });
});

describe("summarize / nextAction", () => {
  const rec = { run_id: "r", run_name: "r", hosts: ["h"], cells: [cell] } as unknown as RunRecord;
  const C = (state: string, cause?: string) => ({ name: state, host: "h", state: state as never, log_age_s: 0, ...(cause ? { cause: { cause: cause as never, evidence: "e" } } : {}) });
  it("orders vanished > stalled > unknown > running > failed > done", () => {
    expect(summarize([C("done"), C("vanished", "hangup"), C("stalled")]).state).toBe("vanished");
    expect(summarize([C("running"), C("stalled")]).state).toBe("stalled");
    expect(summarize([C("running"), C("unknown")]).state).toBe("unknown");
    expect(summarize([C("pending"), C("done")]).state).toBe("running");
    expect(summarize([C("failed", "oom"), C("done")])).toEqual({ state: "failed", vanished_cause: { cause: "oom", evidence: "e" } });
    expect(summarize([C("done"), C("done")]).state).toBe("done");
  });
  it("gives one concrete line per state", () => {
    expect(nextAction(rec, "done", [C("done")])).toMatch(/pull_verify/);
    expect(nextAction(rec, "vanished", [], { cause: "reboot" })).toMatch(/rebooted.*launch_queue again/);
    expect(nextAction(rec, "unknown", [])).toMatch(/do not relaunch/);
    expect(nextAction(rec, "failed", [C("stopped")])).toMatch(/stop_run/);
  });
});

describe("placement", () => {
  const facts = (host: string, gpus: number, busy: number[] = [], used: Record<number, number> = {}) => ({
    host,
    gpus: Array.from({ length: gpus }, (_, i) => ({ index: i, uuid: `U-${host}-${i}`, used_mib: used[i] ?? 3, total_mib: 81920 })),
    gpu_apps: busy.map((i) => ({ uuid: `U-${host}-${i}`, pid: 100 + i })),
    lanes: [] as { id: string; alive: boolean; gpus: number[]; cells: string[] }[],
  });

  it("one lane per free GPU; busy GPUs (a compute app, or memory held) are skipped; no GPU = one CPU lane", () => {
    expect(lanesFor(facts("a", 4, [1], { 3: 30000 }), 1, "L").lanes.map((l) => l.gpus)).toEqual([[0], [2]]);
    expect(lanesFor(facts("a", 4, [1], { 3: 30000 }), 1, "L").busy).toEqual([1, 3]);
    expect(lanesFor(facts("a", 4), 2, "L").lanes.map((l) => l.gpus)).toEqual([[0, 1], [2, 3]]);
    expect(lanesFor(facts("cpu", 0), 1, "L").lanes).toEqual([{ host: "cpu", id: "L-0", gpus: [], cells: [] }]);
    const withLive = { ...facts("a", 2), lanes: [{ id: "old", alive: true, gpus: [0], cells: ["x"] }] };
    expect(lanesFor(withLive, 1, "L").lanes.map((l) => l.gpus)).toEqual([[1]]);
  });

  it("spreads 6 cells over 2 hosts × 2 GPUs using every lane, alternating hosts; pinned cells stay home", () => {
    const lanes: Lane[] = [...lanesFor(facts("a", 2), 1, "A").lanes, ...lanesFor(facts("b", 2), 1, "B").lanes];
    const { placed, unplaced } = assignCells(Array.from({ length: 6 }, (_, i) => ({ name: `c${i}` })), lanes);
    expect(unplaced).toEqual([]);
    expect(new Set([...placed.values()].map((l) => `${l.host}${l.gpus}`)).size).toBe(4);
    expect(placed.get("c0")!.host).not.toBe(placed.get("c1")!.host);
    expect(lanes.map((l) => l.cells.length).sort()).toEqual([1, 1, 2, 2]);
    const lanes2: Lane[] = [...lanesFor(facts("a", 1), 1, "A").lanes, ...lanesFor(facts("b", 1), 1, "B").lanes];
    const r = assignCells([{ name: "p", pinnedHost: "b" }, { name: "q", pinnedHost: "zz" }], lanes2);
    expect(r.placed.get("p")!.host).toBe("b");
    expect(r.unplaced).toEqual(["q"]);
  });
});

describe("small pieces", () => {
  it("run ids are stable and path/session safe", () => {
    expect(runIdFor("Sweep LR 1e-4 / bs=32")).toBe("sweep-lr-1e-4-bs-32");
    expect(runIdFor("Sweep LR 1e-4 / bs=32")).toBe(runIdFor("sweep lr 1e-4 / BS=32"));
    expect(runIdFor("../../etc")).toBe("etc");
    expect(runIdFor("!!!")).toBe("run");
    expect(tmuxSessionName("a.b:c")).toBe("rgt-a_b_c");
  });

  it("finds the scripts a command runs, for the CRLF check", () => {
    expect(scriptPathsIn("bash train.sh --x 1 && ./tools/prep.sh; python a.py")).toEqual(["train.sh", "./tools/prep.sh"]);
    expect(scriptPathsIn("python main.py")).toEqual([]);
  });

  it("spec hash changes with the command or env, not with key order", () => {
    const a = specSha({ name: "x", command: "python t.py", env: { A: "1", B: "2" } });
    expect(specSha({ name: "x", command: "python t.py", env: { B: "2", A: "1" } })).toBe(a);
    expect(specSha({ name: "x", command: "python t.py --lr 2", env: { A: "1", B: "2" } })).not.toBe(a);
  });

  it("bundles files as '<path> <bytes>' headers and refuses paths that escape", () => {
    const b = bundle([{ path: "cells/a/cmd", data: "échо\n" }, { path: "expect", data: "" }]).toString("utf8");
    expect(b).toBe(`cells/a/cmd ${Buffer.byteLength("échо\n")}\néchо\nexpect 0\n`);
    expect(() => bundle([{ path: "../x", data: "" }])).toThrow();
    expect(() => bundle([{ path: "a b", data: "" }])).toThrow();
  });

  it("on-box scripts get content-hashed names and have LF endings and set -u", () => {
    for (const n of ["run_one.sh", "run_queue.sh", "launch_prep.sh", "launch_start.sh", "run_status.sh", "stop_run.sh"]) {
      const s = hashedScript(n);
      expect(s.hashed).toMatch(new RegExp(`^${n.replace(".sh", "")}-[0-9a-f]{12}\\.sh$`));
      const text = s.body.toString("utf8");
      expect(text).not.toContain("\r");
      expect(text).toMatch(/^set -u$/m);
      expect(text).not.toMatch(/bashrc/);
    }
  });

  it("parses the prep report", () => {
    const f = parsePrep("h", ["HOME\t/root", "SD\t/root/.rgt/runs/r", "DURABLE\t/mnt/d\tok", "DATA\t\tmissing", "WORKDIR\t1\t/root/p",
      "TOOLS\ttmux=0\tsetsid=1", "GPU\t0\tU0\t3\t81920", "GPUAPP\tU0\t77", "CELL\tc\tdone\tabc\t0", "LANE\tL1\t1\t0\tc,d,", "CRLF\tx.sh"].join("\n"));
    expect(f).toMatchObject({ state_dir: "/root/.rgt/runs/r", durable_ok: true, data_ok: false, workdir_ok: true, workdir: "/root/p", tools: { tmux: false, setsid: true } });
    expect(f.gpus[0]).toEqual({ index: 0, uuid: "U0", used_mib: 3, total_mib: 81920 });
    expect(f.lanes[0]).toEqual({ id: "L1", alive: true, gpus: [0], cells: ["c", "d"] });
    expect(f.crlf).toEqual(["x.sh"]);
  });

  it("artifactRoot points at the durable copy when the run has one", () => {
    const rec = { run_id: "r", cells: [{ name: "c", host: "h", gpu_indices: [], output_dir: "/data/rgt-out/r/c" }], host_dirs: { h: { state_dir: "s", scripts_dir: "x", durable_dir: "/mnt/d" } } } as unknown as RunRecord;
    expect(artifactRoot(rec, "c")).toBe("/mnt/d/rgt/r/c");
    const noDurable = { ...rec, host_dirs: { h: { state_dir: "s", scripts_dir: "x" } } } as RunRecord;
    expect(artifactRoot(noDurable, "c")).toBe("/data/rgt-out/r/c");
    expect(() => artifactRoot(rec, "zz")).toThrow();
  });

  it("parseProgress handles tqdm percentages and HF-style dicts", () => {
    expect(parseProgress([" 45%|████▌     | 450/1000 [00:10<00:12]"])).toMatchObject({ pct: 45 });
    expect(parseProgress(["{'loss': 0.5, 'epoch': 1.0}", "global_step=300"])).toMatchObject({ step: 300, epoch: 1 });
    expect(parseProgress(["[rgt] start", "hello"])).toBeUndefined();
  });
});
