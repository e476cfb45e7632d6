/**
 * The local side of transfers: checkpoint load checks on real torch files (made by Debian's python3-torch),
 * hand-built safetensors, hashing and manifests, roster matching, transfer units, the box hash script
 * (run here with bash), rsync helpers against the real rsync binary, the pre-push scan, receipts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { checkSafetensors, checkTorchFile, loadCheckFiles, structuralCheck, findTorchPython } from "../../src/verify/checkpoint.js";
import { hashLocal, listFiles, manifestSha256, sha256File } from "../../src/verify/hash.js";
import { matchRoster, rosterRegex, transferUnits } from "../../src/verify/roster.js";
import { crlfScripts, scanPushTree, secretFiles } from "../../src/verify/tree.js";
import { parseHashTree } from "../../src/remote/hashes.js";
import { decodeRsyncName, parseRsyncStats, rsyncShellArg, remotePathWord } from "../../src/remote/rsync.js";
import { extractBlock, forbiddenCredentialRoots, isUnder } from "../../src/tools/push_secret.js";
import { getProfile } from "../../src/knowledge/profiles.js";
import { Ledger } from "../../src/ledger/store.js";
import { getReceipt, listReceipts, newReceiptId, saveReceipt } from "../../src/ledger/receipts.js";

const ROOT = path.resolve(__dirname, "../..");
let dir: string;

function safetensors(tensors: Record<string, { dtype: string; shape: number[]; bytes: number }>, opts: { dropTail?: number } = {}): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let off = 0;
  for (const [k, t] of Object.entries(tensors)) {
    header[k] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.bytes] };
    off += t.bytes;
  }
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  const data = Buffer.alloc(off, 1);
  const full = Buffer.concat([len, h, data]);
  return opts.dropTail ? full.subarray(0, full.length - opts.dropTail) : full;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-verify-"));
  // real torch checkpoints from Debian's torch
  const py = [
    "import torch, sys, collections",
    "d = sys.argv[1]",
    "sd = collections.OrderedDict(w=torch.randn(64, 32), b=torch.zeros(32), step=torch.tensor(7))",
    "torch.save(sd, d + '/good.pt')",
    "torch.save({'model': sd, 'epoch': 3}, d + '/nested.pth')",
    "torch.save(sd, d + '/legacy.pt', _use_new_zipfile_serialization=False)",
    "class Evil:",
    "    def __reduce__(self): return (print, ('pwned',))",
    "torch.save({'x': Evil()}, d + '/unsafe.pt')",
  ].join("\n");
  execFileSync("/usr/bin/python3", ["-c", py, dir], { stdio: "pipe", timeout: 120_000 });
  const good = fs.readFileSync(path.join(dir, "good.pt"));
  fs.writeFileSync(path.join(dir, "truncated.pt"), good.subarray(0, Math.floor(good.length * 0.6)));
  fs.writeFileSync(path.join(dir, "model.safetensors"), safetensors({ "w": { dtype: "F32", shape: [4, 8], bytes: 128 }, "b": { dtype: "BF16", shape: [8], bytes: 16 } }));
  fs.writeFileSync(path.join(dir, "cut.safetensors"), safetensors({ "w": { dtype: "F32", shape: [4, 8], bytes: 128 } }, { dropTail: 40 }));
  fs.writeFileSync(path.join(dir, "junk.safetensors"), Buffer.concat([Buffer.from([20, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("{not json at all....xx")]));
  fs.writeFileSync(path.join(dir, "random.bin"), Buffer.from("just some bytes that are not a checkpoint"));
  fs.writeFileSync(path.join(dir, "garbage.pt"), Buffer.from("a .pt name over bytes that are neither zip nor pickle"));
}, 180_000);

describe("checkpoint structure checks", () => {
  it("accepts torch.save zip archives and counts their storages", () => {
    const c = checkTorchFile(path.join(dir, "good.pt"));
    expect(c.format).toBe("torch_zip");
    expect(c.ok).toBe(true);
    expect(c.tensors).toBe(3);
  });
  it("rejects a truncated torch archive", () => {
    const c = checkTorchFile(path.join(dir, "truncated.pt"));
    expect(c.format).toBe("torch_zip");
    expect(c.ok).toBe(false);
    expect(c.detail).toMatch(/end-of-central-directory|truncated/);
  });
  it("recognises a legacy pickle checkpoint without judging it", () => {
    const c = checkTorchFile(path.join(dir, "legacy.pt"));
    expect(c.format).toBe("torch_legacy");
    expect(c.ok).toBeNull();
  });
  it("parses safetensors headers and catches a cut data section and a garbage header", () => {
    const ok = checkSafetensors(path.join(dir, "model.safetensors"));
    expect(ok).toMatchObject({ format: "safetensors", ok: true, tensors: 2 });
    const cut = checkSafetensors(path.join(dir, "cut.safetensors"));
    expect(cut.ok).toBe(false);
    expect(cut.detail).toMatch(/truncated|past the end/);
    expect(checkSafetensors(path.join(dir, "junk.safetensors")).ok).toBe(false);
  });
  it("leaves non-checkpoints alone and does not judge unknown .bin content", () => {
    expect(structuralCheck(path.join(ROOT, "package.json"))).toBeNull();
    expect(structuralCheck(path.join(dir, "random.bin"))).toMatchObject({ format: "unknown", ok: null });
  });
});

describe("torch.load(weights_only=True) in one child process", () => {
  it("loads good archives (zip and legacy), fails truncated and unsafe ones", async () => {
    expect(findTorchPython()).not.toBeNull();
    const names = ["good.pt", "nested.pth", "legacy.pt", "truncated.pt", "unsafe.pt", "model.safetensors", "random.bin", "garbage.pt"];
    const res = await loadCheckFiles(names.map((n) => path.join(dir, n)));
    const get = (n: string) => res.get(path.join(dir, n))!;
    expect(get("good.pt")).toMatchObject({ ok: true, torch_load: "ok", tensors: 3 });
    expect(get("nested.pth")).toMatchObject({ ok: true, torch_load: "ok", tensors: 3 });
    expect(get("legacy.pt")).toMatchObject({ format: "torch_legacy", ok: true, torch_load: "ok" });
    // the structure check already failed it: torch is not asked
    expect(get("truncated.pt")).toMatchObject({ ok: false });
    expect(get("truncated.pt").torch_load).toBeUndefined();
    // weights_only refuses arbitrary pickled objects
    expect(get("unsafe.pt")).toMatchObject({ ok: false, torch_load: "failed" });
    expect(get("unsafe.pt").detail).toMatch(/weights_only|Unsupported|global/i);
    expect(get("model.safetensors").ok).toBe(true);
    expect(get("random.bin").ok).toBeNull();
    // a torch-named file torch cannot open is a failed check, not "not judged": no receipt may vouch for it
    expect(get("garbage.pt")).toMatchObject({ format: "unknown", ok: false, torch_load: "failed" });
  }, 120_000);
  it("torch: false skips the child process", async () => {
    const res = await loadCheckFiles([path.join(dir, "good.pt")], { torch: false });
    expect(res.get(path.join(dir, "good.pt"))).toMatchObject({ ok: true, torch_load: "skipped" });
  });
});

describe("hashing", () => {
  it("streams sha256 identical to sha256sum and lists files", async () => {
    const f = path.join(dir, "good.pt");
    const h = await sha256File(f);
    expect(h.sha256).toBe(execFileSync("sha256sum", [f], { encoding: "utf8" }).split(" ")[0]);
    expect(h.bytes).toBe(fs.statSync(f).size);
    const all = listFiles(dir);
    expect(all).toContain("good.pt");
    const m = await hashLocal(dir, ["good.pt", "absent.pt"]);
    expect(m.get("good.pt")?.sha256).toBe(h.sha256);
    expect(m.get("absent.pt")).toBeNull();
  });
  it("manifest hash is order-independent and content-sensitive", () => {
    const a = { path: "a", bytes: 1, sha256: "0".repeat(64) };
    const b = { path: "b", bytes: 2, sha256: "1".repeat(64) };
    expect(manifestSha256([a, b])).toBe(manifestSha256([b, a]));
    expect(manifestSha256([a, b])).not.toBe(manifestSha256([a, { ...b, sha256: "2".repeat(64) }]));
  });
});

describe("scripts/hash_tree.sh (run here with bash)", () => {
  it("hashes every file, escapes odd names, and agrees with the local hasher", async () => {
    const t = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-ht-"));
    fs.mkdirSync(path.join(t, "sub/deeper"), { recursive: true });
    fs.writeFileSync(path.join(t, "a.txt"), "alpha\n");
    fs.writeFileSync(path.join(t, 'sub/we"ird\\name\ttab'), "x");
    fs.writeFileSync(path.join(t, "sub/deeper/-dash"), Buffer.alloc(100_000, 9));
    fs.mkdirSync(path.join(t, ".rgt-partial"));
    fs.writeFileSync(path.join(t, ".rgt-partial/half"), "partial");
    const out = execFileSync("bash", [path.join(ROOT, "scripts/hash_tree.sh"), t]);
    const tree = parseHashTree(out);
    expect(tree.exists).toBe(true);
    expect(tree.files.map((f) => f.path)).toEqual(["a.txt", "sub/deeper/-dash", 'sub/we"ird\\name\ttab']);
    for (const f of tree.files) {
      const local = await sha256File(path.join(t, f.path));
      expect(f).toEqual({ path: f.path, ...local });
    }
    const some = execFileSync("bash", [path.join(ROOT, "scripts/hash_tree.sh"), t], { env: { ...process.env, RGT_HASH_PATHS: "a.txt\nnot/there" } });
    const st = parseHashTree(some);
    expect(st.files.map((f) => f.path)).toEqual(["a.txt"]);
    expect(st.missing).toEqual(["not/there"]);
    const none = parseHashTree(execFileSync("bash", [path.join(ROOT, "scripts/hash_tree.sh"), path.join(t, "nope")]));
    expect(none.exists).toBe(false);
    expect(none.files).toEqual([]);
  });
  it("many files and a few big ones: every file once, in parallel workers, each hash right", async () => {
    const t = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-ht-many-"));
    for (let d = 0; d < 5; d++) {
      fs.mkdirSync(path.join(t, `d${d}`));
      for (let f = 0; f < 300; f++) fs.writeFileSync(path.join(t, `d${d}/f${f}`), `${d}:${f}`);
    }
    const tree = parseHashTree(execFileSync("bash", [path.join(ROOT, "scripts/hash_tree.sh"), t], { env: { ...process.env, RGT_HASH_JOBS: "3" }, maxBuffer: 1 << 26 }));
    expect(tree.files.length).toBe(1500);
    expect(tree.unreadable).toEqual([]);
    for (const f of [tree.files[0], tree.files[777], tree.files[1499]]) expect(f).toEqual({ path: f.path, ...(await sha256File(path.join(t, f.path))) });
    const big = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-ht-big-"));
    for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(big, `b${i}`), Buffer.alloc(3_000_000 + i, i + 1));
    const bt = parseHashTree(execFileSync("bash", [path.join(ROOT, "scripts/hash_tree.sh"), big], { env: { ...process.env, RGT_HASH_JOBS: "2" } }));
    for (const f of bt.files) expect(f).toEqual({ path: f.path, ...(await sha256File(path.join(big, f.path))) });
    expect(bt.files.length).toBe(3);
  });
  it("a listed file without a hash is unreadable; hash records are joined to the listing", () => {
    const h = "b".repeat(64);
    const rec = (...f: string[]): string => f.map((x) => `${x}\x00`).join("");
    const head = `RGT-HASH-1\x00${rec("R", "1", "1", "3.2.7", "/x")}`;
    const t = parseHashTree(Buffer.from(`${head}${rec("Z", "3", "a", "Z", "4", "b c", "Z", "1", "gone")}${rec("X", `${h}  a`, `${h}  b c`, `${h}  unlisted`, "")}${rec("D", "3")}`, "latin1"));
    expect(t.files).toEqual([{ path: "a", bytes: 3, sha256: h }, { path: "b c", bytes: 4, sha256: h }]);
    expect(t.unreadable).toEqual(["gone"]);
    const old = parseHashTree(Buffer.from(`${head}${rec("Z", "3", "a", "H", h, "a", "D", "1")}`, "latin1"));
    expect(old.files).toEqual([{ path: "a", bytes: 3, sha256: h }]);
    expect(() => parseHashTree(Buffer.from(`${head}${rec("Z", "3", "a", "X", `${h}  a`)}`, "latin1"))).toThrow(/ended early/);
    expect(() => parseHashTree(Buffer.from(`${head}${rec("X", "nothex  a", "")}${rec("D", "0")}`, "latin1"))).toThrow(/malformed/);
  });
  it("output without the closing record is an error, not an empty tree", () => {
    expect(() => parseHashTree(Buffer.from(`RGT-HASH-1\x00R\x001\x001\x003.2.7\x00/x\x00F\x001\x00${"a".repeat(64)}\x00a\x00`, "latin1"))).toThrow(/ended early/);
  });
  it("is LF-only and uses no rc files", () => {
    const body = fs.readFileSync(path.join(ROOT, "scripts/hash_tree.sh"), "utf8");
    expect(body.includes("\r")).toBe(false);
    expect(body).toMatch(/^set -u$/m);
    expect(body).not.toMatch(/bashrc|source |^\. /m);
  });
});

describe("roster and units", () => {
  it("matches exact paths, globs and directories", () => {
    const paths = ["best.pth", "logs/train.json", "logs/eval.json", "ckpt/e1/model.pt", "ckpt/e2/model.pt"];
    const r = matchRoster(["best.pth", "logs/*.json", "ckpt/", "**/model.pt", "final.pt", "log?/x"], paths);
    expect(r.missing).toEqual(["final.pt", "log?/x"]);
    expect(r.matched["logs/*.json"]).toEqual(["logs/train.json", "logs/eval.json"]);
    expect(r.matched["ckpt/"]).toHaveLength(2);
    expect(r.matched["**/model.pt"]).toHaveLength(2);
    expect(rosterRegex("a.b").test("axb")).toBe(false);
    expect(rosterRegex("*.pt").test("sub/x.pt")).toBe(false);
  });
  it("cuts a tree into per-directory units and merges small neighbours", () => {
    const big = 100 * 1024 * 1024;
    const files = [
      { path: "root.txt", bytes: 10 }, { path: "a/1", bytes: big }, { path: "b/1", bytes: 5 }, { path: "c/1", bytes: 5 }, { path: "d/x/2", bytes: big },
    ];
    const u = transferUnits(files);
    expect(u.map((x) => x.label)).toEqual([".", "a", "b,c", "d"]);
    expect(u.reduce((a, x) => a + x.files.length, 0)).toBe(files.length);
  });
});

describe("rsync helpers (real rsync)", () => {
  it("quotes ssh argv the way rsync -e splits it", () => {
    expect(rsyncShellArg(["ssh", "-F", "/tmp/a b/cfg", "-o", "ControlPath=/tmp/x/%C"])).toBe("ssh -F '/tmp/a b/cfg' -o ControlPath=/tmp/x/%C");
    expect(() => rsyncShellArg([`a'b"c`])).toThrow();
  });
  it("decodes rsync's escaped names and parses --stats from a real run", () => {
    expect(decodeRsyncName("caf\\#303\\#251/x")).toBe("café/x");
    const a = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-rs-"));
    fs.writeFileSync(path.join(a, "f1"), Buffer.alloc(12_345, 1));
    fs.writeFileSync(path.join(a, "f2"), Buffer.alloc(2_000, 2));
    const b = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-rs-"));
    const out = execFileSync("rsync", ["-a", "--stats", `${a}/`, `${b}/`], { encoding: "utf8" });
    const { stats, found } = parseRsyncStats(out);
    expect(found).toBe(true);
    expect(stats.filesTransferred).toBe(2);
    expect(stats.totalFileSize).toBe(14_345);
    expect(stats.bytesSent).toBeGreaterThan(14_345);
  });
  it("turns ~ paths into $HOME words and quotes the rest", () => {
    expect(remotePathWord("~/x y")).toBe(`"$HOME"/'x y'`);
    expect(remotePathWord("/a'b")).toBe(`'/a'\\''b'`);
    const echoed = spawnSync("sh", ["-c", `printf %s ${remotePathWord("/tmp/$(id)`x`")}`], { encoding: "utf8" }).stdout;
    expect(echoed).toBe("/tmp/$(id)`x`");
  });
});

describe("pre-push scan", () => {
  it("applies .gitignore (nested), .rgtignore, .git/info/exclude and call excludes via rsync", async () => {
    const p = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-scan-"));
    const w = (rel: string, c: string) => { fs.mkdirSync(path.dirname(path.join(p, rel)), { recursive: true }); fs.writeFileSync(path.join(p, rel), c); };
    w(".gitignore", "*.log\n"); w("x.log", "1"); w("keep.py", "1"); w("sub/.gitignore", "local.txt\n"); w("sub/local.txt", "1"); w("sub/ok.txt", "1");
    w(".rgtignore", "data/\n"); w("data/a", "1"); w(".git/info/exclude", "mine.md\n"); w("mine.md", "1"); w("cache/c", "1");
    w(".rgt-partial/stale", "1");
    const { files, via } = await scanPushTree(p, ["cache/"]);
    expect(via).toBe("rsync");
    expect(files.map((f) => f.path).sort()).toEqual([".git/info/exclude", ".gitignore", ".rgtignore", "keep.py", "sub/.gitignore", "sub/ok.txt"]);
  });
  it("flags credential files unless allowed, and CRLF shell scripts by extension or shebang", () => {
    const files = [".env", ".env.example", "a/id_rsa", "a/id_rsa.pub", "train.py", "cfg/.netrc"].map((p) => ({ path: p, bytes: 1 }));
    expect(secretFiles(files).map((s) => s.path)).toEqual([".env", "a/id_rsa", "cfg/.netrc"]);
    expect(secretFiles(files, [".env", "id_rsa"]).map((s) => s.path)).toEqual(["cfg/.netrc"]);
    const p = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-crlf-"));
    fs.writeFileSync(path.join(p, "a.sh"), "echo a\r\n");
    fs.writeFileSync(path.join(p, "b.sh"), "echo b\n");
    fs.writeFileSync(path.join(p, "launcher"), "#!/usr/bin/env bash\r\necho\r\n");
    fs.writeFileSync(path.join(p, "notes"), "plain\r\ntext\r\n");
    fs.writeFileSync(path.join(p, "x.py"), "print(1)\r\n");
    const list = ["a.sh", "b.sh", "launcher", "notes", "x.py"].map((f) => ({ path: f, bytes: fs.statSync(path.join(p, f)).size }));
    expect(crlfScripts(p, list)).toEqual(["a.sh", "launcher"]);
  });
});

describe("push_secret helpers", () => {
  it("extracts one netrc machine stanza or one INI section", () => {
    const netrc = "machine api.wandb.ai\n  login user\n  password aaa\nmachine huggingface.co login hf password bbb\ndefault login x password y\n";
    expect(extractBlock(netrc, "api.wandb.ai")).toBe("machine api.wandb.ai\n  login user\n  password aaa\n");
    expect(extractBlock(netrc, "huggingface.co")).toBe("machine huggingface.co login hf password bbb\n");
    const ini = "[default]\naws_access_key_id = A\n\n[work]\naws_access_key_id = B\naws_secret_access_key = C\n\n[other]\nx=1\n";
    expect(extractBlock(ini, "work")).toBe("[work]\naws_access_key_id = B\naws_secret_access_key = C\n");
    expect(extractBlock(ini, "nope")).toBeUndefined();
  });
  it("forbids the shared/durable mounts of a profile, never /", () => {
    const roots = forbiddenCredentialRoots(getProfile("autodl"));
    expect(roots).toContain("/root/autodl-fs");
    expect(roots).not.toContain("/");
    expect(roots).not.toContain("/root/autodl-tmp");
    expect(isUnder("/root/autodl-fs/x/.netrc", "/root/autodl-fs")).toBe(true);
    expect(isUnder("/root/autodl-fsx/.netrc", "/root/autodl-fs")).toBe(false);
  });
});

describe("receipts", () => {
  it("saves, reads back and lists newest first with filters", async () => {
    const ledger = new Ledger(fs.mkdtempSync(path.join(os.tmpdir(), "rgt-rc-")));
    const mk = (host: string, run?: string) => ({
      receipt_id: newReceiptId(), host, remote_path: "/r", ...(run ? { run_id: run } : {}), local_dir: "/l",
      files: [{ path: "a", bytes: 1, sha256: createHash("sha256").update("a").digest("hex") }], manifest_sha256: "m", created_at: new Date().toISOString(),
    });
    const a = await saveReceipt(ledger, mk("h1", "run-a"));
    const b = await saveReceipt(ledger, mk("h1"));
    const c = await saveReceipt(ledger, mk("h2", "run-a"));
    expect(getReceipt(ledger, a.receipt_id)).toEqual(a);
    expect(getReceipt(ledger, "../etc")).toBeUndefined();
    expect(listReceipts(ledger, { host: "h1" }).map((r) => r.receipt_id)).toEqual([b.receipt_id, a.receipt_id]);
    expect(listReceipts(ledger, { run_id: "run-a" }).map((r) => r.receipt_id)).toEqual([c.receipt_id, a.receipt_id]);
  });
});
