/**
 * Self-describing results: a pull writes <tree>.rgt-manifest.json beside each pulled tree (run, cell, command,
 * spec hash, the pushed tree's git commit and dirty state, host, profile, times, every file's size and
 * sha256, the receipt id), and a later pull of a tree that carries a manifest is checked against it: a
 * tampered file is refused HASH_MISMATCH, a file the manifest lists but the box lost is missing.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";
import { Ledger } from "../../src/ledger/store.js";
import { saveRun } from "../../src/ledger/runs.js";
import { getReceipt } from "../../src/ledger/receipts.js";
import { ManifestSchema } from "../../src/transfer/manifest.js";
import { manifestSha256 } from "../../src/verify/hash.js";

let lab: Lab;
let s: ServerConnection;
let work: string;
const sha = (f: string) => createHash("sha256").update(fs.readFileSync(f)).digest("hex");

beforeAll(async () => {
  lab = await startLab([{ name: "m1", gpus: 2, gpuModel: "NVIDIA H100 80GB HBM3" }]);
  s = await connectServer(lab.env);
  work = fs.mkdtempSync(path.join(lab.root, "manifest-"));
}, 60_000);
afterAll(async () => {
  await s?.close();
  await lab?.stop();
});

describe("the pull manifest", () => {
  let commit: string;
  let cellDir: string;
  it("a run pull writes one manifest per cell that says where, what and from which code it came", async () => {
    // the code: a git work tree with an uncommitted edit, pushed to the run's workdir
    const code = path.join(work, "code");
    fs.mkdirSync(code);
    fs.writeFileSync(path.join(code, "train.py"), "print('train')\n");
    const git = (...a: string[]) => execFileSync("git", ["-C", code, "-c", "user.email=t@t", "-c", "user.name=t", ...a], { encoding: "utf8" }).trim();
    git("init", "-q");
    git("add", ".");
    git("commit", "-qm", "first");
    commit = git("rev-parse", "HEAD");
    fs.writeFileSync(path.join(code, "train.py"), "print('edited')\n");
    expect((await s.call("probe_env", { host: "m1" })).ok).toBe(true);
    const pushed = await s.call("push_code", { host: "m1", local_dir: code, remote_dir: "/root/proj" });
    expect(pushed.ok, JSON.stringify(pushed)).toBe(true);

    await lab.boxes.m1.exec("mkdir -p /root/proj/rgt-out/mr/c0/ckpt && echo '{\"acc\":0.9}' > /root/proj/rgt-out/mr/c0/metrics.json && head -c 5000 /dev/urandom > /root/proj/rgt-out/mr/c0/ckpt/w.dat");
    const ledger = new Ledger(lab.env.RGT_HOME);
    const now = new Date().toISOString();
    await saveRun(ledger, {
      run_id: "mr", run_name: "mr", hosts: ["m1"], backend: "tmux", workdir: "/root/proj", state_dir: "/root/.rgt/runs/mr",
      cells: [{ name: "c0", host: "m1", gpu_indices: [1], output_dir: "/root/proj/rgt-out/mr/c0", spec_sha: "0123456789abcdef", command: "python train.py --lr 3e-4" }],
      expect: ["metrics.json"], created_at: now, updated_at: now,
    });
    const r = await s.call("pull_verify", { host: "m1", run_id: "mr", local_dir: path.join(work, "pulled") });
    expect(r.ok, JSON.stringify(r).slice(0, 1500)).toBe(true);
    cellDir = path.join(work, "pulled", "c0");
    expect(r.manifest_path).toBe(`${cellDir}.rgt-manifest.json`);
    // beside the tree, not in it: the local tree is the box's tree, nothing added
    expect(fs.readdirSync(cellDir).sort()).toEqual(["ckpt", "metrics.json"]);
    const m = ManifestSchema.parse(JSON.parse(fs.readFileSync(r.manifest_path, "utf8")));
    expect(m.receipt_id).toBe(r.receipt_id);
    expect(m.run).toMatchObject({ run_id: "mr", cell: "c0", command: "python train.py --lr 3e-4", spec_sha: "0123456789abcdef", gpu_indices: [1], backend: "tmux" });
    expect(m.code).toMatchObject({ git_commit: commit, git_dirty: true, pushed_to: "/root/proj" });
    expect(m.source).toMatchObject({ host: "m1", remote_dir: "/root/proj/rgt-out/mr/c0" });
    expect(m.host.gpu_name).toContain("H100");
    expect(m.host.profile).toBeTruthy();
    expect(m.files.map((f) => f.path)).toEqual(["ckpt/w.dat", "metrics.json"]);
    for (const f of m.files) expect(f.sha256).toBe(sha(path.join(cellDir, f.path)));
    const receipt = getReceipt(ledger, r.receipt_id)!;
    // the receipt names the same bytes (its paths carry the cell prefix)
    expect(receipt.files.map((f) => [f.path, f.sha256])).toEqual(m.files.map((f) => [`c0/${f.path}`, f.sha256]));
    expect(m.manifest_sha256).toBe(manifestSha256(m.files));
  });

  it("a tree that carries its manifest is checked against it: a tampered file is refused, an intact copy verifies", async () => {
    // the pulled tree and the manifest beside it go to "durable storage" on the box and come back
    const up = await s.call("push_code", { host: "m1", local_dir: path.join(work, "pulled"), remote_dir: "/root/durable" });
    expect(up.ok, JSON.stringify(up)).toBe(true);
    const ok = await s.call("pull_verify", { host: "m1", remote_path: "/root/durable/c0", local_dir: path.join(work, "back") });
    expect(ok.ok, JSON.stringify(ok).slice(0, 1500)).toBe(true);
    const again = ManifestSchema.parse(JSON.parse(fs.readFileSync(path.join(work, "back.rgt-manifest.json"), "utf8")));
    expect(again.carried_manifest_sha256).toBe(sha(`${cellDir}.rgt-manifest.json`));
    // same size, other bytes: only the manifest can tell
    await lab.boxes.m1.exec("cd /root/durable/c0 && head -c 5000 /dev/urandom > ckpt/w.dat");
    const bad = await s.call("pull_verify", { host: "m1", remote_path: "/root/durable/c0", local_dir: path.join(work, "back2") });
    expect(bad.ok).toBe(false);
    expect(bad.refused.code).toBe("HASH_MISMATCH");
    expect(bad.refused.reason).toContain("ckpt/w.dat");
    expect(bad.receipt_id ?? null).toBeNull();
    expect(fs.readdirSync(path.join(work, "back2"))).toEqual([]); // refused before anything moved
    // a file the manifest lists but the box lost
    await lab.boxes.m1.exec("cd /root/durable/c0 && rm ckpt/w.dat");
    const gone = await s.call("pull_verify", { host: "m1", remote_path: "/root/durable/c0", local_dir: path.join(work, "back3") });
    expect(gone.ok).toBe(false);
    expect(gone.refused.code).toBe("ROSTER_MISMATCH");
    expect(gone.missing).toContain("ckpt/w.dat");
  });
});

describe("a server whose local rsync is openrsync (macOS)", () => {
  it("pushes and pulls over SFTP, says why, and the trees still verify", async () => {
    const bin = fs.mkdtempSync(path.join(work, "fakebin-"));
    fs.writeFileSync(path.join(bin, "rsync"), "#!/bin/sh\necho 'openrsync: protocol version 29'\necho 'rsync version 2.6.9 compatible'\nexit 1\n", { mode: 0o755 });
    const mac = await connectServer({ ...lab.env, PATH: `${bin}:${lab.env.PATH}` });
    try {
      const src = path.join(work, "mac-src");
      fs.mkdirSync(path.join(src, "lib"), { recursive: true });
      fs.writeFileSync(path.join(src, "lib/m.py"), "x = 1\n");
      fs.writeFileSync(path.join(src, "big.bin"), Buffer.alloc(200_000, 5));
      const p = await mac.call("push_code", { host: "m1", local_dir: src, remote_dir: "/root/mac" });
      expect(p.ok, JSON.stringify(p)).toBe(true);
      expect(p.method).toBe("sftp");
      expect(JSON.stringify(p.warnings)).toContain("openrsync");
      const q = await mac.call("pull_verify", { host: "m1", remote_path: "/root/mac", local_dir: path.join(work, "mac-back") });
      expect(q.ok, JSON.stringify(q).slice(0, 1000)).toBe(true);
      expect(JSON.stringify(q.warnings)).toContain("openrsync");
      expect(sha(path.join(work, "mac-back/big.bin"))).toBe(sha(path.join(src, "big.bin")));
    } finally {
      await mac.close();
    }
  });
});
