/**
 * The analyzer: reads a line with the shell reader, recurses into substitutions, and for every simple
 * command unwraps what only runs another command (sudo, env, nohup, timeout, xargs, ssh, tmux …) until
 * the real command word is reached, then hands it to the class that judges it (fs, providers, power,
 * kill, interp, opaque). Pure: the command is never run.
 */
import { UNKNOWN, braceExpand, parseLine, type SimpleCommand, type Word } from "../shell.js";
import { checkChmod, checkFileVerb, checkInPlace, checkRedirect } from "./fs.js";
import { checkHttp, checkProvider, HTTP_CLIENTS, providerFamily } from "./providers.js";
import { checkPower, isCronPath, isStartupPath, judgeCronText } from "./power.js";
import { checkKill } from "./kill.js";
import { INTERPRETERS, checkInterpreter, judgeCode } from "./interp.js";
import { baseName, echoText, fedText, fetchedFeed, judgeFed, opaqueHead, printfText, rememberDownload, stageName } from "./opaque.js";
import { expandTildeText, normAbs } from "./paths.js";
import { MAX_DEPTH, push, quoteWord, words, type At, type State } from "./state.js";
import { OPAQUE } from "./state.js";
import { unwrap } from "./unwrap.js";
import { checkCarried, judgeCommandVars } from "./carried.js";

const SHELLS = /^(bash|sh|zsh|dash|ksh|ash|mksh|fish|tcsh|csh|busybox-sh|rbash)$/;
const RESERVED = new Set(["if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "time", "coproc", "esac", "in", "function"]);
const INERT = new Set([
  "echo", "printf", "grep", "egrep", "fgrep", "rg", "ag", "ack", "cat", "less", "more", "head", "tail", "man", "info",
  "which", "type", "whatis", "apropos", "help", "whereis", "ls", "history", "wc", "test", "[", "[[", "true", "false",
  ":", "jq", "yq", "diff", "stat", "file", "du", "df", "logger", "wall", "notify-send", "git", "sort", "uniq", "nvidia-smi",
]);

/**
 * `eval "$(conda shell.bash hook)"`, `eval "$(ssh-agent -s)"`, `eval "$(pyenv init -)"`: eval of what a
 * known environment-setup tool prints (shell functions and variables) is ordinary setup, not opaque.
 */
const ENV_HOOK_EVAL = /(^|[;&|\n]\s*|\s)eval\s+"?\$\(\s*(?:[\w.\/-]*\/)?(?:(?:conda|mamba|micromamba)\s+shell(?:\.\w+)?\s+hook(?:\s+--?[\w=-]+(?:\s+\w+)?)*|(?:pyenv|rbenv|nodenv|goenv|jenv|plenv)\s+(?:init|virtualenv-init)(?:\s+-\S*)*|direnv\s+hook\s+\w+|ssh-agent(?:\s+-[sc])?|keychain\s+--eval[^);&|\n$`<>]*|brew\s+shellenv|pixi\s+(?:shell-hook|completion)[^);&|\n$`<>]*|(?:starship|zoxide|mise|rtx|atuin)\s+(?:init|activate)\s+\w+|fnm\s+env[^);&|\n$`<>]*|opam\s+env[^);&|\n$`<>]*|luarocks\s+path[^);&|\n$`<>]*|dircolors(?:\s+-\w+)*|(?:kubectl|helm|gh|pip|uv|poetry|rustup|npm)\s+completion[^);&|\n$`<>]*|register-python-argcomplete\s+[\w.-]+)\s*\)"?(?=\s*(?:$|[;&|\n)]))/g;

export function analyzeText(text: string, st: State, depth: number): void {
  if (depth > MAX_DEPTH) {
    push(st, "obfuscated", "nesting", `command nested more than ${MAX_DEPTH} levels deep; refusing to guess what it runs`);
    return;
  }
  const parsed = parseLine(text.replace(ENV_HOOK_EVAL, "$1:"), st.env);
  const outer = st.subs;
  const outerLine = st.line;
  st.line = text;
  st.subs = parsed.substitutions;
  for (const sub of parsed.substitutions) analyzeText(sub, st, depth + 1);
  for (const pipeline of parsed.pipelines) {
    for (let k = 0; k < pipeline.length; k++) {
      const cmd = pipeline[k]!;
      const at: At = { cmd, pipeline, k, depth, fed: fedText(cmd, pipeline.slice(0, k)) };
      for (const r of cmd.redirects) {
        checkRedirect(r.op, r.target, st);
        rememberWritten(cmd, r.op, r.target.text, at, st);
        const target = expandTildeText(r.target.text, st.home);
        if (isStartupPath(target, st.home)) {
          // text written into a shell startup file runs at the next login: judged as commands
          const w = cmd.argv.findIndex((x) => /^(echo|printf|cat|tee)$/.test(baseName(x.text)));
          const body = typeof at.fed === "string" && at.fed !== OPAQUE ? at.fed : cmd.stdinText !== undefined ? cmd.stdinText : w >= 0 ? (baseName(cmd.argv[w]!.text) === "echo" ? echoText(cmd.argv.slice(w + 1)) : baseName(cmd.argv[w]!.text) === "printf" ? printfText(words(cmd.argv.slice(w + 1))) : null) : null;
          if (body !== null) st.text(body, at.depth + 1);
          else if (w < 0 || at.fed === OPAQUE) push(st, "obfuscated", `> ${target}`, "writes a shell startup file with text that cannot be read here (it runs at the next login)");
        }
        if (isCronPath(target)) {
          // text written where cron runs it: judged as schedule lines (system files carry a user field)
          const w = cmd.argv.findIndex((x) => /^(echo|printf|cat|tee)$/.test(baseName(x.text)));
          const body = typeof at.fed === "string" && at.fed !== OPAQUE ? at.fed : w >= 0 ? (baseName(cmd.argv[w]!.text) === "echo" ? echoText(cmd.argv.slice(w + 1)) : words(cmd.argv.slice(w + 1)).join(" ")) : null;
          if (body === null) push(st, "obfuscated", `> ${target}`, "writes a cron schedule whose commands cannot be read here");
          else judgeCronText(body, at, st, /^\/etc\/(cron\.d|crontab)/.test(target));
        }
      }
      // `… | tee -a /etc/crontab`: text appended where cron runs it
      if (stageName(cmd) === "tee") {
        for (const w of cmd.argv.slice(1)) {
          const target = expandTildeText(w.text, st.home);
          if (!isCronPath(target)) continue;
          if (typeof at.fed === "string" && at.fed !== OPAQUE) judgeCronText(at.fed, at, st, /^\/etc\/(cron\.d|crontab)/.test(target));
          else push(st, "obfuscated", `tee ${target}`, "writes a cron schedule whose commands cannot be read here");
        }
      }
      analyzeArgv(cmd.argv, at, st);
    }
  }
  st.subs = outer;
  st.line = outerLine;
}

/**
 * A file written on this line with literal text (`echo … > f`, `printf … >> f`, `cat > f <<EOF`) and run
 * later on it (`bash f`, `./f`, `source f`, `python f`) is judged by that text, like a pushed script.
 */
function rememberWritten(cmd: SimpleCommand, op: string, target: string, at: At, st: State): void {
  if (op !== ">" && op !== ">>" && op !== ">|" && op !== "&>") return;
  const n = stageName(cmd);
  const w = cmd.argv.findIndex((x) => baseName(x.text) === n);
  let text: string | null = null;
  if (n === "echo") text = echoText(cmd.argv.slice(w + 1)) + "\n";
  else if (n === "printf") text = printfText(words(cmd.argv.slice(w + 1)));
  else if ((n === "cat" || n === "tee" || n === "") && typeof at.fed === "string" && at.fed !== OPAQUE) text = at.fed + "\n";
  else if (n === "cat" && cmd.stdinText !== undefined) text = cmd.stdinText + "\n";
  const abs = st.resolvePath(target);
  if (!abs) return;
  if (text === null) { st.written.set(abs, null); return; }
  const prev = op === ">>" ? st.written.get(abs) ?? "" : "";
  st.written.set(abs, prev === null ? null : prev + text);
}

/** `{a,b}` in a word is two words, as bash expands it */
function expandBraces(argv: Word[]): Word[] {
  if (!argv.some((w) => w.brace)) return argv;
  return argv.flatMap((w) => (w.brace ? braceExpand(w.text).filter((t) => t !== "").map((text) => ({ ...w, text, brace: false })) : [w]));
}

export function analyzeArgv(argv0: Word[], at: At, st: State): void {
  let argv = expandBraces(argv0);
  if (argv.some((w) => w.text.startsWith("IFS="))) st.env.set("IFS", st.env.get("IFS") ?? UNKNOWN);
  judgeCommandVars(argv, at, st);
  // skip reserved words and prefix assignments; an alias definition is judged as the command it names
  let i = 0;
  while (i < argv.length && (RESERVED.has(argv[i]!.text) || /^[A-Za-z_][A-Za-z0-9_]*\+?=/.test(argv[i]!.text))) i += argv[i]!.text === "function" ? 2 : 1;
  if (i < argv.length && /^(for|select|case)$/.test(argv[i]!.text)) return;
  argv = argv.slice(i);
  if (argv.length === 0) return;
  const head0 = argv[0]!;
  if (head0.split && !head0.text.includes(UNKNOWN) && /\s/.test(head0.text.trim())) {
    // `X="vastai destroy"; $X …`: bash splits the expansion into words
    if (st.env.has("IFS")) { opaqueHead(head0, st); return; }
    const parts = head0.text.trim().split(/\s+/).map((text) => ({ text, glob: false, brace: false }));
    analyzeArgv([...parts, ...argv.slice(1)], at, st);
    return;
  }
  if (head0.split && st.env.has("IFS") && st.env.get("IFS") !== " \t\n") { opaqueHead(head0, st); return; }
  const u = unwrap(argv, at, st);
  if (u === null) return;
  argv = u;
  if (argv.length === 0) return;
  const head = argv[0]!;
  if (head.text.includes(UNKNOWN)) { opaqueHead(head, st); return; }
  // `/bin/r? -rf …`, `/usr/local/bin/vast* destroy`: the shell picks the program by globbing
  if (head.glob && /[*?]|\[[^\]]+\]/.test(head.text)) { push(st, "obfuscated", head.text.slice(0, 40), "the command word is a glob: which program it runs depends on the box's files; refusing to guess"); return; }
  const name = baseName(head.text);
  const rest = argv.slice(1);
  const texts = words(rest);

  // `trap 'CMD' EXIT`: CMD runs later, on the signal, and is judged as if written here
  if (name === "trap") { const body = rest.find((x) => !x.text.startsWith("-")); if (body && rest.length >= 2) st.text(body.text, at.depth + 1); return; }
  if (name === "alias") { for (const t of texts) { const m = /^([^=]+)=([\s\S]*)$/.exec(t); if (m) { st.text(m[2]!, at.depth + 1); st.aliases.set(m[1]!, m[2]!); } } return; }
  // a name an alias on this line defined: judged as what it expands to
  const alias = st.aliases.get(head.text);
  if (alias !== undefined && at.depth < MAX_DEPTH) { st.aliases.delete(head.text); st.text([alias, ...rest.map(quoteWord)].join(" "), at.depth + 1); st.aliases.set(head.text, alias); return; }
  if (SHELLS.test(name) || name === "eval" || name === "source" || name === ".") { judgeShell(name, head, rest, at, st); return; }
  checkInPlace(name, rest, st);
  checkCarried(name, rest, at, st);
  if (name === "chmod") { checkChmod(rest, st); return; }
  if (INTERPRETERS.test(name)) { checkInterpreter(name, rest, at, st); return; }
  if (INERT.has(name) && !(name === "git" && texts[0] === "clean")) return;
  // a script of the pushed tree run directly (`./prep.sh`, `scripts/run.sh`)
  if (head.text.includes("/") || /\.(sh|bash)$/.test(name)) {
    const body = st.readPushed(head.text);
    if (body !== undefined) judgeScript(body, st, at.depth);
  }
  // AutoDL and other Chinese consoles: 释放 (release) / 销毁 (destroy) / 关机 (power off) as verbs
  if (texts.some((t) => t.includes("释放") || t.includes("销毁"))) push(st, "instance", name, `${name} … 释放/销毁 releases the instance and deletes its disks`);
  else if (texts.some((t) => t.includes("关机"))) push(st, "power", name, `${name} … 关机 powers the instance off`);

  if (name === "cd" || name === "pushd") { changeDir(texts, st); return; }
  if (checkFileVerb(name, rest, at, st)) return;
  if (checkPower(name, rest, at, st)) return;
  if (checkKill(name, rest, at, st)) return;
  const fam = providerFamily(name);
  if (fam && texts.some((t) => t === "--help" || t === "-h")) return; // usage text only
  if (fam && checkProvider(fam, name, texts, st)) return;
  if (HTTP_CLIENTS.has(name)) { checkHttp(name, texts, st); rememberDownload(name, texts, st); }
}

/** a pushed script run by path: shell text, or code for the interpreter its #! line names */
function judgeScript(body: string, st: State, depth: number): void {
  const shebang = /^#!.*\b(python[0-9.]*|node|perl|ruby)/.exec(body);
  if (shebang) judgeCode(shebang[1]!, body, st, depth + 1, true);
  else st.text(body, depth + 1);
}

function judgeShell(name: string, head: Word, rest: Word[], at: At, st: State): void {
  const texts = words(rest);
  if (name === "eval") { st.text(texts.join(" "), at.depth + 1); return; }
  if (name === "source" || name === ".") {
    const f = rest[0];
    if (!f) return;
    if (f.text.includes(UNKNOWN)) { push(st, "obfuscated", `${name} <?>`, "sources a file whose name is computed at run time (process substitution or a variable)"); return; }
    if (/^\/dev\/(stdin|fd\/0)$/.test(f.text)) { judgeFed(name, at.fed ?? null, st, at.depth); return; }
    const body = st.readPushed(f.text);
    if (body !== undefined) st.text(body, at.depth + 1);
    return;
  }
  const ci = rest.findIndex((x) => /^-[a-zA-Z]*c[a-zA-Z]*$/.test(x.text) && !x.text.startsWith("--"));
  if (ci >= 0) {
    // `bash -c -- TEXT`, `bash -c -x TEXT`: the first word that is not an option is the command text
    let k = ci + 1;
    while (k < rest.length - 1 && (rest[k]!.text === "--" || /^[-+][a-zA-Z]+$/.test(rest[k]!.text))) k++;
    st.text(rest[k]?.text ?? "", at.depth + 1);
    return;
  }
  const script = rest.find((x) => !x.text.startsWith("-") && !/^[+-]o$/.test(x.text));
  if (script && script.text !== "-" && script.text !== "-s") {
    if (script.text.includes(UNKNOWN)) { push(st, "obfuscated", `${name} <?>`, "runs a script whose name is computed at run time (process substitution or a variable)"); return; }
    if (/^\/dev\/(stdin|fd\/0)$/.test(script.text)) { judgeFed(name, at.fed ?? null, st, at.depth); return; }
    const body = st.readPushed(script.text);
    if (body !== undefined) st.text(body, at.depth + 1);
    return; // a script we cannot see: the seatbelt on the box covers what it reaches
  }
  const fetched = at.fed == null ? fetchedFeed(at) : null;
  if (fetched) { push(st, "obfuscated", `… | ${name}`, fetched); return; }
  judgeFed(name, at.fed ?? null, st, at.depth);
  void head;
}

function changeDir(texts: string[], st: State): void {
  const to = texts.find((t) => !t.startsWith("-") || t === "-");
  if (to === undefined) { st.cwd = st.home; return; }
  const t = expandTildeText(to, st.home);
  st.cwd = t.includes(UNKNOWN) || t === "-" ? null : t.startsWith("/") ? normAbs(t) : st.cwd ? normAbs(st.cwd + "/" + t) : null;
}

export type { SimpleCommand };
