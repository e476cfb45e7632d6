/**
 * Parallel-stream push of one big file (a checkpoint or a data shard) over an emulated 100 ms RTT link
 * (the lab relay, 50 ms each way), side by side with what a user would type instead over the same link:
 * local `sha256sum` + single-stream `rsync -a --partial` + `ssh box sha256sum`. RGT_BENCH_PULL_MB sets the
 * size (default 1024).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { setting } from "../common/config.js";
import type { Lab } from "../lab/box.js";
import { connectServer } from "../lab/client.js";
import { row, timeIt, type BenchRow } from "./types.js";

const run = promisify(execFile);
const ONE_WAY_MS = 50;

export const ROWS = ["wan-push-1file"] as const;

export async function bench(lab: Lab, want: (id: string) => boolean = () => true): Promise<BenchRow[]> {
  if (!want("wan-push-1file")) return [];
  const host = Object.keys(lab.boxes)[0];
  const box = lab.boxes[host];
  const mb = setting("RGT_BENCH_PULL_MB");
  const root = fs.mkdtempSync(path.join(lab.root, "bench-pushwan-"));
  const wan = await lab.cutProxy(host, { cutAfterBytes: Infinity, delayMs: ONE_WAY_MS, alias: `${host}-pushwan` });
  const srv = await connectServer(lab.env, { timeoutMs: 900_000 });
  const rows: BenchRow[] = [];
  try {
    const tree = path.join(root, "ckpt");
    fs.mkdirSync(tree);
    await run("sh", ["-c", `head -c ${mb * 2 ** 20} /dev/urandom > ${tree}/model.dat`]);
    const sshE = `ssh -F ${lab.sshConfig} -o ControlMaster=no -o ControlPath=none`;
    // one run each: a single-stream push of 1 GB at 100 ms RTT takes about a minute
    const base = await timeIt(async () => {
      await run("sh", ["-c", `cd ${tree} && sha256sum model.dat`]);
      await run("rsync", ["-a", "--partial", "-e", sshE, `${tree}/`, `${wan.alias}:/root/bench-pushwan-base/`]);
      await run("ssh", ["-F", lab.sshConfig, "-o", "ControlMaster=no", "-o", "ControlPath=none", wan.alias, "cd /root/bench-pushwan-base && sha256sum model.dat"]);
    });
    await box.exec("rm -rf /root/bench-pushwan-base");
    let streams = 1;
    const ours = await timeIt(async () => {
      const r = await srv.call("push_code", { host: wan.alias, local_dir: tree, remote_dir: "/root/bench-pushwan-ours" });
      if (!r.ok) throw new Error(`push_code failed: ${JSON.stringify(r.refused ?? r).slice(0, 300)}`);
      streams = r.streams ?? 1;
    });
    const same = await box.exec(`cd /root/bench-pushwan-ours && sha256sum model.dat`);
    const local = await run("sh", ["-c", `cd ${tree} && sha256sum model.dat`]);
    if (same.stdout.split(" ")[0] !== local.stdout.split(" ")[0]) throw new Error("pushed file differs from the local one");
    await box.exec("rm -rf /root/bench-pushwan-ours");
    rows.push(row(`push_code one ${mb} MB file at 100 ms RTT vs sha256sum + rsync --partial + sha256sum on the box`, ours, base, 0.4, `${streams} streams`));
  } finally {
    await srv.close();
    await wan.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
  return rows;
}
