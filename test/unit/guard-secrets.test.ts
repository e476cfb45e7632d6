import { describe, expect, test } from "vitest";
import { positives, negatives, Gen } from "../helpers/secretCorpus.js";
import { assertNoInlineSecrets, containsSecret, findSecrets, isSecretFileName } from "../../src/guard/secrets.js";
import { RefusalError } from "../../src/common/result.js";

const P = positives();
const N = negatives();

describe("secret corpus (synthetic, seeded)", () => {
  test("corpus is big enough", () => {
    expect(P.length).toBeGreaterThanOrEqual(100);
    expect(N.length).toBeGreaterThanOrEqual(100);
  });

  test(`all ${P.length} positives are caught`, () => {
    const missed = P.filter((c) => !containsSecret(c.text)).map((c) => c.ctx);
    console.log(`secret positives: ${P.length - missed.length}/${P.length} caught`);
    expect(missed).toEqual([]);
  });

  test(`none of ${N.length} look-alike negatives is flagged`, () => {
    const flagged = N.filter((c) => containsSecret(c.text)).map((c) => `${c.ctx}: ${JSON.stringify(findSecrets(c.text))}`);
    console.log(`secret negatives: ${flagged.length}/${N.length} flagged`);
    expect(flagged).toEqual([]);
  });

  test("each finding covers the whole fake credential", () => {
    for (const c of P) {
      const f = findSecrets(c.text);
      const start = c.text.indexOf(c.secret!);
      const covered = f.some((x) => x.start <= start && x.end >= start + c.secret!.length);
      expect(covered, c.ctx).toBe(true);
    }
  });

  test("a different seed gives different fakes that are still all caught and still no false alarms", () => {
    const p2 = positives(99), n2 = negatives(77);
    expect(p2[0]!.secret).not.toBe(P[0]!.secret);
    expect(p2.filter((c) => !containsSecret(c.text)).map((c) => c.ctx)).toEqual([]);
    expect(n2.filter((c) => containsSecret(c.text)).map((c) => c.ctx)).toEqual([]);
  });
});

describe("findSecrets", () => {
  const g = new Gen(5);
  test("names the rule and masks the preview to 4 characters", () => {
    const hf = g.hf();
    const f = findSecrets(`export HF_TOKEN=${hf}`);
    expect(f).toHaveLength(1);
    expect(f[0]!.rule).toBe("huggingface-token");
    expect(f[0]!.preview).toBe(hf.slice(0, 4) + "…");
    expect(f[0]!.preview).not.toContain(hf.slice(4, 8));
  });

  test("the most specific rule wins over the generic assignment", () => {
    expect(findSecrets(`GITHUB_TOKEN=${g.github()}`)[0]!.rule).toBe("github-token");
    expect(findSecrets(`WANDB_API_KEY=${g.wandb()}`)[0]!.rule).toBe("secret-assignment");
    expect(findSecrets(`wandb login ${g.wandb()}`)[0]!.rule).toBe("wandb-api-key");
  });

  test("several secrets in one text are all reported, in order", () => {
    const t = `A=1 HF_TOKEN=${g.hf()} B=2 AWS_ACCESS_KEY_ID=${g.awsId()} ${g.pem()}`;
    const rules = findSecrets(t).map((f) => f.rule);
    expect(rules).toEqual(["huggingface-token", "aws-access-key-id", "private-key"]);
  });

  test("a bare 40-hex value is a secret only when a name says so", () => {
    const h = g.hex(40);
    expect(containsSecret(h)).toBe(false);
    expect(containsSecret(`commit ${h}`)).toBe(false);
    expect(containsSecret(`WANDB_API_KEY=${h}`)).toBe(true);
    expect(containsSecret(`cache_key=${h}`)).toBe(false);
  });

  test("non-strings and tiny strings are safe", () => {
    expect(findSecrets("")).toEqual([]);
    expect(findSecrets("ok")).toEqual([]);
    expect(findSecrets(undefined as unknown as string)).toEqual([]);
  });
});

describe("assertNoInlineSecrets", () => {
  const g = new Gen(11);
  test("refuses SECRET_INLINE naming the field and rule, never the value, and points at push_secret", () => {
    const tok = g.hf();
    let err: unknown;
    try {
      assertNoInlineSecrets({ command: "python train.py", "env.HF_TOKEN": tok });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RefusalError);
    const r = (err as RefusalError).refusal;
    expect(r.code).toBe("SECRET_INLINE");
    expect(r.reason).toContain('"env.HF_TOKEN"');
    expect(r.reason).toContain("huggingface-token");
    expect(r.remedy).toContain("push_secret");
    expect(r.remedy).toMatch(/env-var name/);
    const all = JSON.stringify({ r, extra: (err as RefusalError).extra, msg: (err as Error).message });
    expect(all).not.toContain(tok.slice(0, 8));
    expect(all).not.toContain(tok.slice(-8));
  });

  test("passes clean fields and undefined ones", () => {
    expect(() => assertNoInlineSecrets({ command: "export HF_TOKEN=$HF_TOKEN; python train.py --max-tokens 4096", cwd: undefined })).not.toThrow();
  });

  test("names the first offending field when several are set", () => {
    try {
      assertNoInlineSecrets({ a: "fine", b: `--api-key ${g.openaiProj()}`, c: `x ${g.github()}` });
      expect.unreachable();
    } catch (e) {
      expect((e as RefusalError).refusal.reason).toContain('"b"');
    }
  });
});

describe("isSecretFileName", () => {
  const yes: [string, string][] = [
    [".env", "dotenv"], ["app/.env", "dotenv"], [".env.local", "dotenv"], [".env.production", "dotenv"], [".envrc", "dotenv"],
    ["certs/server.pem", "private-key-file"], ["tls.key", "private-key-file"], ["id_rsa", "ssh-private-key"], ["keys/id_ed25519", "ssh-private-key"],
    ["id_ecdsa", "ssh-private-key"], ["id_dsa", "ssh-private-key"], [".netrc", "netrc"], ["_netrc", "netrc"], [".aws/credentials", "aws-credentials"],
    ["home/.aws/credentials", "aws-credentials"], [".git-credentials", "git-credentials"], ["credentials.json", "credentials-json"],
    [".config/gcloud/application_default_credentials.json", "gcloud-adc"], ["cert.p12", "keystore-file"], ["cert.pfx", "keystore-file"],
    [".pgpass", "pgpass"], [".pypirc", "pypirc"], [".npmrc", "npmrc"], ["client_secret_123.json", "gcp-key-json"], ["service-account.json", "gcp-key-json"],
    ["secrets.yaml", "secrets-file"], [".kube/config", "kubeconfig"], [".docker/config.json", "docker-auth"], [".cache/huggingface/token", "huggingface-token-file"],
    ["win\\.env", "dotenv"],
  ];
  const no = [
    ".env.example", ".env.sample", ".env.template", "id_rsa.pub", "keys/id_ed25519.pub", "train.py", "config.yaml", "ckpt_epoch_12_step_4000.pt",
    "README.md", "environment.yml", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "keyboard.py", "src/auth/login.py",
    ".ssh/known_hosts", ".ssh/config", ".ssh/authorized_keys", "monkey.txt", "credentials_schema.md", "", "data/token_counts.csv",
  ];
  test.each(yes)("%s is a credential file (%s)", (p, rule) => {
    expect(isSecretFileName(p)).toEqual({ rule });
  });
  test.each(no)("%s is not a credential file", (p) => {
    expect(isSecretFileName(p)).toBeNull();
  });
});
