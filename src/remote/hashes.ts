/**
 * The box lists and hashes its own files: one round trip running scripts/hash_tree.sh, whose output is
 * NUL-separated records (no name can break it). Used by the transfer service (what to pull, what to
 * compare) and by request_teardown (do the receipt's hashes still hold?).
 */
import { randomBytes } from "node:crypto";
import { RefusalError } from "../common/result.js";
import type { Remote } from "./types.js";

export interface RemoteFileHash {
  path: string;
  bytes: number;
  sha256: string;
}

export interface RemoteLink {
  path: string;
  /** the link's target text, as readlink(2) gives it */
  target: string;
}

export interface RemoteHashTree {
  /** the root as the box resolved it (absolute, symlinks resolved); "" when it does not exist */
  root: string;
  exists: boolean;
  /** whether the box has rsync on PATH */
  hasRsync: boolean;
  /** the box's rsync version ("3.2.7"), "" when unknown */
  rsyncVersion: string;
  files: RemoteFileHash[];
  /** symbolic links under root (never followed) */
  links: RemoteLink[];
  /** entries that are neither files, links nor dirs (fifos, sockets, devices): never carried */
  others: { path: string; type: string }[];
  /** files the box listed but could not read or hash */
  unreadable: string[];
  /** names whose bytes are not UTF-8 (shown with \xNN escapes): they cannot be carried faithfully */
  badNames: string[];
  /** requested paths that are not regular files on the box */
  missing: string[];
  /** the text of <root>.rgt-manifest.json beside the root, when the box has one (see src/transfer/manifest.ts) */
  siblingManifest?: string;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** A name's bytes as text, or null when they are not UTF-8. */
function utf8(b: Buffer): string | null {
  try { return UTF8.decode(b); } catch { return null; }
}

/** A byte string shown safely: non-UTF-8 bytes as \xNN. */
export function escapeBytes(b: Buffer): string {
  let out = "";
  for (const x of b) out += x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : `\\x${x.toString(16).padStart(2, "0")}`;
  return out;
}

const MARK = Buffer.from("RGT-HASH-1\0", "latin1");
const FIELDS: Record<string, number> = { R: 4, F: 3, Z: 2, H: 2, X: 0, L: 2, O: 2, E: 1, M: 1, S: 1, D: 1, Y: 1 };
const SHA = /^[0-9a-f]{64}$/;

/**
 * Parse hash_tree.sh output. Throws when the closing D record is absent (output cut short) or a record is
 * malformed. With `listingMark`, parses only up to the Y record carrying that mark (throws when it is not
 * there): the listing, every listed file with sha256 "" (not hashed yet).
 */
export function parseHashTree(stdout: Buffer, listingMark?: string): RemoteHashTree {
  const out: RemoteHashTree = { root: "", exists: false, hasRsync: false, rsyncVersion: "", files: [], links: [], others: [], unreadable: [], badNames: [], missing: [] };
  // fields as offsets into stdout (a view or string is made only where one is needed: 20,000 files made
  // 60,000 Buffer views, some 20 MB of garbage, before)
  const bounds: number[] = [];
  const start = stdout.indexOf(MARK);
  if (start < 0) throw new Error("hash_tree.sh output has no start mark (the script did not run)");
  for (let at = start + MARK.length; at < stdout.length; ) {
    const z = stdout.indexOf(0, at);
    if (z < 0) break; // an unterminated tail: cut short, the D record check below fails
    bounds.push(at, z);
    at = z + 1;
  }
  const nFields = bounds.length / 2;
  const field = (k: number): Buffer => stdout.subarray(bounds[2 * k], bounds[2 * k + 1]);
  const text = (k: number): string => stdout.toString("latin1", bounds[2 * k], bounds[2 * k + 1]);
  const flen = (k: number): number => bounds[2 * k + 1] - bounds[2 * k];
  let done = false;
  // Z (listed, with its size) and H/X (hashed) records, joined once the listing is complete
  const listed = new Map<string, string>();
  const hashed = new Map<string, string>();
  const name = (b: Buffer): string | null => {
    const s = utf8(b);
    if (s === null) out.badNames.push(escapeBytes(b));
    return s;
  };
  for (let i = 0; i < nFields; ) {
    const tag = text(i);
    const n = FIELDS[tag];
    if (n === undefined) throw new Error(`hash listing has an unknown record "${escapeBytes(field(i)).slice(0, 20)}"`);
    if (i + n >= nFields) break;
    if (tag === "Z") { listed.set(text(i + 2), text(i + 1)); i += 3; continue; }
    const f = Array.from({ length: n }, (_, k) => field(i + 1 + k));
    i += 1 + n;
    const s = (k: number): string => f[k].toString("utf8");
    switch (tag) {
      case "R": out.exists = s(0) === "1"; out.hasRsync = s(1) === "1"; out.rsyncVersion = /^[\d.]+$/.test(s(2)) ? s(2) : ""; out.root = out.exists ? s(3) : ""; break;
      case "F": {
        const p = name(f[2]);
        if (p !== null) {
          if (!SHA.test(s(1))) throw new Error(`hash listing has a bad sha256 for ${p.slice(0, 80)}`);
          out.files.push({ path: p, bytes: Number(s(0)), sha256: s(1) });
        }
        break;
      }
      case "H": if (!SHA.test(s(0))) throw new Error("hash listing has a bad sha256"); hashed.set(f[1].toString("latin1"), s(0)); break;
      case "X": {
        for (; i < nFields && flen(i); i++) {
          const a = bounds[2 * i];
          const hex = stdout.toString("latin1", a, a + 64);
          const wellFormed = flen(i) >= 67 && stdout[a + 64] === 0x20 && stdout[a + 65] === 0x20 && SHA.test(hex);
          if (!wellFormed) throw new Error("hash listing has a malformed sha256sum record");
          hashed.set(stdout.toString("latin1", a + 66, bounds[2 * i + 1]), hex);
        }
        if (i >= nFields) break; // no closing empty field: cut short
        i++;
        break;
      }
      case "L": { const p = name(f[0]); const t = utf8(f[1]); if (p !== null) { if (t === null) out.badNames.push(`${p} -> ${escapeBytes(f[1])}`); else out.links.push({ path: p, target: t }); } break; }
      case "O": { const p = name(f[1]); if (p !== null) out.others.push({ path: p, type: s(0) }); break; }
      case "E": { const p = name(f[0]); if (p !== null) out.unreadable.push(p); break; }
      case "M": { const p = name(f[0]); if (p !== null) out.missing.push(p); break; }
      case "S": out.siblingManifest = f[0].toString("utf8"); break;
      case "D": done = listingMark === undefined; break;
      case "Y": if (listingMark !== undefined && s(0) === listingMark) done = true; break;
    }
    if (done) break; // whatever follows (a logout script's chatter) is not ours
  }
  if (!done) throw new Error(listingMark !== undefined ? "hash_tree.sh output has no listing record" : "hash_tree.sh output ended early (no end record)");
  for (const [key, bytes] of listed) {
    const raw = Buffer.from(key, "latin1");
    const p = name(raw);
    if (p === null) continue;
    const h = listingMark !== undefined ? "" : hashed.get(key);
    if (h === undefined) out.unreadable.push(p);
    else out.files.push({ path: p, bytes: Number(bytes), sha256: h });
  }
  out.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  out.links.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

/** Paths for RGT_HASH_PATHS: one a line, "\" and newline escaped (the script decodes with printf %b). */
export function encodeHashPaths(paths: string[]): string {
  return paths.map((p) => p.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")).join("\n");
}

const MAX_LISTING = 256 * 1024 * 1024;

/** the Y record's bytes, NUL-terminated on both sides: no file name holds a NUL, so no name can fake it */
const listingNeedle = (mark: string): Buffer => Buffer.from(`\0Y\0${mark}\0`, "latin1");

export async function remoteHashTree(
  remote: Remote,
  host: string,
  root: string,
  paths?: string[],
  opts: { timeoutMs?: number; signal?: AbortSignal; onListing?: (listing: RemoteHashTree) => void } = {},
): Promise<RemoteHashTree> {
  const env: Record<string, string> = {};
  if (paths && paths.length) env.RGT_HASH_PATHS = encodeHashPaths(paths);
  const mark = opts.onListing ? randomBytes(12).toString("hex") : undefined;
  if (mark) env.RGT_HASH_MARK = mark;
  const needle = mark ? listingNeedle(mark) : undefined;
  // stdout is read as bytes (names need not be UTF-8); the exec layer's own text copy is kept small
  const chunks: Buffer[] = [];
  let size = 0;
  let tail = Buffer.alloc(0);
  let listed = false;
  const r = await remote.runScript(host, "hash_tree.sh", [root], {
    env,
    timeoutMs: opts.timeoutMs ?? 600_000,
    maxOutputBytes: 64 * 1024,
    onStdout: (b) => {
      size += b.length;
      if (size <= MAX_LISTING) chunks.push(b);
      if (!needle || listed || size > MAX_LISTING) return;
      // the record may straddle two chunks: search the previous chunk's end together with this one
      const win = Buffer.concat([tail, b]);
      tail = win.subarray(Math.max(0, win.length - needle.length));
      if (win.indexOf(needle) < 0) return;
      listed = true;
      try { opts.onListing!(parseHashTree(Buffer.concat(chunks), mark)); } catch { /* the full parse below decides */ }
    },
    signal: opts.signal,
  });
  if (r.timedOut) throw new RefusalError("TIMEOUT", `hashing ${root} on ${host} ran past its time limit`, "Hash a smaller directory, or retry when the box is less busy.");
  if (size > MAX_LISTING) throw new RefusalError("INTERNAL", `hash listing of ${root} on ${host} was too large to read back`, "Pull a narrower remote_path.");
  try {
    return parseHashTree(Buffer.concat(chunks));
  } catch (e) {
    throw new RefusalError(
      "INTERNAL",
      `the box could not hash ${root}: ${(e as Error).message}; exit ${r.exitCode}; ${r.stderr.trim().slice(-300)}`,
      "Check that bash 4+, coreutils (sha256sum) and findutils exist on the box; run probe_env.",
    );
  }
}

/** The shared signature: the box's sha256 of every file under root (or of the listed relative paths). */
export async function remoteHashes(remote: Remote, host: string, root: string, paths?: string[]): Promise<RemoteFileHash[]> {
  return (await remoteHashTree(remote, host, root, paths)).files;
}
