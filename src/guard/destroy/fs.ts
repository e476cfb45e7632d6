/**
 * Deleting and overwriting files: rm/unlink/rmdir, find -delete|-exec, truncate, redirections, dd,
 * shred and the disk tools, rsync --delete, mv of a protected dir, cp /dev/null, tee. A protected
 * data/durable dir is protected at any depth; the home directory itself and `~/*` are, while caches and
 * builds under it are not; a recursive forced delete of a target that cannot be resolved is refused.
 */
import { UNKNOWN, braceExpand, type Word } from "../shell.js";
import { CELL_OUTPUT, CKPT_DIR, CKPT_EXT, CKPT_NAME, expandTildeText, isCheckpointLike, isDevice, judge, show } from "./paths.js";
import { positionals, push, words, type At, type State } from "./state.js";

export function checkRm(args: Word[], st: State, verb: string, allowRecursive = true): void {
  let recursive = false;
  let force = false;
  const targets: Word[] = [];
  let opts = true;
  for (const a of args) {
    const t = a.text;
    if (opts && t === "--") { opts = false; continue; }
    if (opts && t.startsWith("--")) {
      if (t === "--recursive") recursive = true;
      if (t === "--force") force = true;
      continue;
    }
    if (opts && t.startsWith("-") && t.length > 1 && !t.includes(UNKNOWN)) {
      if (/[rR]/.test(t)) recursive = true;
      if (/f/.test(t)) force = true;
      continue;
    }
    targets.push(a);
  }
  if (!allowRecursive) recursive = false;
  const flags = recursive || force ? `${verb} -${recursive ? "r" : ""}${force ? "f" : ""}` : verb;
  for (const tw of targets) {
    for (const text of tw.brace ? braceExpand(tw.text) : [tw.text]) judgeRmTarget({ ...tw, text }, st, flags, recursive, force);
  }
}

function judgeRmTarget(w: Word, st: State, flags: string, recursive: boolean, force: boolean): void {
  const j = judge(w, st);
  if (recursive) {
    if (j.protectedReason) push(st, "delete", flags, `recursive delete of ${show(w)}: ${j.protectedReason}`);
    else if (j.checkpointReason) push(st, "delete", flags, `recursive delete of ${show(w)}: ${j.checkpointReason}`);
    else if (j.unresolved && force) push(st, "delete", flags, `recursive forced delete of ${show(w)}, a target that cannot be resolved here (an empty or wrong value wipes a tree)`);
    return;
  }
  if (j.checkpointFile) push(st, "delete", flags, `deletes ${show(w)}: ${j.checkpointFile}`);
  else if (j.insideProtected && !/\.(log|lock|pid|tmp|out|err)$|(^|\/)known_hosts(\.old)?$/i.test(w.text)) push(st, "delete", flags, `deletes ${show(w)}: inside protected ${j.insideProtected}`);
  else if (j.wholeDir && w.glob && j.protectedReason) push(st, "delete", flags, `deletes every file matched by ${show(w)}: ${j.protectedReason}`);
}

export function checkFind(args: Word[], at: At, st: State): void {
  let i = 0;
  while (i < args.length && /^-[HLP]$|^-O\d$|^-D$/.test(args[i]!.text)) i += args[i]!.text === "-D" ? 2 : 1;
  const roots: Word[] = [];
  while (i < args.length && !/^[-(!]/.test(args[i]!.text)) roots.push(args[i++]!);
  if (roots.length === 0) roots.push({ text: ".", glob: false, brace: false });
  const expr = args.slice(i);
  const names: string[] = [];
  for (let j = 0; j < expr.length; j++) {
    if (/^-(i?name|i?path|i?wholename|i?regex)$/.test(expr[j]!.text) && expr[j + 1]) names.push(expr[j + 1]!.text);
  }
  findExec(expr, roots, names[0] ?? UNKNOWN, at, st);
  if (!expr.some((x) => x.text === "-delete")) return;
  for (const r of roots) {
    const jr = judge(r, st);
    const why = jr.protectedReason ?? jr.checkpointReason ?? (r.text.includes(UNKNOWN) ? "a root that cannot be resolved here" : null);
    if (why) push(st, "delete", "find -delete", `deletes under ${show(r)}: ${why}`);
  }
  const ck = names.find((n) => isCheckpointLike(n.replace(/[*?]/g, "x")));
  if (ck) push(st, "delete", "find -delete", `deletes files matching ${ck} (checkpoint-like)`);
  const otherFilter = expr.some((x) => /^-(newer\w*|mtime|mmin|atime|amin|ctime|cmin|size|empty|user|group|perm|links|inum|samefile)$/.test(x.text));
  if (names.length === 0 && !otherFilter) {
    const loose = roots.filter((r) => judge(r, st).unresolved);
    if (loose.length > 0) push(st, "delete", "find -delete", `deletes everything under ${loose.map(show).join(" ")} (no name filter, directory not known here)`);
  }
}

/** -exec / -execdir / -ok CMD … ; : judged with {} standing for root/<name pattern> */
function findExec(expr: Word[], roots: Word[], pattern: string, at: At, st: State): void {
  for (let j = 0; j < expr.length; j++) {
    if (!/^-(exec|execdir|ok|okdir)$/.test(expr[j]!.text)) continue;
    let e = j + 1;
    while (e < expr.length && expr[e]!.text !== ";" && expr[e]!.text !== "+") e++;
    const inner = expr.slice(j + 1, e);
    for (const r of roots) {
      const stand: Word = { text: `${r.text.replace(/\/$/, "")}/${pattern}`, glob: true, brace: false };
      st.argv(inner.map((x) => (x.text.includes("{}") ? { ...stand, text: x.text.split("{}").join(stand.text) } : x)), { ...at, depth: at.depth + 1 });
    }
    j = e;
  }
}

export function checkTruncate(args: Word[], st: State): void {
  let size: string | null = null;
  const targets: Word[] = [];
  for (let j = 0; j < args.length; j++) {
    const t = args[j]!.text;
    if (t === "-s" || t === "--size") { size = args[++j]?.text ?? null; continue; }
    if (t.startsWith("--size=")) { size = t.slice(7); continue; }
    if (t.startsWith("-s") && t.length > 2) { size = t.slice(2); continue; }
    if (t === "-r" || t === "--reference") { size = "ref"; j++; continue; }
    if (t.startsWith("-")) continue;
    targets.push(args[j]!);
  }
  if (size === null) return;
  const shrinks = /^(0+[KMGTPEZY]?B?|-.*|<.*|\/.*|%.*|ref)$/i.test(size) || size.includes(UNKNOWN);
  if (!shrinks) return;
  for (const w of targets) {
    const j = judge(w, st);
    const p = j.checkpointReason ?? (j.insideProtected ? `inside protected ${j.insideProtected}` : null);
    if (p) push(st, "truncate", `truncate -s ${size}`, `cuts ${show(w)} short: ${p}`);
    else if (j.unresolved || w.text.includes(UNKNOWN)) push(st, "truncate", `truncate -s ${size}`, `cuts ${show(w)} short, a file that cannot be resolved here`);
  }
}

const LOGLIKE = /\.(log|out|err|txt)$|^known_hosts(\.old)?$/i;

/** Does overwriting this file destroy protected data? (a checkpoint anywhere, or a non-log inside a protected dir) */
function overwriteReason(target: Word, st: State): string | null {
  const t = expandTildeText(target.text, st.home);
  if (t.startsWith(CELL_OUTPUT + "/")) return null; // the cell writing its own outputs
  const base = t.slice(t.lastIndexOf("/") + 1);
  if (CKPT_EXT.test(base) || (CKPT_NAME.test(base) && /\.[a-z0-9]+$/i.test(base) && !/\.(sha\d*|md5|sum|sig|txt|log|out|err)$/i.test(base))) return `checkpoint ${show(target)}`;
  const j = judge(target, st);
  if (j.insideProtected && !LOGLIKE.test(base) && !projectSource(j, base, st)) return `${show(target)} inside protected ${j.insideProtected}`;
  return null;
}

const SOURCE_EXT = /\.(py|ipynb|sh|bash|ya?ml|json|toml|cfg|ini|conf|md|rst|txt|env|js|ts|c|cc|cpp|h|hpp|cu|rs|go|java|r|jl|lua|sql|html|css|csv)$|^(Makefile|Dockerfile|requirements[\w.-]*)$/i;

/**
 * A source or config file of the project the command runs in, where that project lies inside a data dir
 * (AutoDL projects live under /root/autodl-tmp): editing or regenerating it is ordinary work. Never
 * under a checkpoint-named directory, never ~/.ssh or /etc/ssh.
 */
function projectSource(j: { abs: string | null; insideProtected: string | null }, base: string, st: State): boolean {
  if (!j.abs || !st.cwd || !SOURCE_EXT.test(base)) return false;
  if (!(j.abs.startsWith(st.cwd + "/"))) return false;
  if (st.cwd === j.insideProtected || /(^|\/)\.ssh(\/|$)|^\/etc\//.test(j.abs)) return false;
  const rel = j.abs.slice(st.cwd.length + 1).split("/").slice(0, -1);
  return !rel.some((seg) => CKPT_DIR.test(seg) || CKPT_NAME.test(seg));
}

export function checkRedirect(op: string, target: Word, st: State): void {
  if (op !== ">" && op !== ">|" && op !== "&>" && op !== "<>") return;
  const t = expandTildeText(target.text, st.home);
  if (t === "/proc/sysrq-trigger") { push(st, "power", "> /proc/sysrq-trigger", "a magic-sysrq write can reboot or power off the machine at once"); return; }
  if (isDevice(t)) { push(st, "disk", `${op} ${t}`, `writes raw onto device ${t}`); return; }
  if (op === "<>") return;
  const why = overwriteReason(target, st);
  if (why) push(st, "truncate", `${op} file`, `empties ${why}`);
}

const DISK_VERBS: Record<string, (texts: string[], st: State) => void> = {
  shred: (t, st) => {
    // shred of a scratch file that resolves outside everything protected is fine; anything else is refused
    const pos = positionals(t, new Set(["-n", "--iterations", "-s", "--size", "--random-source"]));
    const risky = pos.length === 0 || pos.some((x) => { const w = { text: x, glob: /[*?[]/.test(x), brace: false }; const j = judge(w, st); return j.abs === null || j.unresolved || !!j.protectedReason || !!j.insideProtected || !!j.checkpointReason; });
    if (risky) push(st, "disk", "shred", `overwrites ${pos.join(" ").slice(0, 80) || "files"} beyond recovery`);
  },
  wipefs: (t, st) => push(st, "disk", "wipefs", `erases ${positionals(t).join(" ") || "a device"}`),
  blkdiscard: (t, st) => push(st, "disk", "blkdiscard", `erases ${positionals(t).join(" ") || "a device"}`),
  mkswap: (t, st) => { if (t.some((x) => x.startsWith("/dev/"))) push(st, "disk", "mkswap", `formats ${t.find((x) => x.startsWith("/dev/"))}`); },
  dd: (t, st) => {
    const of = t.find((x) => x.startsWith("of="));
    if (!of) return;
    const target = of.slice(3);
    if (isDevice(target)) { push(st, "disk", "dd", `writes raw onto ${target}`); return; }
    const why = overwriteReason({ text: target, glob: false, brace: false }, st);
    if (why) push(st, "truncate", "dd", `overwrites ${why}`);
  },
};
for (const n of ["sgdisk", "sfdisk", "fdisk", "parted"]) {
  DISK_VERBS[n] = (t, st) => {
    if (t.some((x) => /^(-Z|--zap-all|-o|--clear|--delete|mklabel|rm)$/.test(x) || /^-[a-zA-Z]*Z/.test(x))) push(st, "disk", n, `rewrites the partition table of ${t.find((x) => x.startsWith("/dev/")) ?? "a disk"}`);
  };
}

/** file and disk verbs; true when `name` was one of them */
export function checkFileVerb(name: string, rest: Word[], at: At, st: State): boolean {
  const texts = words(rest);
  if (name === "rm") { checkRm(rest, st, "rm"); return true; }
  if (name === "unlink" || name === "rmdir") { checkRm(rest, st, name, false); return true; }
  if (name === "find") { checkFind(rest, at, st); return true; }
  if (name === "truncate") { checkTruncate(rest, st); return true; }
  if (DISK_VERBS[name]) { DISK_VERBS[name]!(texts, st); return true; }
  if (name.startsWith("mkfs") || name === "mke2fs" || name === "mkdosfs") {
    push(st, "disk", name, `formats ${texts.find((t) => t.startsWith("/dev/")) ?? positionals(texts).pop() ?? "a filesystem"}`);
    return true;
  }
  if (name === "ln" && texts.some((t) => /^-[a-zA-Z]*f/.test(t) || t === "--force")) {
    // `ln -sf X /root/autodl-fs/best.pt`: the existing file is removed and replaced by the link
    const pos = rest.filter((x) => !x.text.startsWith("-"));
    const dest = pos.length >= 2 ? pos[pos.length - 1]! : null;
    const j = dest ? judge(dest, st) : null;
    if (dest && j?.insideProtected && j.abs !== j.insideProtected) push(st, "truncate", "ln -f", `replaces ${show(dest)} inside protected ${j.insideProtected} with a link`);
  }
  if (name === "ln" && texts.some((t) => /^-[a-zA-Z]*s/.test(t) || t === "--symbolic")) {
    // `ln -s /root/autodl-fs x`: the link reaches protected data, so the link is protected for the rest of the line
    const pos = rest.filter((x) => !x.text.startsWith("-"));
    if (pos.length === 2) {
      const j = judge(pos[0]!, st);
      const dest = st.resolvePath(expandTildeText(pos[1]!.text, st.home));
      if ((j.protectedReason || j.insideProtected) && dest && !st.protectedNorm.includes(dest)) st.protectedNorm.push(dest);
    }
    return true;
  }
  if (name === "rsync") { checkRsync(rest, st); return true; }
  if (name === "tar" && texts.includes("--remove-files")) { sourcesLeave(rest.filter((x) => !x.text.startsWith("-")), st, "tar --remove-files"); return true; }
  if (name === "git" && texts[0] === "clean" && texts.some((t) => /^-[a-zA-Z]*f/.test(t))) {
    const paths = rest.slice(1).filter((w) => !w.text.startsWith("-"));
    // no path: it cleans the working directory, wherever the line has gone (`cd /root/autodl-fs && git clean -fdx`)
    for (const w of paths.length ? paths : [{ text: ".", glob: false, brace: false }]) { const j = judge(w, st); const why = j.protectedReason ?? (j.insideProtected ? `inside protected ${j.insideProtected}` : null); if (why) push(st, "delete", "git clean", `deletes untracked files under ${show(w)}: ${why}`); }
    return false;
  }
  if (name === "mv") { checkMv(rest, st); return true; }
  if (name === "fallocate" && texts.some((t) => /^(-[a-zA-Z]*[pcz]|--punch-hole|--collapse-range|--zero-range|--dig-holes|-d)$/.test(t))) {
    for (const w of rest.filter((x) => !x.text.startsWith("-") && !/^[0-9]+[KMGTkmgt]?i?[Bb]?$/.test(x.text))) { const why = overwriteReason(w, st); if (why) push(st, "truncate", "fallocate", `punches or zeroes ranges of ${why}`); }
    return true;
  }
  if (name === "cp" || name === "install") {
    const pos = rest.filter((x) => !x.text.startsWith("-"));
    if (pos.length === 2 && /^\/dev\/(null|zero|u?random|full)$/.test(pos[0]!.text)) {
      const why = overwriteReason(pos[1]!, st) ?? (isCheckpointLike(pos[1]!.text) ? `checkpoint ${show(pos[1]!)}` : null);
      if (why) push(st, "truncate", "cp /dev/null", `empties ${why}`);
    }
    return true;
  }
  if (name === "tee") {
    if (texts.includes("-a") || texts.includes("--append")) return true;
    for (const w of rest) {
      if (w.text.startsWith("-")) continue;
      if (expandTildeText(w.text, st.home) === "/proc/sysrq-trigger") push(st, "power", "tee /proc/sysrq-trigger", "a magic-sysrq write can reboot or power off the machine at once");
      else if (isDevice(w.text)) push(st, "disk", "tee", `writes raw onto device ${w.text}`);
      else { const why = overwriteReason(w, st); if (why) push(st, "truncate", "tee", `overwrites ${why}`); }
    }
    return true;
  }
  return false;
}

function checkRsync(rest: Word[], st: State): void {
  const texts = words(rest);
  const pos = rest.filter((x) => !x.text.startsWith("-"));
  const dest = pos[pos.length - 1];
  if (texts.includes("--remove-source-files")) sourcesLeave(pos.slice(0, -1), st, "rsync --remove-source-files");
  if (!texts.some((t) => t.startsWith("--delete") || t === "--del")) return;
  if (!dest || /^[^/]*:/.test(dest.text)) return;
  const j = judge(dest, st);
  const why = j.protectedReason ?? j.checkpointReason;
  if (why) push(st, "delete", "rsync --delete", `mirrors over ${show(dest)} (${why}), deleting what the source lacks`);
}

function checkMv(rest: Word[], st: State): void {
  const pos = rest.filter((x) => !x.text.startsWith("-"));
  if (pos.length < 2) return;
  const dest = pos[pos.length - 1]!;
  if (dest.text === "/dev/null") { push(st, "delete", "mv … /dev/null", `throws away ${words(pos.slice(0, -1)).join(" ").slice(0, 80)}`); return; }
  for (const src of pos.slice(0, -1)) {
    const j = judge(src, st);
    // moving a protected dir (or what contains one) away, or its whole contents
    if (j.protectedReason && !/^inside/.test(j.protectedReason)) push(st, "delete", "mv", `moves ${show(src)} away: ${j.protectedReason}`);
    else if (j.insideProtected) {
      // data moved out of a protected dir is gone from it; a move within the same protected dir is a rename
      const d = judge(dest, st);
      if (d.insideProtected !== j.insideProtected) push(st, "delete", "mv", `moves ${show(src)} out of protected ${j.insideProtected}`);
    }
  }
}

/** a tool that deletes its sources once done (tar --remove-files, rsync --remove-source-files) */
function sourcesLeave(srcs: Word[], st: State, what: string): void {
  for (const src of srcs) {
    if (/^[^/]*:/.test(src.text)) continue;
    const j = judge(src, st);
    const why = j.protectedReason ?? (j.insideProtected ? `inside protected ${j.insideProtected}` : null) ?? j.checkpointReason;
    if (why) push(st, "delete", what, `deletes ${show(src)} after copying it: ${why}`);
  }
}

/**
 * In-place edits rewrite a file whole (`sed -i`, `perl -pi`, `awk -i inplace`, `ruby -i`): on a file in a
 * protected dir, a checkpoint or ~/.ssh they are refused like any other overwrite (a `d` script empties it).
 */
export function checkInPlace(name: string, rest: Word[], st: State): void {
  const texts = words(rest);
  let on = false;
  let scriptGiven = false;
  const files: Word[] = [];
  const isSed = /^g?sed$/.test(name);
  const isAwk = /awk$/.test(name);
  const isPerl = /^(perl|ruby)/.test(name);
  if (!isSed && !isAwk && !isPerl) return;
  const pos: Word[] = [];
  for (let j = 0; j < rest.length; j++) {
    const t = rest[j]!.text;
    if (t === "--") { pos.push(...rest.slice(j + 1)); break; }
    if (isSed && (/^--in-place(=.*)?$/.test(t) || /^-[EnrsuzlL]*i/.test(t))) on = true;
    if (isPerl && /^-[a-zA-Z]*i/.test(t) && !t.startsWith("--")) on = true;
    if (isAwk && ((t === "-i" || t === "--include") && /^inplace(\.awk)?$/.test(rest[j + 1]?.text ?? "") || /^--include=inplace/.test(t))) on = true;
    if (t.startsWith("-") && t.length > 1) {
      // options that carry the script (sed -e/-f, perl -e/-E, awk -f) or another value
      if ((isSed && /^-[a-zA-Z]*[ef]$/.test(t)) || (isPerl && /^-[a-zA-Z]*[eE]$/.test(t)) || (isAwk && t === "-f")) { scriptGiven = true; j++; continue; }
      if (/^--(expression|file)=/.test(t)) { scriptGiven = true; continue; }
      if ((isAwk && /^(-i|-v|--include|--assign)$/.test(t)) || (isSed && /^(-l|--line-length)$/.test(t)) || (isPerl && /^-(I|M)$/.test(t))) j++;
      continue;
    }
    pos.push(rest[j]!);
  }
  if (!on) return;
  files.push(...(scriptGiven ? pos : pos.slice(1)));
  for (const f of files) {
    const why = overwriteReason(f, st);
    if (why) push(st, "truncate", `${name} in-place`, `rewrites ${why} in place`);
  }
}

/** chmod that takes the owner's read (or a directory's search) right from ~/.ssh or the home dir locks the box's login out */
export function checkChmod(rest: Word[], st: State): void {
  const texts = words(rest);
  const pos = rest.filter((x) => !/^-[a-zA-Z]+$/.test(x.text) && !x.text.startsWith("--"));
  const mode = pos[0]?.text ?? "";
  const recursive = texts.some((t) => /^-[a-zA-Z]*R/.test(t) || t === "--recursive");
  const oct = /^0?([0-7])[0-7]{2}$|^[0-7]([0-7])[0-7]{2}$/.exec(mode);
  const owner = oct ? Number(oct[1] ?? oct[2]) : null;
  const bad = owner !== null ? owner < 4 || (recursive && (owner & 1) === 0) : /^[ua]*(-[rwx]*r|=[wx]*$)|^[ua]*-[rwx]*x/.test(mode);
  if (!bad) return;
  const ssh = `${st.home}/.ssh`;
  for (const w of pos.slice(1)) {
    const abs = st.resolvePath(w.text);
    if (abs && (abs === st.home || abs === ssh || abs.startsWith(ssh + "/"))) push(st, "lockout", `chmod ${mode}`, `takes the owner's access to ${show(w)}: ssh logins to the box stop working`);
  }
}
