/**
 * Local checkpoint load checks. A pulled file whose hash matches the box can still be a checkpoint
 * the training wrote half of; these checks open the container format itself:
 *  - safetensors: 8-byte little-endian header length, a JSON header, every tensor's byte range inside the file
 *  - torch zip (.pt/.pth/.bin/.ckpt written by torch.save since 1.6): central directory intact, each entry's
 *    data inside the archive, a data.pkl entry present
 *  - legacy torch pickle: recognised and noted (only torch itself can open it)
 * and, where a local Python with torch exists, a real torch.load(weights_only=True) of all of them in ONE child process.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execFile, execFileSync } from "node:child_process";
import { setting } from "../common/config.js";

export type CheckpointFormat = "safetensors" | "torch_zip" | "torch_legacy" | "unknown";

export interface LoadCheck {
  format: CheckpointFormat;
  /** true = structure sound, false = broken, null = could not be judged */
  ok: boolean | null;
  detail: string;
  tensors?: number;
  torch_load?: "ok" | "failed" | "unavailable" | "skipped";
}

const CKPT_EXT = new Set([".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".pkl"]);

/** Files worth a load check, by extension. */
export function isCheckpointName(rel: string): boolean {
  return CKPT_EXT.has(path.extname(rel).toLowerCase());
}

function readAt(fd: number, pos: number, len: number): Buffer {
  const buf = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const n = fs.readSync(fd, buf, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got === len ? buf : buf.subarray(0, got);
}

const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8, C64: 8,
};

export function checkSafetensors(file: string): LoadCheck {
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    const fail = (detail: string): LoadCheck => ({ format: "safetensors", ok: false, detail });
    if (size < 8) return fail(`file is ${size} bytes, shorter than the 8-byte header length`);
    const n = readAt(fd, 0, 8).readBigUInt64LE(0);
    if (n > BigInt(size - 8)) return fail(`header length ${n} runs past the end of the file (${size} bytes)`);
    if (n > 100n * 1024n * 1024n) return fail(`header length ${n} is implausibly large`);
    const hlen = Number(n);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(readAt(fd, 8, hlen).toString("utf8")) as Record<string, unknown>;
    } catch (e) {
      return fail(`header is not valid JSON (${(e as Error).message.slice(0, 80)})`);
    }
    if (!header || typeof header !== "object" || Array.isArray(header)) return fail("header is not a JSON object");
    const dataLen = size - 8 - hlen;
    let tensors = 0;
    let maxEnd = 0;
    for (const [name, v] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      const t = v as { dtype?: string; shape?: number[]; data_offsets?: number[] };
      if (!t || !Array.isArray(t.data_offsets) || t.data_offsets.length !== 2) return fail(`tensor ${name.slice(0, 60)} has no data_offsets`);
      const [b, e] = t.data_offsets;
      if (!(Number.isInteger(b) && Number.isInteger(e) && b >= 0 && e >= b)) return fail(`tensor ${name.slice(0, 60)} has bad offsets`);
      if (e > dataLen) return fail(`tensor ${name.slice(0, 60)} ends at byte ${e} of a ${dataLen}-byte data section (truncated?)`);
      const width = t.dtype ? DTYPE_BYTES[t.dtype] : undefined;
      if (width && Array.isArray(t.shape)) {
        const elems = t.shape.reduce((a, x) => a * x, 1);
        if (elems * width !== e - b) return fail(`tensor ${name.slice(0, 60)} spans ${e - b} bytes but ${t.dtype}${JSON.stringify(t.shape)} needs ${elems * width}`);
      }
      maxEnd = Math.max(maxEnd, e);
      tensors++;
    }
    if (maxEnd < dataLen) {
      return { format: "safetensors", ok: true, detail: `${tensors} tensors; ${dataLen - maxEnd} trailing bytes after the last tensor`, tensors };
    }
    return { format: "safetensors", ok: true, detail: `${tensors} tensors, header and offsets consistent`, tensors };
  } finally {
    fs.closeSync(fd);
  }
}

interface ZipEntry { name: string; compSize: number; localOffset: number }

/** Parse a zip's central directory (zip64 aware). Throws with a human reason when it is broken. */
export function readZipDirectory(fd: number, size: number): { entries: ZipEntry[]; cdOffset: number } {
  if (size < 22) throw new Error(`file is ${size} bytes, too short for a zip archive`);
  const tailLen = Math.min(size, 65_557);
  const tail = readAt(fd, size - tailLen, tailLen);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error("no end-of-central-directory record (file truncated or not finished writing)");
  const eocdPos = size - tailLen + eocd;
  let total = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (total === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    if (eocdPos < 20) throw new Error("zip64 locator missing");
    const loc = readAt(fd, eocdPos - 20, 20);
    if (loc.readUInt32LE(0) !== 0x07064b50) throw new Error("zip64 locator missing");
    const z64 = Number(loc.readBigUInt64LE(8));
    if (z64 + 56 > size) throw new Error("zip64 end record lies past the end of the file");
    const rec = readAt(fd, z64, 56);
    if (rec.readUInt32LE(0) !== 0x06064b50) throw new Error("zip64 end record has a bad signature");
    total = Number(rec.readBigUInt64LE(32));
    cdSize = Number(rec.readBigUInt64LE(40));
    cdOffset = Number(rec.readBigUInt64LE(48));
  }
  if (cdOffset + cdSize > eocdPos) throw new Error(`central directory (${cdOffset}+${cdSize}) overlaps its end record at ${eocdPos}`);
  if (cdSize > 256 * 1024 * 1024) throw new Error("central directory implausibly large");
  const cd = readAt(fd, cdOffset, cdSize);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let k = 0; k < total; k++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw new Error(`central directory entry ${k} is damaged`);
    let compSize = cd.readUInt32LE(p + 20);
    const uncomp = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let localOffset = cd.readUInt32LE(p + 42);
    const name = cd.subarray(p + 46, p + 46 + nameLen).toString("utf8");
    // zip64 extended information: present fields appear in the order uncompressed, compressed, offset
    let x = p + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = cd.readUInt16LE(x);
      const len = cd.readUInt16LE(x + 2);
      if (id === 0x0001) {
        let q = x + 4;
        if (uncomp === 0xffffffff) q += 8;
        if (compSize === 0xffffffff) { compSize = Number(cd.readBigUInt64LE(q)); q += 8; }
        if (localOffset === 0xffffffff) { localOffset = Number(cd.readBigUInt64LE(q)); }
      }
      x += 4 + len;
    }
    entries.push({ name, compSize, localOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return { entries, cdOffset };
}

/** torch.save's legacy format opens with the pickled magic number 0x1950a86a20f9469cfc6c (protocol 2, LONG1). */
const TORCH_LEGACY_MAGIC = Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);
/** Entry names torch.save writes into its zip archive ("<archive>/data.pkl", ".format_version", "byteorder", "data/0"…). */
const TORCH_ZIP_ENTRY = /(^|\/)(data\.pkl|\.format_version|byteorder|version|\.data\/serialization_id|data\/\d+)$/;
/** Extensions that say "torch checkpoint" by themselves; .bin and .pkl are also used by plenty of other formats. */
const TORCH_EXT = /\.(pt|pth|ckpt)$/i;

/** the name in a zip's first local file header */
function firstZipEntry(fd: number): string {
  const lh = readAt(fd, 0, 30);
  if (lh.length < 30) return "";
  return readAt(fd, 30, Math.min(lh.readUInt16LE(26), 1024)).toString("utf8");
}

/**
 * Judge a torch-named file by name AND structure. A torch.save zip is known by its entry names (a
 * truncated one still by its first entry), a legacy save by its pickled magic number. A .bin / .pkl that
 * is neither is somebody else's format (a data shard that merely starts like a pickle or a zip): it is
 * hashed, not judged and not loaded.
 */
export function checkTorchFile(file: string): LoadCheck {
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    const torchNamed = TORCH_EXT.test(file);
    const head = readAt(fd, 0, TORCH_LEGACY_MAGIC.length);
    if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) {
      const first = firstZipEntry(fd);
      const looksTorch = torchNamed || TORCH_ZIP_ENTRY.test(first);
      let dir: ReturnType<typeof readZipDirectory>;
      try {
        dir = readZipDirectory(fd, size);
      } catch (e) {
        if (!looksTorch) return { format: "unknown", ok: null, detail: "a zip-like file that is not a torch archive; not judged" };
        return { format: "torch_zip", ok: false, detail: (e as Error).message };
      }
      const pkl = dir.entries.find((e) => e.name === "data.pkl" || e.name.endsWith("/data.pkl"));
      if (!pkl) {
        if (!torchNamed) return { format: "unknown", ok: null, detail: `a zip archive of ${dir.entries.length} entries without data.pkl (not a torch.save archive); not judged` };
        return { format: "torch_zip", ok: false, detail: `zip archive of ${dir.entries.length} entries has no data.pkl (not a torch.save archive)` };
      }
      for (const e of dir.entries.slice(0, 20_000)) {
        const lh = readAt(fd, e.localOffset, 30);
        if (lh.length < 30 || lh.readUInt32LE(0) !== 0x04034b50) {
          return { format: "torch_zip", ok: false, detail: `entry ${e.name.slice(0, 80)} has no local header at offset ${e.localOffset}` };
        }
        const end = e.localOffset + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28) + e.compSize;
        if (end > dir.cdOffset) return { format: "torch_zip", ok: false, detail: `entry ${e.name.slice(0, 80)} runs past the data area (truncated?)` };
      }
      const storages = dir.entries.filter((e) => /\/data\/\d+$/.test(e.name)).length;
      return { format: "torch_zip", ok: true, detail: `zip archive intact: ${dir.entries.length} entries, data.pkl + ${storages} storages`, tensors: storages };
    }
    if (head.length === TORCH_LEGACY_MAGIC.length && head.equals(TORCH_LEGACY_MAGIC)) {
      return { format: "torch_legacy", ok: null, detail: "legacy (pre-zip) torch pickle: structure cannot be checked without torch" };
    }
    if (torchNamed && head.length >= 2 && head[0] === 0x80 && head[1] >= 2 && head[1] <= 5) {
      return { format: "unknown", ok: null, detail: "a pickle without torch's magic number; torch.load decides" };
    }
    return { format: "unknown", ok: null, detail: "neither a torch archive nor a torch pickle; not judged" };
  } finally {
    fs.closeSync(fd);
  }
}

/** The structural check for one local file, by extension and magic. null for files that are not checkpoints. */
export function structuralCheck(file: string): LoadCheck | null {
  const ext = path.extname(file).toLowerCase();
  if (!CKPT_EXT.has(ext)) return null;
  try {
    if (ext === ".safetensors") return checkSafetensors(file);
    return checkTorchFile(file);
  } catch (e) {
    return { format: "unknown", ok: false, detail: `could not read: ${(e as Error).message.slice(0, 120)}` };
  }
}

// ---------------------------------------------------------------------------------------------
// torch.load in one child process

const TORCH_PY = [
  "import sys, json",
  "try:",
  "    import torch",
  "except Exception as e:",
  "    print(json.dumps({'torch': None, 'error': str(e)[:200]})); sys.exit(0)",
  "print(json.dumps({'torch': torch.__version__}), flush=True)",
  "def count(o, d=0):",
  "    if d > 20: return 0",
  "    if isinstance(o, torch.Tensor): return 1",
  "    if isinstance(o, dict): return sum(count(v, d+1) for v in o.values())",
  "    if isinstance(o, (list, tuple)): return sum(count(v, d+1) for v in o)",
  "    return 0",
  "for p in json.load(sys.stdin):",
  "    try:",
  "        try:",
  "            obj = torch.load(p, map_location='cpu', weights_only=True, mmap=True)",
  "        except (RuntimeError, TypeError, ValueError) as e:",
  "            if 'mmap' not in str(e): raise",
  "            obj = torch.load(p, map_location='cpu', weights_only=True)",
  "        print(json.dumps({'path': p, 'ok': True, 'tensors': count(obj)}), flush=True)",
  "        del obj",
  "    except Exception as e:",
  "        print(json.dumps({'path': p, 'ok': False, 'error': (type(e).__name__ + ': ' + str(e))[:240]}), flush=True)",
].join("\n");

let torchPython: string | null | undefined;

/** The first local Python that can import torch ($RGT_PYTHON, /usr/bin/python3, python3), or null. Cached. */
export function findTorchPython(): string | null {
  if (torchPython !== undefined) return torchPython;
  const cands = [setting("RGT_PYTHON"), "/usr/bin/python3", "python3"].filter((x): x is string => !!x);
  torchPython = null;
  for (const py of cands) {
    try {
      execFileSync(py, ["-c", "import torch"], { stdio: "ignore", timeout: 30_000 });
      torchPython = py;
      break;
    } catch { /* next */ }
  }
  return torchPython;
}

export interface TorchLoadResult { ok: boolean; tensors?: number; error?: string }

function runBatch(py: string, files: string[], timeoutMs: number): Promise<{ torch: boolean; results: Map<string, TorchLoadResult> }> {
  return new Promise((resolve) => {
    const child = execFile(py, ["-c", TORCH_PY], { timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024, killSignal: "SIGKILL" }, (err, stdout) => {
      const results = new Map<string, TorchLoadResult>();
      let torch = false;
      for (const line of String(stdout).split("\n")) {
        if (!line.startsWith("{")) continue;
        try {
          const r = JSON.parse(line) as { torch?: string | null; path?: string; ok?: boolean; tensors?: number; error?: string };
          if ("torch" in r) torch = typeof r.torch === "string";
          else if (r.path) results.set(r.path, { ok: !!r.ok, tensors: r.tensors, error: r.error });
        } catch { /* ignore */ }
      }
      if (torch) {
        for (const f of files) if (!results.has(f)) results.set(f, { ok: false, error: err ? `torch.load did not finish (${err.killed ? "timed out" : "child failed"})` : "no answer" });
      }
      resolve({ torch, results });
    });
    child.on("error", () => { /* reported through the callback */ });
    child.stdin?.on("error", () => {});
    child.stdin?.end(JSON.stringify(files));
  });
}

/**
 * torch.load(weights_only=True) every file in one Python process, bounded in time. null when no local
 * Python has torch. The first candidate that has torch is remembered (no separate import probe: importing
 * torch costs seconds).
 */
export async function torchLoadBatch(files: string[], timeoutMs: number): Promise<Map<string, TorchLoadResult> | null> {
  if (torchPython === null) return null;
  const cands = torchPython ? [torchPython] : [setting("RGT_PYTHON"), "/usr/bin/python3", "python3"].filter((x): x is string => !!x);
  for (const py of cands) {
    const r = await runBatch(py, files, timeoutMs);
    if (r.torch) { torchPython = py; return r.results; }
  }
  torchPython = null;
  return null;
}

/**
 * Load-check a set of local files (absolute paths). Structural check for each checkpoint, then one
 * torch.load batch for the torch formats whose structure is not already known broken.
 */
const loadCache = new Map<string, LoadCheck>();

export async function loadCheckFiles(
  files: string[],
  opts: { torch?: boolean; timeoutMs?: number; sha256?: Map<string, string> } = {},
): Promise<Map<string, LoadCheck>> {
  const out = new Map<string, LoadCheck>();
  const forTorch: string[] = [];
  let totalBytes = 0;
  for (const f of files) {
    // a file with the same content was fully checked before in this process: same verdict
    const key = opts.sha256?.get(f);
    const hit = key ? loadCache.get(key) : undefined;
    if (hit && (hit.torch_load === "ok" || hit.torch_load === "failed" || hit.torch_load === "unavailable")) { out.set(f, { ...hit }); continue; }
    const c = structuralCheck(f);
    if (!c) continue;
    out.set(f, c);
    // A torch-named file that is neither zip nor pickle goes to torch too: if torch cannot open it either,
    // it is corrupt, and saying "not judged" would let a receipt vouch for it.
    // (.bin is excluded: many .bin files are not torch's at all.)
    if ((c.format === "torch_zip" || c.format === "torch_legacy" || (c.format === "unknown" && /\.(pt|pth|ckpt)$/i.test(f))) && c.ok !== false) {
      forTorch.push(f);
      try { totalBytes += fs.statSync(f).size; } catch { /* ignore */ }
    }
  }
  if (opts.torch === false || forTorch.length === 0) {
    for (const f of forTorch) out.get(f)!.torch_load = "skipped";
    return out;
  }
  const timeout = opts.timeoutMs ?? 60_000 + Math.ceil(totalBytes / (50 * 1024 * 1024)) * 1000;
  const res = await torchLoadBatch(forTorch, timeout);
  for (const f of forTorch) {
    const c = out.get(f)!;
    if (!res) { c.torch_load = "unavailable"; continue; }
    const r = res.get(f);
    if (r?.ok) {
      c.torch_load = "ok";
      c.ok = true;
      if (r.tensors !== undefined) c.tensors = r.tensors;
      if (c.format === "torch_legacy") c.detail = "legacy torch pickle; torch.load(weights_only=True) succeeded";
    } else {
      c.torch_load = "failed";
      c.ok = false;
      c.detail = `torch.load failed: ${r?.error ?? "unknown error"}`;
    }
  }
  if (opts.sha256) for (const [f, c] of out) { const k = opts.sha256.get(f); if (k && c.torch_load && c.torch_load !== "skipped") loadCache.set(k, { ...c }); }
  return out;
}
