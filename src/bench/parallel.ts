/**
 * Parallel-stream pulls, each side by side with what a user would type instead over the same link:
 * `ssh box sha256sum` + single-stream `rsync -a --partial` + local `sha256sum`.
 *  - 1 GB in 4 files and one 1 GB file, over an emulated 100 ms RTT (the lab relay, 50 ms each way)
 *  - the same on loopback (no relay)
 *  - the server's peak RSS during each parallel WAN pull (the kernel's high-water mark, reset before it)
 *  - the relay alone (rsync through it with no delay vs rsync straight to sshd): it must not be the bottleneck
 * RGT_BENCH_PULL_MB shrinks the sets while developing (default 1024).
 */
import { setting } from "../common/config.js";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Lab } from "../lab/box.js";
import { connectServer, type ServerConnection } from "../lab/client.js";
import { median, row, timeIt, type BenchRow } from "./types.js";
import { peakRss } from "./rss.js";

const run = promisify(execFile);
const ONE_WAY_MS = 50;

export const ROWS = ["wan-4files", "wan-1file", "loop-4files", "loop-1file", "relay"] as const;

interface PullSet { id: string; label: string; files: string[] }

async function makeSet(lab: Lab, host: string, mb: number, parts: number): Promise<PullSet> {
  const dir = `/root/bench-par-${parts}`;
  const per = Math.floor((mb * 2 ** 20) / parts);
  const files = Array.from({ length: parts }, (_, i) => (parts === 1 ? "model.dat" : `shard${i}.dat`));
  const cmd = `rm -rf ${dir} && mkdir -p ${dir} && cd ${dir} && ${files.map((f) => `head -c ${per} /dev/urandom > ${f}`).join(" && ")}`;
  const r = await lab.boxes[host].exec(cmd, { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`making ${dir} failed: ${r.stderr}`);
  return { id: dir, label: parts === 1 ? `one ${mb} MB file` : `${mb} MB in ${parts} files`, files };
}

/** the user's way: the box hashes, rsync copies (one stream), we hash */
async function baseline(lab: Lab, alias: string, set: PullSet, dst: string): Promise<number> {
  const sshE = `ssh -F ${lab.sshConfig} -o ControlMaster=no -o ControlPath=none`;
  const t = await timeIt(async () => {
    await run("ssh", ["-F", lab.sshConfig, "-o", "ControlMaster=no", "-o", "ControlPath=none", alias, `cd ${set.id} && sha256sum ${set.files.join(" ")}`], { maxBuffer: 1 << 20 });
    await run("rsync", ["-a", "--partial", "-e", sshE, `${alias}:${set.id}/`, `${dst}/`], { maxBuffer: 1 << 20 });
    await run("sh", ["-c", `cd ${dst} && sha256sum ${set.files.join(" ")}`], { maxBuffer: 1 << 20 });
  });
  fs.rmSync(dst, { recursive: true, force: true });
  return t;
}

async function ours(srv: ServerConnection, alias: string, set: PullSet, dst: string): Promise<{ ms: number; streams: number }> {
  let streams = 1;
  const ms = await timeIt(async () => {
    const r = await srv.call("pull_verify", { host: alias, remote_path: set.id, local_dir: dst, expect: [set.files[0]] });
    if (!r.ok) throw new Error(`pull_verify failed: ${JSON.stringify(r.refused ?? r).slice(0, 300)}`);
    streams = r.streams ?? 1;
  });
  fs.rmSync(dst, { recursive: true, force: true });
  return { ms, streams };
}

export async function bench(lab: Lab, want: (id: string) => boolean = () => true): Promise<BenchRow[]> {
  const host = Object.keys(lab.boxes)[0];
  const mb = setting("RGT_BENCH_PULL_MB");
  const root = fs.mkdtempSync(path.join(lab.root, "bench-par-"));
  const rows: BenchRow[] = [];
  const wan = await lab.cutProxy(host, { cutAfterBytes: Infinity, delayMs: ONE_WAY_MS, alias: `${host}-wan` });
  const bare = await lab.cutProxy(host, { cutAfterBytes: Infinity, alias: `${host}-relay` });
  const srv = await connectServer(lab.env, { timeoutMs: 900_000 });
  try {
    for (const parts of [4, 1]) {
      const tag = parts === 1 ? "1file" : "4files";
      if (!want(`wan-${tag}`) && !want(`loop-${tag}`) && !(parts === 4 && want("relay"))) continue;
      const set = await makeSet(lab, host, mb, parts);
      if (want(`wan-${tag}`)) {
        // one run each: a single-stream pull of 1 GB at 100 ms RTT takes about a minute
        const b = await baseline(lab, wan.alias, set, path.join(root, "b"));
        let o = { ms: 0, streams: 1 };
        const rss = await peakRss(srv.pid!, async () => { o = await ours(srv, wan.alias, set, path.join(root, "o")); });
        rows.push(row(`pull_verify ${set.label} at 100 ms RTT vs rsync + sha256sum both ends`, o.ms, b, 0.4, `${o.streams} streams`));
        const how = rss.hwmReset ? `kernel VmHWM over the pull; 20 ms samples ${(rss.sampled / 2 ** 20).toFixed(1)} MB` : "VmRSS sampled every 20 ms";
        rows.push(row(`server peak RSS during the parallel pull of ${set.label} (MB, limit 150)`, rss.peak / 2 ** 20, 150, 1.0, `${how} (columns are MB)`));
      }
      if (want(`loop-${tag}`)) {
        const bs: number[] = [];
        const os: number[] = [];
        for (let i = 0; i < 2; i++) {
          bs.push(await baseline(lab, host, set, path.join(root, "b")));
          os.push((await ours(srv, host, set, path.join(root, "o"))).ms);
        }
        rows.push(row(`pull_verify ${set.label} on loopback vs rsync + sha256sum both ends`, median(os), median(bs), 0.8));
      }
      if (parts === 4 && want("relay")) {
        // the relay alone: rsync through it (no delay) against rsync straight to sshd
        const sshE = `ssh -F ${lab.sshConfig} -o ControlMaster=no -o ControlPath=none`;
        const through: number[] = [];
        const direct: number[] = [];
        for (let i = 0; i < 2; i++) {
          direct.push(await timeIt(() => run("rsync", ["-a", "-e", sshE, `${host}:${set.id}/`, `${path.join(root, "d")}/`])));
          fs.rmSync(path.join(root, "d"), { recursive: true, force: true });
          through.push(await timeIt(() => run("rsync", ["-a", "-e", sshE, `${bare.alias}:${set.id}/`, `${path.join(root, "d")}/`])));
          fs.rmSync(path.join(root, "d"), { recursive: true, force: true });
        }
        rows.push(row(`lab relay alone: rsync ${set.label} through it vs straight to sshd`, median(through), median(direct), 1.15, "the relay must not be what limits the WAN rows"));
      }
      await lab.boxes[host].exec(`rm -rf ${set.id}`);
    }
  } finally {
    await srv.close();
    await wan.close();
    await bare.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
  return rows;
}
