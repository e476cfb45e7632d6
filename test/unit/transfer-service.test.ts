/**
 * The transfer service's pure and local parts: local rsync flavour detection from `rsync --version`
 * texts (GNU 3.x, 2.6.9, openrsync), the files-from list no name can break, rsync name decoding, the
 * NUL-separated box listing (hostile bytes, non-UTF-8 names, unreadable files), debris cleaning,
 * the transfer lock (stale holder's survivors killed, a live holder refused with TRANSFER_BUSY), and
 * checkpoint checks that judge by name and structure (a pickle-looking data shard is not loaded).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync, spawn } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { decodeRsyncNameStrict, filesFromList, parseRsyncVersion } from "../../src/remote/rsync.js";
import { encodeHashPaths, parseHashTree } from "../../src/remote/hashes.js";
import { cleanDebris } from "../../src/transfer/debris.js";
import { withTransferLock } from "../../src/transfer/lock.js";
import { checkTorchFile, loadCheckFiles } from "../../src/verify/checkpoint.js";
import { classifyLinks } from "../../src/verify/tree.js";

const ROOT = path.resolve(__dirname, "../..");
const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), p));

describe("local rsync flavour", () => {
  it("GNU rsync 3.1+ is usable; 2.6.9 and openrsync are not, with the reason", () => {
    expect(parseRsyncVersion("rsync  version 3.2.7  protocol version 31\nCopyright (C) 1996-2022 by Andrew Tridgell")).toMatchObject({ flavour: "rsync", version: "3.2.7", usable: true });
    expect(parseRsyncVersion("rsync  version v3.4.1  protocol version 32\n")).toMatchObject({ flavour: "rsync", version: "3.4.1", usable: true });
    const old = parseRsyncVersion("rsync  version 2.6.9  protocol version 29\nCopyright (C) 1996-2006 by Andrew Tridgell, Wayne Davison, and others.");
    expect(old).toMatchObject({ flavour: "rsync", version: "2.6.9", usable: false });
    expect(old.why).toMatch(/2\.6\.9.*older than 3\.1\.0/);
    const open = parseRsyncVersion("openrsync: protocol version 29\nrsync version 2.6.9 compatible\n");
    expect(open).toMatchObject({ flavour: "openrsync", usable: false });
    expect(open.why).toMatch(/openrsync/);
    expect(parseRsyncVersion("something else entirely")).toMatchObject({ flavour: "unknown", usable: false });
  });
});

describe("names through rsync", () => {
  it("files-from entries sit behind ./ so # and ; lines are not comments; NUL-terminated", () => {
    const b = filesFromList(["#a", ";b", "new\nline"]);
    expect(b.toString("utf8")).toBe("./#a\0./;b\0./new\nline\0");
  });
  it("decodes rsync's \\#ooo escapes byte-exactly and says when the bytes are not UTF-8", () => {
    expect(decodeRsyncNameStrict(Buffer.from("new\\#012line"))).toBe("new\nline");
    expect(decodeRsyncNameStrict(Buffer.from("a\\#134#101"))).toBe("a\\#101");
    expect(decodeRsyncNameStrict(Buffer.from("caf\\#303\\#251"))).toBe("café");
    expect(decodeRsyncNameStrict(Buffer.from([0x62, 0x61, 0x64, 0xff]))).toBeNull();
  });
});

describe("the box listing (scripts/hash_tree.sh, run here)", () => {
  it("carries any name, lists links and other entries, names non-UTF-8 and unreadable files", () => {
    const t = tmp("rgt-ls-");
    const names = ["#x", ";y", "-z", "new\nline", "esc\x1bbel\x07", "tab\tend\t", "a\\#101", "ü/ñ", " lead"];
    for (const n of names) { fs.mkdirSync(path.dirname(path.join(t, n)), { recursive: true }); fs.writeFileSync(path.join(t, n), n); }
    fs.writeFileSync(Buffer.from(`${t}/bad-\xff`, "latin1"), "x");
    fs.symlinkSync("../#x", path.join(t, "ü/link"));
    execFileSync("mkfifo", [path.join(t, "fifo")]);
    fs.writeFileSync(path.join(t, "locked"), "no");
    fs.chmodSync(path.join(t, "locked"), 0);
    // a chatty login shell before the script's output does not break the parse
    const out = Buffer.concat([Buffer.from("Welcome!\n"), execFileSync("bash", [path.join(ROOT, "scripts/hash_tree.sh"), t])]);
    const tree = parseHashTree(out);
    const asRoot = process.getuid?.() === 0; // root reads a 0-mode file
    expect(tree.files.map((f) => f.path).sort()).toEqual([...names, ...(asRoot ? ["locked"] : [])].sort());
    expect(tree.links).toEqual([{ path: "ü/link", target: "../#x" }]);
    expect(tree.others).toEqual([{ path: "fifo", type: "p" }]);
    expect(tree.badNames).toEqual(["bad-\\xff"]);
    if (!asRoot) expect(tree.unreadable).toEqual(["locked"]);
    const some = parseHashTree(execFileSync("bash", [path.join(ROOT, "scripts/hash_tree.sh"), t], { env: { ...process.env, RGT_HASH_PATHS: encodeHashPaths(["new\nline", "a\\#101", "nope"]) } }));
    expect(some.files.map((f) => f.path).sort()).toEqual(["a\\#101", "new\nline"]);
    expect(some.missing).toEqual(["nope"]);
  });
  it("with a mark, a listing record sits between the listing and the hashes; a name cannot fake it", () => {
    const t = tmp("rgt-ls-");
    // files named like the record's tag and like a mark
    for (const n of ["Y", "D", "0123abcd", "d/Y"]) { fs.mkdirSync(path.dirname(path.join(t, n)), { recursive: true }); fs.writeFileSync(path.join(t, n), n); }
    const mark = "0123abcd0123abcd";
    const out = execFileSync("bash", [path.join(ROOT, "scripts/hash_tree.sh"), t], { env: { ...process.env, RGT_HASH_MARK: mark } });
    const at = out.indexOf(Buffer.from(`\0Y\0${mark}\0`, "latin1"));
    expect(at).toBeGreaterThan(0);
    // only what precedes the record: every file listed, none hashed yet
    const listing = parseHashTree(out.subarray(0, at + mark.length + 4), mark);
    expect(listing.files.map((f) => [f.path, f.sha256])).toEqual([["0123abcd", ""], ["D", ""], ["Y", ""], ["d/Y", ""]]);
    expect(listing.unreadable).toEqual([]);
    // another mark is not this caller's record; the whole output still parses as before
    expect(() => parseHashTree(out.subarray(0, at + mark.length + 4), "ffff")).toThrow(/no listing record/);
    const full = parseHashTree(out);
    expect(full.files.every((f) => /^[0-9a-f]{64}$/.test(f.sha256))).toBe(true);
    expect(full.files).toHaveLength(4);
    // a mark that is not hex is not echoed
    const plain = execFileSync("bash", [path.join(ROOT, "scripts/hash_tree.sh"), t], { env: { ...process.env, RGT_HASH_MARK: "x;y" } });
    expect(plain.includes(Buffer.from("\0Y\0x;y", "latin1"))).toBe(false);
  });
  it("a cut-short listing is an error", () => {
    const full = execFileSync("bash", [path.join(ROOT, "scripts/hash_tree.sh"), ROOT + "/scripts"]);
    expect(() => parseHashTree(full.subarray(0, full.length - 4))).toThrow(/ended early/);
  });
});

describe("links in a push tree", () => {
  it("inside → carried as a link; outside → reported, with the secret rule when it points at a credential", () => {
    const t = tmp("rgt-links-");
    const home = tmp("rgt-home-");
    fs.mkdirSync(path.join(home, ".ssh"));
    fs.writeFileSync(path.join(home, ".ssh/id_ed25519"), "k");
    fs.writeFileSync(path.join(t, "a.py"), "1");
    fs.symlinkSync("a.py", path.join(t, "in"));
    fs.symlinkSync(path.join(home, ".ssh/id_ed25519"), path.join(t, "key"));
    fs.symlinkSync(path.join(home, ".ssh"), path.join(t, "sshdir"));
    fs.symlinkSync("/etc/hostname", path.join(t, "plain-out"));
    fs.symlinkSync("../../nowhere", path.join(t, "dangling"));
    const r = classifyLinks(t, ["in", "key", "sshdir", "plain-out", "dangling"]);
    expect(r.inside).toEqual([{ path: "in", bytes: 4, link: "a.py" }]);
    const by = Object.fromEntries(r.outside.map((o) => [o.path, o.secret ?? null]));
    expect(by).toEqual({ key: "ssh-private-key", sshdir: "credential-directory", "plain-out": null, dangling: null });
  });
});

describe("debris", () => {
  it("removes rsync temp files the listing explains and partial dirs, nothing else", () => {
    const t = tmp("rgt-debris-");
    fs.mkdirSync(path.join(t, "sub/.rgt-partial"), { recursive: true });
    for (const f of ["big.bin", ".big.bin.Ab12Cd", "sub/x.pt", "sub/.x.pt.ZZ99zz", ".mine.abcdef", "sub/.rgt-partial/x.pt"]) fs.writeFileSync(path.join(t, f), "d");
    const r = cleanDebris(t, ["big.bin", "sub/x.pt", ".mine.abcdef"], { partialDirs: "all" });
    expect(r.removed.sort()).toEqual([".big.bin.Ab12Cd", "sub/.rgt-partial/", "sub/.x.pt.ZZ99zz"]);
    expect(fs.existsSync(path.join(t, ".mine.abcdef"))).toBe(true);
    expect(fs.existsSync(path.join(t, "big.bin"))).toBe(true);
  });
});

describe("transfer lock", () => {
  it("a stale holder's surviving child is killed before the new holder runs", async () => {
    const key = `test:${Math.random()}`;
    // a holder that "died": a child process that outlived it, recorded in the lock
    const survivor = spawn("sleep", ["60"], { stdio: "ignore" });
    const ghost = spawn("true");
    await new Promise((r) => ghost.on("exit", r));
    await withTransferLock([key], "testing", async (lock) => {
      lock.addChild(survivor.pid!);
      // forge the holder pid as dead, the way a SIGKILLed server leaves it
      const dir = path.join(os.tmpdir(), `rgt-locks-${process.getuid?.() ?? "u"}`);
      for (const f of fs.readdirSync(dir)) {
        const p = path.join(dir, f);
        const body = JSON.parse(fs.readFileSync(p, "utf8"));
        if (body.children?.some((c: { pid: number }) => c.pid === survivor.pid)) fs.writeFileSync(p, JSON.stringify({ ...body, pid: ghost.pid }));
      }
      const exited = new Promise((r) => survivor.on("exit", (_c, sig) => r(sig)));
      await withTransferLock([key], "testing again", async () => "ran");
      expect(await exited).toBe("SIGKILL");
    }).catch((e) => { survivor.kill("SIGKILL"); throw e; });
  });
  it("a live holder is waited for, then the call is refused TRANSFER_BUSY saying who holds it", async () => {
    const key = `test:${Math.random()}`;
    let inner: unknown;
    await withTransferLock([key], "pulling into /x", async () => {
      inner = await withTransferLock([key], "pulling into /x", async () => "ran", 300).catch((e) => e);
    });
    expect((inner as { refusal: { code: string; reason: string } }).refusal.code).toBe("TRANSFER_BUSY");
    expect((inner as { refusal: { reason: string } }).refusal.reason).toMatch(/another call in this server has been pulling into \/x since .*nothing was changed/);
    // released: the next caller runs
    expect(await withTransferLock([key], "again", async () => "ran")).toBe("ran");
  });
});

describe("checkpoint checks judge by name and structure", () => {
  let dir: string;
  beforeAll(() => {
    dir = tmp("rgt-ckpt-");
    const py = [
      "import torch, sys",
      "d = sys.argv[1]",
      "sd = {'w': torch.randn(16, 16)}",
      "torch.save(sd, d + '/pytorch_model.bin')",
      "torch.save(sd, d + '/legacy.bin', _use_new_zipfile_serialization=False)",
    ].join("\n");
    execFileSync("/usr/bin/python3", ["-c", py, dir], { stdio: "pipe", timeout: 120_000 });
    const good = fs.readFileSync(path.join(dir, "pytorch_model.bin"));
    fs.writeFileSync(path.join(dir, "cut_model.bin"), good.subarray(0, Math.floor(good.length / 2)));
    const legacy = fs.readFileSync(path.join(dir, "legacy.bin"));
    fs.writeFileSync(path.join(dir, "cut_legacy.bin"), legacy.subarray(0, Math.floor(legacy.length / 2)));
    // data shards that merely start like a pickle (0x80 0x02..0x05) or a zip
    for (let i = 2; i <= 5; i++) fs.writeFileSync(path.join(dir, `shard${i}.bin`), Buffer.concat([Buffer.from([0x80, i]), Buffer.alloc(1022, 7)]));
    fs.writeFileSync(path.join(dir, "shard.pkl"), Buffer.concat([Buffer.from([0x80, 0x04]), Buffer.alloc(1022, 1)]));
    fs.writeFileSync(path.join(dir, "zipish.bin"), Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(1020, 2)]));
  }, 180_000);

  it("a .bin data shard that starts like a pickle or a zip is hashed, not loaded", async () => {
    const names = ["shard2.bin", "shard3.bin", "shard4.bin", "shard5.bin", "shard.pkl", "zipish.bin"];
    const res = await loadCheckFiles(names.map((n) => path.join(dir, n)));
    for (const n of names) {
      const c = res.get(path.join(dir, n))!;
      expect(c, n).toMatchObject({ format: "unknown", ok: null });
      expect(c.torch_load, n).toBeUndefined();
    }
  });
  it("real torch checkpoints named .bin are still judged: whole ones load, truncated ones fail", async () => {
    expect(checkTorchFile(path.join(dir, "cut_model.bin"))).toMatchObject({ format: "torch_zip", ok: false });
    expect(checkTorchFile(path.join(dir, "legacy.bin")).format).toBe("torch_legacy");
    const names = ["pytorch_model.bin", "legacy.bin", "cut_model.bin", "cut_legacy.bin"];
    const res = await loadCheckFiles(names.map((n) => path.join(dir, n)));
    const get = (n: string) => res.get(path.join(dir, n))!;
    expect(get("pytorch_model.bin")).toMatchObject({ ok: true, torch_load: "ok" });
    expect(get("legacy.bin")).toMatchObject({ ok: true, torch_load: "ok" });
    expect(get("cut_model.bin").ok).toBe(false);
    expect(get("cut_legacy.bin")).toMatchObject({ ok: false, torch_load: "failed" });
  }, 120_000);
});

describe("a machine whose rsync lacks our flags (macOS openrsync)", () => {
  it("is detected from the rsync on PATH; the push scan walks the tree and still applies .gitignore through git", async () => {
    const { localRsyncFlavour } = await import("../../src/remote/rsync.js");
    const { scanPushTree } = await import("../../src/verify/tree.js");
    const bin = tmp("rgt-fakersync-");
    fs.writeFileSync(path.join(bin, "rsync"), "#!/bin/sh\necho 'openrsync: protocol version 29'\necho 'rsync version 2.6.9 compatible'\n", { mode: 0o755 });
    const proj = tmp("rgt-mac-");
    fs.mkdirSync(path.join(proj, "data"));
    fs.mkdirSync(path.join(proj, "src"));
    fs.writeFileSync(path.join(proj, ".gitignore"), "data/\n*.log\n");
    fs.writeFileSync(path.join(proj, "data/x.bin"), "x");
    fs.writeFileSync(path.join(proj, "run.log"), "x");
    fs.writeFileSync(path.join(proj, "src/train.py"), "x");
    const saved = process.env.PATH;
    process.env.PATH = `${bin}:${saved}`;
    try {
      expect(localRsyncFlavour()).toMatchObject({ flavour: "openrsync", usable: false });
      const scan = await scanPushTree(proj);
      expect(scan.via).toBe("walk");
      expect(scan.files.map((f) => f.path).sort()).toEqual([".gitignore", "src/train.py"]);
    } finally {
      process.env.PATH = saved;
    }
    expect(localRsyncFlavour().usable).toBe(true);
  });
});
