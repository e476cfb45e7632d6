/**
 * push_code against real sshd boxes with real rsync (and SFTP on a box without rsync):
 * ignore files honoured, delta re-push, credential files and CRLF scripts refused before anything is sent.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";

let lab: Lab;
let s: ServerConnection;
let work: string;

function writeTree(root: string, files: Record<string, string | Buffer>): void {
  for (const [rel, content] of Object.entries(files)) {
    const f = path.join(root, rel);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, content);
  }
}

/** sha256 of every file under a dir on the box, as "path sha" lines sorted (the box's own sha256sum). */
async function boxManifest(box: string, dir: string): Promise<Record<string, string>> {
  const r = await lab.boxes[box].exec(`cd ${dir} && find . -type f -printf '%P\\0' | sort -z | xargs -0 -r sha256sum --`);
  if (r.code !== 0) throw new Error(`manifest failed: ${r.stderr}`);
  const out: Record<string, string> = {};
  for (const l of r.stdout.trim().split("\n").filter(Boolean)) {
    const [h, ...rest] = l.split("  ");
    out[rest.join("  ")] = h;
  }
  return out;
}

function localManifest(root: string, rels: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of rels) out[r] = createHash("sha256").update(fs.readFileSync(path.join(root, r))).digest("hex");
  return out;
}

beforeAll(async () => {
  lab = await startLab([{ name: "p1", gpus: 0 }, { name: "p2", gpus: 0, without: ["rsync"] }]);
  s = await connectServer(lab.env);
  work = fs.mkdtempSync(path.join(lab.root, "push-"));
}, 60_000);
afterAll(async () => {
  await s?.close();
  await lab?.stop();
});

describe("push_code over rsync", () => {
  it("sends exactly the files the ignore rules allow, hash-identical, and creates the destination", async () => {
    const src = path.join(work, "proj");
    writeTree(src, {
      "train.py": "print('hi')\n",
      "lib/model.py": "x = 1\n",
      "lib/big.bin": Buffer.alloc(300_000, 7),
      ".gitignore": "*.log\noutputs/\n",
      "run.log": "ignored by .gitignore\n",
      "outputs/ckpt.pt": "ignored dir\n",
      "lib/.gitignore": "scratch.txt\n",
      "lib/scratch.txt": "ignored by nested .gitignore\n",
      ".rgtignore": "data/\n",
      "data/huge.npy": "ignored by .rgtignore\n",
      ".git/info/exclude": "local-notes.md\n",
      ".git/HEAD": "ref: refs/heads/main\n",
      "local-notes.md": "ignored by info/exclude\n",
      "scripts/go.sh": "#!/bin/bash\necho go\n",
      "tmp/cache.txt": "excluded by the call\n",
    });
    const r = await s.call("push_code", { host: "p1", local_dir: src, remote_dir: "/root/work/proj", exclude: ["tmp/"] });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.method).toBe("rsync");
    const sent = ["train.py", "lib/model.py", "lib/big.bin", ".gitignore", "lib/.gitignore", ".rgtignore", ".git/info/exclude", ".git/HEAD", "scripts/go.sh"].sort();
    expect(r.files_sent).toBe(sent.length);
    expect(r.bytes_total).toBe(sent.reduce((a, f) => a + fs.statSync(path.join(src, f)).size, 0));
    const box = await boxManifest("p1", "/root/work/proj");
    expect(Object.keys(box).sort()).toEqual(sent);
    expect(box).toEqual(localManifest(src, sent));
    expect(r.remote_dir).toBe("/root/work/proj");
  });

  it("a no-change re-push sends no file; a changed file is the only one sent", async () => {
    const src = path.join(work, "proj");
    const again = await s.call("push_code", { host: "p1", local_dir: src, remote_dir: "/root/work/proj", exclude: ["tmp/"] });
    expect(again.ok).toBe(true);
    expect(again.files_sent).toBe(0);
    expect(again.bytes_sent).toBeLessThan(20_000);
    fs.writeFileSync(path.join(src, "lib/model.py"), "x = 2\n");
    const one = await s.call("push_code", { host: "p1", local_dir: src, remote_dir: "/root/work/proj", exclude: ["tmp/"] });
    expect(one.files_sent).toBe(1);
    expect((await lab.boxes.p1.readFile("/root/work/proj/lib/model.py"))).toBe("x = 2\n");
  });

  it("sends a same-size edit made within the same second as the last push (rsync's whole-second quick check)", async () => {
    const src = path.join(work, "samesecond");
    writeTree(src, { "cfg.py": "lr = 1\n" });
    const f = path.join(src, "cfg.py");
    fs.utimesSync(f, 1_700_000_000.1, 1_700_000_000.1);
    expect((await s.call("push_code", { host: "p1", local_dir: src, remote_dir: "/root/samesecond" })).ok).toBe(true);
    fs.writeFileSync(f, "lr = 2\n"); // same size
    fs.utimesSync(f, 1_700_000_000.6, 1_700_000_000.6); // same whole second, different nanoseconds
    const r = await s.call("push_code", { host: "p1", local_dir: src, remote_dir: "/root/samesecond" });
    expect(r.files_sent).toBe(1);
    expect(await lab.boxes.p1.readFile("/root/samesecond/cfg.py")).toBe("lr = 2\n");
  });

  it("in a git work tree git decides what .gitignore means: a negated pattern (!config.json) is pushed", async () => {
    const src = path.join(work, "gitrepo");
    writeTree(src, { ".gitignore": "*.json\n!config.json\noutputs/\n", "config.json": "{}\n", "other.json": "{}\n", "train.py": "1\n", "outputs/x.bin": "big\n", ".rgtignore": "notes/\n", "notes/n.md": "x\n" });
    execFileSync("git", ["init", "-q"], { cwd: src });
    const r = await s.call("push_code", { host: "p1", local_dir: src, remote_dir: "/root/gitrepo", exclude: [".git/"] });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const there = (await lab.boxes.p1.exec("cd /root/gitrepo && find . -type f | sort")).stdout.trim().split("\n");
    expect(there).toEqual(["./.gitignore", "./.rgtignore", "./config.json", "./train.py"]);
  });

  it("outside any git work tree git still reads the .gitignore files: negations and nested ignores hold", async () => {
    const src = path.join(work, "plain-negation");
    writeTree(src, { ".gitignore": "*.json\n!config.json\n", "config.json": "{}\n", "other.json": "{}\n", "train.py": "1\n", "sub/.gitignore": "*.tmp\n!keep.tmp\n", "sub/a.tmp": "x\n", "sub/keep.tmp": "k\n" });
    expect(spawnSync("git", ["-C", src, "rev-parse", "--is-inside-work-tree"]).status).not.toBe(0);
    const r = await s.call("push_code", { host: "p1", local_dir: src, remote_dir: "/root/plain-negation" });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const there = (await lab.boxes.p1.exec("cd /root/plain-negation && find . -type f | sort")).stdout.trim().split("\n");
    expect(there).toEqual(["./.gitignore", "./config.json", "./sub/.gitignore", "./sub/keep.tmp", "./train.py"]);
  });

  it("~/ destinations land under the remote home", async () => {
    const src = path.join(work, "small");
    writeTree(src, { "a.txt": "a\n" });
    const r = await s.call("push_code", { host: "p1", local_dir: src, remote_dir: "~/small-proj" });
    expect(r.ok).toBe(true);
    expect(r.remote_dir).toBe("/root/small-proj");
    expect(await lab.boxes.p1.readFile("/root/small-proj/a.txt")).toBe("a\n");
  });

  it("refuses a tree holding credential files before sending anything, unless allow-listed", async () => {
    const src = path.join(work, "leaky");
    writeTree(src, { "train.py": "1\n", ".env": "WANDB_API_KEY=abc\n", "keys/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n", "keys/id_ed25519.pub": "ssh-ed25519 AAAA\n" });
    const r = await s.call("push_code", { host: "p1", local_dir: src, remote_dir: "/root/leaky" });
    expect(r.ok).toBe(false);
    expect(r.refused.code).toBe("SECRET_FILE");
    expect(r.refused.reason).toContain(".env");
    expect(r.refused.reason).toContain("keys/id_ed25519");
    expect(r.refused.remedy).toContain("push_secret");
    expect((await lab.boxes.p1.exec("test -e /root/leaky")).code).not.toBe(0);
    const ok = await s.call("push_code", { host: "p1", local_dir: src, remote_dir: "/root/leaky", allow_secret_files: [".env", "keys/id_ed25519"] });
    expect(ok.ok, JSON.stringify(ok)).toBe(true);
    expect(ok.files_sent).toBe(4);
  });

  it("refuses a CRLF shell script with the fix, sending nothing", async () => {
    const src = path.join(work, "crlf");
    writeTree(src, { "run.sh": "#!/bin/bash\r\necho hi\r\n", "tool": "#!/bin/sh\r\nexit 0\r\n", "notes.txt": "windows\r\ntext is fine\r\n" });
    const r = await s.call("push_code", { host: "p1", local_dir: src, remote_dir: "/root/crlf" });
    expect(r.ok).toBe(false);
    expect(r.refused.code).toBe("CRLF_SCRIPT");
    expect(r.refused.reason).toContain("run.sh");
    expect(r.refused.reason).toContain("tool");
    expect(r.refused.reason).not.toContain("notes.txt");
    expect(r.refused.remedy).toMatch(/sed -i 's\/\\r\$\/\/'|dos2unix/);
    expect((await lab.boxes.p1.exec("test -e /root/crlf")).code).not.toBe(0);
  });

  it("dry_run reports the plan and touches nothing", async () => {
    const src = path.join(work, "proj");
    const r = await s.call("push_code", { host: "p1", local_dir: src, remote_dir: "/root/dry", dry_run: true, exclude: ["tmp/"] });
    expect(r.ok).toBe(true);
    expect(r.method).toBe("dry_run");
    expect(r.files_total).toBe(9);
    expect((await lab.boxes.p1.exec("test -e /root/dry")).code).not.toBe(0);
  });

  it("warns when .git dominates the push", async () => {
    const src = path.join(work, "githeavy");
    writeTree(src, { "a.py": "1\n", ".git/objects/pack/p.pack": Buffer.alloc(12 * 1024 * 1024, 1) });
    const r = await s.call("push_code", { host: "p1", local_dir: src, remote_dir: "/root/gh", dry_run: true });
    expect(r.warnings.map((w: { code: string }) => w.code)).toContain("GIT_DOMINATES");
  });

  it("bad input is a structured BAD_INPUT naming the field", async () => {
    const r = await s.call("push_code", { host: "p1", local_dir: path.join(work, "nope"), remote_dir: "/root/x" });
    expect(r.ok).toBe(false);
    expect(r.refused.code).toBe("BAD_INPUT");
    expect(r.refused.reason).toContain("local_dir");
    const r2 = await s.call("push_code", { host: "p1", local_dir: work, remote_dir: "a\nb" });
    expect(r2.refused.code).toBe("BAD_INPUT");
    expect(r2.refused.reason).toContain("remote_dir");
  });
});

describe("push_code over SFTP (box without rsync)", () => {
  it("falls back to SFTP, lands hash-identical, and a re-push skips unchanged files", async () => {
    expect((await lab.boxes.p2.exec("command -v rsync")).code).not.toBe(0);
    const src = path.join(work, "sftp");
    const files: Record<string, string | Buffer> = { "a.py": "print(1)\n", "deep/dir/b.bin": Buffer.alloc(700_000, 3), ".gitignore": "skip.me\n", "skip.me": "no\n" };
    writeTree(src, files);
    const r = await s.call("push_code", { host: "p2", local_dir: src, remote_dir: "/root/sftp-proj" });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.method).toBe("sftp");
    expect(r.files_sent).toBe(3);
    const rels = ["a.py", "deep/dir/b.bin", ".gitignore"].sort();
    const box = await boxManifest("p2", "/root/sftp-proj");
    expect(Object.keys(box).sort()).toEqual(rels);
    expect(box).toEqual(localManifest(src, rels));
    const again = await s.call("push_code", { host: "p2", local_dir: src, remote_dir: "/root/sftp-proj" });
    expect(again.files_sent).toBe(0);
    expect(again.bytes_sent).toBe(0);
  });

  it("over SFTP too, a same-size edit within the same second is sent (the box's hashes decide)", async () => {
    const src = path.join(work, "sftp-samesecond");
    writeTree(src, { "cfg.py": "lr = 1\n" });
    const f = path.join(src, "cfg.py");
    fs.utimesSync(f, 1_700_000_000.1, 1_700_000_000.1);
    expect((await s.call("push_code", { host: "p2", local_dir: src, remote_dir: "/root/sftp-samesecond" })).ok).toBe(true);
    fs.writeFileSync(f, "lr = 2\n");
    fs.utimesSync(f, 1_700_000_000.6, 1_700_000_000.6);
    const r = await s.call("push_code", { host: "p2", local_dir: src, remote_dir: "/root/sftp-samesecond" });
    expect(r.method).toBe("sftp");
    expect(r.files_sent).toBe(1);
    expect(await lab.boxes.p2.readFile("/root/sftp-samesecond/cfg.py")).toBe("lr = 2\n");
  });

  it("resumes a partial file left by an interrupted SFTP push", async () => {
    const src = path.join(work, "sftp-resume");
    const big = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
    writeTree(src, { "model.bin": big });
    // what an interrupted push leaves: the first 3 MiB in the partial dir
    await lab.boxes.p2.writeFile("/root/sftp-resume/.rgt-partial/model.bin", big.subarray(0, 3 * 1024 * 1024));
    const r = await s.call("push_code", { host: "p2", local_dir: src, remote_dir: "/root/sftp-resume" });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.resumed_files).toBe(1);
    expect(r.bytes_sent).toBeLessThan(1.6 * 1024 * 1024);
    const box = await boxManifest("p2", "/root/sftp-resume");
    expect(box).toEqual({ "model.bin": createHash("sha256").update(big).digest("hex") });
  });
});
