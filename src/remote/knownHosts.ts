/**
 * known_hosts verification as OpenSSH does it: plain and hashed (|1|salt|hmac) host fields, `[host]:port` for
 * non-22 ports, comma lists, `*`/`?` wildcards and `!` negation, @revoked markers. Pure parsing + matching;
 * the file reads and the accept-new append are the only I/O, kept at the bottom.
 */
import { createHmac } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export interface KnownKey { type: string; blob: Buffer; revoked: boolean; file: string; line: number }

/** The name known_hosts stores for an endpoint. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegex(glob: string): RegExp {
  const esc = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${esc}$`, "i");
}

function hashedMatches(field: string, name: string): boolean {
  const parts = field.split("|"); // ["", "1", salt, hash]
  if (parts.length !== 4 || parts[1] !== "1") return false;
  const salt = Buffer.from(parts[2], "base64");
  const want = parts[3];
  return createHmac("sha1", salt).update(name).digest("base64") === want;
}

/** Does a known_hosts host field (comma list) match this name? Negations veto. */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith("|")) return hashedMatches(field, name);
  let matched = false;
  for (const pat of field.split(",")) {
    if (pat.startsWith("!")) {
      if (globToRegex(pat.slice(1)).test(name)) return false;
    } else if (globToRegex(pat).test(name)) {
      matched = true;
    }
  }
  return matched;
}

export function parseKnownHosts(text: string, file: string, name: string): KnownKey[] {
  const out: KnownKey[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const f = line.split(/\s+/);
    let marker = "";
    if (f[0].startsWith("@")) marker = f.shift()!;
    if (marker === "@cert-authority") return; // certificates are not supported: such lines never vouch for a key
    if (f.length < 3 || !hostFieldMatches(f[0], name)) return;
    out.push({ type: f[1], blob: Buffer.from(f[2], "base64"), revoked: marker === "@revoked", file, line: i + 1 });
  });
  return out;
}

/** The key type string carried at the start of an SSH public key blob. */
export function blobType(blob: Buffer): string {
  if (blob.length < 4) return "";
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + n).toString("latin1");
}

export type Verdict =
  | { kind: "match"; key: KnownKey }
  | { kind: "revoked"; key: KnownKey }
  | { kind: "unknown" }
  | { kind: "changed"; known: KnownKey[] };

export function verifyKey(presented: Buffer, known: KnownKey[]): Verdict {
  const revoked = known.find((k) => k.revoked && k.blob.equals(presented));
  if (revoked) return { kind: "revoked", key: revoked };
  const good = known.filter((k) => !k.revoked);
  const hit = good.find((k) => k.blob.equals(presented));
  if (hit) return { kind: "match", key: hit };
  if (good.length === 0) return { kind: "unknown" };
  return { kind: "changed", known: good };
}

/** Host key algorithms to offer so the server presents a type we already know (as OpenSSH orders them). */
export function preferredAlgorithms(known: KnownKey[]): string[] {
  const algs: string[] = [];
  for (const k of known) {
    if (k.revoked) continue;
    const forType = k.type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [k.type];
    for (const a of forType) if (!algs.includes(a)) algs.push(a);
  }
  return algs;
}

// ---- I/O ----

export function loadKnownKeys(files: string[], name: string): KnownKey[] {
  const keys: KnownKey[] = [];
  for (const file of files) {
    let text: string;
    try { text = fs.readFileSync(file, "utf8"); } catch { continue; }
    keys.push(...parseKnownHosts(text, file, name));
  }
  return keys;
}

/** accept-new: record a first-seen key in the user's known_hosts (plain `[host]:port type base64`). */
export function appendKnownKey(file: string, name: string, blob: Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const line = `${name} ${blobType(blob)} ${blob.toString("base64")}\n`;
  let prefix = "";
  try {
    const cur = fs.readFileSync(file, "utf8");
    if (cur.length && !cur.endsWith("\n")) prefix = "\n";
  } catch { /* new file */ }
  fs.appendFileSync(file, prefix + line, { mode: 0o600 });
}
