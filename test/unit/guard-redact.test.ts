import { describe, expect, test } from "vitest";
import { positives, negatives, Gen } from "../helpers/secretCorpus.js";
import { isSecretKey, redactDeep, redactText } from "../../src/guard/redact.js";
import { findSecrets } from "../../src/guard/secrets.js";

const P = positives();
const N = negatives();

describe("redactText", () => {
  test(`removes every fake credential of the ${P.length} positives and keeps the context`, () => {
    let leaked = 0;
    for (const c of P) {
      const r = redactText(c.text);
      const s = c.secret!;
      // no 8-character window of the secret survives
      for (let i = 0; i + 8 <= s.length; i += 4) {
        if (r.includes(s.slice(i, i + 8))) { leaked++; console.log("leak", c.ctx, r); break; }
      }
      expect(r).toContain("[REDACTED:");
    }
    expect(leaked).toBe(0);
    expect(redactText(`export HF_TOKEN=${new Gen(3).hf()} && python train.py`)).toBe("export HF_TOKEN=[REDACTED:huggingface-token] && python train.py");
  });

  test("detection and redaction agree: redacted text holds no findings, and clean text is untouched", () => {
    for (const c of P) expect(findSecrets(redactText(c.text)), c.ctx).toEqual([]);
    for (const c of N) expect(redactText(c.text)).toBe(c.text);
  });

  test("is idempotent", () => {
    for (const c of P) {
      const once = redactText(c.text);
      expect(redactText(once)).toBe(once);
    }
  });

  test("a private key cut off by a log tail is still hidden to the end", () => {
    const g = new Gen(8);
    const body = g.str("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 64);
    const r = redactText(`line 1\n-----BEGIN OPENSSH PRIVATE KEY-----\n${body}`);
    expect(r).toBe("line 1\n[REDACTED:private-key]");
  });
});

describe("redactDeep", () => {
  const g = new Gen(21);
  test("redacts strings at any depth, in arrays and objects, leaving other types alone", () => {
    const hf = g.hf();
    const gh = g.github();
    const input = {
      ok: true,
      exit_code: 0,
      elapsed_ms: 12.5,
      nothing: null,
      cells: [{ name: "a", tail: [`step 1 loss 2.3`, `token ${hf}`] }],
      refused: { code: "X", reason: `saw ${gh}`, remedy: "r" },
    };
    const out = redactDeep(input);
    expect(out.ok).toBe(true);
    expect(out.exit_code).toBe(0);
    expect(out.elapsed_ms).toBe(12.5);
    expect(out.nothing).toBeNull();
    expect(out.cells[0]!.tail[0]).toBe("step 1 loss 2.3");
    expect(out.cells[0]!.tail[1]).toBe("token [REDACTED:huggingface-token]");
    expect(out.refused.reason).toBe("saw [REDACTED:github-token]");
    expect(JSON.stringify(input)).toContain(hf); // the input object is not mutated
  });

  test("values under secret-named keys are hidden whatever they look like", () => {
    const out = redactDeep({
      password: "hunter2",
      db: { PGPASSWORD: "short", apiKey: "abc", hf_token: "whatever-value", client_secret: "s", Authorization: "Basic dXNlcjpw" },
      token_env: "HF_TOKEN",
      token: "HF_TOKEN",
      max_tokens: 4096,
      secret_path: "/root/.secrets/hf",
      key: "sort-order",
      empty_token: "",
    });
    expect(out.password).toBe("[REDACTED:secret-field]");
    expect(out.db).toEqual({
      PGPASSWORD: "[REDACTED:secret-field]",
      apiKey: "[REDACTED:secret-field]",
      hf_token: "[REDACTED:secret-field]",
      client_secret: "[REDACTED:secret-field]",
      Authorization: "[REDACTED:secret-field]",
    });
    expect(out.token_env).toBe("HF_TOKEN"); // names of env vars are not secrets
    expect(out.token).toBe("HF_TOKEN");
    expect(out.max_tokens).toBe(4096);
    expect(out.secret_path).toBe("/root/.secrets/hf");
    expect(out.key).toBe("sort-order");
    expect(out.empty_token).toBe("");
  });

  test.each([
    ["password", true], ["DB_PASSWORD", true], ["wandbApiKey", true], ["api-key", true], ["accessToken", true], ["private_key", true],
    ["credentials", true], ["cookie", true], ["max_tokens", false], ["token_env", false], ["secret_path", false], ["key", false],
    ["public_key", false], ["tokenizer", false], ["remote_path", false],
  ])("isSecretKey(%s) = %s", (k, want) => {
    expect(isSecretKey(k as string)).toBe(want);
  });

  // speed is the bench's business (machines here are shared); this checks that a 2 KB result redacts to itself
  test("a typical 2 KB tool result of harmless text is left as it is, and redacting twice changes nothing", () => {
    const text = N.map((c) => c.text).join("\n");
    const result = {
      ok: true, warnings: [{ code: "INODE_HIGH", severity: "warn", message: "inodes 91% on /root/autodl-fs" }],
      exit_code: 0, stdout_tail: text.slice(0, 1400), stderr_tail: text.slice(1400, 1800), truncated: false, elapsed_ms: 12,
    };
    expect(JSON.stringify(result).length).toBeGreaterThanOrEqual(1900);
    expect(JSON.stringify(result).length).toBeLessThanOrEqual(2300);
    const once = redactDeep(result);
    expect(once).toEqual(result);
    expect(redactDeep(once)).toEqual(once);
  });
});
