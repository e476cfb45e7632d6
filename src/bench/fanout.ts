/**
 * run_status over a run spread on 64 lab boxes, normalised by this machine's 64-session floor: all 64
 * boxes share its cores, so 64 sessions cost ~64× the CPU of one however they are scheduled. The floor is
 * remote_exec `true` on the 64 boxes at once (same server, same pooled connections, no rgt script);
 * (t64 / floor64) / (t1 / floor1) is what run_status's fan-out adds over 64 bare sessions.
 */
import type { Lab } from "../lab/box.js";
import { connectServer } from "../lab/client.js";
import { mapLimited } from "../common/limit.js";
import { median, row, timeIt, type BenchRow } from "./types.js";

const FAN = 64;
export const ROWS = ["fanout-64"] as const;

export async function bench(lab: Lab, want: (id: string) => boolean = () => true): Promise<BenchRow[]> {
  if (!want("fanout-64")) return [];
  const names = Array.from({ length: FAN }, (_, i) => `bench-f64-${i}`);
  const boxes = await mapLimited(names, 8, async (name) => lab.boxes[name] ?? (await lab.addBox({ name, gpus: 1 })));
  const srv = await connectServer(lab.env, { timeoutMs: 300_000 });
  try {
    const cells = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `c${i}`, command: "sleep 600" }));
    const many = await srv.call("launch_queue", { hosts: names, run_name: "bench-f64", workdir: "/root", cells: cells(FAN) });
    const one = await srv.call("launch_queue", { host: names[0], run_name: "bench-f64-1", workdir: "/root", cells: cells(1) });
    if (!many.ok || !one.ok) throw new Error(`launch failed: ${JSON.stringify(many.refused ?? one.refused).slice(0, 300)}`);
    const launchBytes = Buffer.byteLength(JSON.stringify(many));
    await srv.call("run_status", { run_id: "bench-f64" });
    await srv.call("run_status", { run_id: "bench-f64-1" });
    const t64: number[] = [];
    const t1: number[] = [];
    const f64: number[] = [];
    const f1: number[] = [];
    let size = 0;
    for (let i = 0; i < 7; i++) {
      t64.push(await timeIt(async () => {
        const r = await srv.call("run_status", { run_id: "bench-f64" });
        if (r.state !== "running") throw new Error(`64-box run is ${r.state}: ${JSON.stringify(r).slice(0, 300)}`);
        size = Buffer.byteLength(JSON.stringify(r));
      }));
      t1.push(await timeIt(() => srv.call("run_status", { run_id: "bench-f64-1" })));
      f64.push(await timeIt(() => Promise.all(names.map((h) => srv.call("remote_exec", { host: h, command: "true" })))));
      f1.push(await timeIt(() => srv.call("remote_exec", { host: names[0], command: "true" })));
    }
    await srv.call("stop_run", { run_id: "bench-f64" });
    await srv.call("stop_run", { run_id: "bench-f64-1" });
    return [
      row(`run_status fan-out over ${FAN} boxes normalised by this machine's ${FAN}-session floor`, median(t64) / median(f64), median(t1) / median(f1), 1.2,
        `(t64/floor64) / (t1/floor1); t64 ${median(t64).toFixed(0)} ms, floor64 ${median(f64).toFixed(0)} ms, t1 ${median(t1).toFixed(0)} ms, floor1 ${median(f1).toFixed(0)} ms`),
      row(`run_status result size, ${FAN} cells on ${FAN} boxes (bytes vs 2 KB)`, size, 2048, 1, "ratio = bytes / 2048"),
      row(`launch_queue result size, ${FAN} cells on ${FAN} boxes (bytes vs 2 KB)`, launchBytes, 2048, 1, "ratio = bytes / 2048"),
    ];
  } finally {
    await srv.close();
    await mapLimited(boxes, 8, (b) => b.stop().catch(() => {}));
  }
}
