/**
 * Interpreter code (python/node/perl/ruby/php/awk one-liners, here-docs fed to them, scripts from the
 * pushed tree): process execution of a refused verb, provider SDK destroy calls, HTTP requests to a
 * provider's terminate/delete endpoints, rmtree/remove of protected dirs (literal, or in a loop over
 * literal protected paths), sysrq writes, and code that decodes a payload and executes it (opaque).
 */
import { UNKNOWN, type Word } from "../shell.js";
import { checkRm } from "./fs.js";
import { CKPT_EXT, judge } from "./paths.js";
import { httpDestroy, providerFamily, checkProvider } from "./providers.js";
import { lit, push, words, type At, type State } from "./state.js";
import { OPAQUE } from "./state.js";
import { fetchedFeed } from "./opaque.js";

export const INTERPRETERS = /^(python[0-9.]*|pypy[0-9]*|perl[0-9.]*|ruby[0-9.]*|node|nodejs|deno|bun|awk|gawk|mawk|nawk|php[0-9.]*|lua[0-9.]*|Rscript|julia|tclsh|osascript)$/;

/** the interpreter's code: -c/-e text, the awk program, its stdin, or a pushed script file; "opaque" when unreadable */
export function checkInterpreter(name: string, rest: Word[], at: At, st: State): void {
  const texts = words(rest);
  const lang = /^(python|pypy)/.test(name) ? "py" : /awk$/.test(name) ? "awk" : name.replace(/[0-9.]+$/, "");
  const flag = rest.findIndex((x) => /^-[a-zA-Z]*[ceE]$/.test(x.text) || x.text === "--eval" || x.text === "--exec" || (lang === "php" && x.text === "-r"));
  let code: string | null = null;
  if (flag >= 0) code = rest[flag + 1]?.text ?? "";
  else if (lang === "awk") code = rest.find((x) => !x.text.startsWith("-"))?.text ?? null;
  else {
    const m = texts.indexOf("-m");
    if (lang === "py" && m >= 0 && texts[m + 1]) {
      // python -m vastai destroy … is the CLI itself
      const fam = providerFamily(texts[m + 1]!);
      if (fam) checkProvider(fam, texts[m + 1]!, texts.slice(m + 2), st);
      return;
    }
    const script = rest.find((x) => !x.text.startsWith("-"));
    if (script && script.text !== "-") {
      const fam = providerFamily(script.text.slice(script.text.lastIndexOf("/") + 1));
      if (fam && /(^|\/)(vast|vastai|runpod|runpodctl|lambda|pspace|paperspace)(\.py)?$/i.test(script.text)) {
        checkProvider(fam, script.text, texts.slice(texts.indexOf(script.text) + 1), st);
        return;
      }
      if (script.text.includes(UNKNOWN)) { push(st, "obfuscated", `${name} <?>`, "runs a script whose name cannot be resolved here"); return; }
      const file = st.readPushed(script.text);
      if (file !== undefined) judgeCode(name, file, st, at.depth + 1, true);
      return; // a script we cannot see: the seatbelt covers what it runs
    } else if ((typeof at.fed === "string" && at.fed !== OPAQUE)) code = at.fed;
    else if (at.fed == null && fetchedFeed(at)) { push(st, "obfuscated", `… | ${name}`, fetchedFeed(at)!); return; }
    else if (at.fed === OPAQUE) { push(st, "obfuscated", `… | ${name}`, "pipes transformed text into an interpreter; what it runs cannot be read here"); return; }
  }
  if (code === null || code === "") return;
  judgeCode(name, code, st, at.depth + 1);
}

interface Literal { text: string; start: number; end: number }

/** string literals of code, adjacent ones joined (`"vast" + "ai"`, `"a" "b"`, perl `"a" . "b"`) */
export function literals(code: string): Literal[] {
  const out: Literal[] = [];
  const re = /("""[\s\S]*?"""|'''[\s\S]*?'''|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\$]|\\.)*`)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(code)) !== null) {
    const raw = m[1]!;
    const q = raw.startsWith('"""') || raw.startsWith("'''") ? 3 : 1;
    const body = unescape(raw.slice(q, raw.length - q));
    const prev = out[out.length - 1];
    if (prev && /^\s*[+.]?\s*$/.test(code.slice(prev.end, m.index))) {
      prev.text += body;
      prev.end = m.index + raw.length;
    } else out.push({ text: body, start: m.index, end: m.index + raw.length });
  }
  return out;
}

function unescape(s: string): string {
  return s.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|[0-7]{1,3}|.)/g, (_a, e: string) => {
    if (e[0] === "x" || e[0] === "u") return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]+$/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return ({ n: "\n", t: "\t", r: "\r", "0": "\0" } as Record<string, string>)[e] ?? e;
  });
}

const PROCESS_EXEC = /\b(os\.(system|popen|exec\w*|spawn\w*|posix_spawn\w*)|subprocess\b|Popen|check_output|check_call|getoutput|pty\.spawn|child_process|execSync|execFileSync|spawnSync|execFile|qx\s*[({\/]|IO\.popen|Open3|%x[({]|shell_exec|passthru|proc_open|Deno\.(run|Command)|Bun\.spawn|sh\.\w+\s*\()|(?<![.\w])(system|spawn|exec[lv]?p?e?|sh)\s*\(|\.system\s*\(|__import__\s*\(\s*["'](os|subprocess|pty)["']/;
/** method calls that run a process once a process module is in the code (subprocess.call, cp.exec, s.run …) */
const EXEC_METHOD = /\.(call|run|Popen|check_output|check_call|getoutput|getstatusoutput|system|popen|spawn\w*|exec\w*|fork|execFile\w*)\s*\(|\b(system|exec)(?=\s+["'])/;
const DECODERS = /\b(b64decode|b32decode|b85decode|a85decode|decodebytes|base64|fromhex|unhexlify|codecs\.decode|rot_?13|zlib|gzip\.decompress|bz2|lzma|marshal\.loads|pickle\.loads|fromCharCode|atob|decode_base64|unpack|Buffer\.from)\b|\[::-1\]|reversed\s*\(|\bchr\s*\(|\.reverse\s*\(/;
const CODE_EXEC = /(?<![.\w])(exec|eval|compile|execfile|Function|instance_eval|class_eval)\s*\(|\bvm\.run\w*\s*\(|\brunpy\.|__import__\s*\(/;
const SDK_DESTROY = /\b(destroy_instances?|terminate_instances?|terminate_pods?|delete_instances?|remove_pods?|release_instances?|destroyInstance|terminatePod|terminateInstances?|deleteInstance|delete_pod|stop_and_destroy|destroy_machine|delete_machine)\s*\(/;
const RM_FN = /\b(rmtree|rmdir|remove|unlink|removedirs|rm_rf|rm_r|rmSync|rmdirSync|unlinkSync|remove_tree|rm\s*\(|rmdir_p)\b/;

export function judgeCode(name: string, code0: string, st: State, depth: number, script = false): void {
  let code = code0;
  if (code.includes(UNKNOWN)) { push(st, "obfuscated", `${name} <code>`, "interpreter code that is not literal (a variable or substitution): what it runs cannot be read here"); return; }
  if (depth > 8) { push(st, "obfuscated", "nesting", "code nested too deep; refusing to guess what it runs"); return; }
  // perl qw(a b c) / ruby %w(a b c): a list of literal words
  if (/^(perl|ruby)/.test(name)) code = code.replace(/(?:\bqw|%w)\s*([(\[{\/|!])([^)\]}\/|!]*)[)\]}\/|!]/g, (_m, _o, body: string) => body.trim().split(/\s+/).filter(Boolean).map((x) => `"${x}"`).join(", "));
  const lits = literals(code);
  // code that runs code it is handed at run time (exec(input()), eval(os.environ[…]), eval $x): opaque
  if (!script) {
    const dyn = /(?<![.\w])(exec|eval|execfile|Function)\s*\(\s*(?!["'`]|open\s*\(|compile\s*\(\s*open\s*\(|\)|f["'])|(?<![.\w$])eval\s+\$/.exec(code);
    if (dyn) push(st, "obfuscated", `${name} ${dyn[1] ?? "eval"}(…)`, "code that executes code computed at run time (input, a variable, the environment): what it runs cannot be read here");
  }
  const execs = PROCESS_EXEC.test(code) || /\bgetattr\s*\([^)]*["'](system|popen|exec\w*|spawn\w*)["']/.test(code) || (/\bgetattr\s*\(/.test(code) && lits.some((l) => /^(system|popen|exec\w*|spawn\w*|run|call|Popen|check_output)$/.test(l.text))) || (/^(perl|ruby|php)/.test(name) && (/`[^`]+`/.test(code) || /\b(system|exec)\s*[("']/.test(code) || /%x[({\[]/.test(code)));
  if (!script && (CODE_EXEC.test(code) || execs) && DECODERS.test(code)) {
    push(st, "obfuscated", `${name} decode+exec`, "code that decodes a payload and executes it: what it runs cannot be read here");
  }
  if (execs) for (const t of execArguments(code, lits, name, script ? null : st)) st.text(t, depth + 1);
  // exec("…") / eval("…") of a literal: that literal is code too
  for (const m of code.matchAll(/(?<![.\w])(exec|eval)\s*\(\s*/g)) {
    const l = lits.find((x) => x.start === m.index! + m[0].length);
    if (l) judgeCode(name, l.text, st, depth + 1, script);
  }
  // a payload encoded in a literal is judged decoded, as code and as a command
  for (const l of lits) {
    const dec = decodeLiteral(l.text);
    if (dec) { st.text(dec, depth + 1); judgeCode(name, dec, st, depth + 1); }
  }
  const sdk = SDK_DESTROY.exec(code);
  if (sdk) push(st, "instance", `${name} ${sdk[1]}()`, "calls a provider SDK function that ends an instance");
  if (/\bboto3\b|\bec2\b/.test(code) && /\.terminate\s*\(\s*\)|terminate_instances/.test(code)) push(st, "instance", `${name} boto3 terminate`, "terminates EC2 instances");
  const method = /\.(delete|request)\s*\(\s*["']?(DELETE)?|method\s*[:=]\s*["']DELETE|["']DELETE["']/.test(code) && /delete|DELETE/.test(code) ? "DELETE" : "";
  const why = httpDestroy(lits.map((l) => l.text), method);
  if (why) push(st, "instance", `${name} HTTP`, why);
  if (lits.some((l) => l.text === "/proc/sysrq-trigger")) push(st, "power", `${name} sysrq`, "a magic-sysrq write can reboot or power off the machine at once");
  if (/^(perl|ruby)/.test(name) && /\bkill\s*\(?\s*["':]?-?\w+["']?\s*,\s*(-1|0|1)(?![\w.])|Process\.kill\s*\(\s*[^,]+,\s*(-1|0|1)\s*\)/.test(code)) push(st, "power", `${name} kill -1`, "signals every process (or the whole group, or init)");
  if (/\bos\.(kill|killpg)\s*\(\s*(-1|1)\s*,/.test(code) || /process\.kill\s*\(\s*(-1|1)\s*[,)]/.test(code)) push(st, "power", `${name} kill -1`, "signals every process (or init)");
  if (RM_FN.test(code)) judgeRemovals(name, code, st);
  judgeProtectedWrites(name, code, lits, st);
}

/** calls that delete, empty or overwrite what they are given */
const WIPE_FN = /\b(rmtree|rmdir|remove|unlink|removedirs|rm_rf|rm_r|rmSync|rmdirSync|unlinkSync|remove_tree|truncate|ftruncate|write_bytes|write_text|writeFileSync|shred)\b|\bFileUtils\.(rm\w*|remove\w*)|\bunlink\b/;
/** open(…) for writing: python/ruby/perl modes that empty the file first */
const OPEN_WRITE = /\bopen\s*\(\s*(?:"([^"]*)"|'([^']*)')\s*,\s*(?:mode\s*=\s*)?["'](?:[wx][bt+]*|>|\+>)["']/g;

/**
 * Code that names a protected path (or a checkpoint file) and deletes, truncates or overwrites: the
 * removal's argument may be computed (os.path.join, a loop over os.listdir, a glob), so the literal
 * path and the wiping call together are refused — a fine-grained data-flow analysis is not attempted.
 */
function judgeProtectedWrites(name: string, code: string, lits: Literal[], st: State): void {
  let m: RegExpExecArray | null;
  OPEN_WRITE.lastIndex = 0;
  while ((m = OPEN_WRITE.exec(code)) !== null) {
    const t = m[1] ?? m[2] ?? "";
    const j = judge(lit(t), st);
    const why = j.protectedReason ?? (j.insideProtected ? `inside protected ${j.insideProtected}` : null) ?? (CKPT_EXT.test(t) ? "a checkpoint file" : null);
    if (why) push(st, "delete", `${name} open(…, "w")`, `empties ${t}: ${why}`);
  }
  if (!WIPE_FN.test(code)) return;
  for (const l of lits) {
    const t = l.text;
    if (!(t.startsWith("/") || t.startsWith("~"))) continue;
    const j = judge({ text: t, glob: /[*?[]/.test(t), brace: false }, st);
    const why = j.protectedReason ?? (j.insideProtected ? `inside protected ${j.insideProtected}` : null);
    if (why) { push(st, "delete", `${name} delete/overwrite`, `code that deletes or overwrites files names ${t} (${why}); what it removes cannot be pinned to a harmless path`); return; }
  }
}

/**
 * The command texts that process-execution calls receive: literals inside the call's parentheses (an
 * argv list joined into one line), literals assigned to a name the call uses, perl/ruby backticks.
 */
function execArguments(code: string, lits: Literal[], name: string, opaqueTo: State | null): string[] {
  const out: string[] = [];
  const re = new RegExp(`${PROCESS_EXEC.source}|${EXEC_METHOD.source}`, "g");
  const spans: [number, number][] = [];
  let m: RegExpExecArray | null;
  while ((m = re.exec(code)) !== null) {
    let open: number;
    if (m[0].endsWith("(")) open = m.index + m[0].length - 1;
    else {
      const call = /^[\w.]*\s*\(/.exec(code.slice(m.index + m[0].length));
      if (!call) {
        // perl/ruby/php: system "…", exec '…', `…` without parentheses
        const bare = /^\s*(?=["'])/.exec(code.slice(m.index + m[0].length));
        if (!bare) continue;
        const at = m.index + m[0].length + bare[0].length;
        const l = lits.find((x) => x.start === at);
        if (l) out.push(l.text);
        continue;
      }
      open = m.index + m[0].length + call[0].length - 1;
    }
    let depth = 0;
    let end = open;
    for (; end < code.length; end++) {
      const c = code[end];
      if (c === "(" || c === "[") depth++;
      else if (c === ")" || c === "]") { depth--; if (depth === 0) break; }
      else if (c === '"' || c === "'") { const l = lits.find((x) => x.start === end); if (l) end = l.end - 1; }
    }
    spans.push([open, end]);
  }
  // getattr(os, "system")("…") / __import__("os").system: every literal is a candidate command
  if (/\bgetattr\s*\(|__import__\s*\(|\bimportlib\b/.test(code) && lits.some((l) => /^(system|popen|run|call|Popen|check_output|exec\w*|spawn\w*)$/.test(l.text))) {
    return [...out, ...lits.map((l) => l.text)];
  }
  const inSpan = (l: Literal): boolean => spans.some(([a, b]) => l.start > a && l.start < b);
  // one-liner code: a process call whose argument holds no literal and no name assigned one runs what it is handed at run time
  if (opaqueTo) {
    for (const [a, b] of spans) {
      const inner = code.slice(a + 1, b).trim();
      // python's exec()/eval() of run-time text is judged as code above, not as a process
      if (inner === "" || /(?<![.\w])(exec|eval)\s*$/.test(code.slice(Math.max(0, a - 8), a))) continue;
      const readsInput = /\.read(lines|_text|_bytes)?\s*\(|\binput\s*\(|\benviron\b|\bgetenv\b|\bargv\b|\bstdin\b|process\.env|readFileSync|\bfetch\s*\(|urlopen|requests\.get/.test(inner);
      if (!readsInput && lits.some((l) => l.start > a && l.start < b)) continue;
      const ids = [...inner.matchAll(/\b([A-Za-z_]\w*)\b/g)].map((x) => x[1]!);
      if (!readsInput && ids.some((id) => new RegExp(`\\b${id}\\s*(?:\\+?=|:=)\\s*[\\[("'f]`).test(code))) continue;
      push(opaqueTo, "obfuscated", `${name} exec(<?>)`, "code that runs a process with a command computed at run time (read from a file, input or the environment): what it runs cannot be read here");
      break;
    }
  }
  const names = new Set<string>();
  for (const [a, b] of spans) for (const id of code.slice(a, b).matchAll(/\b([A-Za-z_]\w*)\b/g)) names.add(id[1]!);
  const assigned = (l: Literal): boolean => {
    const before = code.slice(Math.max(0, l.start - 200), l.start);
    const am = /\b([A-Za-z_]\w*)\s*(?:\+?=|:=)\s*\[?[^=\n]*$/.exec(before);
    return !!am && names.has(am[1]!);
  };
  // argv lists: ["vastai", "destroy", "instance", "1"] joined as one command line
  const grouped: Literal[][] = [];
  for (const l of lits) {
    if (!inSpan(l) && !assigned(l)) continue;
    const prev = grouped[grouped.length - 1];
    const last = prev?.[prev.length - 1];
    if (last && /^\s*,\s*[[(]?\s*$/.test(code.slice(last.end, l.start))) prev!.push(l);
    else grouped.push([l]);
  }
  for (const g of grouped) out.push(g.length === 1 ? g[0]!.text : g.map((x) => `'${x.text.replace(/'/g, "'\\''")}'`).join(" "));
  if (/^(perl|ruby|php)/.test(name)) {
    for (const b of code.matchAll(/`([^`]+)`/g)) out.push(b[1]!);
    for (const b of code.matchAll(/%x\(([^)]*)\)|%x\{([^}]*)\}|%x\[([^\]]*)\]/g)) out.push(b[1] ?? b[2] ?? b[3]!);
    // exec("…") / system("…") / spawn("…") with parentheses: the first literal argument and those after it
    for (const c of code.matchAll(/(?<![.\w$])(system|exec|spawn|passthru|shell_exec|popen|proc_open)\s*\(/g)) {
      const after = lits.filter((l) => l.start > c.index!);
      const group: Literal[] = [];
      for (const l of after) {
        const last = group[group.length - 1];
        if (!last && !/^\s*$/.test(code.slice(c.index! + c[0].length, l.start))) break;
        if (last && !/^\s*,\s*$/.test(code.slice(last.end, l.start))) break;
        group.push(l);
      }
      if (group.length === 1) out.push(group[0]!.text);
      else if (group.length) out.push(group.map((x) => `'${x.text.replace(/'/g, "'\\''")}'`).join(" "));
    }
  }
  return out;
}

/** base64 / hex literals that decode to printable text */
function decodeLiteral(s: string): string | null {
  const t = s.trim();
  let out: string | null = null;
  if (t.length >= 12 && t.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(t) && /[a-z]/.test(t) && /[A-Z0-9]/.test(t)) out = Buffer.from(t, "base64").toString("latin1");
  else if (t.length >= 12 && t.length % 2 === 0 && /^(?:[0-9a-fA-F]{2})+$/.test(t) && !/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(t)) out = Buffer.from(t, "hex").toString("latin1");
  if (out === null || !/^[\x09\x0a\x0d\x20-\x7e]+$/.test(out) || !/[a-z]{2,}/.test(out)) return null;
  return out;
}

function judgeRemovals(name: string, code: string, st: State): void {
  const lit1 = `(?:"((?:[^"\\\\]|\\\\.)*)"|'((?:[^'\\\\]|\\\\.)*)')`;
  const rmCall = new RegExp(`\\b(rmtree|rmdir|remove|unlink|removedirs|rm_rf|rm_r|rmSync|rmdirSync|unlinkSync|remove_tree)\\s*\\(\\s*(?:(?:os\\.path\\.expanduser|Path|pathlib\\.Path)\\s*\\(\\s*)?${lit1}`, "g");
  let m: RegExpExecArray | null;
  while ((m = rmCall.exec(code)) !== null) {
    const fn = m[1]!;
    const target = lit(m[2] ?? m[3] ?? "");
    const recursive = /rmtree|rm_rf|rm_r|removedirs|remove_tree/.test(fn) || (/rmSync|rmdirSync/.test(fn) && /recursive\s*:\s*true/.test(code));
    checkRm(recursive ? [lit("-rf"), target] : [target], st, `${name} ${fn}`);
  }
  const pathUnlink = new RegExp(`Path\\(\\s*${lit1}\\s*\\)\\.(unlink|rmdir)`, "g");
  while ((m = pathUnlink.exec(code)) !== null) checkRm([lit(m[1] ?? m[2] ?? "")], st, `${name} Path.${m[3]}`);
  // loops: for p in [...] / glob("…"): rmtree(p); [rmtree(p) for p in …]; map(rmtree, […])
  const loops = [
    /for\s+(\w+)\s+in\s+([^\n]+?):[\s\S]{0,400}?\b(?:rmtree|remove|unlink|rmdir|rm_rf|rmSync|removedirs)\s*\(\s*\1\b/g,
    /\b(?:rmtree|remove|unlink|rmdir)\s*\(\s*(\w+)\s*\)\s*for\s+\1\s+in\s+([^\]\n]+)/g,
    /map\s*\(\s*()[\w.]*(?:rmtree|remove|unlink|rmdir)\s*,\s*([^\n]+)\)/g,
    /\.forEach\s*\(\s*\(?\s*(\w+)\s*\)?\s*=>[^)]*\b(?:rmSync|rmdirSync|unlinkSync)\s*\(\s*\1\b()/g,
  ];
  for (const re of loops) {
    while ((m = re.exec(code)) !== null) {
      const iter = m[2] ?? "";
      const paths = literals(iter).map((l) => l.text).filter((t) => t.startsWith("/") || t.startsWith("~"));
      for (const p of paths) checkRm([lit("-rf"), { text: p, glob: /[*?[]/.test(p), brace: false }], st, `${name} loop rmtree`);
    }
  }
}
