/**
 * Paths: what a target word resolves to (against the line's cwd and variables) and why deleting or
 * overwriting it would hit something protected — the filesystem root, a top-level directory, the home
 * directory itself or all of it, a profile's data/durable dir at any depth, checkpoint-named things.
 */
import { UNKNOWN, type Word } from "../shell.js";
import type { State } from "./state.js";

const TOP_LEVEL_OK = new Set(["/tmp", "/var/tmp", "/dev/shm"]);
/** stands for a launch_queue cell's own $RGT_OUTPUT_DIR: new files written there are the cell's outputs */
export const CELL_OUTPUT = "/rgt-cell-output";
export const CKPT_DIR = /^(checkpoints?|ckpts?|outputs?)$/i;
export const CKPT_NAME = /ckpt|checkpoint/i;
export const CKPT_EXT = /\.(pt|pth|ckpt|safetensors|bin|h5|hdf5|pdparams|msgpack|gguf|npz|onnx|engine|distcp)$/i;

export function expandTildeText(t: string, home: string): string {
  if (t === "~") return home;
  if (t.startsWith("~/")) return home + t.slice(1);
  // ~user: root's home is /root, anyone else's /home/<user>
  const m = /^~([A-Za-z_][A-Za-z0-9_.-]*)(\/.*)?$/.exec(t);
  if (m) return (m[1] === "root" ? "/root" : `/home/${m[1]}`) + (m[2] ?? "");
  return t;
}

/** Normalize an absolute path: collapse //, /./ and /../ . Returns null for non-absolute input. */
export function normAbs(p: string): string | null {
  if (!p.startsWith("/")) return null;
  const parts: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") { parts.pop(); continue; }
    parts.push(seg);
  }
  return "/" + parts.join("/");
}

export function isDevice(p: string): boolean {
  return /^\/dev\//.test(p) && !/^\/dev\/(null|zero|stdout|stderr|stdin|tty|full|random|urandom|shm(\/.*)?|fd\/.*|pts\/.*)$/.test(p);
}

export function isCheckpointLike(p: string): boolean {
  const segs = p.split("/").filter(Boolean);
  return segs.some((s) => CKPT_DIR.test(s) || CKPT_NAME.test(s)) || CKPT_EXT.test(p);
}

export interface Judgement {
  /** normalized absolute path (glob/unknown tail cut off), if resolvable */
  abs: string | null;
  unresolved: boolean;
  protectedReason: string | null;
  /** the target lies inside (below) a protected data/durable dir */
  insideProtected: string | null;
  checkpointReason: string | null;
  /** for a single-file delete: a checkpoint extension, or a file inside a checkpoint-named directory */
  checkpointFile: string | null;
  /** a glob that takes a whole directory's contents (`dir/*`) */
  wholeDir: boolean;
}

export function show(w: Word): string {
  return w.text.replaceAll(UNKNOWN, "<?>").slice(0, 120);
}

function checkpointNames(visible: string, res: Judgement): void {
  if (!isCheckpointLike(visible)) return;
  const seg = visible.split("/").filter(Boolean).find((x) => CKPT_DIR.test(x) || CKPT_NAME.test(x));
  res.checkpointReason = seg ? `"${seg}" names checkpoints/outputs` : "a checkpoint-like file";
  const dir = visible.split("/").filter(Boolean).slice(0, -1).find((x) => CKPT_DIR.test(x) || CKPT_NAME.test(x));
  if (CKPT_EXT.test(visible)) res.checkpointFile = "a checkpoint file";
  else if (dir) res.checkpointFile = `a file in "${dir}"`;
}

/** The absolute path a word reaches (null when relative with no known cwd), with unknown tails cut off. */
export function judge(w: Word, st: State): Judgement {
  let t = expandTildeText(w.text, st.home);
  const res: Judgement = {
    abs: null, unresolved: false, protectedReason: null, insideProtected: null, checkpointReason: null, checkpointFile: null, wholeDir: false,
  };
  if (t === "") return res;
  checkpointNames(t.replaceAll(UNKNOWN, ""), res);
  // a word that starts with an expansion can be any path, absolute or not
  if (t.startsWith(UNKNOWN)) { res.unresolved = true; return res; }
  if (!t.startsWith("/")) {
    if (st.cwd) t = st.cwd + "/" + t;
    else {
      // relative, directory unknown: only `.`, `..`, `*` and unknown heads are unresolvable
      if (/^(\.{1,2}\/?|\.\/\*|\*|\.\.\/.*)$/.test(t) || t.startsWith(UNKNOWN)) res.unresolved = true;
      return res;
    }
  }
  const u = t.indexOf(UNKNOWN);
  if (u >= 0) {
    // `/root/$X`: what the known prefix already reaches; `/data_$X` could be any top-level name
    const prefix = t.slice(0, u);
    t = prefix.slice(0, prefix.lastIndexOf("/") + 1) || "/";
    res.wholeDir = true;
    if (t === "/") res.unresolved = true;
  }
  let abs = normAbs(t);
  if (abs === null) return res;
  const gi = w.glob ? abs.search(/[*?[]/) : -1;
  if (gi >= 0) {
    // a glob: what it can reach is the directory it sits in
    const cut = abs.lastIndexOf("/", gi);
    const tail = abs.slice(cut + 1);
    abs = abs.slice(0, cut) || "/";
    res.wholeDir = res.wholeDir || /^[*?[.]/.test(tail);
  }
  res.abs = abs;
  res.protectedReason = protectedReason(abs, st, res.wholeDir);
  res.insideProtected = st.protectedNorm.find((p) => abs === p || abs!.startsWith(p + "/")) ?? null;
  return res;
}

/** Why deleting `abs` (or, with contents=true, everything in it) hits something we protect; null if nothing. */
export function protectedReason(abs: string, st: State, contents: boolean): string | null {
  if (abs === "/") return "the filesystem root";
  if (abs === st.home || abs === "/root" || /^\/home\/[^/]+$/.test(abs)) return `the home directory ${abs}`;
  if (/^\/[^/]+$/.test(abs) && !TOP_LEVEL_OK.has(abs)) return `top-level directory ${abs}`;
  for (const p of st.protectedNorm) {
    if (abs === p) return contents ? `everything in protected ${p}` : `protected ${p}`;
    if (abs.startsWith(p + "/")) return `inside protected ${p}`;
    if (p.startsWith(abs + "/")) return `contains protected ${p}`;
  }
  return null;
}
