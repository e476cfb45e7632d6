/**
 * probe_env against what an agent would otherwise do: one cold `ssh box true` (the floor of any ssh
 * call), and the five separate ssh calls of a manual audit (nvidia-smi, df -h, df -i, free, python/torch).
 */
import { execFileSync, execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Lab } from "../lab/box.js";
import { connectServer } from "../lab/client.js";
import { median, row, timeIt, type BenchRow } from "./types.js";

const run = promisify(execFile);

export async function bench(lab: Lab): Promise<BenchRow[]> {
  const host = Object.keys(lab.boxes).find((n) => n.startsWith("bench-8gpu")) ?? Object.keys(lab.boxes)[0];
  const ssh = (cmd: string) => run("ssh", ["-F", lab.sshConfig, "-o", "ControlMaster=no", "-o", "ControlPath=none", host, cmd]);
  const N = 7;
  const sshTrue: number[] = [];
  const manual: number[] = [];
  const cold: number[] = [];
  const warm: number[] = [];
  let bytes = 0;
  const audit = ["nvidia-smi --query-gpu=index,name,memory.total,memory.used,utilization.gpu,temperature.gpu --format=csv", "df -h", "df -i", "free -b", "python3 -c 'import torch; print(torch.__version__, torch.cuda.is_available())'"];
  for (let i = 0; i < N; i++) {
    sshTrue.push(await timeIt(() => ssh("true")));
    manual.push(await timeIt(async () => { for (const c of audit) await ssh(c).catch(() => {}); }));
    const srv = await connectServer(lab.env);
    try {
      cold.push(await timeIt(() => srv.call("probe_env", { host })));
      for (let k = 0; k < 2; k++) warm.push(await timeIt(async () => {
        const r = await srv.call("probe_env", { host });
        bytes = Buffer.byteLength(JSON.stringify(r.structuredContent ?? r));
      }));
    } finally {
      await srv.close();
    }
  }
  void execFileSync;
  return [
    row("probe_env warm vs one cold `ssh box true`", median(warm), median(sshTrue), 0.5),
    row("probe_env cold vs 5-call manual audit (ssh ×5)", median(cold), median(manual), 0.3),
    row("probe_env result size on an 8-GPU box (bytes vs 2 KB budget)", bytes, 2048, 1, "ratio = bytes / 2048"),
  ];
}
