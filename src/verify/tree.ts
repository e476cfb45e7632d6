/**
 * Pre-push scan of a local tree: which files the push would send (rsync's own filter evaluation:
 * .gitignore per directory, .git/info/exclude, .rgtignore per directory, the call's excludes), and the
 * findings that stop a push before a byte leaves: credential files and shell scripts with CRLF endings.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { isSecretFileName } from "../guard/secrets.js";
import { listPushTree, localRsyncAvailable, PARTIAL_DIR } from "../remote/rsync.js";
import { listFiles } from "./hash.js";

export const PROJECT_IGNORE = ".rgtignore";

export interface TreeFile { path: string; bytes: number }

/** rsync filter arguments equivalent to the ignore files of a project. */
export function pushFilterArgs(localDir: string, exclude: string[] = []): string[] {
  const args = [`--exclude=${PARTIAL_DIR}/`, "--filter=:- .gitignore", `--filter=:- ${PROJECT_IGNORE}`];
  const infoExclude = path.join(localDir, ".git", "info", "exclude");
  if (fs.existsSync(infoExclude)) args.push(`--exclude-from=${infoExclude}`);
  for (const e of exclude) args.push(`--exclude=${e}`);
  return args;
}

/**
 * git itself decides what .gitignore means — negations (`!keep.json`), nested .gitignore files, the global
 * excludes file and, in a repository, .git/info/exclude — which rsync's filter rules do not read the same
 * way. Returns what git ignores under localDir as anchored rsync exclude lines (ignored directories
 * collapsed, so rsync never walks them), or undefined when git is missing. A directory outside any work
 * tree is read through a throwaway empty repository whose work tree is localDir.
 */
export function gitIgnoredExcludes(localDir: string): string[] | undefined {
  const lsArgs = ["ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory", "--", "."];
  const opts = { encoding: "buffer" as const, maxBuffer: 256 * 1024 * 1024, timeout: 60_000 };
  let r = spawnSync("git", ["-C", localDir, ...lsArgs], opts);
  if (r.error) return undefined;
  if (r.status !== 0) {
    if (!/not a git repository/i.test(r.stderr.toString("utf8"))) return undefined;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-gitdir-"));
    try {
      const init = spawnSync("git", ["init", "-q", "--bare", tmp], { timeout: 30_000 });
      if (init.status !== 0) return undefined;
      // a .git/info/exclude beside a broken or partial .git still counts, as rsync's reading honoured it
      const info = path.join(localDir, ".git", "info", "exclude");
      const extra = fs.existsSync(info) ? [`--exclude-from=${info}`] : [];
      r = spawnSync("git", [`--git-dir=${tmp}`, `--work-tree=${localDir}`, "-C", localDir, ...lsArgs.slice(0, -2), ...extra, "--", "."], opts);
      if (r.error || r.status !== 0) return undefined;
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  return r.stdout.toString("utf8").split("\0").filter((p) => p && !/[\n\r]/.test(p))
    .map((p) => `/${p.replace(/[[\]*?\\]/g, (c) => `\\${c}`)}`);
}

export async function scanPushTree(localDir: string, exclude: string[] = []): Promise<{ files: TreeFile[]; via: "rsync" | "walk" }> {
  if (localRsyncAvailable()) {
    const ignored = gitIgnoredExcludes(localDir);
    if (!ignored) return { files: await listPushTree(localDir, pushFilterArgs(localDir, exclude)), via: "rsync" };
    // git's verdict replaces rsync's reading of .gitignore; .rgtignore and the call's excludes still apply
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-gitignored-"));
    try {
      const list = path.join(tmp, "excludes");
      fs.writeFileSync(list, ignored.map((l) => `${l}\n`).join(""), { mode: 0o600 });
      const filters = [`--exclude=${PARTIAL_DIR}/`, `--exclude-from=${list}`, `--filter=:- ${PROJECT_IGNORE}`, ...exclude.map((e) => `--exclude=${e}`)];
      return { files: await listPushTree(localDir, filters), via: "rsync" };
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  // no local rsync: plain walk (ignore files are then not honoured; the caller warns)
  const files = listFiles(localDir)
    .filter((f) => !f.split("/").includes(PARTIAL_DIR))
    .map((f) => ({ path: f, bytes: fs.statSync(path.join(localDir, f)).size }));
  return { files, via: "walk" };
}

export function secretFiles(files: TreeFile[], allow: string[] = []): { path: string; rule: string }[] {
  const allowed = new Set(allow.map((a) => a.replace(/^\.\//, "").replace(/\/+$/, "")));
  const out: { path: string; rule: string }[] = [];
  for (const f of files) {
    const hit = isSecretFileName(f.path);
    if (!hit) continue;
    if (allowed.has(f.path) || allowed.has(path.posix.basename(f.path))) continue;
    out.push({ path: f.path, rule: hit.rule });
  }
  return out;
}

const SCRIPT_EXT = new Set([".sh", ".bash", ".zsh", ".ksh"]);

/** Shell scripts (by extension, or by a shell shebang on a small file) whose lines end in CRLF. */
export function crlfScripts(localDir: string, files: TreeFile[]): string[] {
  const out: string[] = [];
  const buf = Buffer.alloc(64 * 1024);
  for (const f of files) {
    const ext = path.extname(f.path).toLowerCase();
    const byExt = SCRIPT_EXT.has(ext);
    if (!byExt && (ext !== "" || f.bytes > 1024 * 1024)) continue;
    let n = 0;
    try {
      const fd = fs.openSync(path.join(localDir, f.path), "r");
      try { n = fs.readSync(fd, buf, 0, buf.length, 0); } finally { fs.closeSync(fd); }
    } catch { continue; }
    const head = buf.subarray(0, n);
    if (!byExt) {
      const first = head.subarray(0, Math.max(0, head.indexOf(10) < 0 ? n : head.indexOf(10))).toString("latin1");
      if (!/^#!.*\b(ba|z|k|da)?sh\b/.test(first)) continue;
    }
    if (head.includes("\r\n")) out.push(f.path);
  }
  return out;
}
