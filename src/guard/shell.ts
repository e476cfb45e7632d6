/**
 * A small POSIX/bash command-line reader for the destroy guard. It does what the shell does to a
 * line BEFORE a command runs — quote removal, backslash escapes, `$'…'` decoding, variable lookup,
 * operators, redirections, here-docs — and hands every command substitution (`$(…)`, backticks,
 * `<(…)`) back as text so the caller can inspect it recursively.
 *
 * Why not shell-quote: it does not nest `$(…)`, ignores backticks and `$'\x72\x6d'`, and has no
 * here-docs — each of which is an easy way to hide `rm` from a guard. Reading the line ourselves
 * keeps the guard honest about what bash will actually execute. Pure: strings in, data out.
 *
 * What is NOT done (by design): running anything, globbing against a filesystem, alias expansion,
 * arithmetic. An expansion we cannot know is kept in the word text as UNKNOWN so callers can tell a
 * resolved path from one that depends on the box.
 */

/** stands for "some text we cannot know here" inside a word */
export const UNKNOWN = "\u0001";

export interface Word {
  /** text after quote removal and expansion; unknowable parts are UNKNOWN */
  text: string;
  /** contains an unquoted glob character (* ? [) */
  glob: boolean;
  /** contains an unquoted `{a,b}` brace list */
  brace: boolean;
  /** an unquoted expansion ($X, $(…)) contributed to it: bash would field-split it */
  split?: boolean;
}

export interface Redirect {
  op: string;
  target: Word;
}

export interface SimpleCommand {
  argv: Word[];
  redirects: Redirect[];
  /** body of a here-doc / here-string feeding this command's stdin */
  stdinText?: string;
}

export interface ParsedLine {
  /** pipelines in source order; a pipeline is commands joined by | */
  pipelines: SimpleCommand[][];
  /** bodies of $(…), `…`, <(…), >(…): commands that also run */
  substitutions: string[];
}

const OPERATORS = ["&&", "||", ";;", "|&", "&>>", "&>", ">>", ">|", ">&", "<<<", "<<-", "<<", "<&", "<>", ";", "&", "|", "(", ")", "<", ">"];
const REDIRECTS = new Set(["&>>", "&>", ">>", ">|", ">&", "<<<", "<<-", "<<", "<&", "<>", "<", ">"]);

/** Find the index just past the `)` that closes the `(` at s[open]. Quotes and nesting respected. */
export function matchParen(s: string, open: number): number {
  let depth = 0;
  let i = open;
  while (i < s.length) {
    const c = s[i]!;
    if (c === "\\") { i += 2; continue; }
    if (c === "'") { const j = s.indexOf("'", i + 1); i = j < 0 ? s.length : j + 1; continue; }
    if (c === '"') { i = skipDouble(s, i + 1); continue; }
    if (c === "`") { i = skipBacktick(s, i + 1); continue; }
    if (c === "(") depth++;
    else if (c === ")") { depth--; if (depth === 0) return i + 1; }
    i++;
  }
  return s.length;
}

function skipDouble(s: string, i: number): number {
  while (i < s.length) {
    const c = s[i]!;
    if (c === "\\") { i += 2; continue; }
    if (c === '"') return i + 1;
    if (c === "$" && s[i + 1] === "(") { i = matchParen(s, i + 1); continue; }
    if (c === "`") { i = skipBacktick(s, i + 1); continue; }
    i++;
  }
  return s.length;
}

function skipBacktick(s: string, i: number): number {
  while (i < s.length) {
    const c = s[i]!;
    if (c === "\\") { i += 2; continue; }
    if (c === "`") return i + 1;
    i++;
  }
  return s.length;
}

function decodeAnsiC(body: string): string {
  let out = "";
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== "\\" || i + 1 >= body.length) { out += c; continue; }
    const n = body[++i]!;
    const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", a: "\x07", b: "\b", e: "\x1b", E: "\x1b", f: "\f", v: "\v", "\\": "\\", "'": "'", '"': '"', "?": "?" };
    if (n in simple) { out += simple[n]; continue; }
    let m: RegExpExecArray | null;
    if (n === "x" && (m = /^[0-9a-fA-F]{1,2}/.exec(body.slice(i + 1)))) { out += String.fromCharCode(parseInt(m[0], 16)); i += m[0].length; continue; }
    if (n === "u" && (m = /^[0-9a-fA-F]{1,4}/.exec(body.slice(i + 1)))) { out += String.fromCodePoint(parseInt(m[0], 16)); i += m[0].length; continue; }
    if (n === "U" && (m = /^[0-9a-fA-F]{1,8}/.exec(body.slice(i + 1)))) {
      const cp = parseInt(m[0], 16);
      out += cp <= 0x10ffff ? String.fromCodePoint(cp) : "";
      i += m[0].length;
      continue;
    }
    if ((m = /^[0-7]{1,3}/.exec(body.slice(i)))) { out += String.fromCharCode(parseInt(m[0], 8) & 0xff); i += m[0].length - 1; continue; }
    if (n === "c" && i + 1 < body.length) { out += String.fromCharCode(body.charCodeAt(++i) & 0x1f); continue; }
    out += "\\" + n;
  }
  return out;
}

interface WordBuf { text: string; started: boolean; glob: boolean; brace: boolean; split?: boolean; }

/**
 * Read one command line (possibly many commands, newlines, here-docs).
 * `env` supplies values for $NAME; assignments made on the line (`X=/data; …`, `export X=…`) are
 * applied to it as they are read, so a later `$X` sees them. Unknown variables become UNKNOWN.
 */
export function parseLine(src: string, env: Map<string, string>): ParsedLine {
  const s = src;
  const n = s.length;
  const pipelines: SimpleCommand[][] = [];
  const substitutions: string[] = [];
  let pipeline: SimpleCommand[] = [];
  let cmd: SimpleCommand = { argv: [], redirects: [] };
  let w: WordBuf = { text: "", started: false, glob: false, brace: false };
  let pendingRedirect: string | null = null;
  const pendingHeredocs: { delim: string; strip: boolean; cmd: SimpleCommand }[] = [];
  let i = 0;

  const endWord = (): void => {
    if (!w.started) return;
    const word: Word = { text: w.text, glob: w.glob, brace: w.brace, ...(w.split ? { split: true } : {}) };
    if (pendingRedirect) {
      if (pendingRedirect === "<<" || pendingRedirect === "<<-") {
        pendingHeredocs.push({ delim: word.text, strip: pendingRedirect === "<<-", cmd });
      } else if (pendingRedirect === "<<<") {
        cmd.stdinText = word.text;
      } else {
        cmd.redirects.push({ op: pendingRedirect, target: word });
      }
      pendingRedirect = null;
    } else {
      cmd.argv.push(word);
    }
    w = { text: "", started: false, glob: false, brace: false };
  };
  const endCommand = (): void => {
    endWord();
    if (cmd.argv.length > 0 || cmd.redirects.length > 0 || cmd.stdinText !== undefined || pendingHeredocs.some((h) => h.cmd === cmd)) {
      applyAssignments(cmd, env);
      pipeline.push(cmd);
    }
    cmd = { argv: [], redirects: [] };
  };
  const endPipeline = (): void => {
    endCommand();
    if (pipeline.length > 0) pipelines.push(pipeline);
    pipeline = [];
  };
  const add = (t: string): void => { w.text += t; w.started = true; };
  const subst = (body: string): void => {
    substitutions.push(body);
    // `$(which python3)` / `$(command -v torchrun)` name a program: the word is that name
    const m = /^\s*(?:which|command\s+-v|type\s+-P)\s+([A-Za-z0-9_.+-]+)\s*$/.exec(body);
    add(m ? m[1]! : UNKNOWN);
  };

  const readHeredocs = (): void => {
    // i points just past a newline: consume each pending here-doc body
    for (const h of pendingHeredocs.splice(0)) {
      const lines: string[] = [];
      while (i < n) {
        let e = s.indexOf("\n", i);
        if (e < 0) e = n;
        let line = s.slice(i, e);
        i = e + 1;
        if (h.strip) line = line.replace(/^\t+/, "");
        if (line === h.delim) break;
        lines.push(line);
      }
      h.cmd.stdinText = lines.join("\n");
    }
  };

  /** `$…` at s[i] (outside single quotes); returns the new index */
  const dollar = (inDouble: boolean): number => {
    const nx = s[i + 1];
    if (!inDouble && nx !== "'" && nx !== '"') w.split = true;
    if (nx === "(" && s[i + 2] === "(") {
      const end = matchParen(s, i + 1);
      add(UNKNOWN);
      return end;
    }
    if (nx === "(") {
      const end = matchParen(s, i + 1);
      subst(s.slice(i + 2, Math.max(i + 2, end - 1)));
      return end;
    }
    if (nx === "'" && !inDouble) {
      const j = findAnsiEnd(s, i + 2);
      add(decodeAnsiC(s.slice(i + 2, j)));
      w.started = true;
      return Math.min(n, j + 1);
    }
    if (nx === '"' && !inDouble) return i + 1; // $"…" locale string: treat as "…"
    if (nx === "{") {
      let depth = 0;
      let j = i + 1;
      for (; j < n; j++) {
        if (s[j] === "{") depth++;
        else if (s[j] === "}") { depth--; if (depth === 0) break; }
      }
      const inner = s.slice(i + 2, j);
      const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(inner)?.[0];
      if (name && inner === name && env.has(name)) add(env.get(name)!);
      else if (name && /^:?[-=]/.test(inner.slice(name.length)) && env.has(name) && env.get(name) !== "") add(env.get(name)!);
      else if (name && !env.has(name) && /^:?[-=][A-Za-z0-9_./+-]*$/.test(inner.slice(name.length))) add(inner.slice(name.length).replace(/^:?[-=]/, ""));
      else {
        // ${X:-$(cmd)} and friends still run their command substitutions
        const sub = inner.indexOf("$(");
        if (sub >= 0) substitutions.push(inner.slice(sub + 2, Math.max(sub + 2, matchParen(inner, sub + 1) - 1)));
        add(UNKNOWN);
      }
      return Math.min(n, j + 1);
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i + 1, i + 129))?.[0];
    if (name) {
      add(env.has(name) ? env.get(name)! : UNKNOWN);
      return i + 1 + name.length;
    }
    if (nx !== undefined && /[0-9@*#?$!-]/.test(nx)) { add(UNKNOWN); return i + 2; }
    add("$");
    return i + 1;
  };

  while (i < n) {
    const c = s[i]!;
    if (c === " " || c === "\t" || c === "\r") { endWord(); i++; continue; }
    if (c === "\n") {
      endPipeline();
      i++;
      if (pendingHeredocs.length > 0) readHeredocs();
      continue;
    }
    if (c === "#" && !w.started) {
      const e = s.indexOf("\n", i);
      i = e < 0 ? n : e;
      continue;
    }
    if (c === "\\") {
      if (s[i + 1] === "\n") { i += 2; continue; }
      if (i + 1 < n) add(s[i + 1]!);
      i += 2;
      continue;
    }
    if (c === "'") {
      const j = s.indexOf("'", i + 1);
      const e = j < 0 ? n : j;
      add(s.slice(i + 1, e));
      i = e + 1;
      continue;
    }
    if (c === '"') {
      w.started = true;
      i++;
      while (i < n && s[i] !== '"') {
        const d = s[i]!;
        if (d === "\\" && i + 1 < n) {
          const e = s[i + 1]!;
          if (e === "\n") { i += 2; continue; }
          add("$`\"\\".includes(e) ? e : "\\" + e);
          i += 2;
          continue;
        }
        if (d === "$") { i = dollar(true); continue; }
        if (d === "`") {
          const end = skipBacktick(s, i + 1);
          subst(unescapeBacktick(s.slice(i + 1, Math.max(i + 1, end - 1))));
          i = end;
          continue;
        }
        add(d);
        i++;
      }
      i++;
      continue;
    }
    if (c === "`") {
      const end = skipBacktick(s, i + 1);
      w.split = true;
      subst(unescapeBacktick(s.slice(i + 1, Math.max(i + 1, end - 1))));
      i = end;
      continue;
    }
    if (c === "$") { i = dollar(false); continue; }
    if ((c === "<" || c === ">") && s[i + 1] === "(") {
      endWord();
      const end = matchParen(s, i + 1);
      substitutions.push(s.slice(i + 2, Math.max(i + 2, end - 1)));
      add(UNKNOWN);
      i = end;
      continue;
    }
    if (";&|()<>".includes(c)) {
      // `2>` / `2>&1`: a word of digits right before a redirection is its fd number
      if ((c === "<" || c === ">") && w.started && /^[0-9]+$/.test(w.text)) {
        w = { text: "", started: false, glob: false, brace: false };
      } else {
        endWord();
      }
      const op = OPERATORS.find((o) => s.startsWith(o, i))!;
      i += op.length;
      if (REDIRECTS.has(op)) {
        pendingRedirect = op;
        continue;
      }
      if (op === "|" || op === "|&") { endCommand(); continue; }
      endPipeline();
      continue;
    }
    if (c === "*" || c === "?" || c === "[") w.glob = true;
    if (c === "{" && /^\{[^\s{}]*,[^\s{}]*\}/.test(s.slice(i, i + 256))) w.brace = true;
    add(c);
    i++;
  }
  endPipeline();
  // here-docs with no newline after them (single-line input): nothing to read
  return { pipelines, substitutions };
}

function findAnsiEnd(s: string, i: number): number {
  while (i < s.length) {
    if (s[i] === "\\") { i += 2; continue; }
    if (s[i] === "'") return i;
    i++;
  }
  return s.length;
}

function unescapeBacktick(body: string): string {
  return body.replace(/\\([$`\\])/g, "$1");
}

const ASSIGN = /^([A-Za-z_][A-Za-z0-9_]*)(\+?)=([\s\S]*)$/;

/** `X=v` alone, or `export/declare/local/readonly/typeset X=v …`, updates env; `unset X` forgets it. */
function applyAssignments(cmd: SimpleCommand, env: Map<string, string>): void {
  const a = cmd.argv;
  if (a.length === 0) return;
  let k = 0;
  const first = a[0]!.text;
  if (["export", "declare", "local", "readonly", "typeset"].includes(first)) k = 1;
  else if (first === "unset") {
    for (const x of a.slice(1)) env.delete(x.text);
    return;
  } else if (!ASSIGN.test(first)) return;
  const rest = a.slice(k);
  // prefix assignments before a real command (X=1 cmd) do not outlive that command
  if (k === 0 && !rest.every((x) => ASSIGN.test(x.text))) return;
  for (const x of rest) {
    const m = ASSIGN.exec(x.text);
    if (!m) continue;
    const [, name, plus, value] = m;
    const v = plus ? (env.get(name!) ?? UNKNOWN) + value : value!;
    if (v.includes(UNKNOWN) || x.glob) env.set(name!, UNKNOWN);
    else env.set(name!, v);
  }
}

/** Expand one level of unquoted `{a,b}` lists (`/root/{x,y}` → `/root/x`, `/root/y`); at most 64 results. */
export function braceExpand(text: string): string[] {
  const m = /\{([^{}]*,[^{}]*)\}/.exec(text);
  if (!m) return [text];
  const head = text.slice(0, m.index);
  const tail = text.slice(m.index + m[0].length);
  const out: string[] = [];
  for (const alt of m[1]!.split(",")) {
    for (const t of braceExpand(tail)) {
      out.push(head + alt + t);
      if (out.length >= 64) return out;
    }
  }
  return out;
}
