/**
 * Transfer benchmarks, each side by side with what a user would type instead:
 *  - first push of a ~200 MB / 2,000-file tree: push_code vs `rsync -a --partial`
 *  - no-change re-push: push_code vs rsync's own no-op run
 *  - pull_verify of ~1 GB: vs `ssh box sha256sum` + `rsync -a --partial` + local `sha256sum`
 *  - the server's peak RSS during that pull (VmRSS sampled every 20 ms, and VmHWM)
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import type { Lab } from "../lab/box.js";
import { connectServer } from "../lab/client.js";
import { median, row, timeIt, type BenchRow } from "./types.js";
import { rssOf } from "./rss.js";

const run = promisify(execFile);
const REPS = 3;

export const ROWS = ["push", "pull-1gb"] as const;

export async function bench(lab: Lab, want: (id: string) => boolean = () => true): Promise<BenchRow[]> {
  const host = Object.keys(lab.boxes)[0];
  const box = lab.boxes[host];
  const sshE = `ssh -F ${lab.sshConfig}`;
  const root = fs.mkdtempSync(path.join(lab.root, "bench-transfer-"));
  const rows: BenchRow[] = [];
  const srv = await connectServer(lab.env, { timeoutMs: 600_000 });
  try {
    if (want("push")) {
      // ~200 MB in 2,000 files over 40 directories
      const tree = path.join(root, "tree");
      for (let d = 0; d < 40; d++) {
        fs.mkdirSync(path.join(tree, `pkg${d}`), { recursive: true });
        for (let f = 0; f < 50; f++) fs.writeFileSync(path.join(tree, `pkg${d}`, `f${f}.bin`), randomBytes(100_000));
      }
      const ours: number[] = [];
      const base: number[] = [];
      const oursNoop: number[] = [];
      const baseNoop: number[] = [];
      for (let i = 0; i < REPS; i++) {
        base.push(await timeIt(() => run("rsync", ["-a", "--partial", "-e", sshE, `${tree}/`, `${host}:/root/bench-base-${i}/`])));
        ours.push(await timeIt(async () => {
          const r = await srv.call("push_code", { host, local_dir: tree, remote_dir: `/root/bench-ours-${i}` });
          if (!r.ok) throw new Error(`push_code failed: ${JSON.stringify(r.refused)}`);
        }));
        baseNoop.push(await timeIt(() => run("rsync", ["-a", "--partial", "-e", sshE, `${tree}/`, `${host}:/root/bench-base-${i}/`])));
        oursNoop.push(await timeIt(async () => {
          const r = await srv.call("push_code", { host, local_dir: tree, remote_dir: `/root/bench-ours-${i}` });
          if (!r.ok || r.files_sent !== 0) throw new Error(`re-push not a no-op: ${JSON.stringify(r).slice(0, 300)}`);
        }));
        await box.exec(`rm -rf /root/bench-base-${i} /root/bench-ours-${i}`);
      }
      rows.push(row("push_code first push 200 MB / 2,000 files vs rsync -a --partial", median(ours), median(base), 1.0));
      rows.push(row("push_code no-change re-push vs rsync no-op", median(oursNoop), median(baseNoop), 1.2));
    }
    if (want("pull-1gb")) {
      // ~1 GB on the box in 8 files
      const mk = await box.exec("mkdir -p /root/bench-pull/a /root/bench-pull/b && for i in 1 2 3 4; do head -c 134217728 /dev/urandom > /root/bench-pull/a/part$i.dat; head -c 134217728 /dev/urandom > /root/bench-pull/b/part$i.dat; done", { timeoutMs: 300_000 });
      if (mk.code !== 0) throw new Error(`making the pull set failed: ${mk.stderr}`);
      const pOurs: number[] = [];
      const pBase: number[] = [];
      let peakRss = 0;
      let hwm = 0;
      for (let i = 0; i < 2; i++) {
        const bdir = path.join(root, `base-pull-${i}`);
        pBase.push(await timeIt(async () => {
          await run("ssh", ["-F", lab.sshConfig, host, "cd /root/bench-pull && sha256sum a/* b/*"], { maxBuffer: 1 << 20 });
          await run("rsync", ["-a", "--partial", "-e", sshE, `${host}:/root/bench-pull/`, `${bdir}/`]);
          await run("sh", ["-c", `cd ${bdir} && sha256sum a/* b/*`], { maxBuffer: 1 << 20 });
        }));
        fs.rmSync(bdir, { recursive: true, force: true });
        const odir = path.join(root, `ours-pull-${i}`);
        const pid = srv.pid!;
        const sampler = setInterval(() => { peakRss = Math.max(peakRss, rssOf(pid).rss); }, 20);
        try {
          pOurs.push(await timeIt(async () => {
            const r = await srv.call("pull_verify", { host, remote_path: "/root/bench-pull", local_dir: odir, expect: ["a/part1.dat", "b/part4.dat"] });
            if (!r.ok) throw new Error(`pull_verify failed: ${JSON.stringify(r.refused)}`);
          }));
        } finally {
          clearInterval(sampler);
        }
        hwm = Math.max(hwm, rssOf(pid).hwm);
        fs.rmSync(odir, { recursive: true, force: true });
      }
      await box.exec("rm -rf /root/bench-pull");
      rows.push(row("pull_verify 1 GB vs ssh sha256sum + rsync + local sha256sum", median(pOurs), median(pBase), 1.3));
      const mb = peakRss / 2 ** 20;
      rows.push(row("server peak RSS during 1 GB pull_verify (MB, limit 150 MB)", mb, 150, 1.0, `sampled VmRSS peak ${mb.toFixed(1)} MB; VmHWM ${(hwm / 2 ** 20).toFixed(1)} MB (columns are MB here, not ms)`));
    }
  } finally {
    await srv.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
  return rows;
}
