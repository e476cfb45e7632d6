/**
 * Salted fingerprints of the credentials push_secret delivered, so redaction can catch them in any
 * output whatever their format: HMAC-SHA256 with a per-install salt of each token (secretTokens), never
 * the value itself. One 0600 file in the ledger dir; loaded once per change (mtime).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { fingerprint, secretTokens, type Fingerprints } from "../guard/redact.js";
import type { Ledger } from "./store.js";

const FILE = "secret-fingerprints.json";
const MAX = 20_000;

interface Doc { salt: string; fps: string[] }

function file(ledger: Ledger): string {
  return path.join(ledger.dir, FILE);
}

function read(ledger: Ledger): Doc | undefined {
  try {
    const d = JSON.parse(fs.readFileSync(file(ledger), "utf8")) as Doc;
    return typeof d.salt === "string" && Array.isArray(d.fps) ? d : undefined;
  } catch {
    return undefined;
  }
}

/** Remember the fingerprints of one delivered credential (its value never leaves this function). */
export function recordSecretFingerprints(ledger: Ledger, value: Buffer | string): void {
  const doc = read(ledger) ?? { salt: randomBytes(32).toString("hex"), fps: [] };
  const salt = Buffer.from(doc.salt, "hex");
  const text = Buffer.isBuffer(value) ? value.toString("utf8") : value;
  const set = new Set(doc.fps);
  for (const t of secretTokens(text)) set.add(fingerprint(salt, t));
  const out: Doc = { salt: doc.salt, fps: [...set].slice(-MAX) };
  const tmp = `${file(ledger)}.tmp.${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(out), { mode: 0o600 });
  fs.renameSync(tmp, file(ledger));
  fs.chmodSync(file(ledger), 0o600);
  cache.delete(ledger.dir);
}

const cache = new Map<string, { mtime: number; fp: Fingerprints }>();

/** The fingerprints for redaction, or undefined when nothing was ever delivered. */
export function loadFingerprints(ledger: Ledger): Fingerprints | undefined {
  let mtime: number;
  try { mtime = fs.statSync(file(ledger)).mtimeMs; } catch { return undefined; }
  const hit = cache.get(ledger.dir);
  if (hit && hit.mtime === mtime) return hit.fp;
  const doc = read(ledger);
  if (!doc) return undefined;
  const fp = { salt: Buffer.from(doc.salt, "hex"), set: new Set(doc.fps) };
  cache.set(ledger.dir, { mtime, fp });
  return fp;
}
