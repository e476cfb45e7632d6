/**
 * pull_verify over parallel streams: a box behind a relay that adds latency (so one ssh window cannot
 * carry the link and the chooser opens several streams), then 10 rounds where every connection of the
 * pull is cut mid-transfer and the pull is re-run. Every rerun completes and verifies, no truncated file
 * ever sits under its final name, and the rerun re-requests only what the cut attempt had not landed.
 * Also: a single stream dying while the others live costs nothing but its pieces moving to the others;
 * and on loopback (no latency) the pull stays single-stream.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";

const ROUNDS = 10;
const MiB = 2 ** 20;
/** one-way delay: 50 ms each way = 100 ms RTT, past what one 8 MiB-window stream covers at 1 Gbit/s */
const DELAY = 50;

let lab: Lab;
let s: ServerConnection;
let work: string;
let boxSums: Record<string, string>;
let total = 0;

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

beforeAll(async () => {
  lab = await startLab([{ name: "p1", gpus: 0 }]);
  s = await connectServer(lab.env, { timeoutMs: 180_000 });
  work = fs.mkdtempSync(path.join(lab.root, "par-"));
  // one big checkpoint, three medium files, a few small ones (those stay on the single-stream path)
  const prep = await lab.boxes.p1.exec([
    "mkdir -p /root/src/ckpt /root/src/logs",
    `head -c ${48 * MiB} /dev/urandom > /root/src/ckpt/model.bin`,
    `for i in 1 2 3; do head -c ${8 * MiB + 4097 * 3} /dev/urandom > /root/src/ckpt/shard$i.bin; done`,
    "for i in 1 2 3 4 5; do echo line $i > /root/src/logs/l$i.txt; done",
  ].join(" && "), { timeoutMs: 60_000 });
  expect(prep.code).toBe(0);
  const r = await lab.boxes.p1.exec("cd /root/src && find . -type f -printf '%P\\0' | xargs -0 sha256sum -- && find . -type f -printf '%s\\n' | paste -sd+ | bc");
  const lines = r.stdout.trim().split("\n");
  total = Number(lines.pop());
  boxSums = {};
  for (const l of lines) { const [h, n] = l.split("  "); boxSums[n] = h; }
}, 120_000);
afterAll(async () => {
  await s?.close();
  await lab?.stop();
});

/** nothing under a final name locally is anything but the box's bytes */
function noCorrupt(dst: string, label: string): number {
  let present = 0;
  for (const [k, h] of Object.entries(boxSums)) {
    const f = path.join(dst, k);
    if (!fs.existsSync(f)) continue;
    present++;
    expect(sha(fs.readFileSync(f)), `${label}: ${k} corrupt`).toBe(h);
  }
  return present;
}

describe("parallel pull over a 100 ms RTT link", () => {
  it("opens several streams, verifies every file and writes a receipt", async () => {
    const proxy = await lab.cutProxy("p1", { cutAfterBytes: Infinity, delayMs: DELAY, alias: "p1-wan" });
    const dst = path.join(work, "whole");
    const r = await s.call("pull_verify", { host: proxy.alias, remote_path: "/root/src", local_dir: dst, expect: ["ckpt/model.bin"] });
    expect(r.ok, JSON.stringify(r).slice(0, 600)).toBe(true);
    expect(r.complete).toBe(true);
    expect(r.receipt_id).toMatch(/\S/);
    // the ranged way ran (streams of their own, beside the pooled connection)
    expect(r.streams).toBeGreaterThanOrEqual(1);
    expect(proxy.connections).toBeGreaterThan(r.streams);
    expect(noCorrupt(dst, "whole")).toBe(Object.keys(boxSums).length);
    // no partial or range record left behind
    expect(fs.existsSync(path.join(dst, "ckpt", ".rgt-partial"))).toBe(false);
    // a re-run moves nothing: every local copy is known good
    const again = await s.call("pull_verify", { host: proxy.alias, remote_path: "/root/src", local_dir: dst });
    expect(again.ok).toBe(true);
    expect(again.bytes_transferred).toBeLessThan(4096); // rsync's protocol bytes for the small files, no payload
    await proxy.close();
  }, 180_000);

  it("streams cut mid-pull while others live: the survivors take over their pieces", async () => {
    // every connection that reaches 30 MiB is cut: the first stream (it starts early and carries most)
    // and perhaps another; those below it finish the work
    const proxy = await lab.cutProxy("p1", { cutAfterBytes: 30 * MiB, maxCuts: 1000, delayMs: DELAY, alias: "p1-one" });
    const dst = path.join(work, "one-cut");
    const r = await s.call("pull_verify", { host: proxy.alias, remote_path: "/root/src", local_dir: dst });
    expect(proxy.cuts).toBeGreaterThan(0);
    // the cut may land before the other streams exist (then the pull is interrupted); either way nothing is corrupt
    noCorrupt(dst, "one-cut");
    if (!r.ok) {
      expect(r.refused.code).toBe("TRANSFER_INTERRUPTED");
      const again = await s.call("pull_verify", { host: proxy.alias, remote_path: "/root/src", local_dir: dst });
      expect(again.ok, JSON.stringify(again).slice(0, 600)).toBe(true);
    } else {
      expect(r.complete).toBe(true);
      expect(r.streams).toBeGreaterThanOrEqual(1);
    }
    expect(noCorrupt(dst, "one-cut")).toBe(Object.keys(boxSums).length);
    await proxy.close();
  }, 180_000);

  it(`${ROUNDS} rounds of every stream cut, then a re-run: all complete, 0 corrupt, only the missing ranges re-requested`, async () => {
    const rows: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // a fresh relay (and alias) per round, so the pull's pooled connection is cut too
      // below half the set per connection: with the two streams a 100 ms link gets, some of it is always left
      const cutAt = Math.floor(total * (0.15 + 0.03 * round));
      const proxy = await lab.cutProxy("p1", { cutAfterBytes: cutAt, maxCuts: 1000, delayMs: DELAY, alias: `p1-cut${round}` });
      const dst = path.join(work, `cut-${round}`);
      const first = await s.call("pull_verify", { host: proxy.alias, remote_path: "/root/src", local_dir: dst, expect: ["ckpt/model.bin"] });
      expect(proxy.cuts, `round ${round}: no cut: ${JSON.stringify(first).slice(0, 300)}`).toBeGreaterThan(0);
      expect(first.ok, `round ${round}: ${JSON.stringify(first).slice(0, 300)}`).toBe(false);
      expect(first.refused.code).toBe("TRANSFER_INTERRUPTED");
      expect(first.receipt_id).toBeNull();
      noCorrupt(dst, `round ${round} after the cut`);
      proxy.setCutAfter(null);
      const again = await s.call("pull_verify", { host: proxy.alias, remote_path: "/root/src", local_dir: dst, expect: ["ckpt/model.bin"] });
      expect(again.ok, `round ${round}: ${JSON.stringify(again).slice(0, 600)}`).toBe(true);
      expect(again.complete).toBe(true);
      expect(noCorrupt(dst, `round ${round} after the rerun`)).toBe(Object.keys(boxSums).length);
      // resumed, not restarted: every chunk that landed before the cut was recorded, so the rerun moves
      // exactly what had not landed (plus rsync's protocol bytes for the small files)
      const slack = 64 * 1024;
      rows.push(`round ${round}: cut after ${(cutAt / MiB).toFixed(1)} MiB/connection (${proxy.cuts} cut); first moved ${(first.bytes_transferred / MiB).toFixed(1)} MiB, rerun ${(again.bytes_transferred / MiB).toFixed(1)} MiB of ${(total / MiB).toFixed(1)} MiB over ${again.streams ?? 1} streams`);
      expect(first.bytes_transferred).toBeGreaterThan(0);
      expect(again.bytes_transferred).toBeLessThan(total - first.bytes_transferred + slack);
      await proxy.close();
    }
    console.log(rows.join("\n"));
  }, 600_000);
});

describe("no latency: one stream is enough", () => {
  it("a loopback pull of the same set stays single-stream and verifies", async () => {
    const dst = path.join(work, "loop");
    const r = await s.call("pull_verify", { host: "p1", remote_path: "/root/src", local_dir: dst });
    expect(r.ok, JSON.stringify(r).slice(0, 600)).toBe(true);
    expect(r.streams).toBeUndefined();
    expect(noCorrupt(dst, "loop")).toBe(Object.keys(boxSums).length);
  }, 120_000);
});
