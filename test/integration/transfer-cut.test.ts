/**
 * Connections cut mid-transfer (a TCP proxy in front of sshd that drops the link after N bytes):
 * 10 rounds of cut-then-rerun for push_code and for pull_verify. Every rerun completes, every file ends
 * hash-identical, no truncated file ever sits under its final name, and the rerun resumes from the
 * partial copy instead of starting over (it sends < 30 % of the bytes).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";
import { SshRemote } from "../../src/remote/pool.js";
import type { CutProxy } from "../../src/lab/proxy.js";

const ROUNDS = 10;
/**
 * What a cut loses beyond the unsent tail is what was in flight inside ssh (up to its ~2 MiB channel window):
 * sshd drops it with the connection. A constant, so the data set is 32 MiB to keep it a small share.
 */
const BIG = 32 * 1024 * 1024;

let lab: Lab;
let s: ServerConnection;
let proxy: CutProxy & { alias: string };
let work: string;
let transportArgv: string[];
let transportDest: string;

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** end the OpenSSH ControlMaster rsync shares, so the next transfer opens a new (cuttable) connection */
function dropMaster(): void {
  try { execFileSync(transportArgv[0], [...transportArgv.slice(1), "-O", "exit", transportDest], { stdio: "ignore", timeout: 10_000 }); } catch { /* none running */ }
}

async function boxHashes(dir: string): Promise<Record<string, string>> {
  const r = await lab.boxes.c1.exec(`cd ${dir} && find . -path ./.rgt-partial -prune -o -path '*/.rgt-partial' -prune -o -type f -printf '%P\\0' | xargs -0 -r sha256sum --`);
  const out: Record<string, string> = {};
  for (const l of r.stdout.trim().split("\n").filter(Boolean)) { const [h, n] = l.split("  "); out[n] = h; }
  return out;
}

beforeAll(async () => {
  lab = await startLab([{ name: "c1", gpus: 0 }]);
  proxy = await lab.cutProxy("c1", { cutAfterBytes: Number.MAX_SAFE_INTEGER, maxCuts: 1 });
  proxy.setCutAfter(null);
  s = await connectServer(lab.env, { timeoutMs: 120_000 });
  work = fs.mkdtempSync(path.join(lab.root, "cut-"));
  const t = await new SshRemote({ sshConfig: lab.sshConfig }).sshTransport(proxy.alias);
  transportArgv = t.argv;
  transportDest = t.destination;
}, 60_000);
afterAll(async () => {
  dropMaster();
  await s?.close();
  await proxy?.close();
  await lab?.stop();
});

describe("cut mid-push, then re-run", () => {
  it(`${ROUNDS} rounds: all complete, 0 corrupt, rerun sends < 30 % again`, async () => {
    const src = path.join(work, "src");
    fs.mkdirSync(path.join(src, "pkg"), { recursive: true });
    const big = randomBytes(BIG);
    fs.writeFileSync(path.join(src, "weights.bin"), big);
    for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(src, "pkg", `m${i}.py`), `x = ${i}\n`.repeat(50));
    const local: Record<string, string> = { "weights.bin": sha(big) };
    for (let i = 0; i < 10; i++) local[`pkg/m${i}.py`] = sha(fs.readFileSync(path.join(src, "pkg", `m${i}.py`)));
    const total = Object.keys(local).reduce((a, k) => a + fs.statSync(path.join(src, k)).size, 0);
    const rows: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const dst = `/root/cut-push-${round}`;
      const frac = 0.8 + 0.015 * round;
      dropMaster();
      const cutsBefore = proxy.cuts;
      proxy.setCutAfter(Math.floor(total * frac), 1);
      const first = await s.call("push_code", { host: proxy.alias, local_dir: src, remote_dir: dst });
      expect(proxy.cuts, `round ${round}: the proxy did not cut: ${JSON.stringify(first).slice(0, 400)}`).toBe(cutsBefore + 1);
      expect(first.ok).toBe(false);
      expect(first.refused.code).toBe("TRANSFER_INTERRUPTED");
      // nothing truncated under a final name
      const mid = await boxHashes(dst);
      for (const [k, h] of Object.entries(mid)) expect(h, `round ${round}: ${k} corrupt after the cut`).toBe(local[k]);
      proxy.setCutAfter(null);
      dropMaster();
      const again = await s.call("push_code", { host: proxy.alias, local_dir: src, remote_dir: dst });
      expect(again.ok, JSON.stringify(again)).toBe(true);
      expect(await boxHashes(dst)).toEqual(local);
      const ratio = again.bytes_sent / total;
      rows.push(`push round ${round}: cut at ${(frac * 100).toFixed(1)}%, rerun sent ${(ratio * 100).toFixed(1)}% of ${total} bytes, reused ${again.bytes_reused}`);
      expect(ratio).toBeLessThan(0.3);
      // resumed, not restarted: what the rerun sends is about what the cut left unsent
      expect(again.bytes_sent).toBeLessThan(total * (1 - frac) + 0.1 * total);
    }
    console.log(rows.join("\n"));
  }, 300_000);
});

describe("cut mid-pull, then re-run", () => {
  it(`${ROUNDS} rounds: all complete and verified, rerun transfers < 30 % again`, async () => {
    const prep = await lab.boxes.c1.exec(`mkdir -p /root/pull-src/ckpt /root/pull-src/logs && head -c ${BIG} /dev/urandom > /root/pull-src/ckpt/model.bin && for i in 1 2 3 4 5; do echo "line $i" > /root/pull-src/logs/l$i.txt; done`);
    expect(prep.code).toBe(0);
    const box = await lab.boxes.c1.exec("cd /root/pull-src && find . -type f -printf '%s\\n' | paste -sd+ | bc");
    const total = Number(box.stdout.trim());
    const boxSums = await (async () => {
      const r = await lab.boxes.c1.exec("cd /root/pull-src && find . -type f -printf '%P\\0' | xargs -0 sha256sum --");
      const o: Record<string, string> = {};
      for (const l of r.stdout.trim().split("\n")) { const [h, n] = l.split("  "); o[n] = h; }
      return o;
    })();
    const rows: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const dst = path.join(work, `pulled-${round}`);
      const frac = 0.8 + 0.015 * round;
      dropMaster();
      const cutsBefore = proxy.cuts;
      proxy.setCutAfter(Math.floor(total * frac), 1);
      const first = await s.call("pull_verify", { host: proxy.alias, remote_path: "/root/pull-src", local_dir: dst, expect: ["ckpt/model.bin"] });
      expect(proxy.cuts, `round ${round}: the proxy did not cut: ${JSON.stringify(first).slice(0, 400)}`).toBe(cutsBefore + 1);
      expect(first.ok).toBe(false);
      expect(first.refused.code).toBe("TRANSFER_INTERRUPTED");
      expect(first.receipt_id).toBeNull();
      // nothing truncated under a final name locally
      for (const [k, h] of Object.entries(boxSums)) {
        const f = path.join(dst, k);
        if (fs.existsSync(f)) expect(sha(fs.readFileSync(f)), `round ${round}: ${k} corrupt after the cut`).toBe(h);
      }
      proxy.setCutAfter(null);
      dropMaster();
      const again = await s.call("pull_verify", { host: proxy.alias, remote_path: "/root/pull-src", local_dir: dst, expect: ["ckpt/model.bin"] });
      expect(again.ok, JSON.stringify(again).slice(0, 600)).toBe(true);
      expect(again.complete).toBe(true);
      for (const [k, h] of Object.entries(boxSums)) expect(sha(fs.readFileSync(path.join(dst, k)))).toBe(h);
      const ratio = again.bytes_transferred / total;
      rows.push(`pull round ${round}: cut at ${(frac * 100).toFixed(1)}%, rerun transferred ${(ratio * 100).toFixed(1)}% of ${total} bytes, reused ${again.bytes_reused}`);
      expect(ratio).toBeLessThan(0.3);
      expect(again.bytes_transferred).toBeLessThan(total * (1 - frac) + 0.1 * total);
    }
    console.log(rows.join("\n"));
  }, 300_000);
});
