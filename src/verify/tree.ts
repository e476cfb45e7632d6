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
import { escapeBytes } from "../remote/hashes.js";

export const PROJECT_IGNORE = ".rgtignore";

export interface TreeFile { path: string; bytes: number; /** a link inside the tree: its target text */ link?: string }

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

export interface OutsideLink {
  path: string;
  /** the link's target text */
  target: string;
  /** where it leads on this machine (resolved), when it resolves */
  resolved?: string;
  /** the secret-file rule the target matches, when it does */
  secret?: string;
}

export interface PushScan {
  /** what goes: regular files, and links whose target stays inside the tree (carried as links) */
  files: TreeFile[];
  via: "rsync" | "walk";
  /** links that leave the tree (or dangle outside it): not followed, not sent, reported */
  outside: OutsideLink[];
  /** names that cannot be carried (bytes that are not UTF-8), shown escaped */
  badNames: string[];
}

const SECRET_DIR = /(^|\/)(\.ssh|\.aws|\.gnupg|\.kube|\.docker|\.azure|\.config\/gcloud|\.password-store)$/;

/** The secret-file rule a link's target matches (the target itself, or a credential directory), or undefined. */
export function secretLinkTarget(resolved: string): string | undefined {
  const hit = isSecretFileName(resolved);
  if (hit) return hit.rule;
  if (SECRET_DIR.test(resolved.replace(/\/+$/, ""))) return "credential-directory";
  return undefined;
}

/** Split a tree's links into those that stay inside it and those that leave (resolved through every hop). */
export function classifyLinks(localDir: string, links: string[]): { inside: TreeFile[]; outside: OutsideLink[] } {
  let rootReal = localDir;
  try { rootReal = fs.realpathSync(localDir); } catch { /* keep */ }
  const inTree = (p: string): boolean => p === rootReal || p.startsWith(rootReal.endsWith(path.sep) ? rootReal : rootReal + path.sep);
  const inside: TreeFile[] = [];
  const outside: OutsideLink[] = [];
  for (const rel of links) {
    const abs = path.join(localDir, rel);
    let target: string;
    try { target = fs.readlinkSync(abs); } catch { continue; }
    let resolved: string | undefined;
    try { resolved = fs.realpathSync(abs); } catch { /* dangling: judge the text */ }
    const lexical = path.resolve(path.dirname(path.join(rootReal, rel)), target);
    const where = resolved ?? lexical;
    if (inTree(where) && !path.isAbsolute(target)) inside.push({ path: rel, bytes: Buffer.byteLength(target), link: target });
    else outside.push({ path: rel, target, ...(resolved ? { resolved } : {}), ...(secretLinkTarget(where) ? { secret: secretLinkTarget(where) } : {}) });
  }
  return { inside, outside };
}

/** Walk a tree without rsync: files, links, and names that are not UTF-8 (never silently dropped). */
export function walkTree(root: string): { files: TreeFile[]; links: string[]; badNames: string[] } {
  const files: TreeFile[] = [];
  const links: string[] = [];
  const badNames: string[] = [];
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const walk = (rel: string): void => {
    let ents: fs.Dirent<Buffer>[];
    try { ents = fs.readdirSync(rel ? path.join(root, rel) : root, { withFileTypes: true, encoding: "buffer" }); } catch { return; }
    for (const e of ents) {
      let name: string;
      try { name = utf8.decode(e.name); } catch { badNames.push(`${rel ? `${rel}/` : ""}${escapeBytes(e.name)}`); continue; }
      if (name === PARTIAL_DIR) continue;
      const r = rel ? `${rel}/${name}` : name;
      if (e.isDirectory()) walk(r);
      else if (e.isSymbolicLink()) links.push(r);
      else if (e.isFile()) files.push({ path: r, bytes: fs.lstatSync(path.join(root, r)).size });
    }
  };
  walk("");
  files.sort((a, b) => (a.path < b.path ? -1 : 1));
  return { files, links, badNames };
}

export async function scanPushTree(localDir: string, exclude: string[] = []): Promise<PushScan> {
  const finish = (files: TreeFile[], links: string[], badNames: string[], via: "rsync" | "walk"): PushScan => {
    const { inside, outside } = classifyLinks(localDir, links);
    return { files: [...files, ...inside].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)), via, outside, badNames };
  };
  if (localRsyncAvailable()) {
    const list = async (filters: string[]): Promise<PushScan> => {
      const r = await listPushTree(localDir, filters);
      return finish(r.entries.filter((e) => e.kind === "file").map((e) => ({ path: e.path, bytes: e.bytes })), r.entries.filter((e) => e.kind === "link").map((e) => e.path), r.badNames, "rsync");
    };
    const ignored = gitIgnoredExcludes(localDir);
    if (!ignored) return list(pushFilterArgs(localDir, exclude));
    // git's verdict replaces rsync's reading of .gitignore; .rgtignore and the call's excludes still apply
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-gitignored-"));
    try {
      const file = path.join(tmp, "excludes");
      fs.writeFileSync(file, ignored.map((l) => `${l}\n`).join(""), { mode: 0o600 });
      return await list([`--exclude=${PARTIAL_DIR}/`, `--exclude-from=${file}`, `--filter=:- ${PROJECT_IGNORE}`, ...exclude.map((e) => `--exclude=${e}`)]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  // no usable local rsync: a walk, with git's verdict on what is ignored where git is here
  // (.rgtignore and the call's excludes need rsync's filter rules; the caller warns)
  const w = walkTree(localDir);
  const ignored = new Set((gitIgnoredExcludes(localDir) ?? []).map((l) => l.slice(1).replace(/\\(.)/g, "$1").replace(/\/$/, "")));
  const kept = (rel: string): boolean => {
    for (let p = rel; p && p !== "."; p = path.posix.dirname(p)) if (ignored.has(p)) return false;
    return true;
  };
  return finish(w.files.filter((f) => kept(f.path)), w.links.filter(kept), w.badNames, "walk");
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
    if (f.link !== undefined) continue;
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
