/**
 * Kills and races. The server is SIGKILLed mid-push and mid-pull on both transports (rsync box k1, SFTP
 * box k2 without rsync, both behind a 100 ms relay so a transfer is in flight long enough to be killed):
 * no rsync outlives it, and a rerun from a fresh server ends with identical trees and no debris (no
 * .rgt-partial/, no rsync ".name.XXXXXX" temp file). Two servers racing on the same directories are
 * serialised (or one is told clearly that the other holds them), never tripping over each other's
 * partial files. And a 20,000-file pull gets a receipt for all 20,000.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";
import type { CutProxy } from "../../src/lab/proxy.js";
import { getReceipt } from "../../src/ledger/receipts.js";
import { Ledger } from "../../src/ledger/store.js";

let lab: Lab;
let work: string;
const proxies: Record<string, CutProxy & { alias: string }> = {};
const servers: ServerConnection[] = [];
const SIZE = { k1: 32 * 1024 * 1024, k2: 8 * 1024 * 1024 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function server(): Promise<ServerConnection> {
  const s = await connectServer(lab.env, { timeoutMs: 180_000 });
  servers.push(s);
  return s;
}

/** local processes (not this test's) whose command line mentions rsync and `needle` */
function rsyncProcs(needle: string): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
      if (cmd.includes("rsync") && cmd.includes(needle) && !cmd.includes("vitest")) out.push(`${pid}: ${cmd.slice(0, 200)}`);
    } catch { /* gone */ }
  }
  return out;
}

async function until(what: string, pred: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function localTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out[r] = sha(fs.readFileSync(path.join(root, r)));
    }
  };
  walk("");
  return out;
}

async function boxTree(box: string, dir: string): Promise<Record<string, string>> {
  const r = await lab.boxes[box].exec(`cd ${dir} && find . -type f -print0 | xargs -0 -r sha256sum -z --`);
  const out: Record<string, string> = {};
  for (const rec of r.stdout.split("\0").filter(Boolean)) out[rec.slice(66).replace(/^\.\//, "")] = rec.slice(0, 64);
  return out;
}

const DEBRIS = /(^|\/)(\.rgt-partial(\/|$)|\.[^/]+\.[A-Za-z0-9]{6}$)/;

beforeAll(async () => {
  lab = await startLab([{ name: "k1", gpus: 0 }, { name: "k2", gpus: 0, without: ["rsync"] }]);
  for (const b of ["k1", "k2"]) {
    proxies[b] = await lab.cutProxy(b, { cutAfterBytes: Number.MAX_SAFE_INTEGER, delayMs: 100, alias: `${b}-slow` });
    proxies[b].setCutAfter(null);
  }
  work = fs.mkdtempSync(path.join(lab.root, "faults-"));
}, 60_000);
afterAll(async () => {
  for (const s of servers) await s.close().catch(() => {});
  for (const p of Object.values(proxies)) await p.close();
  await lab?.stop();
});

for (const [box, method] of [["k1", "rsync"], ["k2", "sftp"]] as const) {
  describe(`SIGKILL of the server mid-transfer (${method})`, () => {
    const host = `${box}-slow`;
    it("mid-push: no rsync survives; a rerun from a fresh server lands the tree identical, no debris on the box", async () => {
      const src = path.join(work, `push-${box}`);
      fs.mkdirSync(path.join(src, "sub"), { recursive: true });
      fs.writeFileSync(path.join(src, "big.bin"), randomBytes(SIZE[box]));
      fs.writeFileSync(path.join(src, "sub/small.py"), "print(1)\n");
      const dest = `/root/kill-push-${box}`;
      const s1 = await server();
      const call = s1.call("push_code", { host, local_dir: src, remote_dir: dest }).catch((e: Error) => ({ died: e.message }));
      await until("the push to be in flight", async () =>
        (await lab.boxes[box].exec(`find ${dest} -name '.big.bin.*' -size +0 -o -path '*/.rgt-partial/big.bin' -size +0 | grep -q .`)).code === 0);
      process.kill(s1.pid!, "SIGKILL");
      await call;
      await until("the killed server's rsync to die", () => rsyncProcs(src).length === 0, 10_000);
      const s2 = await server();
      const r = await s2.call("push_code", { host, local_dir: src, remote_dir: dest });
      expect(r.ok, JSON.stringify(r)).toBe(true);
      expect(await boxTree(box, dest)).toEqual(localTree(src));
      const left = await lab.boxes[box].exec(`cd ${dest} && find . -mindepth 1 | grep -E '/\\.rgt-partial(/|$)|/\\.[^/]+\\.[A-Za-z0-9]{6}$' || true`);
      expect(left.stdout).toBe("");
    });

    it("mid-pull: no rsync survives; a rerun from a fresh server verifies, and no temp or partial file is left locally", async () => {
      const dir = `/root/kill-pull-${box}`;
      await lab.boxes[box].exec(`mkdir -p ${dir}/sub && head -c ${SIZE[box]} /dev/urandom > ${dir}/big.bin && echo 1 > ${dir}/sub/a.txt`);
      const dst = path.join(work, `pull-${box}`);
      const s1 = await server();
      const call = s1.call("pull_verify", { host, remote_path: dir, local_dir: dst }).catch((e: Error) => ({ died: e.message }));
      await until("the pull to be in flight", () => {
        try {
          return fs.readdirSync(dst).some((n) => /^\.big\.bin\.......$/.test(n) && fs.statSync(path.join(dst, n)).size > 0) ||
            fs.statSync(path.join(dst, ".rgt-partial/big.bin")).size > 0;
        } catch { return false; }
      });
      process.kill(s1.pid!, "SIGKILL");
      await call;
      await until("the killed server's rsync to die", () => rsyncProcs(dst).length === 0, 10_000);
      const s2 = await server();
      const r = await s2.call("pull_verify", { host, remote_path: dir, local_dir: dst });
      expect(r.ok, JSON.stringify(r)).toBe(true);
      const got = localTree(dst);
      expect(Object.keys(got).filter((p) => DEBRIS.test(p))).toEqual([]);
      expect(got).toEqual(await boxTree(box, dir));
    });
  });
}

describe("two servers racing on the same directories", () => {
  it("pulls into the same local_dir are serialised (or the loser is told who holds it), never a self-contradicting refusal", async () => {
    const dir = "/root/race-pull";
    await lab.boxes.k2.exec(`mkdir -p ${dir} && head -c ${SIZE.k2} /dev/urandom > ${dir}/big.bin && echo x > ${dir}/b.txt`);
    const dst = path.join(work, "race-pull");
    const [a, b] = [await server(), await server()];
    const rs = await Promise.all([a, b].map((s) => s.call("pull_verify", { host: "k2-slow", remote_path: dir, local_dir: dst })));
    for (const r of rs) {
      if (!r.ok) {
        expect(r.refused.code, JSON.stringify(r.refused)).toBe("TRANSFER_BUSY");
        expect(r.refused.reason).toMatch(/another (server \(pid \d+\)|call)/);
      }
    }
    expect(rs.some((r) => r.ok)).toBe(true);
    const got = localTree(dst);
    expect(Object.keys(got).filter((p) => DEBRIS.test(p))).toEqual([]);
    expect(got).toEqual(await boxTree("k2", dir));
  });

  it("pushes into the same box directory are serialised the same way", async () => {
    const src = path.join(work, "race-push");
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(path.join(src, "big.bin"), randomBytes(SIZE.k1));
    const [a, b] = [await server(), await server()];
    const rs = await Promise.all([a, b].map((s) => s.call("push_code", { host: "k1-slow", local_dir: src, remote_dir: "/root/race-push" })));
    for (const r of rs) if (!r.ok) expect(r.refused.code, JSON.stringify(r.refused)).toBe("TRANSFER_BUSY");
    expect(rs.some((r) => r.ok)).toBe(true);
    expect(await boxTree("k1", "/root/race-push")).toEqual(localTree(src));
  });
});

describe("a 20,000-file pull", () => {
  it("gets one receipt covering all 20,000 files", async () => {
    await lab.boxes.k1.exec("mkdir -p /root/many && cd /root/many && for d in $(seq 0 19); do mkdir d$d && (cd d$d && head -c 1024000 /dev/urandom | split -b 1024 -a 3 - f); done");
    const s = await server();
    const dst = path.join(work, "many");
    const r = await s.call("pull_verify", { host: "k1", remote_path: "/root/many", local_dir: dst });
    expect(r.ok, JSON.stringify(r).slice(0, 2000)).toBe(true);
    expect(r.files_total).toBe(20_000);
    expect(JSON.stringify(r).length).toBeLessThan(8_000);
    expect(getReceipt(new Ledger(lab.env.RGT_HOME), r.receipt_id)!.files.length).toBe(20_000);
  }, 300_000);
});
