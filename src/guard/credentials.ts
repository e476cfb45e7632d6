/**
 * Credentials in a shell line, however they are written: the catalog's shapes on the raw text, then on
 * every word as bash would see it (quotes removed, `$'\x68…'` decoded, backslash continuations joined,
 * variables set earlier on the line concatenated), values of variables assigned on the line judged by
 * their names, text that printf assembles, literals that base64 / rev / xxd / base32 decode, here-docs
 * (credential files written inline: kaggle.json, .netrc, .pypirc, AWS credentials, service-account JSON,
 * PEM blocks) and the string literals of interpreter code. Pure.
 */
import { UNKNOWN, parseLine, type SimpleCommand } from "./shell.js";
import { credentialName, isCredentialValue, scanSecrets } from "./catalog.js";
import { echoText, printfText } from "./destroy/opaque.js";
import { literals } from "./destroy/interp.js";

export interface CredentialHit {
  rule: string;
  /** where it was seen: "text", "word", "assignment NAME", "decoded", "heredoc", "code" */
  via: string;
}

const MAX_DEPTH = 6;

export function findInlineCredentials(text: string): CredentialHit | null {
  if (typeof text !== "string" || text.length < 4) return null;
  const raw = scanSecrets(text);
  if (raw.length) return { rule: raw[0]!.rule, via: "text" };
  return scanLine(text, 0);
}

/** A NAME and VALUE judged together (an env map entry, a NAME=VALUE word). */
export function judgeNameValue(name: string, value: string): CredentialHit | null {
  const strength = credentialName(name);
  if (strength !== null && strength !== "named-weak" && isCredentialValue(value, strength)) return { rule: "credential-named-value", via: `name ${name}` };
  const hits = scanSecrets(`${name}=${value}`);
  if (hits.length) return { rule: hits[0]!.rule, via: `name ${name}` };
  return scanLine(value, 1);
}

function scanText(t: string, via: string): CredentialHit | null {
  if (t.length < 4) return null;
  const h = scanSecrets(t.replaceAll(UNKNOWN, "$X"));
  return h.length ? { rule: h[0]!.rule, via } : null;
}

/** NAME=VALUE words anywhere on the line (also after sudo/env/nohup): what a later $NAME may assemble */
function looseAssignments(text: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const m of text.matchAll(/(?:^|[\s;&|(])([A-Za-z_][A-Za-z0-9_]*)=([A-Za-z0-9_+\/=.:@-]{1,512})(?=[\s;&|)]|$)/g)) env.set(m[1]!, m[2]!);
  return env;
}

/** NAME=$(… literal … | decoder) or NAME=`…` under a credential name: a value computed from a literal */
function computedFromLiteral(text: string): CredentialHit | null {
  for (const m of text.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=["']?(?:\$\(|`)([^)`]{1,2000})/g)) {
    const s = credentialName(m[1]!);
    if (s === null || s === "named-weak") continue;
    const body = m[2]!;
    if (/\$[A-Za-z_{(]|\b(cat|head|tail|jq|aws|gcloud|az|vault|op|pass|security|keyring|secret-tool|curl|wget|python[0-9.]*|gpg|uuidgen|pwgen|date|hostname|whoami)\b|openssl\s+rand|\/dev\/u?random|<\s*[^<\s]/.test(body.replace(/<<<\s*\S+/, ""))) continue;
    if (/\b(base64|base32|rev|xxd|printf|echo|tr|openssl|od)\b|<<</.test(body)) return { rule: "credential-named-value", via: `assignment ${m[1]} (decoded literal)` };
  }
  return null;
}

function scanLine(text: string, depth: number): CredentialHit | null {
  if (depth > MAX_DEPTH) return null;
  const computed = computedFromLiteral(text);
  if (computed) return computed;
  const env = looseAssignments(text);
  const assigned: [string, string][] = [];
  let parsed;
  try { parsed = parseLine(text, env); } catch { return null; }
  for (const [k, v] of env) assigned.push([k, v]);
  for (const [k, v] of assigned) {
    if (v.includes(UNKNOWN)) continue;
    const s = credentialName(k);
    if (s !== null && s !== "named-weak" && isCredentialValue(v, s)) return { rule: "credential-named-value", via: `assignment ${k}` };
  }
  for (const sub of parsed.substitutions) { const h = scanLine(sub, depth + 1); if (h) return h; }
  for (const pipeline of parsed.pipelines) {
    for (let k = 0; k < pipeline.length; k++) {
      const h = scanCommand(pipeline[k]!, pipeline.slice(0, k), depth);
      if (h) return h;
    }
  }
  return null;
}

function scanCommand(cmd: SimpleCommand, up: SimpleCommand[], depth: number): CredentialHit | null {
  const texts = cmd.argv.map((w) => w.text);
  for (const t of texts) {
    const h = scanText(t, "word") ?? assignmentWord(t) ?? decodedWord(t);
    if (h) return h;
  }
  const joined = texts.join(" ");
  const jh = scanText(joined, "word");
  if (jh) return jh;
  for (const r of cmd.redirects) { const h = scanText(r.target.text, "word"); if (h) return h; }
  if (cmd.stdinText !== undefined) {
    const h = scanText(cmd.stdinText, "heredoc") ?? scanLine(cmd.stdinText, depth + 1) ?? codeLiterals(cmd.stdinText);
    if (h) return h;
  }
  const name = (texts[0] ?? "").replace(/^.*\//, "");
  if (name === "printf") { const h = scanText(printfText(texts.slice(1).filter((x, i) => !(i === 0 && x === "-v"))), "printf"); if (h) return h; }
  if (name === "echo") { const h = scanText(echoText(cmd.argv.slice(1)), "echo"); if (h) return h; }
  // nested lines: bash -c TEXT, eval TEXT, su -c, ssh host TEXT
  const ci = texts.findIndex((x, i) => i > 0 && /^-[a-zA-Z]*c$/.test(x));
  if (ci > 0 && texts[ci + 1]) { const h = scanLine(texts[ci + 1]!, depth + 1) ?? codeLiterals(texts[ci + 1]!); if (h) return h; }
  if (name === "eval") { const h = scanLine(texts.slice(1).join(" "), depth + 1); if (h) return h; }
  const ei = texts.findIndex((x, i) => i > 0 && /^-[a-zA-Z]*e$|^--eval$/.test(x));
  if (ei > 0 && texts[ei + 1]) { const h = codeLiterals(texts[ei + 1]!); if (h) return h; }
  // a password handed over stdin as literal text: docker login --password-stdin <<< "…", echo … | chpasswd
  // sudo -S / --stdin reads the user's password from stdin: `echo PW | sudo -S …`, `sudo -S … <<< PW`
  const sudoStdin = /^(sudo|doas)$/.test(name) && texts.slice(1).some((x) => /^-[a-zA-Z]*S[a-zA-Z]*$/.test(x) || x === "--stdin");
  if (sudoStdin || texts.some((x) => /^--(password|token|passphrase)-stdin$|^--with-token$|^--passphrase-fd$/.test(x)) || /^(chpasswd|chpass)$/.test(name) || (name === "passwd" && texts.includes("--stdin"))) {
    const e = up[0] ? up[0].argv.findIndex((w) => /^(echo|printf|yes)$/.test(w.text.replace(/^.*\//, ""))) : -1;
    const pn = e < 0 ? "" : up[0]!.argv[e]!.text.replace(/^.*\//, "");
    const printed = e < 0 ? undefined : pn === "printf" ? printfText(up[0]!.argv.slice(e + 1).map((w) => w.text)) : pn === "yes" ? up[0]!.argv.slice(e + 1).map((w) => w.text).join(" ") : echoText(up[0]!.argv.slice(e + 1));
    const fed = cmd.stdinText ?? printed;
    if (fed !== undefined && fed.trim() !== "" && !fed.includes(UNKNOWN) && isCredentialValue(fed.trim(), "password")) return { rule: "password-option", via: "password on stdin" };
  }
  return decodedFeed(cmd, up);
}

/** NAME=VALUE as one word (export, env, docker -e, --env) judged by the name */
function assignmentWord(t: string): CredentialHit | null {
  const m = /^(?:--?[A-Za-z-]+=)?([A-Za-z_][A-Za-z0-9_]*)=([\s\S]*)$/.exec(t);
  if (!m || m[2]!.includes(UNKNOWN)) return null;
  const s = credentialName(m[1]!);
  if (s !== null && s !== "named-weak" && isCredentialValue(m[2]!, s)) return { rule: "credential-named-value", via: `assignment ${m[1]}` };
  return null;
}

/** a word that is base64 / hex of text holding a credential */
function decodedWord(t: string): CredentialHit | null {
  const w = t.trim();
  if (w.length >= 16 && /^[A-Za-z0-9+/]+={0,2}$/.test(w)) {
    const d = Buffer.from(w, "base64").toString("latin1");
    if (/^[\x09\x0a\x0d\x20-\x7e]+$/.test(d)) { const h = scanText(d, "decoded") ?? scanLine(d, MAX_DEPTH); if (h) return h; }
  }
  if (w.length >= 16 && /^(?:[0-9a-fA-F]{2})+$/.test(w)) {
    const d = Buffer.from(w, "hex").toString("latin1");
    if (/^[\x09\x0a\x0d\x20-\x7e]+$/.test(d)) { const h = scanText(d, "decoded"); if (h) return h; }
  }
  return null;
}

/** literal text piped through base64 -d / base32 -d / rev / xxd -r -p, decoded */
function decodedFeed(cmd: SimpleCommand, up: SimpleCommand[]): CredentialHit | null {
  const chain = [...up, cmd];
  const first = chain[0]!;
  const n0 = (first.argv[0]?.text ?? "").replace(/^.*\//, "");
  let text: string | null = first.stdinText ?? null;
  if (n0 === "echo") text = echoText(first.argv.slice(1));
  else if (n0 === "printf") text = printfText(first.argv.slice(1).map((w) => w.text));
  if (text === null) return null;
  for (const stage of chain) {
    const n = (stage.argv[0]?.text ?? "").replace(/^.*\//, "");
    const a = stage.argv.slice(1).map((w) => w.text);
    if (stage !== first && stage.stdinText !== undefined) text = stage.stdinText;
    if (n === "base64" && a.some((x) => /^(-d|--decode|-D)$/.test(x))) text = Buffer.from(text.replace(/\s+/g, ""), "base64").toString("latin1");
    else if (n === "base32" && a.some((x) => /^(-d|--decode)$/.test(x))) text = base32(text);
    else if (n === "rev") text = text.split("\n").map((l) => [...l].reverse().join("")).join("\n");
    else if (n === "xxd" && a.some((x) => x.includes("r"))) text = Buffer.from(text.replace(/[^0-9a-fA-F]/g, ""), "hex").toString("latin1");
    else if (n === "tr" && a.length === 2 && /^A-Za-z$|^a-zA-Z$/.test(a[0]!) && /^N-ZA-Mn-za-m$|^n-za-mN-ZA-M$/.test(a[1]!)) text = text.replace(/[A-Za-z]/g, (c) => String.fromCharCode(((c.charCodeAt(0) & 31) + 12) % 26 + (c <= "Z" ? 65 : 97)));
    else continue;
    const h = scanText(text, "decoded") ?? scanLine(text, MAX_DEPTH);
    if (h) return h;
  }
  return null;
}

function base32(s: string): string {
  const A = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of s.replace(/[=\s]/g, "").toUpperCase()) { const i = A.indexOf(c); if (i >= 0) bits += i.toString(2).padStart(5, "0"); }
  let out = "";
  for (let i = 0; i + 8 <= bits.length; i += 8) out += String.fromCharCode(parseInt(bits.slice(i, i + 8), 2));
  return out;
}

/** string literals of interpreter code, adjacent ones joined (`"hf_" + "…"`) */
function codeLiterals(code: string): CredentialHit | null {
  const lits = literals(code).map((l) => l.text);
  for (const l of lits) { const h = scanText(l, "code") ?? decodedWord(l); if (h) return h; }
  const kv = /\[\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\]\s*=\s*["']([^"']*)["']|setdefault\(\s*["']([A-Za-z_]\w*)["']\s*,\s*["']([^"']*)["']|putenv\(\s*["']([A-Za-z_]\w*)["']\s*,\s*["']([^"']*)["']/g;
  let m: RegExpExecArray | null;
  while ((m = kv.exec(code)) !== null) {
    const name = m[1] ?? m[3] ?? m[5]!;
    const value = m[2] ?? m[4] ?? m[6]!;
    const s = credentialName(name);
    if (s !== null && s !== "named-weak" && isCredentialValue(value, s)) return { rule: "credential-named-value", via: `code ${name}` };
  }
  const kw = /\b(token|api_key|key|password|secret|auth_token|access_token)\s*=\s*["']([^"']{8,})["']/g;
  while ((m = kw.exec(code)) !== null) if (isCredentialValue(m[2]!, "named") && /\blogin\s*\(|Api\s*\(|Client\s*\(/.test(code)) return { rule: "credential-named-value", via: `code ${m[1]}=` };
  return null;
}
