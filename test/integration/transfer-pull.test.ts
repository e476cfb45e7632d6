/**
 * pull_verify against real sshd boxes: the box hashes its own files, the local copies are hashed and
 * compared, real torch checkpoints (written by Debian's python3-torch on the box) are load-checked,
 * receipts land in the ledger; truncated checkpoints, roster gaps, files changing mid-pull, empty or
 * absent dirs are refused; SFTP is used on a box without rsync; run_id pulls every cell.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";
import { Ledger } from "../../src/ledger/store.js";
import { saveRun } from "../../src/ledger/runs.js";
import { getReceipt, listReceipts } from "../../src/ledger/receipts.js";

let lab: Lab;
let s: ServerConnection;
let local: string;

const MAKE_CKPTS = (dir: string) => `
set -e
mkdir -p ${dir}/ckpt ${dir}/logs
python3 - <<'PY'
import torch, json
d = "${dir}"
sd = {"w": torch.randn(128, 64), "b": torch.zeros(64)}
torch.save(sd, d + "/best.pth")
torch.save({"model": sd, "step": 100}, d + "/ckpt/e1.pt")
json.dump({"loss": 0.1}, open(d + "/logs/metrics.json", "w"))
PY
head -c 300000 /dev/urandom > ${dir}/ckpt/blob.dat
`;

function sha(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

async function boxSha(box: string, file: string): Promise<string> {
  return (await lab.boxes[box].exec(`sha256sum ${file}`)).stdout.split(" ")[0];
}

beforeAll(async () => {
  lab = await startLab([{ name: "q1", gpus: 0 }, { name: "q2", gpus: 0, without: ["rsync"] }]);
  s = await connectServer(lab.env, { timeoutMs: 180_000 });
  local = fs.mkdtempSync(path.join(lab.root, "pull-"));
  for (const b of ["q1", "q2"]) {
    const r = await lab.boxes[b].exec(MAKE_CKPTS("/root/out"), { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`making checkpoints on ${b} failed: ${r.stderr}`);
  }
}, 240_000);
afterAll(async () => {
  await s?.close();
  await lab?.stop();
});

describe("pull_verify over rsync", () => {
  it("pulls, hashes both ends, load-checks with torch, and writes a receipt", async () => {
    const dst = path.join(local, "out");
    const r = await s.call("pull_verify", { host: "q1", remote_path: "/root/out", local_dir: dst, expect: ["best.pth", "logs/*.json"] });
    expect(r.ok, JSON.stringify(r).slice(0, 1500)).toBe(true);
    expect(r.complete).toBe(true);
    expect(r.files_total).toBe(4);
    expect(r.missing).toEqual([]);
    expect(r.mismatched).toEqual([]);
    for (const f of r.files) {
      expect(f.match).toBe(true);
      expect(f.sha256).toBe(f.remote_sha256);
      expect(sha(path.join(dst, f.path))).toBe(await boxSha("q1", `/root/out/${f.path}`));
    }
    const best = r.files.find((f: { path: string }) => f.path === "best.pth");
    expect(best.load_check).toMatchObject({ format: "torch_zip", ok: true, torch_load: "ok", tensors: 2 });
    expect(r.files.find((f: { path: string }) => f.path === "ckpt/blob.dat").load_check).toBeNull();
    expect(r.bytes_transferred).toBeGreaterThan(300_000);
    expect(JSON.stringify(r).length).toBeLessThan(4000);
    // the receipt is in the server's ledger, with every file's hash
    const ledger = new Ledger(lab.env.RGT_HOME);
    const rc = getReceipt(ledger, r.receipt_id)!;
    expect(rc.host).toBe("q1");
    expect(rc.remote_path).toBe("/root/out");
    expect(rc.files.map((f) => f.path).sort()).toEqual(["best.pth", "ckpt/blob.dat", "ckpt/e1.pt", "logs/metrics.json"]);
    expect(rc.files.find((f) => f.path === "best.pth")!.sha256).toBe(best.remote_sha256);
    expect(rc.manifest_sha256).toMatch(/^[0-9a-f]{64}$/);
    // no partial dirs left behind
    expect(fs.existsSync(path.join(dst, ".rgt-partial"))).toBe(false);
  });

  it("a second identical pull converges: nothing re-sent, same manifest", async () => {
    const dst = path.join(local, "out");
    const first = listReceipts(new Ledger(lab.env.RGT_HOME), { host: "q1" })[0];
    const r = await s.call("pull_verify", { host: "q1", remote_path: "/root/out", local_dir: dst, expect: ["best.pth"] });
    expect(r.ok).toBe(true);
    expect(r.bytes_transferred).toBeLessThan(20_000);
    expect(r.manifest_sha256).toBe(first.manifest_sha256);
  });

  it("a local copy with the box's size and mtime but other bytes (rsync's quick check skips it) is re-sent and verified", async () => {
    await lab.boxes.q1.exec("mkdir -p /root/qc && head -c 300000 /dev/urandom > /root/qc/w.bin && touch -d '2026-01-02 03:04:05' /root/qc/w.bin");
    const dst = path.join(local, "qc");
    expect((await s.call("pull_verify", { host: "q1", remote_path: "/root/qc", local_dir: dst, expect: ["w.bin"] })).ok).toBe(true);
    // flip bytes in the middle of the local copy, keep its size and mtime
    const f = path.join(dst, "w.bin");
    const st = fs.statSync(f);
    const fd = fs.openSync(f, "r+");
    fs.writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 100_000);
    fs.closeSync(fd);
    fs.utimesSync(f, st.atime, st.mtime);
    const r = await s.call("pull_verify", { host: "q1", remote_path: "/root/qc", local_dir: dst, expect: ["w.bin"] });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.warnings.map((w: { code: string }) => w.code)).toContain("REPULLED");
    expect(sha(f)).toBe(await boxSha("q1", "/root/qc/w.bin"));
  });

  it("a checkpoint truncated on the box is LOAD_CHECK_FAILED, with no receipt", async () => {
    await lab.boxes.q1.exec("mkdir -p /root/trunc && cp /root/out/best.pth /root/trunc/best.pth && f=/root/trunc/best.pth; truncate -s $(( $(stat -c %s $f) * 6 / 10 )) $f");
    const before = listReceipts(new Ledger(lab.env.RGT_HOME)).length;
    const r = await s.call("pull_verify", { host: "q1", remote_path: "/root/trunc", local_dir: path.join(local, "trunc"), expect: ["best.pth"] });
    expect(r.ok).toBe(false);
    expect(r.refused.code).toBe("LOAD_CHECK_FAILED");
    expect(r.receipt_id).toBeNull();
    expect(r.files[0].match).toBe(true);
    expect(r.files[0].load_check.ok).toBe(false);
    expect(listReceipts(new Ledger(lab.env.RGT_HOME)).length).toBe(before);
  });

  it("a roster gap is ROSTER_MISMATCH naming the missing artifact", async () => {
    const r = await s.call("pull_verify", { host: "q1", remote_path: "/root/out", local_dir: path.join(local, "out"), expect: ["best.pth", "final.pth"] });
    expect(r.ok).toBe(false);
    expect(r.refused.code).toBe("ROSTER_MISMATCH");
    expect(r.missing).toEqual(["final.pth"]);
    expect(r.receipt_id).toBeNull();
  });

  it("an empty or absent directory is EMPTY_ARTIFACT_SET", async () => {
    await lab.boxes.q1.exec("mkdir -p /root/empty");
    const e = await s.call("pull_verify", { host: "q1", remote_path: "/root/empty", local_dir: path.join(local, "empty") });
    expect(e.ok).toBe(false);
    expect(e.refused.code).toBe("EMPTY_ARTIFACT_SET");
    const n = await s.call("pull_verify", { host: "q1", remote_path: "/root/never-made", local_dir: path.join(local, "none") });
    expect(n.refused.code).toBe("EMPTY_ARTIFACT_SET");
    expect(n.refused.reason).toContain("does not exist");
  });

  it("a file still being written on the box during the pull is HASH_MISMATCH", async () => {
    await lab.boxes.q1.exec("mkdir -p /root/grow && head -c 2000000 /dev/urandom > /root/grow/a.bin && head -c 100 /dev/urandom > /root/grow/log.bin");
    // a writer appending without pause for a few seconds, detached from the exec; the pull starts only once
    // it is appending, so the file grows between the box's hash and the copy however fast the pull is
    await lab.boxes.q1.exec("setsid bash -c 'end=$((SECONDS + 5)); while [ $SECONDS -lt $end ]; do head -c 2048 /dev/urandom >> /root/grow/log.bin; done' >/dev/null 2>&1 < /dev/null &");
    await lab.boxes.q1.exec("for i in $(seq 1 100); do [ $(stat -c %s /root/grow/log.bin) -gt 100 ] && exit 0; sleep 0.05; done; exit 1");
    const r = await s.call("pull_verify", { host: "q1", remote_path: "/root/grow", local_dir: path.join(local, "grow") });
    expect(r.ok).toBe(false);
    expect(r.refused.code).toBe("HASH_MISMATCH");
    expect(r.mismatched).toContain("log.bin");
    expect(r.mismatched).not.toContain("a.bin");
  });

  it("what appears on the box after its listing (while it hashes) is never passed off as verified: removed, warned, verified next time", async () => {
    // the box's sha256sum, once armed, adds a file to the tree and stalls: the listing is already sent, so
    // the pull is under way (rsync walking the whole tree) while the box hashes, and rsync sees the newcomer
    fs.writeFileSync(path.join(lab.boxes.q1.dir, "bin", "sha256sum"),
      "#!/bin/bash\nif rm /root/late.arm 2>/dev/null; then echo late > /root/late/new.txt; sleep 2; fi\nexec /usr/bin/sha256sum \"$@\"\n", { mode: 0o755 });
    try {
      await lab.boxes.q1.exec("rm -rf /root/late && mkdir -p /root/late/sub && head -c 5000 /dev/urandom > /root/late/a.bin && echo b > /root/late/sub/b.txt && touch /root/late.arm");
      const dst = path.join(local, "late");
      const r = await s.call("pull_verify", { host: "q1", remote_path: "/root/late", local_dir: dst });
      expect(r.ok, JSON.stringify(r.refused)).toBe(true);
      expect(r.files_total).toBe(2);
      expect(r.files.map((f: { path: string }) => f.path).sort()).toEqual(["a.bin", "sub/b.txt"]);
      expect(r.warnings.find((w: { code: string }) => w.code === "APPEARED_AFTER_LISTING")?.message).toContain("new.txt");
      expect(fs.existsSync(path.join(dst, "new.txt"))).toBe(false);
      expect(sha(path.join(dst, "a.bin"))).toBe(await boxSha("q1", "/root/late/a.bin"));
      // pulled again, the newcomer is listed, hashed and verified like the rest
      const again = await s.call("pull_verify", { host: "q1", remote_path: "/root/late", local_dir: dst });
      expect(again.ok).toBe(true);
      expect(again.files_total).toBe(3);
      expect(fs.readFileSync(path.join(dst, "new.txt"), "utf8")).toBe("late\n");
    } finally {
      fs.rmSync(path.join(lab.boxes.q1.dir, "bin", "sha256sum"), { force: true });
    }
  });

  it("bad input names the field", async () => {
    const r = await s.call("pull_verify", { host: "q1", local_dir: path.join(local, "x") });
    expect(r.refused.code).toBe("BAD_INPUT");
    expect(r.refused.reason).toMatch(/remote_path or run_id/);
    const r2 = await s.call("pull_verify", { host: "q1", remote_path: "/root/out", local_dir: path.join(local, "x"), expect: ["../etc/passwd"] });
    expect(r2.refused.code).toBe("BAD_INPUT");
    expect(r2.refused.reason).toContain("expect");
    const r3 = await s.call("pull_verify", { host: "q1", run_id: "no-such-run", local_dir: path.join(local, "x") });
    expect(r3.refused.code).toBe("NOT_FOUND");
  });
});

describe("pull_verify by run_id", () => {
  it("pulls every cell's output dir into <local_dir>/<cell> and checks the run's roster per cell", async () => {
    await lab.boxes.q1.exec("mkdir -p /root/runs/r1/a /root/runs/r1/b && cp /root/out/best.pth /root/runs/r1/a/ && echo x > /root/runs/r1/b/other.txt");
    const ledger = new Ledger(lab.env.RGT_HOME);
    const now = new Date().toISOString();
    await saveRun(ledger, {
      run_id: "r1", run_name: "r1", hosts: ["q1"], backend: "tmux", workdir: "/root", state_dir: "/root/.rgt/runs/r1",
      cells: [{ name: "a", host: "q1", gpu_indices: [0], output_dir: "/root/runs/r1/a" }, { name: "b", host: "q1", gpu_indices: [1], output_dir: "/root/runs/r1/b" }],
      expect: ["best.pth"], created_at: now, updated_at: now,
    });
    const r = await s.call("pull_verify", { host: "q1", run_id: "r1", local_dir: path.join(local, "run-r1") });
    expect(r.ok).toBe(false);
    expect(r.refused.code).toBe("ROSTER_MISMATCH");
    expect(r.missing).toEqual(["b/best.pth"]);
    expect(fs.existsSync(path.join(local, "run-r1/a/best.pth"))).toBe(true);
    await lab.boxes.q1.exec("cp /root/out/best.pth /root/runs/r1/b/");
    const ok = await s.call("pull_verify", { host: "q1", run_id: "r1", local_dir: path.join(local, "run-r1") });
    expect(ok.ok, JSON.stringify(ok).slice(0, 800)).toBe(true);
    const rc = getReceipt(ledger, ok.receipt_id)!;
    expect(rc.run_id).toBe("r1");
    expect(rc.files.map((f) => f.path).sort()).toEqual(["a/best.pth", "b/best.pth", "b/other.txt"]);
    expect(rc.cells?.map((c) => c.name)).toEqual(["a", "b"]);
  });
});

describe("pull_verify over SFTP (box without rsync)", () => {
  it("pulls and verifies without rsync on the box", async () => {
    const dst = path.join(local, "sftp-out");
    const r = await s.call("pull_verify", { host: "q2", remote_path: "/root/out", local_dir: dst, expect: ["best.pth"] });
    expect(r.ok, JSON.stringify(r).slice(0, 800)).toBe(true);
    expect(r.warnings.map((w: { code: string }) => w.code)).toContain("NO_RSYNC");
    for (const f of ["best.pth", "ckpt/e1.pt", "ckpt/blob.dat", "logs/metrics.json"]) {
      expect(sha(path.join(dst, f))).toBe(await boxSha("q2", `/root/out/${f}`));
    }
    const again = await s.call("pull_verify", { host: "q2", remote_path: "/root/out", local_dir: dst, expect: ["best.pth"] });
    expect(again.ok).toBe(true);
    expect(again.bytes_transferred).toBe(0);
  });

  it("a file rewritten on the box with the same size within the same second is pulled again, not a lasting HASH_MISMATCH", async () => {
    const dst = path.join(local, "sftp-samesecond");
    await lab.boxes.q2.exec("mkdir -p /root/ss && printf 'metric 1\\n' > /root/ss/m.txt && touch -d @1700000000.1 /root/ss/m.txt");
    expect((await s.call("pull_verify", { host: "q2", remote_path: "/root/ss", local_dir: dst, expect: ["m.txt"] })).ok).toBe(true);
    await lab.boxes.q2.exec("printf 'metric 2\\n' > /root/ss/m.txt && touch -d @1700000000.6 /root/ss/m.txt");
    const r = await s.call("pull_verify", { host: "q2", remote_path: "/root/ss", local_dir: dst, expect: ["m.txt"] });
    expect(r.ok, JSON.stringify(r).slice(0, 600)).toBe(true);
    expect(fs.readFileSync(path.join(dst, "m.txt"), "utf8")).toBe("metric 2\n");
  });
});
