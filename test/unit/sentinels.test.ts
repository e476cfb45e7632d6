/** Sentinels across patrols (pure): GPU idle confirmed on the second patrol, disk time-to-full from two readings, hang vs silent. */
import { describe, expect, it } from "vitest";
import { judge } from "../../src/backends/sentinels.js";
import { classifyCell, parseStatus } from "../../src/backends/classify.js";
import type { CellStatus } from "../../src/backends/types.js";

const idleCell = (): CellStatus => ({ name: "a", host: "h", state: "running", log_age_s: 1, stall: { kind: "gpu_idle", evidence: "GPU 0 at 0% utilisation" } });

describe("sentinels", () => {
  it("a GPU idle on one patrol is not yet reported; on the next, a minute later, it is, with how long", () => {
    const c1 = [idleCell()];
    const first = judge(undefined, 1000, c1, []);
    expect(c1[0].stall).toBeUndefined();
    const c2 = [idleCell()];
    judge(first.memo, 1090, c2, []);
    expect(c2[0].stall).toMatchObject({ kind: "gpu_idle", since_s: 90 });
    // busy again: the memory is dropped
    const again = judge(first.memo, 1100, [{ name: "a", host: "h", state: "running", log_age_s: 1 }], []);
    expect(again.memo.idle_since).toEqual({});
  });

  it("free space shrinking: time to full from the last two patrols", () => {
    const d = (avail: number) => [{ host: "h", mount: "/data", avail_bytes: avail }];
    const p1 = judge(undefined, 0, [], d(10 * 2 ** 30)).memo;
    const w = judge(p1, 600, [], d(9 * 2 ** 30)).warnings; // 1 GiB per 10 min: 9 GiB left = 90 min
    expect(w).toEqual([expect.objectContaining({ code: "DISK_FILLING", message: expect.stringMatching(/full in ~1\.5 h/) })]);
    expect(judge(p1, 600, [], d(11 * 2 ** 30)).warnings).toEqual([]);
  });

  it("classifies a live cell: log silent with a busy GPU is a hang; a live cell with an idle GPU carries gpu_idle", () => {
    const now = 10_000;
    const row = (logAge: number) => ["CELL", "a", "running", "", "1", "100", String(now - logAge), "0", String(now), String(now - 600), "", "", "", "", "0", "42", "0", "", "1"].join("\t");
    const out = (util: number, logAge: number) => `NOW\t${now}\t5000\t${now - 5000}\n${row(logAge)}\nGPU\t0\t30000\t81920\t${util}\n`;
    const cell = { name: "a", host: "h", gpu_indices: [0], output_dir: "/o" };
    const opts = { stall_after_s: 300, tail_lines: 3 };
    const hung = classifyCell(parseStatus("h", out(97, 900)), parseStatus("h", out(97, 900)).cells.get("a"), cell, opts);
    expect(hung).toMatchObject({ state: "stalled", stall: { kind: "hang" } });
    const b = parseStatus("h", out(0, 5));
    expect(classifyCell(b, b.cells.get("a"), cell, opts)).toMatchObject({ state: "running", stall: { kind: "gpu_idle" } });
  });

  it("a live cell's newest checkpoint older than twice the cadence (or none after that long) is flagged", () => {
    const c = (age: number): CellStatus => ({ name: "a", host: "h", state: "running", log_age_s: 1, ckpt_age_s: age });
    expect(judge(undefined, 0, [c(500)], [], 600).warnings).toEqual([]);
    expect(judge(undefined, 0, [c(1500)], [], 600).warnings).toEqual([expect.objectContaining({ code: "CHECKPOINT_STALE", message: expect.stringMatching(/newest checkpoint 25 min old, cadence 10 min/) })]);
    expect(judge(undefined, 0, [c(-1800)], [], 600).warnings[0].message).toMatch(/no checkpoint after 30 min/);
  });

  it("probe.sh asks nvidia-smi for exactly the health fields the parser reads", async () => {
    const fs = await import("node:fs");
    const path = await import("node:path");
    const { HEALTH_QUERY } = await import("../../src/knowledge/gpu-health.js");
    const text = fs.readFileSync(path.join(__dirname, "..", "..", "scripts", "probe.sh"), "utf8");
    expect(text).toContain(`--query-gpu=${HEALTH_QUERY} `);
  });

  it("run_status.sh asks for memory and utilisation, then the same health fields", async () => {
    const fs = await import("node:fs");
    const path = await import("node:path");
    const { HEALTH_FIELDS } = await import("../../src/knowledge/gpu-health.js");
    const text = fs.readFileSync(path.join(__dirname, "..", "..", "scripts", "run_status.sh"), "utf8");
    expect(text).toContain(`--query-gpu=index,memory.used,memory.total,utilization.gpu,${HEALTH_FIELDS.slice(1).join(",")} `);
  });

  it("GPU health rows in a status answer become one warning per kind and host, with the run's cells on each GPU", async () => {
    const { parseStatus } = await import("../../src/backends/classify.js");
    const { gpuWarnings } = await import("../../src/backends/status.js");
    const row = (i: number, ecc: string, thermal: string, cap = "Not Active") =>
      `GPU\t${i}\t40000\t81920\t97\t Enabled, ${ecc}, No, Not Active, ${thermal}, Not Active, Not Active, ${cap}`;
    const out = ["NOW\t1\t1\t1", row(0, "0", "Not Active", "Active"), row(1, "3", "Not Active"), row(2, "[N/A]", "Active"), row(3, "0", "Active")].join("\n");
    const b = parseStatus("h", out);
    expect(b.gpus.map((g) => g.utilization_pct)).toEqual([97, 97, 97, 97]);
    const cells = [{ name: "a", host: "h", gpu_indices: [0, 1] }, { name: "b", host: "h", gpu_indices: [2] }] as never;
    const w = gpuWarnings(b, cells);
    expect(w.map((x) => x.code)).toEqual(["GPU_FAULT", "GPU_SLOWDOWN"]);
    expect(w[0]!.message).toMatch(/^h GPU 1 \(a\): 3 uncorrected ECC error\(s\) —/);
    expect(w[1]!.message).toMatch(/GPU 2 \(b\): slowdown: hw_thermal; GPU 3: slowdown: hw_thermal —/);
    // a driver that gave only the first four fields: no health, no warning
    expect(gpuWarnings(parseStatus("h", "NOW\t1\t1\t1\nGPU\t0\t1\t2\t3"), cells)).toEqual([]);
  });

  it("the same warning on many hosts folds into a few", async () => {
    const { capWarnings } = await import("../../src/backends/index.js");
    const { warning } = await import("../../src/common/result.js");
    const ws = [...Array.from({ length: 64 }, (_, i) => warning("DISK_HIGH", i === 40 ? "danger" : "warn", `h${i}:/data 95% full`)), warning("GPU_FAULT", "danger", "x")];
    const c = capWarnings(ws);
    expect(c.map((w) => w.code)).toEqual(["DISK_HIGH", "DISK_HIGH", "DISK_HIGH", "GPU_FAULT"]);
    expect(c[2]).toMatchObject({ severity: "danger", message: expect.stringMatching(/^\+62 more like it: h2:\/data 95% full/) });
  });
});
