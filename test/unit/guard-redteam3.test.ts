/**
 * Third red-team set (test/helpers/redteam3Corpus.ts), judged the way an outsider's set is: every input
 * through remote_exec and through a launch_queue cell alike; each destroy must come back
 * DESTROY_UNAPPROVED with a remedy, each credential SECRET_INLINE, no ordinary command refused.
 */
import { describe, expect, it } from "vitest";
import { guardInputs, type GuardContext } from "../../src/guard/inputs.js";
import { fingerprint, redactCutLines, redactCutText, redactText, redactThenTail, secretTokens } from "../../src/guard/redact.js";
import { leaked } from "../helpers/leaked.js";
import { CLEAN_OUTPUTS, CREDS, CRED_ENVS, DESTROYS, HARMLESS, OUTPUTS, SIBLING_CREDS, SETUP_HARMLESS, SIBLING_CRED_HARMLESS, SIBLING_DESTROYS, SIBLING_HARMLESS, SIBLING_OUTPUTS } from "../helpers/redteam3Corpus.js";

const ctx: GuardContext = { protectedPaths: ["/root", "/root/autodl-tmp", "/root/autodl-fs"], ownJobIds: ["4242"], pushedFile: () => undefined };
const viaExec = (c: string) => guardInputs("remote_exec", { host: "x.invalid", command: c, cwd: "/root/proj" }, ctx);
const viaCell = (c: string, env?: Record<string, string>) =>
  guardInputs("launch_queue", { host: "x.invalid", run_name: "r", workdir: "/root/proj", cells: [{ name: "a", command: c, ...(env ? { env } : {}) }] }, ctx);
const both = [["exec", viaExec], ["cell", viaCell]] as const;

describe("red-team set 3", () => {
  it("has the size it claims", () => {
    expect(DESTROYS.length).toBeGreaterThanOrEqual(150);
    expect(CREDS.length + CRED_ENVS.length).toBeGreaterThanOrEqual(150);
    expect(HARMLESS.length).toBeGreaterThanOrEqual(150);
  });
  it("every destroy is refused as DESTROY_UNAPPROVED with a remedy, through both tools", () => {
    const missed: string[] = [];
    for (const [cls, c] of DESTROYS) for (const [t, f] of both) {
      const r = f(c);
      if (r?.code !== "DESTROY_UNAPPROVED" || !r.remedy) missed.push(`${cls} ${t} ${JSON.stringify(c).slice(0, 110)} -> ${r?.code ?? "passed"}`);
    }
    expect(missed).toEqual([]);
  });
  it("every credential is refused as SECRET_INLINE, through both tools and in a cell's env", () => {
    const missed: string[] = [];
    for (const [cls, c] of CREDS) for (const [t, f] of both) { const r = f(c); if (r?.code !== "SECRET_INLINE") missed.push(`${cls} ${t} ${JSON.stringify(c).slice(0, 110)} -> ${r?.code ?? "passed"}`); }
    for (const env of CRED_ENVS) { const r = viaCell("python train.py", env); if (r?.code !== "SECRET_INLINE") missed.push(`env ${Object.keys(env)[0]} -> ${r?.code ?? "passed"}`); }
    expect(missed).toEqual([]);
  });
  it("siblings of each fixed class are refused too, and their harmless look-alikes are not", () => {
    const missed = SIBLING_DESTROYS.flatMap((c) => both.filter(([, f]) => f(c)?.code !== "DESTROY_UNAPPROVED").map(([t]) => `${t} ${c}`));
    const falses = SIBLING_HARMLESS.flatMap((c) => both.map(([t, f]) => [t, f(c)] as const).filter(([, r]) => r).map(([t, r]) => `${t} ${c} -> ${r!.reason.slice(0, 100)}`));
    expect({ missed, falses }).toEqual({ missed: [], falses: [] });
  });
  it("credential siblings are refused, their look-alikes are not", () => {
    const missed = SIBLING_CREDS.flatMap((c) => both.filter(([, f]) => f(c)?.code !== "SECRET_INLINE").map(([t]) => `${t} ${c.slice(0, 100)}`));
    const falses = SIBLING_CRED_HARMLESS.flatMap((c) => both.map(([t, f]) => [t, f(c)] as const).filter(([, r]) => r).map(([t, r]) => `${t} ${c} -> ${r!.reason.slice(0, 100)}`));
    expect({ missed, falses }).toEqual({ missed: [], falses: [] });
  });
  it("a project inside a data dir (AutoDL's /root/autodl-tmp): its sources and configs may be edited, its data and checkpoints not", () => {
    const inData = (c: string) => guardInputs("launch_queue", { host: "x.invalid", run_name: "r", workdir: "/root/autodl-tmp/proj", cells: [{ name: "a", command: c }] }, ctx);
    for (const c of [`sed -i 's/lr: 1e-3/lr: 3e-4/' configs/train.yaml`, `python gen.py > config.json`, `echo done > status.txt`, `perl -pi -e 's/x/y/' src/model.py`]) expect(inData(c), c).toBeNull();
    for (const c of [`sed -i 'd' outputs/meta.json`, `> ckpt/best.pt`, `sed -i 's/a/b/' /root/autodl-fs/meta.json`, `sed -i 's/a/b/' /root/autodl-tmp/data/train.jsonl`, `cd /root/autodl-tmp && sed -i 's/a/b/' x.yaml`]) expect(inData(c)?.code, c).toBe("DESTROY_UNAPPROVED");
  });
  it("no ordinary ML/ops command is refused", () => {
    const falses: string[] = [];
    for (const c of [...HARMLESS, ...SETUP_HARMLESS]) for (const [t, f] of both) { const r = f(c); if (r) falses.push(`${t} ${JSON.stringify(c).slice(0, 100)} -> ${r.code} ${r.reason.slice(0, 110)}`); }
    expect(falses).toEqual([]);
  });
});


describe("red-team set 3: outputs", () => {
  it("0 leaks: ANSI, carriage returns, wrapped lines, base64, JSON escapes; whole and cut", () => {
    const leaks: string[] = [];
    for (const [name, text, vals] of [...OUTPUTS, ...SIBLING_OUTPUTS]) {
      const see = (how: string, out: string): void => { const l = leaked(out, vals, 12); if (l) leaks.push(`${name} ${how}: ${l}…`); };
      see("whole", redactText(text));
      for (const n of [Math.floor(text.length * 0.6), Math.floor(text.length * 0.9)]) {
        see(`tail${n}`, redactThenTail(text, n).text);
        see(`cutlines${n}`, redactCutLines(text.slice(text.length - n).split("\n"), { firstPartial: true, cap: 4096 }).join("\n"));
      }
      see("cuttext", redactCutText(text, true));
    }
    expect(leaks).toEqual([]);
  });
  it("a secret push_secret delivered (a format no rule knows) is redacted through ANSI escapes and JSON escapes too", () => {
    const secret = "zq-7e!Ko0p-Wv3rt";
    const salt = Buffer.from("rt3-salt");
    const fp = { salt, set: new Set(secretTokens(secret).map((t) => fingerprint(salt, t))) };
    for (const out of [`pw ${secret}\n`, `pw \x1b[1m${secret}\x1b[0m\n`, `pw ${secret.slice(0, 6)}\x1b[0m${secret.slice(6)}\n`, `{"msg":"pw ${secret.replace("!", "\\u0021")}"}\n`]) {
      expect(leaked(redactText(out, fp), [secret], 8), JSON.stringify(out)).toBeNull();
    }
  });
  it("leaves ordinary output as it was", () => {
    for (const t of CLEAN_OUTPUTS) expect(redactText(t)).toBe(t);
  });
});

describe("a secret that ends its line is not joined to the next line's first word", () => {
  const L = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const tok = `hf_${Array.from({ length: 34 }, (_, i) => L[(i * 7) % 52]).join("")}`;
  it("the line after a printed token survives whole; the token is gone", () => {
    const out = redactText(`step 1/2\nloaded ${tok}\nstep 2/2\n`);
    expect(out).toBe("step 1/2\nloaded [REDACTED:huggingface-token]\nstep 2/2\n");
  });
  it("a token really wrapped at a terminal width is still redacted across the break", () => {
    const line = `${"x".repeat(80 - 12)} ${tok}`;
    const wrapped = `${line.slice(0, 80)}\n${line.slice(80)}\nnext line\n`;
    const out = redactText(wrapped);
    expect(leaked(out, [tok])).toBeNull();
    expect(out).toContain("next line");
    // a longer token whose first 36 characters already read as a token on their own, wrapped at 80
    const long = `hf_${Array.from({ length: 44 }, (_, i) => L[(i * 11) % 52]).join("")}`;
    const l2 = `${"y".repeat(43)} ${long}`;
    const out2 = redactText(`${l2.slice(0, 80)}\n${l2.slice(80)}\nnext line\n`);
    expect(leaked(out2, [long], 8)).toBeNull();
  });
});
