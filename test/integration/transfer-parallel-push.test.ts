/**
 * push_code over parallel streams: a box behind a relay that adds latency (one ssh window cannot carry the
 * link, so the big new files go as byte ranges over several SFTP connections while rsync carries the
 * small ones), then 10 rounds where every connection of the push is cut mid-transfer and the push is
 * re-run. Every rerun completes, nothing under a final name on the box is ever anything but the local
 * bytes, no partial or range record is left behind, and the rerun re-sends only what had not landed.
 * On loopback the push stays single-stream.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";

const ROUNDS = 10;
const MiB = 2 ** 20;
const DELAY = 50;

let lab: Lab;
let s: ServerConnection;
let src: string;
const sums: Record<string, string> = {};
let total = 0;

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

beforeAll(async () => {
  lab = await startLab([{ name: "p1", gpus: 0 }]);
  s = await connectServer(lab.env, { timeoutMs: 180_000 });
  src = fs.mkdtempSync(path.join(lab.root, "ppush-"));
  const files: Record<string, number> = { "ckpt/model.bin": 48 * MiB, "ckpt/shard1.bin": 8 * MiB + 4097 * 3, "ckpt/shard2.bin": 8 * MiB + 1, "ckpt/shard3.bin": 9 * MiB };
  for (let i = 1; i <= 5; i++) files[`logs/l${i}.txt`] = 20 + i;
  for (const [rel, n] of Object.entries(files)) {
    const b = rel.endsWith(".txt") ? Buffer.from(`line ${rel}\n`.padEnd(n, "x")) : randomBytes(n);
    fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
    fs.writeFileSync(path.join(src, rel), b);
    sums[rel] = sha(b);
    total += b.length;
  }
  fs.chmodSync(path.join(src, "ckpt/shard3.bin"), 0o600);
}, 120_000);
afterAll(async () => {
  await s?.close();
  await lab?.stop();
});

/** sha256 of every file on the box under dir (relative path → hash), and whether any range partial is there */
async function boxState(dir: string): Promise<{ sums: Record<string, string>; partials: string[] }> {
  const r = await lab.boxes.p1.exec(`cd ${dir} 2>/dev/null || exit 0; find . -path '*/.rgt-partial/*' -type f -printf 'P %P\\n'; find . -type f -not -path '*/.rgt-partial/*' -printf '%P\\0' | xargs -0 -r sha256sum --`, { timeoutMs: 60_000 });
  const out: Record<string, string> = {};
  const partials: string[] = [];
  for (const l of r.stdout.split("\n").filter(Boolean)) {
    if (l.startsWith("P ")) { partials.push(l.slice(2)); continue; }
    const [h, n] = l.split("  ");
    out[n] = h;
  }
  return { sums: out, partials };
}

/** nothing under a final name on the box is anything but the local bytes */
function noCorrupt(there: Record<string, string>, label: string): number {
  for (const [k, h] of Object.entries(there)) expect(h, `${label}: ${k} corrupt on the box`).toBe(sums[k]);
  return Object.keys(there).length;
}

describe("parallel push over a 100 ms RTT link", () => {
  it("sends the big new files as ranges over several streams, both ends agree, and a re-push sends nothing", async () => {
    const proxy = await lab.cutProxy("p1", { cutAfterBytes: Infinity, delayMs: DELAY, alias: "p1-wan" });
    const r = await s.call("push_code", { host: proxy.alias, local_dir: src, remote_dir: "/root/whole" });
    expect(r.ok, JSON.stringify(r).slice(0, 600)).toBe(true);
    expect(r.streams).toBeGreaterThan(1);
    expect(r.files_sent).toBe(Object.keys(sums).length);
    expect(r.bytes_sent).toBeGreaterThanOrEqual(total - 1000);
    const there = await boxState("/root/whole");
    expect(noCorrupt(there.sums, "whole")).toBe(Object.keys(sums).length);
    expect(there.partials).toEqual([]);
    expect((await lab.boxes.p1.exec("test -e /root/whole/ckpt/.rgt-partial")).code).not.toBe(0);
    // mode and the nanosecond mtime as rsync -t would have set them: the re-push is a no-op for rsync's quick check
    const st = await lab.boxes.p1.exec("stat -c '%a %.9Y' /root/whole/ckpt/shard3.bin");
    const local = fs.statSync(path.join(src, "ckpt/shard3.bin"), { bigint: true });
    expect(st.stdout.trim()).toBe(`600 ${local.mtimeNs / 1_000_000_000n}.${String(local.mtimeNs % 1_000_000_000n).padStart(9, "0")}`);
    const again = await s.call("push_code", { host: proxy.alias, local_dir: src, remote_dir: "/root/whole" });
    expect(again.ok, JSON.stringify(again).slice(0, 600)).toBe(true);
    expect(again.files_sent).toBe(0);
    expect(again.streams).toBeUndefined();
    await proxy.close();
  }, 180_000);

  it(`${ROUNDS} rounds of every connection cut, then a re-run: all complete, 0 corrupt, only the missing ranges re-sent`, async () => {
    const rows: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // under a third of the set per connection: the chooser opens at most three streams for this much, so some is always left
      const cutAt = Math.floor(total * (0.12 + 0.02 * round));
      const proxy = await lab.cutProxy("p1", { cutAfterBytes: cutAt, maxCuts: 1000, delayMs: DELAY, alias: `p1-cut${round}` });
      const dst = `/root/cut-${round}`;
      const first = await s.call("push_code", { host: proxy.alias, local_dir: src, remote_dir: dst });
      expect(proxy.cuts, `round ${round}: no cut: ${JSON.stringify(first).slice(0, 300)}`).toBeGreaterThan(0);
      expect(first.ok, `round ${round}: ${JSON.stringify(first).slice(0, 300)}`).toBe(false);
      expect(first.refused.code).toBe("TRANSFER_INTERRUPTED");
      noCorrupt((await boxState(dst)).sums, `round ${round} after the cut`);
      proxy.setCutAfter(null);
      const again = await s.call("push_code", { host: proxy.alias, local_dir: src, remote_dir: dst });
      expect(again.ok, `round ${round}: ${JSON.stringify(again).slice(0, 600)}`).toBe(true);
      const there = await boxState(dst);
      expect(noCorrupt(there.sums, `round ${round} after the rerun`)).toBe(Object.keys(sums).length);
      expect(there.partials, `round ${round}: debris left`).toEqual([]);
      // resumed, not restarted: what the box acknowledged was recorded piece by piece (1 MiB), so the rerun re-sends
      // what had not landed plus, per stream, the writes in flight at the cut: up to its 2 MiB window, the 1 MiB
      // piece not yet recorded and the one being written (a fresh-clone CI run measured 26.2 MB against a 3 MiB slack)
      const slack = (first.streams ?? 4) * 4 * MiB + 64 * 1024;
      rows.push(`round ${round}: cut after ${(cutAt / MiB).toFixed(1)} MiB/connection (${proxy.cuts} cut); first sent ${((first.bytes_sent ?? 0) / MiB).toFixed(1)} MiB, rerun ${(again.bytes_sent / MiB).toFixed(1)} MiB of ${(total / MiB).toFixed(1)} MiB over ${again.streams ?? 1} streams`);
      expect(again.bytes_sent).toBeLessThan(total - (first.bytes_sent ?? 0) + slack);
      await proxy.close();
    }
    console.log(rows.join("\n"));
  }, 600_000);
});

describe("hashed both ends", () => {
  it("a partial altered on the box between a cut and the rerun is caught by the hashes, never put in place, and sent again", async () => {
    const proxy = await lab.cutProxy("p1", { cutAfterBytes: Math.floor(total * 0.2), maxCuts: 1000, delayMs: DELAY, alias: "p1-tamper" });
    const dst = "/root/tamper";
    const first = await s.call("push_code", { host: proxy.alias, local_dir: src, remote_dir: dst });
    expect(first.ok).toBe(false);
    // flip the first bytes of model.bin's partial: a range its record says has landed
    const flip = await lab.boxes.p1.exec(`p=${dst}/ckpt/.rgt-partial/model.bin.prange; test -s $p && printf 'XXXXXXXX' | dd of=$p bs=1 seek=0 conv=notrunc status=none && echo flipped`);
    expect(flip.stdout).toContain("flipped");
    proxy.setCutAfter(null);
    const again = await s.call("push_code", { host: proxy.alias, local_dir: src, remote_dir: dst });
    expect(again.ok, JSON.stringify(again).slice(0, 400)).toBe(false);
    expect(again.refused.code).toBe("TRANSFER_INTERRUPTED");
    expect(again.refused.reason).toContain("ckpt/model.bin");
    expect(again.refused.reason).toMatch(/sha256/);
    expect(again.failed_files).toEqual(["ckpt/model.bin"]);
    expect((await lab.boxes.p1.exec(`test -e ${dst}/ckpt/model.bin`)).code).not.toBe(0);
    noCorrupt((await boxState(dst)).sums, "tampered");
    // (a fresh relay: the rsync transport's OpenSSH master, kept for reuse, rides a connection the first relay would still cut)
    const clean = await lab.cutProxy("p1", { cutAfterBytes: Infinity, delayMs: DELAY, alias: "p1-clean" });
    const third = await s.call("push_code", { host: clean.alias, local_dir: src, remote_dir: dst });
    expect(third.ok, JSON.stringify(third).slice(0, 400)).toBe(true);
    const there = await boxState(dst);
    expect(noCorrupt(there.sums, "after the resend")).toBe(Object.keys(sums).length);
    expect(there.partials).toEqual([]);
    await proxy.close();
    await clean.close();
  }, 180_000);
});

describe("no latency: one stream is enough", () => {
  it("a loopback push of the same tree stays single-stream and lands identical", async () => {
    const r = await s.call("push_code", { host: "p1", local_dir: src, remote_dir: "/root/loop" });
    expect(r.ok, JSON.stringify(r).slice(0, 600)).toBe(true);
    expect(r.streams).toBeUndefined();
    expect(noCorrupt((await boxState("/root/loop")).sums, "loop")).toBe(Object.keys(sums).length);
  }, 120_000);
});
