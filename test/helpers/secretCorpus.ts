/**
 * A synthetic corpus for the secret detector, generated from a seeded RNG: fake credentials built
 * from the documented SHAPES (prefix, length, alphabet) only — none of them is, or was, a real key.
 * Positives put those fakes in the places they leak from (env lines, flags, JSON, URLs, netrc, logins);
 * negatives are the look-alikes a training box prints all day (hashes, UUIDs, paths, checkpoints).
 */

export function rng(seed: number): () => number {
  // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_NUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const HEX = "0123456789abcdef";
const B64 = ALNUM + "+/";
const URLSAFE = ALNUM + "-_";

export class Gen {
  private r: () => number;
  constructor(seed: number) {
    this.r = rng(seed);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.r() * xs.length)]!;
  }
  str(alphabet: string, n: number): string {
    let s = "";
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(this.r() * alphabet.length)];
    return s;
  }
  /** random over ALNUM but guaranteed to hold an upper, a lower and a digit */
  mixed(n: number): string {
    for (;;) {
      const s = this.str(ALNUM, n);
      if (/[A-Z]/.test(s) && /[a-z]/.test(s) && /[0-9]/.test(s)) return s;
    }
  }
  hex(n: number): string {
    return this.str(HEX, n);
  }
  uuid(): string {
    const h = this.hex(32);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
  }

  // --- fake credentials by documented shape -----------------------------------------------------
  hf(): string { return "hf_" + this.mixed(34); }
  github(): string { return this.pick(["ghp_", "gho_", "ghs_", "ghu_"]) + this.mixed(36); }
  githubFine(): string { return "github_pat_" + this.mixed(22) + "_" + this.mixed(59); }
  openai(): string { return this.pick(["sk-proj-", "sk-"]) + this.mixed(20) + "T3BlbkFJ" + this.mixed(20); }
  openaiProj(): string { return "sk-proj-" + this.str(URLSAFE, 40) + this.mixed(40); }
  anthropic(): string { return "sk-ant-api03-" + this.str(URLSAFE, 60) + this.mixed(33) + "AA"; }
  awsId(): string { return this.pick(["AKIA", "ASIA"]) + this.str(UPPER_NUM, 15) + "7"; }
  awsSecret(): string { return this.mixed(20) + this.str(B64, 20); }
  slack(): string { return this.pick(["xoxb-", "xoxp-"]) + this.str("0123456789", 12) + "-" + this.str("0123456789", 12) + "-" + this.mixed(24); }
  slackHook(): string { return `https://hooks.slack.com/services/T${this.str(UPPER_NUM, 10)}/B${this.str(UPPER_NUM, 10)}/${this.mixed(24)}`; }
  wandb(): string { return this.hex(40); }
  googleKey(): string { return "AIza" + this.mixed(35); }
  gitlab(): string { return "glpat-" + this.mixed(20); }
  npm(): string { return "npm_" + this.mixed(36); }
  stripe(): string { return "sk_live_" + this.mixed(24); }
  jwt(): string {
    const b = (o: object): string => Buffer.from(JSON.stringify(o)).toString("base64url");
    return `${b({ alg: "HS256", typ: "JWT" })}.${b({ sub: this.hex(8), iat: 1700000000 })}.${this.str(URLSAFE, 43)}`;
  }
  generic(n = 32): string { return this.mixed(n); }
  password(): string { return this.mixed(10) + this.pick(["!", "#", "%", "^"]) + this.mixed(3); }
  pem(kind: "RSA " | "OPENSSH " | "EC " | "" = "RSA "): string {
    const lines: string[] = [];
    for (let i = 0; i < 6; i++) lines.push(this.str(B64, 64));
    return `-----BEGIN ${kind}PRIVATE KEY-----\n${lines.join("\n")}\n-----END ${kind}PRIVATE KEY-----`;
  }
}

export interface Case {
  text: string;
  /** the fake credential inside `text` (positives only) */
  secret?: string;
  /** what kind of context this is, for failure messages */
  ctx: string;
}

/** Positives: every text carries exactly one fake credential (`secret`) in a realistic context. */
export function positives(seed = 1234): Case[] {
  const g = new Gen(seed);
  const out: Case[] = [];
  const put = (ctx: string, secret: string, text: (s: string) => string): void => {
    out.push({ ctx, text: text(secret), secret });
  };
  for (let i = 0; i < 3; i++) {
    const hf = g.hf();
    put("hf env", hf, (s) => `export HF_TOKEN=${s}`);
    put("hf login", hf, (s) => `huggingface-cli login --token ${s} --add-to-git-credential`);
    put("hf python", hf, (s) => `from huggingface_hub import login; login(token="${s}")`);
    put("hf bare in log", hf, (s) => `Using token ${s} for download of meta-llama/Llama-3-8B`);
    put("hf bearer header", hf, (s) => `curl -H "Authorization: Bearer ${s}" https://huggingface.co/api/whoami-v2`);
    put("hf docker -e", g.hf(), (s) => `docker run -e HF_TOKEN=${s} img:latest`);

    const w = g.wandb();
    put("wandb env", w, (s) => `WANDB_API_KEY=${s} python train.py --epochs 3`);
    put("wandb login", w, (s) => `wandb login ${s}`);
    put("wandb relogin", w, (s) => `wandb login --relogin ${s}`);
    put("wandb python", w, (s) => `import wandb; wandb.login(key="${s}")`);
    put("wandb netrc", w, (s) => `machine api.wandb.ai\n  login user\n  password ${s}`);
    put("wandb yaml", w, (s) => `wandb:\n  api_key: ${s}\n  project: sweep-a`);

    const id = g.awsId();
    const sec = g.awsSecret();
    put("aws id env", id, (s) => `export AWS_ACCESS_KEY_ID=${s}`);
    put("aws id bare", id, (s) => `found key ${s} in config`);
    put("aws secret env", sec, (s) => `AWS_SECRET_ACCESS_KEY=${s} aws s3 cp ckpt.pt s3://bucket/`);
    put("aws credentials file", sec, (s) => `[default]\naws_secret_access_key = ${s}\nregion = us-east-1`);
    put("aws configure", sec, (s) => `aws configure set aws_secret_access_key ${s}`);

    const gh = g.github();
    put("gh env", gh, (s) => `GITHUB_TOKEN=${s} gh repo clone org/repo`);
    put("gh url", gh, (s) => `git clone https://${s}@github.com/org/private.git`);
    put("gh url userpass", gh, (s) => `git remote set-url origin https://oauth2:${s}@github.com/org/private.git`);
    put("gh fine-grained", g.githubFine(), (s) => `token: ${s}`);

    put("openai env", g.openai(), (s) => `OPENAI_API_KEY=${s}`);
    put("openai flag", g.openaiProj(), (s) => `python eval.py --api-key ${s} --model gpt-4o`);
    put("openai json", g.openai(), (s) => `{"openai_api_key": "${s}", "temperature": 0.2}`);
    put("anthropic env", g.anthropic(), (s) => `export ANTHROPIC_API_KEY="${s}"`);
    put("anthropic json", g.anthropic(), (s) => `{"api_key":"${s}"}`);
    put("anthropic header", g.anthropic(), (s) => `curl https://api.anthropic.com/v1/messages -H "x-api-key: ${s}"`);

    put("slack token", g.slack(), (s) => `SLACK_BOT_TOKEN=${s}`);
    put("slack token bare", g.slack(), (s) => `posting with ${s}`);
    const hook = g.slackHook();
    put("slack webhook", hook.slice(hook.indexOf("/T") + 1), (s) => `curl -X POST -d '{"text":"done"}' https://hooks.slack.com/services/${s}`);

    put("gcp sa json", g.hex(40), (s) => `{\n  "type": "service_account",\n  "project_id": "proj-1",\n  "private_key_id": "${s}",\n  "client_email": "a@proj-1.iam.gserviceaccount.com"\n}`);
    put("gcp sa private key", g.pem("").replace(/\n/g, "\\n"), (s) => `{"type": "service_account", "private_key": "${s}"}`);
    put("google api key", g.googleKey(), (s) => `GOOGLE_API_KEY=${s}`);

    put("pem rsa", g.pem("RSA "), (s) => s);
    put("pem openssh", g.pem("OPENSSH "), (s) => `cat ~/.ssh/id_ed25519\n${s}`);
    put("pem truncated tail", `-----BEGIN EC PRIVATE KEY-----\n${g.str(B64, 64)}\n${g.str(B64, 30)}`, (s) => `...\n${s}`);

    put("url password postgres", g.password(), (s) => `DATABASE_URL=postgres://trainer:${s}@db.internal:5432/runs`);
    put("url password redis", g.generic(24), (s) => `redis://default:${s}@10.0.0.5:6379/0`);
    put("url password https", g.generic(20), (s) => `pip install --index-url https://deploy:${s}@pypi.corp.internal/simple pkg`);

    put("generic vast key", g.hex(64), (s) => `export VAST_API_KEY=${s}`);
    put("generic secret", g.generic(32), (s) => `CLIENT_SECRET='${s}'`);
    put("generic password", g.password(), (s) => `DB_PASSWORD=${s}`);
    put("generic PASSWORD", g.password(), (s) => `PASSWORD="${s}"`);
    put("generic flag apiKey", g.generic(40).toUpperCase(), (s) => `runpodctl config --apiKey ${s}`);
    put("generic --token=", g.generic(32), (s) => `python upload.py --token=${s}`);
    put("generic --password", g.password(), (s) => `mysql-backup --password ${s} --db runs`);
    put("generic yaml", g.generic(40), (s) => `auth:\n  access_token: ${s}`);
    put("generic toml", g.generic(36), (s) => `api_token = "${s}"`);
    put("generic camel json", g.generic(48), (s) => `{"accessToken": "${s}", "expires": 3600}`);
    put("generic kwargs", g.generic(32), (s) => `client = Client(secret_key="${s}")`);
    put("gitlab", g.gitlab(), (s) => `GL_TOKEN=${s}`);
    put("npm", g.npm(), (s) => `//registry.npmjs.org/:_authToken=${s}`);
    put("stripe", g.stripe(), (s) => `charge with ${s}`);
    put("jwt", g.jwt(), (s) => `Authorization: Bearer ${s}`);
  }
  return out;
}

/** Negatives: look-alikes that must NOT be flagged. */
export function negatives(seed = 4321): Case[] {
  const g = new Gen(seed);
  const out: Case[] = [];
  const add = (ctx: string, text: string): void => { out.push({ ctx, text }); };
  for (let i = 0; i < 3; i++) {
    add("git sha", `commit ${g.hex(40)}`);
    add("git log", `${g.hex(7)} fix dataloader seed (HEAD -> main)`);
    add("git rev env", `GIT_COMMIT=${g.hex(40)} python train.py`);
    add("sha256sum", `${g.hex(64)}  ckpt_epoch_${i}_step_4000.pt`);
    add("sha256 digest", `image digest sha256:${g.hex(64)}`);
    add("docker pull", `docker pull pytorch/pytorch@sha256:${g.hex(64)}`);
    add("uuid", `run_id: ${g.uuid()}`);
    add("uuid json", `{"run_id": "${g.uuid()}", "state": "running"}`);
    add("wandb run url", `View run at https://wandb.ai/team/proj/runs/${g.str("abcdefghijklmnopqrstuvwxyz0123456789", 8)}`);
    add("base64 image hash", `"image_hash": "${Buffer.from(g.hex(16), "hex").toString("base64")}"`);
    add("ckpt name", `saved ckpt_epoch_${12 + i}_step_${4000 * (i + 1)}.pt`);
    add("checkpoint path", `/root/autodl-tmp/checkpoints/run_${g.hex(6)}/best.pth`);
    add("token path", `MY_TOKEN_PATH=/root/tok`);
    add("token file flag", `--token-file /root/.cache/huggingface/token`);
    add("max tokens", `python gen.py --max-tokens 4096 --temperature 0.7`);
    add("max_new_tokens", `max_new_tokens=512, num_beams=4`);
    add("tokenizers", `TOKENIZERS_PARALLELISM=false`);
    add("hf home", `HF_HOME=/root/autodl-tmp/hf`);
    add("hf endpoint", `HF_ENDPOINT=https://hf-mirror.com`);
    add("placeholder angle", `export HF_TOKEN=<your-hf-token>`);
    add("placeholder var", `export WANDB_API_KEY=$WANDB_API_KEY`);
    add("placeholder braces", `huggingface-cli login --token \${HF_TOKEN}`);
    add("placeholder xxx", `OPENAI_API_KEY=xxxxxxxxxxxxxxxxxxxxxxxx`);
    add("placeholder gh actions", `token: \${{ secrets.GITHUB_TOKEN }}`);
    add("placeholder stars", `api_key: "****************"`);
    add("placeholder env name", `--token HF_TOKEN_FROM_ENV`);
    add("low entropy password", `PASSWORD=changeme`);
    add("aws doc example", `AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE`);
    add("sort key", `sort_key=created_at_timestamp_v2`);
    add("pubkey", `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${g.mixed(43)} user@laptop`);
    add("known hosts fp", `SHA256:${g.mixed(43)}`);
    add("conda env", `conda activate torch-2.4-cu121`);
    add("pip freeze", `torch==2.4.0+cu121\ntransformers==4.44.2\nsentencepiece==0.2.0`);
    add("nvidia smi", `GPU-${g.uuid()}, NVIDIA H100 80GB HBM3, 81559 MiB`);
    add("log lr", `step 4000 | loss 2.3451 | lr 3.0e-4 | grad_norm 0.82 | tokens/s 15234`);
    add("url no creds", `https://huggingface.co/meta-llama/Llama-3.1-8B/resolve/main/model-00001-of-00004.safetensors`);
    add("url user only", `ssh://git@github.com/org/repo.git`);
    add("url placeholder pw", `postgres://user:password@localhost/db`);
    add("key file flag", `--key-file /root/.ssh/id_ed25519 --identity`);
    add("ssh key path env", `SSH_KEY=/root/.ssh/id_rsa`);
    add("slurm", `Submitted batch job ${1000 + i * 7}; JOBID=${g.str("0123456789", 6)}`);
    add("cache key", `cache_key: ${g.hex(40)}`);
    add("hf model id", `model_name_or_path: TinyLlama/TinyLlama-1.1B-Chat-v1.0`);
    add("hf_transfer", `HF_HUB_ENABLE_HF_TRANSFER=1 pip install hf_transfer`);
    add("skip token", `skip_special_tokens=True`);
    add("token count", `prompt_tokens: 1532, completion_tokens: 210`);
    add("npm lockfile", `"integrity": "sha512-${Buffer.from(g.hex(64), "hex").toString("base64")}"`);
    add("redacted marker", `WANDB_API_KEY=[REDACTED:secret-assignment]`);
    add("k8s secret ref", `secretKeyRef: {name: hf-token, key: token}`);
    add("dataset path", `--data_dir /root/autodl-fs/datasets/imagenet_${g.hex(4)}/train`);
  }
  return out;
}
