/**
 * The credential catalog: one list of rules that drives BOTH detection (secrets.ts) and redaction
 * (redact.ts), so the two can never disagree about what a secret is.
 *
 * Why our own catalog instead of @secretlint/core + the recommended preset: secretlint's engine is
 * asynchronous (every rule reports through promises), loads rules as packages at runtime and is built
 * to lint files, not to scan a 2 KB tool result in well under a millisecond. The guard must be pure,
 * synchronous and cheap because every tool input and every tool result passes through it. The token
 * SHAPES below (prefixes, lengths, alphabets) are public facts documented by the issuers and by
 * secret-scanning projects such as secretlint and gitleaks; the code and the precision filters are ours.
 *
 * A rule matches a region of text and names the part that is the secret itself (`group`), so that
 * redaction keeps the harmless context visible: `WANDB_API_KEY=[REDACTED:...]`, not a blanked line.
 *
 * Precision policy (what is NOT a secret, on purpose):
 * - bare hex strings (git SHAs, sha256 digests), UUIDs, paths, checkpoint names: only a secret when a
 *   name beside them says so (`WANDB_API_KEY=<40 hex>`, `wandb login <40 hex>`, `--api-key <uuid>`);
 * - placeholders: `$VAR`, `${VAR}`, `<your-key>`, `{{ secrets.X }}`, `xxxx`, `****`, `changeme`,
 *   anything containing EXAMPLE/PLACEHOLDER/REDACTED, and a value that is itself an env-var name
 *   (`--token HF_TOKEN`);
 * - low-entropy values behind secret-looking names (`PASSWORD=changeme`, `SORT_KEY=timestamp`,
 *   `--max-tokens 4096`): a value must look machine-generated (see looksGenerated) to count. Short human
 *   passwords are thereby missed; that is the price of not drowning every result in false alarms.
 */

export interface SecretRule {
  id: string;
  /** one line, used in refusals */
  label: string;
  /** must be global (g). */
  re: RegExp;
  /** capture group holding the secret; 0 = whole match */
  group: number;
  /** the match must not start in the middle of a word (checked in code: a leading \b defeats V8's fast literal search) */
  wordStart?: boolean;
  /** lowercase substrings one of which the text must hold for the rule to be tried at all (a cheap pre-check) */
  hint?: string[];
  /** extra precision filter on the captured value */
  accept?: (value: string, m: RegExpExecArray, text: string) => boolean;
}

// ---------------------------------------------------------------------------------------------
// value heuristics (exported for tests and for redactDeep's key-based rule)

const PLACEHOLDER_WORDS = /example|placeholder|redacted|changeme|change_me|your[-_ ]?(api[-_ ]?)?(key|token|secret|password)|dummy|sample|notreal|not-a-real|<[^>]*>|\*\*\*|xxxx|\.\.\./i;

/** A value that is a reference to a secret, or an obvious stand-in, rather than a secret. */
export function isPlaceholder(v: string): boolean {
  if (v.length === 0) return true;
  const c = v[0]!;
  if (c === "$" || c === "%" || c === "<" || c === "{" || c === "[" || c === "@") return true; // $VAR ${VAR} %VAR% <key> {{x}} [REDACTED] @file
  if (PLACEHOLDER_WORDS.test(v)) return true;
  if (/^(.)\1*$/.test(v)) return true; // xxxxxxxx, 00000000
  if (/^[A-Z][A-Z0-9_]*$/.test(v) && v.includes("_")) return true; // an env-var NAME: HF_TOKEN
  return false;
}

/** Shannon entropy in bits per character. */
export function entropy(s: string): number {
  const n = s.length;
  if (n === 0) return 0;
  const counts = new Uint16Array(128);
  let other: Map<number, number> | null = null;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 128) counts[c]!++;
    else (other ??= new Map()).set(c, (other.get(c) ?? 0) + 1);
  }
  let h = 0;
  const add = (k: number): void => {
    const p = k / n;
    h -= p * Math.log2(p);
  };
  for (let c = 0; c < 128; c++) if (counts[c]) add(counts[c]!);
  if (other) for (const k of other.values()) add(k);
  return h;
}

function classes(s: string): number {
  let n = 0;
  if (/[a-z]/.test(s)) n++;
  if (/[A-Z]/.test(s)) n++;
  if (/[0-9]/.test(s)) n++;
  if (/[^A-Za-z0-9]/.test(s)) n++;
  return n;
}

function looksLikePath(v: string): boolean {
  if (/^(\/|~|\.\.?\/|[A-Za-z]:\\)/.test(v)) return true;
  if (/\.(pt|pth|ckpt|bin|safetensors|json|ya?ml|txt|log|csv|py|sh|key|pem|tok|token)$/i.test(v)) return true;
  // word/word/word with a file extension or only lowercase words: a relative path, not base64
  if (v.includes("/") && /^[a-z0-9_.-]+(\/[a-z0-9_.-]+)+\/?$/.test(v)) return true;
  return false;
}

/**
 * Does this value look machine-generated enough to be a credential? `strength` is how much evidence
 * the surrounding name gives: "password" fields accept shorter values than a bare `key=`.
 */
export function looksGenerated(v: string, strength: "password" | "named" | "weak"): boolean {
  if (isPlaceholder(v) || looksLikePath(v)) return false;
  if (/^[0-9.+-]+$/.test(v)) return false; // numbers, versions
  if (/^(true|false|yes|no|none|null|nil|on|off|auto|default|disabled?|enabled?)$/i.test(v)) return false;
  if (/^https?:\/\//i.test(v)) return false; // URLs: the url-credentials rule judges them
  const cls = classes(v);
  const hasDigit = /[0-9]/.test(v);
  const hasLetter = /[A-Za-z]/.test(v);
  const h = entropy(v);
  if (strength === "password") {
    if (v.length < 8) return false;
    if (cls >= 3 && h >= 2.75) return true;
    return v.length >= 12 && hasDigit && hasLetter && h >= 3.0;
  }
  if (strength === "named") {
    if (v.length < 16) return false;
    if (!hasLetter) return false;
    if (hasDigit && h >= 3.0) return true;
    return v.length >= 24 && cls >= 3 && h >= 3.5;
  }
  // weak: the name is only `key`/`auth`; demand mixed case AND digits
  return v.length >= 20 && cls >= 3 && hasDigit && h >= 3.5;
}


/**
 * How a NAME announces a credential, for a value judged by the name alone: "password" (*PASSWORD*,
 * *PASSWD, *PASSPHRASE, *_PWD, SSHPASS), "named" (*_TOKEN, *_SECRET, *_API_KEY, *_ACCESS_KEY,
 * *_SECRET_KEY, *_PRIVATE_KEY, KAGGLE_KEY …), "named-weak" (another *_KEY / *_AUTH: the value must also
 * look generated), or null. `TOKENIZERS_PARALLELISM`, `MAX_TOKENS`, `SORT_KEY`, `*_TOKEN_PATH` are not.
 */
export function credentialName(name: string): "password" | "named" | "named-weak" | null {
  const n = name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
  if (/(^|_)(file|path|dir|url|env|name|id|type|len|length|size|count|limit|ids)$/.test(n)) return null;
  if (/(password|passwd|passphrase)(_\w+)?$/.test(n) && !/password_(file|path|hash|len|length|min|max|policy)$/.test(n)) return /(password|passwd|passphrase)$/.test(n) || /password_/.test(n) ? "password" : null;
  if (/(^|_)(pwd|pass|sshpass|pgpass)$/.test(n)) return "password";
  if (/^kaggle_key$/.test(n)) return "named";
  if (/(^|_)(token|secret|api_?key|apikey|access_?key|secret_?key|private_?key|auth_?key|auth_?token|client_secret|session_token|bearer)$/.test(n)) return "named";
  if (/(^|_)(key|auth|credentials?)$/.test(n) && n.includes("_")) {
    if (/(public|pub|sort|primary|foreign|cache|partition|hash|lookup|index|dict|map|row|column|col|group|shard|sample|seed|idempotency|metric|monitor|label|target|input|output|image|text|audio|batch|data|hf_dataset|experiment|run|project|wandb_run|config|cfg|join|dedup|unique|split)_(key|auth)$/.test(n)) return null;
    return "named-weak";
  }
  return null;
}

/** A value that carries a credential (not a reference to one, not empty, not an obvious stand-in). */
export function isCredentialValue(v: string, strength: "password" | "named"): boolean {
  if (v.length === 0 || isPlaceholder(v)) return false;
  if (/^[`(]/.test(v) || v.includes("$(") || v.includes("${")) return false;
  if (/^(true|false|yes|no|none|null|nil|empty|on|off|auto|default|disabled?|enabled?|required|optional|unset|n\/a|-)$/i.test(v)) return false;
  if (strength !== "password" && /^\d{1,7}$/.test(v)) return false; // max_token=512, pad token ids
  if (/^(\/|~\/|\.\.?\/)/.test(v)) return false; // a path to the file holding it
  if (/\.[*+]|\\[sdwSDW]|\[\^|\(\?[:=!]/.test(v)) return false; // a regex or sed pattern (`s/password: .*/…/`), not a value
  return true;
}

// ---------------------------------------------------------------------------------------------
// names that make a neighbouring value a secret

/**
 * Which kind of secret a variable / flag / JSON key name announces, or null.
 * The secret word must END the name (`HF_TOKEN`, `apiKey`, `--api-key`), so `TOKENIZERS_PARALLELISM`,
 * `MY_TOKEN_PATH`, `max_tokens`, `key_file` are not secret names.
 */
export function secretNameStrength(name: string): "password" | "named" | "weak" | null {
  const m = /(password|passwd|passphrase|pwd|token|secret|key|auth|credentials?|apikey)$/i.exec(name);
  if (!m) return null;
  const suffix = m[1]!;
  const before = name.slice(0, name.length - suffix.length);
  if (before.length > 0) {
    const prev = before[before.length - 1]!;
    const boundary = prev === "_" || prev === "-" || prev === "." || (/[a-z0-9]/.test(prev) && /^[A-Z]/.test(suffix));
    if (!boundary) return null; // monkey, turkey, hotkey-less words
  }
  const s = suffix.toLowerCase();
  if (s === "password" || s === "passwd" || s === "passphrase" || s === "pwd") return "password";
  if (s === "key" || s === "auth") {
    if (before.length === 0) return "weak"; // bare key= / auth=
    const b = before.toLowerCase().replace(/[-_.]$/, "");
    if (/(public|pub|sort|primary|foreign|cache|partition|hash|lookup|index|dict|map|row|column|col|group|shard|sample|seed|idempotency)$/.test(b)) return null;
    return "named";
  }
  return "named";
}

/**
 * The full identifier that ends with the keyword found at `at`: walk back over name characters.
 * Returns null when the keyword is not where the name ends (`MY_TOKEN_PATH` never gets here: the
 * keyword must be followed by the separator, which the regex already demands).
 */
function nameBefore(text: string, at: number, matched: string): string | null {
  const kw = /^[A-Za-z]+/.exec(matched)?.[0] ?? "";
  let b = at;
  while (b > 0 && b > at - 80 && /[\w.-]/.test(text[b - 1]!)) b--;
  const name = text.slice(b, at + kw.length);
  const clean = name.replace(/^[_.]+/, "");
  return /^-{0,2}[A-Za-z]/.test(clean) ? clean : null;
}

// ---------------------------------------------------------------------------------------------
// the catalog. Order matters only for overlaps: the earlier (more specific) rule names the finding.

const tokenOk = (v: string): boolean => !isPlaceholder(v) && entropy(v) >= 3.0;

export const SECRET_RULES: SecretRule[] = [
  {
    id: "private-key",
    label: "PEM/OpenSSH/PGP private key block",
    // up to the END line, or (a block cut off by a log tail) to the end of the text
    re: /-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|[\s\S]*$)/g,
    group: 0,
  },
  {
    id: "aws-access-key-id",
    label: "AWS access key id",
    re: /((?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|A3T[A-Z0-9])[A-Z0-9]{16})\b/g,
    wordStart: true,
    group: 1,
    accept: (v) => !isPlaceholder(v),
  },
  {
    id: "aws-secret-access-key",
    label: "AWS secret access key",
    re: /(?:aws_?secret_?access_?key|secret_?access_?key|aws_?secret_?key)["']?\s*(?::=|=|:|\s)\s*["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])/gi,
    group: 1,
    accept: (v) => !isPlaceholder(v) && entropy(v) >= 3.5,
  },
  {
    id: "anthropic-api-key",
    label: "Anthropic API key",
    re: /(sk-ant-[a-z]{2,8}\d{2}-[A-Za-z0-9_-]{32,})/g,
    wordStart: true,
    group: 1,
    accept: tokenOk,
  },
  {
    id: "openai-api-key",
    label: "OpenAI API key",
    re: /(sk-(?!ant-)(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{32,})/g,
    wordStart: true,
    group: 1,
    accept: (v) => tokenOk(v) && /[0-9]/.test(v) && /[A-Za-z]/.test(v.slice(3)),
  },
  {
    id: "github-token",
    label: "GitHub token",
    re: /(gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{70,})\b/g,
    wordStart: true,
    group: 1,
    accept: tokenOk,
  },
  {
    id: "gitlab-token",
    label: "GitLab token",
    re: /(gl(?:pat|dt|rt|cbt|ptt|ft)-[A-Za-z0-9_-]{20,})/g,
    wordStart: true,
    group: 1,
    accept: tokenOk,
  },
  {
    id: "huggingface-token",
    label: "Hugging Face token",
    re: /((?:hf_|api_org_)[A-Za-z0-9]{30,})\b/g,
    wordStart: true,
    group: 1,
    accept: (v) => tokenOk(v) && /[A-Z]/.test(v) && /[a-z]/.test(v.slice(3)),
  },
  {
    id: "slack-token",
    label: "Slack token",
    re: /(xox[abposre]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+)/g,
    wordStart: true,
    group: 1,
    accept: tokenOk,
  },
  {
    id: "slack-webhook",
    label: "Slack incoming-webhook URL",
    re: /https:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/(T[A-Z0-9]+\/[A-Z0-9]+\/[A-Za-z0-9]{16,})/g,
    group: 1,
  },
  {
    id: "google-api-key",
    label: "Google API key",
    re: /(AIza[0-9A-Za-z_-]{35})(?![0-9A-Za-z_-])/g,
    wordStart: true,
    group: 1,
    accept: tokenOk,
  },
  {
    id: "gcp-service-account",
    label: "GCP service-account key (private_key_id)",
    re: /"private_key_id"\s*:\s*"([a-f0-9]{32,})"/g,
    group: 1,
  },
  {
    id: "stripe-key",
    label: "Stripe secret key",
    re: /((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,})/g,
    wordStart: true,
    group: 1,
    accept: tokenOk,
  },
  {
    id: "npm-token",
    label: "npm token",
    re: /(npm_[A-Za-z0-9]{36})\b/g,
    wordStart: true,
    group: 1,
    accept: tokenOk,
  },
  {
    id: "pypi-token",
    label: "PyPI token",
    re: /(pypi-AgE[A-Za-z0-9_-]{50,})/g,
    wordStart: true,
    group: 1,
  },
  {
    id: "prefixed-token",
    label: "API token with a published prefix (DigitalOcean, SendGrid, NVIDIA, Tailscale, Groq, Replicate, Docker Hub, Vault, Grafana, Linear, Perplexity, xAI …)",
    re: /((?:do[opr]_v1_[a-f0-9]{64})|(?:SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})|(?:nvapi-[A-Za-z0-9_-]{60,})|(?:tskey-(?:auth|client|api|webhook|scim)?-?[A-Za-z0-9]{6,}-[A-Za-z0-9]{16,})|(?:gsk_[A-Za-z0-9]{48,})|(?:r8_[A-Za-z0-9]{36,})|(?:dckr_pat_[A-Za-z0-9_-]{24,})|(?:hv[sbr]\.[A-Za-z0-9_-]{24,})|(?:glsa_[A-Za-z0-9]{32}_[a-f0-9]{8})|(?:lin_api_[A-Za-z0-9]{40})|(?:pplx-[A-Za-z0-9]{40,})|(?:xai-[A-Za-z0-9]{60,})|(?:shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})|(?:pcsk_[A-Za-z0-9_]{40,})|(?:rpa_[A-Z0-9]{40,}))(?![A-Za-z0-9_-])/g,
    wordStart: true,
    group: 1,
    accept: tokenOk,
  },
  {
    id: "pgpass-line",
    hint: [":"],
    label: "a .pgpass line (host:port:database:user:password)",
    re: /^[ \t]*["']?[A-Za-z0-9*._-]+:(?:\d{1,5}|\*):[^:\s]+:[^:\s]+:([^\s"']{8,256})["']?\r?$/gm,
    group: 1,
    accept: (v) => isCredentialValue(v, "password") && looksGenerated(v, "password"),
  },
  {
    id: "jwt",
    label: "JSON Web Token",
    re: /(eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})/g,
    wordStart: true,
    group: 1,
  },
  {
    id: "wandb-api-key",
    label: "Weights & Biases API key",
    // `wandb login [--relogin] [--host URL] KEY` and wandb.login(key="KEY")
    re: /wandb(?:\s+login(?:\s+--?[a-z-]+(?:[= ](?!(?:local-)?[0-9a-f]{40})\S+)?)*\s+|\.login\([^)]{0,80}?key\s*=\s*["'])((?:local-)?[A-Za-z0-9_-]{40,})/g,
    wordStart: true,
    group: 1,
    accept: (v) => !isPlaceholder(v) && entropy(v) >= 3.0,
  },
  {
    id: "netrc-password",
    label: ".netrc password (e.g. api.wandb.ai, Hugging Face)",
    re: /machine\s+\S+\s+(?:login\s+\S+\s+)?password\s+(\S+)/g,
    wordStart: true,
    group: 1,
    accept: (v) => isCredentialValue(v, "password"),
  },
  {
    id: "auth-header",
    label: "Authorization header credential",
    re: /(?:authorization|x-api-key|api-key|private-token|x-auth-token|cookie)\s*:\s*(?:bearer\s+|basic\s+|token\s+|[A-Za-z0-9_.-]{1,64}=)?([A-Za-z0-9._~+\/=%-]{12,})/gi,
    wordStart: true,
    group: 1,
    accept: (v) => (v.length >= 12 && isCredentialValue(v, "named") && /[0-9]/.test(v) && /[A-Za-z]/.test(v)) || looksGenerated(v, "named"),
  },
  {
    id: "url-credentials",
    hint: ["@"],
    label: "password embedded in a URL",
    re: /:\/\/[^\s:@\/'"`]{0,128}:([^\s@\/'"`]{1,256})@[A-Za-z0-9[]/g,
    group: 1,
    accept: (v) => !isPlaceholder(v) && !/^(pass(word)?|passwd|secret|token|pwd|x-oauth-basic|anonymous|guest)$/i.test(v),
  },
  {
    id: "password-option",
    hint: ["-p", "-u", "--", "-a", "pass:"],
    label: "password/token passed as a command-line option (mysql -p…, sshpass -p, docker login -p, curl -u user:pass, --password/--token …)",
    re: /(?:(?:^|[\s;|&(])--?(?:password|passwd|pass|pwd|token|secret|api-?key|apikey|access-?key|secret-?key|auth-?token|private-?key|http-password|ftp-password|proxy-password|oauth2-bearer|bearer|client-secret)(?:=|[ \t]+)|\b(?:mysql|mysqldump|mariadb|mysqladmin|mysqlimport|mysqlsh|mysqlcheck)\b[^\n|;&]*?[ \t]-p|\bsshpass\b[^\n|;&]*?[ \t]-p[ \t]*|\bredis-cli\b[^\n|;&]*?[ \t]-a[ \t]+|\b(?:mongo|mongosh|mongodump|mongorestore)\b[^\n|;&]*?[ \t]-p[ \t]+|[ \t]-pass(?:in|out)?[ \t]+pass:|\bdocker\b[^\n|;&]*?\blogin\b[^\n|;&]*?[ \t]-p[ \t]+|\baz\b[^\n|;&]*?\blogin\b[^\n|;&]*?[ \t]-p[ \t]+|\b(?:curl|wget|http)\b[^\n|;&]*?[ \t](?:-u|--user)[ \t]*["']?[^\s:"']*:|\blftp\b[^\n|;&]*?[ \t]-u[ \t]*["']?[^\s,"']*,|\b(?:smbclient|rpcclient|smbmap|net)\b[^\n|;&]*?[ \t](?:-U|--user)[ \t]*["']?[^\s%"']*%)(["']?)([^\s"'`;|&<>]{1,512})/gi,
    group: 2,
    accept: (v, m) => isCredentialValue(v, /pass|pwd|-p$|:$|,$|%$/i.test(m[0].slice(0, m[0].length - v.length - m[1]!.length).trim()) ? "password" : "named"),
  },
  {
    id: "archive-password",
    hint: ["7z", "zip"],
    label: "archive password on the command line (7z -pPW, unzip/zip -P PW)",
    // case-sensitive on purpose: `unzip -p` extracts to a pipe, 7z's -p takes its value glued on
    re: /\b(?:7z[ar]?\b[^\n|;&]*?[ \t]-p(?=[^\s])|(?:unzip|zip|zipcloak|funzip)\b[^\n|;&]*?[ \t](?:-P|--password)[ \t]+)(["']?)([^\s"'`;|&<>]{1,512})/g,
    group: 2,
    accept: (v) => isCredentialValue(v, "password"),
  },
  {
    id: "sudo-stdin-password",
    hint: ["sudo"],
    label: "a password echoed into sudo -S",
    re: /\b(?:echo|printf)[ \t]+(?:-[neE]+[ \t]+)?(["']?)([^\s"'|;&$`]{1,256})\1[ \t]*\|[ \t]*sudo\b[^\n|;&]*?[ \t](?:-[a-zA-Z]*S|--stdin)\b/g,
    group: 2,
    accept: (v) => isCredentialValue(v, "password"),
  },
  {
    id: "cli-config-credential",
    hint: ["config", "authtoken"],
    label: "a credential stored through a CLI's config command (aws configure set NAME V, npm/pip/git config NAME V, ngrok add-authtoken V)",
    re: /\b(?:(?:aws[ \t]+configure[ \t]+set|(?:npm|pnpm|yarn)[ \t]+config[ \t]+set|pip[ \t]+config[ \t]+set|git[ \t]+config(?:[ \t]+--(?:global|local|system))?|conda[ \t]+config[ \t]+--set|gh[ \t]+config[ \t]+set)[ \t]+([\w.:\/@-]+)|(add-authtoken|authtoken))[ \t]+(["']?)([^\s"'`;|&<>]{6,512})/g,
    group: 4,
    accept: (v, m) => {
      if (m[2]) return tokenOk(v) && v.length >= 20;
      const name = (m[1] ?? "").split(/[.:\/]/).pop() ?? "";
      const s = credentialName(name.replace(/-/g, "_"));
      return s !== null && s !== "named-weak" && isCredentialValue(v, s);
    },
  },
  {
    id: "url-token-user",
    hint: ["@"],
    label: "a token as the user part of a URL (https://TOKEN@host)",
    re: /[a-z][a-z0-9+.-]*:\/\/([A-Za-z0-9_-]{20,256})@[A-Za-z0-9[]/g,
    group: 1,
    accept: (v) => looksGenerated(v, "named"),
  },
  {
    id: "kaggle-key",
    hint: ['"key"'],
    label: "Kaggle API key (kaggle.json)",
    re: /"key"\s*:\s*"([0-9a-f]{32})"/g,
    group: 1,
  },
  {
    id: "secret-assignment",
    label: "*_TOKEN / *_KEY / *_SECRET / PASSWORD / *_PWD assignment (env, export, docker -e, JSON, YAML, code)",
    // NAME=V, NAME: V, "name": "V", name = 'V', --name=V, os.environ["NAME"] = "V", setdefault("NAME", "V").
    // Found keyword-first (fast), then the whole name is read backwards from the keyword. A credential
    // name (credentialName) makes any real value a secret; a weaker one needs a generated-looking value.
    re: /(?:password|passwd|passphrase|pwd|token|secret|key|auth|credentials?)(?:["']\s*\]|["'])?[ \t]*(?::=|=|:|["']?\s*,)[ \t]*(["']?)([^\s"'`,;&|(){}<>\\]{8,512})/gi,
    group: 2,
    accept: (v, m, text) => {
      // `${NAME:?msg}`, `${NAME:-x}`, `${NAME:=x}`: a parameter expansion's operator, not a value
      if (/^[?=+-]/.test(v) && /\$\{[A-Za-z_]*$/.test(text.slice(Math.max(0, m.index - 64), m.index))) return false;
      if (v.length < 8 && !/^(pass|pwd|sshp|pgp|tok|sec)/i.test(m[0]) && !/(api|secret|access|private|kaggle)_?$/i.test(text.slice(Math.max(0, m.index - 8), m.index))) return false;
      const name = nameBefore(text, m.index, m[0]);
      if (name === null) return false;
      const bare = name.replace(/^-+/, "");
      const cred = name.startsWith("-") ? null : credentialName(bare);
      if (cred !== null && cred !== "named-weak") {
        if (m[1] === "" && /^[A-Za-z_]\w*(\.\w+)+$|^[a-z_]+$/.test(v) && cred !== "password") return false; // code: a variable or attribute
        if (m[1] === "" && /^[A-Za-z_]\w*\.\w/.test(v)) return false;
        return isCredentialValue(v, cred);
      }
      if (v.length < 8) return false;
      const strength = secretNameStrength(bare);
      return strength !== null && looksGenerated(v, strength);
    },
  },
  {
    id: "short-credential",
    label: "short value under a credential name (PGPASSWORD=…, MYSQL_PWD=…, SSHPASS=…, *_TOKEN=…)",
    // values of 1-7 characters: only a strict credential name makes them a secret
    re: /(?:PASSWORD|PASSWD|PASSPHRASE|PWD|SSHPASS|TOKEN|SECRET|KEY|password|passwd|passphrase|pwd|sshpass|token|secret|_key|Key|Password|Token|Secret)(?:["']\s*\]|["'])?[ \t]*(?:=|:|["']?\s*,)[ \t]*(["']?)([^\s"'`,;&|(){}<>\\]{1,7})(?![^\s"'`,;&|(){}<>\\])/g,
    group: 2,
    accept: (v, m, text) => {
      const name = nameBefore(text, m.index, m[0].replace(/^(?:SSHPASS|sshpass)/, "PASS"));
      if (name === null || name.startsWith("-")) return false;
      const cred = credentialName(name);
      return cred !== null && cred !== "named-weak" && isCredentialValue(v, cred);
    },
  },
  {
    id: "secret-flag",
    label: "credential passed as a CLI flag (--token V, --api-key V, --password V)",
    re: /(?:password|passwd|passphrase|pwd|token|secret|key|auth|credentials?)[ \t]+(["']?)([^\s"'`;|&<>]{8,512})/gi,
    group: 2,
    accept: (v, m, text) => {
      const name = nameBefore(text, m.index, m[0]);
      if (name === null || !/^--?[A-Za-z]/.test(name)) return false;
      const strength = secretNameStrength(name.replace(/^-+/, ""));
      return strength !== null && looksGenerated(v, strength);
    },
  },
  {
    id: "credential-env-line",
    hint: ["="],
    label: "a credential-named variable on a line of its own (env / printenv / export -p / declare -x output)",
    // the whole value to the end of the line: a password may hold & ; | and other characters no token rule takes
    re: /^[ \t]*(?:export[ \t]+|declare[ \t]+-x[ \t]+|setenv[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=(["']?)([^\s"']{6,512})\2\r?$/gm,
    group: 3,
    accept: (v, m) => credentialName(m[1]!) !== null && !/^[$/~.]|^[a-z]+:\/\/[^:@]*$/.test(v) && !isPlaceholder(v) && !/^[0-9]{1,6}$/.test(v) && /[0-9]/.test(v) && /[A-Za-z]/.test(v),
  },
  {
    id: "netrc-password",
    hint: ["password", "passwd"],
    label: "a password in .netrc form (machine … login … password …)",
    re: /^[ \t]*(?:machine[ \t]+\S+[ \t]+(?:login[ \t]+\S+[ \t]+)?)?(?:password|passwd)[ \t]+([^\s$`]\S{3,255})/gim,
    group: 1,
    // `passwd --status root`, `passwd root` are the passwd command, not a .netrc line
    accept: (v, m) => !isPlaceholder(v) && !v.startsWith("-") && (/machine/i.test(m[0]) || /^[ \t]*password/i.test(m[0])),
  },
];

/**
 * Key bodies without their markers (a PEM block whose BEGIN line a cut removed, a key pasted bare): two
 * or more consecutive lines of 60-76 base64 characters, high entropy. A line scan, not a regex: cheap.
 */
function keyBodies(text: string): SecretSpan[] {
  const out: SecretSpan[] = [];
  let runStart = -1;
  let runEnd = -1;
  let lines = 0;
  let at = 0;
  let tailPad = false;
  const flush = (): void => {
    // two full lines, or one full line and a short last line padded with = (a block's end)
    if ((lines >= 2 || (lines >= 1 && tailPad)) && entropy(text.slice(runStart, runEnd).replace(/\s+/g, "")) >= 5.0) out.push({ rule: "key-body", start: runStart, end: runEnd });
    lines = 0;
    runStart = -1;
    tailPad = false;
  };
  while (at <= text.length) {
    let nl = text.indexOf("\n", at);
    if (nl < 0) nl = text.length;
    const len = nl - at - (text[nl - 1] === "\r" ? 1 : 0);
    const body = len >= 60 && len <= 76 && /^[A-Za-z0-9+/]+={0,2}$/.test(text.slice(at, at + len));
    // the last line of a body may be short
    const tailLine = !body && lines >= 1 && len > 0 && len < 60 && /^[A-Za-z0-9+/]+={0,2}$/.test(text.slice(at, at + len));
    if (body) {
      if (runStart < 0) runStart = at;
      runEnd = at + len;
      lines++;
    } else {
      if (tailLine) { runEnd = at + len; tailPad = /=$/.test(text.slice(at, at + len)) || lines >= 2; }
      flush();
    }
    at = nl + 1;
  }
  flush();
  return out;
}

export interface SecretSpan {
  rule: string;
  start: number;
  end: number;
}

/** the catalog's regexes with match indices on (the `d` flag), so a span is exact even when its value repeats */
const COMPILED: RegExp[] = SECRET_RULES.map((r) => new RegExp(r.re.source, r.re.flags.includes("d") ? r.re.flags : r.re.flags + "d"));

/** Quick pre-check: text shorter than the shortest secret, or without any character a rule needs. */
function mayHold(text: string): boolean {
  return text.length >= 8;
}

/**
 * Every secret span in `text`, sorted, overlaps merged (the earlier catalog rule names a merged span).
 * Synchronous and allocation-light: this is the hot path of redaction.
 */
export function scanSecrets(text: string): SecretSpan[] {
  if (!mayHold(text)) return [];
  const found: (SecretSpan & { prio: number })[] = [];
  let lower: string | undefined;
  for (let r = 0; r < SECRET_RULES.length; r++) {
    const rule = SECRET_RULES[r]!;
    if (rule.hint) {
      lower ??= text.toLowerCase();
      if (!rule.hint.some((h) => lower!.includes(h))) continue;
    }
    const re = COMPILED[r]!;
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      if (m[0].length === 0) { re.lastIndex++; continue; }
      const value = m[rule.group];
      if (value === undefined || value.length === 0) continue;
      if (m[0].includes("[REDACTED:")) {
        // our own marker (a second redaction pass) is never a secret, nor part of one
        re.lastIndex = m.index + 1;
        continue;
      }
      if (rule.wordStart && m.index > 0 && /[A-Za-z0-9_]/.test(text[m.index - 1]!)) {
        re.lastIndex = m.index + 1;
        continue;
      }
      if (rule.accept && !rule.accept(value, m, text)) {
        // let the next attempt start inside this match: a `--flag NAME=secret` must still be seen
        re.lastIndex = m.index + 1;
        continue;
      }
      const start = m.indices?.[rule.group]?.[0] ?? m.index;
      found.push({ rule: rule.id, start, end: start + value.length, prio: r });
    }
  }
  if (text.length >= 96) for (const k of keyBodies(text)) found.push({ ...k, prio: SECRET_RULES.length });
  // the base64 lines right above an END marker are a key's body, however few (its BEGIN line cut away)
  if (text.includes("-----END")) {
    for (const m of text.matchAll(/((?:^[A-Za-z0-9+/]{8,}={0,2}\r?\n)+)-----END[ A-Z0-9]*PRIVATE KEY/gm)) found.push({ rule: "key-body", start: m.index!, end: m.index! + m[1]!.length - 1, prio: SECRET_RULES.length });
  }
  if (found.length === 0) return [];
  found.sort((a, b) => a.start - b.start || a.prio - b.prio);
  const out: SecretSpan[] = [];
  let cur = found[0]!;
  for (let i = 1; i < found.length; i++) {
    const f = found[i]!;
    if (f.start < cur.end) {
      const end = Math.max(cur.end, f.end);
      cur = f.prio < cur.prio ? { ...f, start: cur.start, end } : { ...cur, end };
    } else {
      out.push({ rule: cur.rule, start: cur.start, end: cur.end });
      cur = f;
    }
  }
  out.push({ rule: cur.rule, start: cur.start, end: cur.end });
  return out;
}
