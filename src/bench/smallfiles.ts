/**
 * Many tiny files, where one stream is enough and per-file overhead is everything: pull_verify of
 * 20,000 files of 1 KB against `ssh box sha256sum` + `rsync -a` + local `sha256sum`, and the server's
 * peak RSS during it. Loopback (no relay): this row is about overhead, not the link.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Lab } from "../lab/box.js";
import { connectServer } from "../lab/client.js";
import { median, row, timeIt, type BenchRow } from "./types.js";
import { peakRss } from "./rss.js";

const run = promisify(execFile);
export const ROWS = ["pull-20k"] as const;
const DIRS = 100;
const PER = 200;

export async function bench(lab: Lab, want: (id: string) => boolean = () => true): Promise<BenchRow[]> {
  if (!want("pull-20k")) return [];
  const host = Object.keys(lab.boxes)[0];
  const dir = "/root/bench-20k";
  const mk = await lab.boxes[host].exec(`python3 - <<'PY'
import os
for d in range(${DIRS}):
    p = "${dir}/d%03d" % d
    os.makedirs(p, exist_ok=True)
    for f in range(${PER}):
        with open("%s/f%03d.txt" % (p, f), "wb") as fh:
            fh.write(os.urandom(1024))
PY`, { timeoutMs: 300_000 });
  if (mk.code !== 0) throw new Error(`making ${dir} failed: ${mk.stderr}`);
  const root = fs.mkdtempSync(path.join(lab.root, "bench-20k-"));
  const srv = await connectServer(lab.env, { timeoutMs: 600_000 });
  const sshE = `ssh -F ${lab.sshConfig} -o ControlMaster=no -o ControlPath=none`;
  try {
    const base: number[] = [];
    const ours: number[] = [];
    let peak = 0;
    for (let i = 0; i < 2; i++) {
      const b = path.join(root, "b");
      base.push(await timeIt(async () => {
        await run("ssh", ["-F", lab.sshConfig, "-o", "ControlMaster=no", "-o", "ControlPath=none", host, `cd ${dir} && find . -type f -print0 | xargs -0 sha256sum > /dev/null`], { maxBuffer: 1 << 20 });
        await run("rsync", ["-a", "-e", sshE, `${host}:${dir}/`, `${b}/`]);
        await run("sh", ["-c", `cd ${b} && find . -type f -print0 | xargs -0 sha256sum > /dev/null`]);
      }));
      fs.rmSync(b, { recursive: true, force: true });
      const o = path.join(root, "o");
      const rss = await peakRss(srv.pid!, async () => {
        ours.push(await timeIt(async () => {
          const r = await srv.call("pull_verify", { host, remote_path: dir, local_dir: o });
          if (!r.ok || r.files_total !== DIRS * PER) throw new Error(`pull_verify failed: ${JSON.stringify(r.refused ?? r).slice(0, 300)}`);
        }));
      });
      peak = Math.max(peak, rss.peak);
      fs.rmSync(o, { recursive: true, force: true });
    }
    return [
      row(`pull_verify ${DIRS * PER} files of 1 KB vs rsync -a + sha256sum both ends`, median(ours), median(base), 1.3),
      row(`server peak RSS during the ${DIRS * PER}-file pull (MB, limit 150)`, peak / 2 ** 20, 150, 1.0, "columns are MB"),
    ];
  } finally {
    await srv.close();
    await lab.boxes[host].exec(`rm -rf ${dir}`);
    fs.rmSync(root, { recursive: true, force: true });
  }
}
