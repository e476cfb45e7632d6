/**
 * run_status fan-out: one patrol tick over a run spread on 16 boxes against the same tick over a run on
 * one box (the ceiling: 2×, i.e. hosts are asked in parallel, one round trip each), and a
 * one-box tick against the floor of any remote question, a cold `ssh box true`.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Lab } from "../lab/box.js";
import { connectServer } from "../lab/client.js";
import { median, row, timeIt, type BenchRow } from "./types.js";

const run = promisify(execFile);
const FAN = 16;
const WAN_ONE_WAY_MS = 20;
const FAR_ONE_WAY_MS = 75;

export async function bench(lab: Lab): Promise<BenchRow[]> {
  const names = Array.from({ length: FAN }, (_, i) => `bench-fan-${i}`);
  const boxes = [];
  for (const name of names) boxes.push(lab.boxes[name] ?? (await lab.addBox({ name, gpus: 1 })));
  const srv = await connectServer(lab.env);
  try {
    const cells = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `c${i}`, command: "sleep 300" }));
    const many = await srv.call("launch_queue", { hosts: names, run_name: "bench-fan-16", workdir: "/root", cells: cells(FAN) });
    const one = await srv.call("launch_queue", { host: names[0], run_name: "bench-fan-1", workdir: "/root", cells: cells(1) });
    if (!many.ok || !one.ok) throw new Error(`launch failed: ${JSON.stringify(many.refused ?? one.refused)}`);
    // warm the pooled connections, then alternate so drift hits both sides alike
    await srv.call("run_status", { run_id: "bench-fan-16" });
    await srv.call("run_status", { run_id: "bench-fan-1" });
    const t16: number[] = [];
    const t1: number[] = [];
    const sshTrue: number[] = [];
    const floor16: number[] = [];
    const floor1: number[] = [];
    let size16 = 0;
    for (let i = 0; i < 11; i++) {
      t16.push(await timeIt(async () => {
        const r = await srv.call("run_status", { run_id: "bench-fan-16" });
        if (r.state !== "running") throw new Error(`16-box run is ${r.state}`);
        size16 = Buffer.byteLength(JSON.stringify(r));
      }));
      t1.push(await timeIt(() => srv.call("run_status", { run_id: "bench-fan-1" })));
      sshTrue.push(await timeIt(() => run("ssh", ["-F", lab.sshConfig, "-o", "ControlMaster=no", "-o", "ControlPath=none", names[0], "true"])));
      // the floor of this machine: the same pooled exec of `true`, on 16 boxes at once vs on one
      floor16.push(await timeIt(() => Promise.all(names.map((h) => srv.call("remote_exec", { host: h, command: "true" })))));
      floor1.push(await timeIt(() => srv.call("remote_exec", { host: names[0], command: "true" })));
    }
    await srv.call("stop_run", { run_id: "bench-fan-16" });
    await srv.call("stop_run", { run_id: "bench-fan-1" });

    // The same boxes "across a WAN": each reached through a relay that adds latency per direction, as a
    // rented box is tens to hundreds of ms away, not on loopback. Parallel round trips can then overlap;
    // the boxes' CPU work cannot (all 16 still share this machine's cores), so this still understates
    // what 16 separate machines would give.
    const wanRatio = async (oneWayMs: number): Promise<{ m16: number; m1: number }> => {
      const tag = `wan${2 * oneWayMs}`;
      const wan: string[] = [];
      for (const name of names) wan.push((await lab.cutProxy(name, { cutAfterBytes: Infinity, delayMs: oneWayMs, alias: `${name}-${tag}` })).alias);
      const wMany = await srv.call("launch_queue", { hosts: wan, run_name: `bench-${tag}-16`, workdir: "/root", cells: cells(FAN) });
      const wOne = await srv.call("launch_queue", { host: wan[0], run_name: `bench-${tag}-1`, workdir: "/root", cells: cells(1) });
      if (!wMany.ok || !wOne.ok) throw new Error(`launch failed: ${JSON.stringify(wMany.refused ?? wOne.refused)}`);
      await srv.call("run_status", { run_id: `bench-${tag}-16` });
      await srv.call("run_status", { run_id: `bench-${tag}-1` });
      const w16: number[] = [];
      const w1: number[] = [];
      for (let i = 0; i < 15; i++) {
        w16.push(await timeIt(async () => {
          const r = await srv.call("run_status", { run_id: `bench-${tag}-16` });
          if (r.state !== "running") throw new Error(`16-box WAN run is ${r.state}`);
        }));
        w1.push(await timeIt(() => srv.call("run_status", { run_id: `bench-${tag}-1` })));
      }
      await srv.call("stop_run", { run_id: `bench-${tag}-16` });
      await srv.call("stop_run", { run_id: `bench-${tag}-1` });
      return { m16: median(w16), m1: median(w1) };
    };
    const near = await wanRatio(WAN_ONE_WAY_MS);
    const far = await wanRatio(FAR_ONE_WAY_MS);
    return [
      row(`run_status over ${FAN} boxes vs over 1 box, ${2 * WAN_ONE_WAY_MS} ms RTT each (emulated WAN)`, near.m16, near.m1, 2,
        "each box behind a relay adding the latency; all still share this machine's cores"),
      row(`run_status over ${FAN} boxes vs over 1 box, ${2 * FAR_ONE_WAY_MS} ms RTT each (emulated WAN)`, far.m16, far.m1, undefined,
        "a box on another continent"),
      row(`run_status over ${FAN} boxes vs over 1 box, loopback`, median(t16), median(t1), undefined,
        "no latency to overlap: all boxes share this machine's cores, so this is CPU-bound; see the next rows"),
      row(`floor: remote_exec \`true\` on ${FAN} boxes at once vs on 1`, median(floor16), median(floor1), undefined, "no rgt script involved"),
      // All 16 lab boxes run on this machine's 2 cores, so 16 sessions cost ~16× the CPU of one however they are
      // scheduled. Divided by that floor, what remains is the fan-out cost run_status itself adds.
      row(`run_status fan-out normalised by this machine's 16-session floor`, median(t16) / median(floor16), median(t1) / median(floor1), 2,
        "(t16/floor16) / (t1/floor1): 1.0 = run_status adds nothing over 16 parallel bare ssh sessions"),
      row("run_status (1 box, warm) vs one cold `ssh box true`", median(t1), median(sshTrue), undefined, "one round trip on a pooled connection"),
      row(`run_status result size, ${FAN} cells on ${FAN} boxes (bytes vs 2 KB)`, size16, 2048, undefined, "ratio = bytes / 2048"),
    ];
  } finally {
    await srv.close();
    for (const b of boxes) await b.stop().catch(() => {});
  }
}
