/**
 * Opaque commands are refused, not guessed: a command word that does not resolve to a literal (a command
 * substitution or a variable in command position, field splitting with a changed IFS), text transformed
 * by a decoder (base64, xxd, rev, openssl, tr, gzip …) and fed to a shell, eval of what cannot be read.
 * Literal text fed to a shell or interpreter (`echo … | sh`, here-docs, here-strings) is read instead.
 */
import { UNKNOWN, type SimpleCommand, type Word } from "../shell.js";
import { push, words, type State } from "./state.js";
import { OPAQUE } from "./state.js";

export const DECODER = /^(base64|base32|basenc|xxd|od|rev|openssl|tr|sed|awk|gawk|perl|python[0-9.]*|gunzip|gzip|zcat|xz|unxz|bzip2|bunzip2|zstd|unzstd|uudecode|iconv|gpg|tac|cut|printf)$/;

/** printf FORMAT ARGS… as bash would print it (the common conversions only) */
export function printfText(args: string[]): string {
  const fmt = args[0] ?? "";
  const rest = args.slice(1);
  let out = "";
  let guard = 0;
  do {
    out += fmt.replace(/%(-?\d*)([sdbc%])|\\(x[0-9a-fA-F]{1,2}|0?[0-7]{1,3}|.)/g, (_m, _w, conv: string | undefined, esc: string | undefined) => {
      if (esc !== undefined) return unescapeOne(esc);
      if (conv === "%") return "%";
      const a = rest.shift() ?? "";
      return conv === "b" ? a.replace(/\\(x[0-9a-fA-F]{1,2}|0?[0-7]{1,3}|.)/g, (_x, e: string) => unescapeOne(e)) : a;
    });
  } while (rest.length > 0 && /%[sdbc]/.test(fmt) && ++guard < 64);
  return out;
}

function unescapeOne(e: string): string {
  if (e[0] === "x") return String.fromCharCode(parseInt(e.slice(1), 16));
  if (/^0?[0-7]+$/.test(e)) return String.fromCharCode(parseInt(e, 8) & 0xff);
  return ({ n: "\n", t: "\t", r: "\r", a: "\x07", e: "\x1b", "\\": "\\" } as Record<string, string>)[e] ?? "\\" + e;
}

/** echo [-neE] ARGS… */
export function echoText(argv: Word[]): string {
  const a = words(argv);
  let i = 0;
  let esc = false;
  while (i < a.length && /^-[neE]+$/.test(a[i]!)) { if (a[i]!.includes("e")) esc = true; i++; }
  const t = a.slice(i).join(" ");
  return esc ? t.replace(/\\(x[0-9a-fA-F]{1,2}|0[0-7]{1,3}|.)/g, (_m, e: string) => unescapeOne(e)) : t;
}

/**
 * What a command reads on stdin, when it can be known: a here-doc / here-string, or literal text piped in
 * (`echo …`, `printf …`, `cat <<EOF`) through plain `cat`s. "opaque" when a decoder or transformer sits in
 * between; null when the producer is some other program.
 */
export function fedText(cmd: SimpleCommand, up: SimpleCommand[]): string | null {
  if (cmd.stdinText !== undefined) return cmd.stdinText;
  if (up.length === 0) return null;
  if (up.some((c) => DECODER.test(stageName(c)) && stageName(c) !== "printf")) return OPAQUE;
  const first = up[0]!;
  const n0 = stageName(first);
  if (n0 !== baseName(first.argv[0]?.text ?? "")) return null;
  let text: string | null;
  if (n0 === "echo") text = echoText(first.argv.slice(1));
  else if (n0 === "printf") text = printfText(words(first.argv.slice(1)).filter((x, i, all) => !(i === 0 && x === "-v") && !(i === 1 && all[0] === "-v")));
  else if (n0 === "cat" && first.stdinText !== undefined) text = first.stdinText;
  else if (first.argv.length === 0 && first.stdinText !== undefined) text = first.stdinText;
  else if (DECODER.test(n0)) return OPAQUE;
  else return null;
  for (const stage of up.slice(1)) {
    const n = baseName(stage.argv[0]?.text ?? "");
    if (n === "cat" && stage.argv.length === 1) continue;
    if (n === "tee") continue;
    if (DECODER.test(n)) return OPAQUE;
    return null;
  }
  return text;
}

/** the program a pipeline stage runs, past sudo/env/nohup/timeout/nice and assignments */
export function stageName(c: SimpleCommand): string {
  const a = c.argv.map((w) => w.text);
  let i = 0;
  while (i < a.length) {
    const n = baseName(a[i]!);
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(a[i]!) || /^(sudo|doas|env|nohup|nice|stdbuf|command|exec|setsid|time)$/.test(n) || (a[i]!.startsWith("-") && i > 0)) { i++; continue; }
    if (n === "timeout") { i += 2; continue; }
    return n;
  }
  return "";
}

export function baseName(t: string): string {
  return t.includes("/") ? t.slice(t.lastIndexOf("/") + 1) : t;
}

/** The command word cannot be read: refuse as opaque. */
export function opaqueHead(head: Word, st: State): void {
  push(st, "obfuscated", head.text.replaceAll(UNKNOWN, "<?>").slice(0, 40) || "<?>", "the command to run is computed at run time (a substitution or variable in command position); refusing to guess what it is");
}

/** Text fed to a shell/eval: judged when literal; refused when transformed. */
export function judgeFed(name: string, fed: string | null, st: State, depth: number): void {
  if (fed === OPAQUE) push(st, "obfuscated", `… | ${name}`, "pipes decoded or transformed text into a shell; what it runs cannot be read here");
  else if (fed !== null) st.text(fed, depth + 1);
}

const FETCHERS = /^(curl|wget|fetch|http|https|httpie|xh|curlie|aria2c|lynx|w3m|links|nc|ncat|socat)$/;
/**
 * Installers published by a tool's own project (the uv, rustup, Docker, Poetry, conda installers …):
 * piping one of these into a shell is ordinary setup. Anything else fetched and run is opaque.
 */
const KNOWN_INSTALLERS = /^(astral\.sh|sh\.rustup\.rs|get\.docker\.com|install\.python-poetry\.org|pyenv\.run|bun\.sh|pixi\.sh|ollama\.com|deb\.nodesource\.com|rpm\.nodesource\.com|get\.pnpm\.io|micro\.mamba\.pm|micromamba\.snakepit\.net|repo\.anaconda\.com|repo\.continuum\.io|developer\.download\.nvidia\.com|sdk\.cloud\.google\.com|cli\.github\.com|get\.helm\.sh|deno\.land|fnm\.vercel\.app|starship\.rs|bootstrap\.pypa\.io|rclone\.org|tailscale\.com|cli\.runpod\.net|get\.k3s\.io|install\.zerotier\.com|sh\.uv\.dev)(\/|$)|^(github\.com\/conda-forge\/|raw\.githubusercontent\.com\/(nvm-sh|pyenv|python-poetry|helm\/helm|git-lfs)\/|packagecloud\.io\/install\/repositories\/github\/git-lfs\/|aka\.ms\/InstallAzureCLIDeb)/i;

function urlsOf(texts: string[]): string[] {
  return texts.filter((t) => /^[a-z][a-z0-9+.-]*:\/\//i.test(t) || /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:\d+)?(\/|$)/.test(t));
}

function knownInstaller(url: string): boolean {
  const rest = url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").replace(/^[^/@]*@/, "");
  return KNOWN_INSTALLERS.test(rest.replace(/:\d+(?=\/|$)/, ""));
}

/** the text a shell/interpreter reads on stdin was downloaded at run time (`curl … | sh`): why that is opaque, or null */
export function fetchedFeed(at: { pipeline: SimpleCommand[]; k: number }): string | null {
  for (const up of at.pipeline.slice(0, at.k)) {
    if (!FETCHERS.test(stageName(up))) continue;
    const urls = urlsOf(up.argv.map((w) => w.text));
    if (urls.length > 0 && urls.every(knownInstaller)) continue;
    const u = (urls[0] ?? "a URL").replaceAll(UNKNOWN, "<?>").slice(0, 60);
    return `runs text downloaded at run time (${u}); what it does cannot be read here`;
  }
  return null;
}

/**
 * A file a fetcher writes on this line (`curl -o f URL`, `wget URL`, `wget -O f URL`): its text cannot
 * be read here, so running it later on the line is opaque (unless it comes from a known installer).
 */
export function rememberDownload(name: string, texts: string[], st: State): void {
  if (name !== "curl" && name !== "wget" && name !== "aria2c") return;
  const urls = urlsOf(texts);
  if (urls.length === 0 || urls.every(knownInstaller)) return;
  const files: string[] = [];
  for (let j = 0; j < texts.length; j++) {
    const t = texts[j]!;
    if ((name === "curl" && (t === "-o" || t === "--output")) || (name === "wget" && (t === "-O" || t === "--output-document")) || (name === "aria2c" && (t === "-o" || t === "--out"))) files.push(texts[++j] ?? "");
    else if (/^--(output|output-document|out)=/.test(t)) files.push(t.slice(t.indexOf("=") + 1));
    else if ((name === "curl" && (t === "-O" || t === "--remote-name" || /^-[a-zA-Z]*O$/.test(t))) || (name === "wget" && !texts.some((x) => /^(-O|--output-document)/.test(x)))) {
      for (const u of urls) { const b = u.replace(/[?#].*$/, "").replace(/\/+$/, ""); const base = b.slice(b.lastIndexOf("/") + 1); if (base && !b.endsWith("://" + base)) files.push(base); }
    }
  }
  for (const f of files) { const abs = f && f !== "-" ? st.resolvePath(f) : null; if (abs) st.written.set(abs, null); }
}
