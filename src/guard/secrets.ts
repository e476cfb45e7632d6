/**
 * Secret detection for tool INPUTS (commands, env values, queue lines, args) and credential-file
 * names for push_code. Pure and synchronous; the rules live in catalog.ts, shared with redaction.
 */
import { RefusalCode, RefusalError } from "../common/result.js";
import { SECRET_RULES, scanSecrets } from "./catalog.js";

export interface SecretFinding {
  /** catalog rule id, e.g. "huggingface-token" */
  rule: string;
  start: number;
  end: number;
  /** the first 4 characters and an ellipsis; never more of the value */
  preview: string;
}

export function findSecrets(text: string): SecretFinding[] {
  if (typeof text !== "string") return [];
  return scanSecrets(text).map((s) => ({ ...s, preview: text.slice(s.start, Math.min(s.end, s.start + 4)) + "…" }));
}

export function containsSecret(text: string): boolean {
  return typeof text === "string" && scanSecrets(text).length > 0;
}

const LABELS = new Map(SECRET_RULES.map((r) => [r.id, r.label]));

/**
 * Refuse (SECRET_INLINE) when any field carries a credential. The reason names the field and the
 * kind of credential, never any of its characters.
 */
export function assertNoInlineSecrets(fields: Record<string, string | undefined>): void {
  for (const [field, value] of Object.entries(fields)) {
    if (typeof value !== "string" || value.length === 0) continue;
    const hits = scanSecrets(value);
    if (hits.length === 0) continue;
    const rule = hits[0]!.rule;
    const label = LABELS.get(rule) ?? rule;
    throw new RefusalError(
      RefusalCode.SECRET_INLINE,
      `Field "${field}" contains what looks like a credential (${label}, rule ${rule}); it was not sent anywhere.`,
      "Never put a credential in a tool input. Put it on the box once with push_secret " +
        "(source {env: \"NAME\"} reads it from your local environment and streams it over stdin into a 0600 file), " +
        "then refer to it by env-var name only, e.g. `$WANDB_API_KEY` or `export HF_TOKEN=$(cat <file>)` inside the command.",
      { field, rule, count: hits.length },
    );
  }
}

// ---------------------------------------------------------------------------------------------
// credential FILES (push_code refuses SECRET_FILE for these unless the user allow-lists them)

const ENV_TEMPLATE = /^\.env\.(example|sample|template|dist|defaults?|schema|tpl)$/i;
const KEY_BASENAMES = new Set(["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk", "identity"]);
const EXACT_BASENAMES: Record<string, string> = {
  ".netrc": "netrc",
  "_netrc": "netrc",
  ".git-credentials": "git-credentials",
  ".pgpass": "pgpass",
  ".my.cnf": "mysql-client-config",
  ".pypirc": "pypirc",
  ".npmrc": "npmrc",
  ".envrc": "dotenv",
  "credentials.json": "credentials-json",
  "application_default_credentials.json": "gcloud-adc",
  ".htpasswd": "htpasswd",
};
const EXT_RULES: [RegExp, string][] = [
  [/\.(pem|key)$/i, "private-key-file"],
  [/\.(p12|pfx|jks|keystore|ppk|kdbx)$/i, "keystore-file"],
];
const PATH_RULES: [RegExp, string][] = [
  [/(^|\/)\.aws\/credentials$/, "aws-credentials"],
  [/(^|\/)\.docker\/config\.json$/, "docker-auth"],
  [/(^|\/)\.kube\/config$/, "kubeconfig"],
  [/(^|\/)(\.cache\/)?huggingface\/(stored_)?tokens?$/, "huggingface-token-file"],
  [/(^|\/)\.config\/gh\/hosts\.ya?ml$/, "gh-cli-auth"],
  [/(^|\/)\.ssh\/(?!.*\.pub$)(?!known_hosts)(?!config$)(?!authorized_keys)[^/]+$/, "ssh-private-key"],
];

/**
 * Is this (relative) path a credential file? Decisions: `.env` and `.env.<anything>` yes, except the
 * committed templates (.env.example/.sample/.template/.dist/.defaults); `.envrc` yes (direnv exports);
 * `.npmrc`/`.pypirc` yes (their common purpose is a registry token — allow-list a token-free one);
 * `*.key`/`*.pem` yes; SSH keys yes but never `*.pub`; `secrets.{json,yaml,yml,toml,env}` and
 * Google `client_secret*.json` / `service-account*.json` yes.
 */
export function isSecretFileName(relPath: string): { rule: string } | null {
  if (typeof relPath !== "string" || relPath.length === 0) return null;
  const p = relPath.replace(/\\/g, "/").replace(/\/+$/, "");
  const base = p.slice(p.lastIndexOf("/") + 1);
  const lower = base.toLowerCase();
  if (lower.endsWith(".pub")) return null;
  if (lower === ".env") return { rule: "dotenv" };
  if (lower.startsWith(".env.")) return ENV_TEMPLATE.test(base) ? null : { rule: "dotenv" };
  if (KEY_BASENAMES.has(lower)) return { rule: "ssh-private-key" };
  const exact = EXACT_BASENAMES[lower];
  if (exact) return { rule: exact };
  if (/^secrets?\.(json|ya?ml|toml|env)$/.test(lower)) return { rule: "secrets-file" };
  if (/^(client_secret|service[-_]account)[^/]*\.json$/.test(lower)) return { rule: "gcp-key-json" };
  for (const [re, rule] of EXT_RULES) if (re.test(base)) return { rule };
  for (const [re, rule] of PATH_RULES) if (re.test(p)) return { rule };
  return null;
}
