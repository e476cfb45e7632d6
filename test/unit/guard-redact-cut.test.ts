/**
 * Redaction that survives cutting: generated outputs holding credentials of every class (formatted
 * tokens, key blocks with and without markers, env/printenv/export lines, URLs, password options, and a
 * format no rule knows, delivered by push_secret) are cut the ways this server cuts them — a tail of N
 * characters, the exec capture's head+tail, the box's last-3-KB/300-char lines — and must leak nothing.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { fingerprint, redactCutLines, redactDeep, redactText, redactThenTail, secretTokens, type Fingerprints } from "../../src/guard/redact.js";
import { CappedBuffer } from "../../src/remote/exec.js";
import { Gen } from "../helpers/secretCorpus.js";

const g = new Gen(99);
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const pemBody = (): string => Array.from({ length: 12 }, () => g.str(B64, 64)).join("\n");
/** an unknown-format credential delivered by push_secret */
const odd = `zq${g.mixed(14)}~${g.mixed(10)}`;
const salt = randomBytes(32);
const fp: Fingerprints = { salt, set: new Set(secretTokens(`MY_ODD_CRED=${odd}\n`).map((t) => fingerprint(salt, t))) };

interface Out { name: string; text: string; secrets: string[] }
function outputs(): Out[] {
  const noise = (n: number): string => Array.from({ length: n }, (_, i) => `step ${i} loss=${(Math.random() * 3).toFixed(4)} lr=3e-4`).join("\n");
  const out: Out[] = [];
  for (let i = 0; i < 12; i++) {
    const hf = g.hf(); const gh = g.github(); const aws = g.awsSecret(); const body = pemBody(); const pw = g.password(); const gen = g.generic(32);
    out.push({ name: "env dump", text: `${noise(40)}\nHF_TOKEN=${hf}\nAWS_SECRET_ACCESS_KEY=${aws}\nPGPASSWORD=hunter22\nPATH=/usr/bin\n${noise(40)}`, secrets: [hf, aws, "hunter22"] });
    out.push({ name: "declare -x", text: `declare -x GITHUB_TOKEN="${gh}"\ndeclare -x MY_API_SECRET="${gen}"\n${noise(60)}`, secrets: [gh, gen] });
    out.push({ name: "pem with markers", text: `${noise(30)}\n-----BEGIN RSA PRIVATE KEY-----\n${body}\n-----END RSA PRIVATE KEY-----\n${noise(5)}`, secrets: body.split("\n") });
    out.push({ name: "pem body without markers", text: `${noise(30)}\n${body}\n${noise(5)}`, secrets: body.split("\n") });
    out.push({ name: "url + options", text: `${noise(50)}\nconnecting postgres://trainer:${pw}@db:5432/x\nmysql -uroot -p${pw} -e ok\ncurl -u me:${pw} https://x\n${noise(10)}`, secrets: [pw] });
    out.push({ name: "pushed odd format", text: `${noise(50)}\nloaded credential ${odd} from file\n${noise(20)}`, secrets: [odd] });
    out.push({ name: "token on one long line", text: `${"x".repeat(900)} token=${hf} ${"y".repeat(900)}`, secrets: [hf] });
  }
  return out;
}

/** a leak: any 12-character window of a secret visible in the text */
function leaks(text: string, secrets: string[]): number {
  let n = 0;
  for (const s of secrets) {
    for (let i = 0; i + 12 <= s.length; i += 4) if (text.includes(s.slice(i, i + 12))) { n++; break; }
  }
  return n;
}

describe("redaction that survives cutting", () => {
  const O = outputs();
  test(`0 leaks over ${O.length} outputs × every cut`, () => {
    let total = 0;
    const rows: Record<string, number> = {};
    for (const o of O) {
      let l = leaks(redactText(o.text, fp), o.secrets);
      // remote_exec: the whole text redacted, then the tail cut, at every offset that can split a secret
      for (let n = 200; n < o.text.length; n += 97) l += leaks(redactThenTail(o.text, n, fp).text, o.secrets);
      // the exec capture keeps head + tail of a cap, cut before redaction: then redacted
      for (const cap of [600, 900, 1500, 2600]) {
        const b = new CappedBuffer(cap);
        for (let i = 0; i < o.text.length; i += 37) b.push(Buffer.from(o.text.slice(i, i + 37)));
        l += leaks(redactText(b.toString(), fp), o.secrets);
      }
      // the box's tail: last 3 KB of the log, lines cut at 300 characters
      const tail = o.text.slice(-3072).split("\n").map((x) => x.slice(0, 300));
      l += leaks(redactCutLines(tail, { firstPartial: o.text.length > 3072, cap: 300 }, fp).join("\n"), o.secrets);
      l += leaks(JSON.stringify(redactDeep({ stdout_tail: o.text.slice(-1200) }, fp)), o.secrets.filter((s) => o.text.slice(-1200).includes(s)));
      rows[o.name] = (rows[o.name] ?? 0) + l;
      total += l;
    }
    console.log("redaction leaks by output class:", JSON.stringify(rows));
    expect(total).toBe(0);
  });

  test("what is not a secret survives redaction", () => {
    const sha = g.hex(40);
    const t = `commit ${sha}\nrun ${g.uuid()}\ncolor #1f77b4\nstep 10 loss=0.1\n`;
    expect(redactText(t, fp)).toBe(t);
  });
});
