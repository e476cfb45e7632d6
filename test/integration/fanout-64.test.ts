/**
 * Fan-out at 64 boxes: launch_queue and run_status over a run on 64 lab boxes (all on this machine),
 * with the fan-out bounded (RGT_FANOUT=8 here, so the bound is exercised: 64 hosts, 8 at a time). Every
 * cell starts and is seen running, and each result an agent reads stays within 2 KB.
 */
import * as fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";

const N = 64;
const names = Array.from({ length: N }, (_, i) => `f${i}`);
let lab: Lab;
let s: ServerConnection;

beforeAll(async () => {
  lab = await startLab(names.map((name) => ({ name, gpus: 1 })));
  s = await connectServer({ ...lab.env, RGT_FANOUT: "8" }, { timeoutMs: 300_000 });
}, 600_000);
afterAll(async () => {
  await s?.close();
  await lab?.stop();
}, 120_000);

describe(`${N} boxes`, () => {
  it("the lab holds 64 boxes on this machine: each its own sshd, answering", async () => {
    expect(Object.keys(lab.boxes)).toHaveLength(N);
    const r = await Promise.all(names.map((n) => lab.boxes[n].exec("hostname")));
    expect(r.filter((x) => x.code === 0)).toHaveLength(N);
  }, 300_000);

  it("launch_queue and run_status over all 64: every cell placed and running, results within 2 KB", async () => {
    const cells = names.map((_, i) => ({ name: `c${i}`, command: "sleep 600" }));
    const launched = await s.call("launch_queue", { hosts: names, run_name: "fan64", workdir: "/root", cells });
    expect(launched.ok, JSON.stringify(launched).slice(0, 800)).toBe(true);
    expect(Buffer.byteLength(JSON.stringify(launched)), JSON.stringify(launched)).toBeLessThanOrEqual(2048);
    const runId = launched.run_id as string;
    // every box got its one cell
    const placed = await Promise.all(names.map((n) => lab.boxes[n].exec("pgrep -f 'sleep 600' >/dev/null && echo yes || echo no")));
    expect(placed.filter((p) => p.stdout.trim() === "yes").length).toBe(N);

    const st = await s.call("run_status", { run_id: runId });
    expect(st.ok, JSON.stringify(st).slice(0, 800)).toBe(true);
    expect(st.state).toBe("running");
    expect(Buffer.byteLength(JSON.stringify(st)), JSON.stringify(st)).toBeLessThanOrEqual(2048);
    const text = JSON.stringify(st);
    // the counts cover all 64 cells even though the listing is compact
    expect(text).toMatch(/64/);

    // the server's open descriptors stay bounded: one pooled connection per box, not one per call
    const fds = fs.readdirSync(`/proc/${s.pid}/fd`).length;
    expect(fds).toBeLessThan(N * 3 + 64);

    const stopped = await s.call("stop_run", { run_id: runId });
    expect(stopped.ok, JSON.stringify(stopped).slice(0, 800)).toBe(true);
    expect(Buffer.byteLength(JSON.stringify(stopped)), JSON.stringify(stopped)).toBeLessThanOrEqual(2048);
  }, 600_000);
});
