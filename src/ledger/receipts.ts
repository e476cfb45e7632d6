/**
 * Pull receipts: proof that a set of files was copied off a box and hashed identical on both ends.
 * request_teardown requires one covering a run's roster before it lets a box go.
 * Layout under RGT_HOME: receipts/index.json (summaries, newest last) + receipts/<id>.json (full file list).
 */
import { randomBytes } from "node:crypto";
import type { Ledger } from "./store.js";

export interface ReceiptFile {
  path: string;
  bytes: number;
  sha256: string;
}

export interface Receipt {
  receipt_id: string;
  host: string;
  remote_path: string;
  run_id?: string;
  local_dir: string;
  files: ReceiptFile[];
  manifest_sha256: string;
  created_at: string;
  /** the roster the pull was checked against (paths or globs relative to remote_path), when one was given */
  expect?: string[];
  /**
   * The explicit roster this receipt proves, written at pull time: pull_verify's `expect` (a run pull's
   * roster is the run's). Empty = a directory pulled without one, which never satisfies the teardown gate
   * on its own (issue 12.6). saveReceipt fills it from `expect` when the caller did not.
   */
  roster?: string[];
  /** for run pulls: per-cell remote output dir and local dir (file paths are then "<cell>/<rel>") */
  cells?: { name: string; remote_dir: string; local_dir: string }[];
}

export interface ReceiptSummary {
  receipt_id: string;
  host: string;
  remote_path: string;
  run_id?: string;
  local_dir: string;
  file_count: number;
  manifest_sha256: string;
  created_at: string;
}

const INDEX = "receipts/index";

export function newReceiptId(): string {
  const t = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return `rcpt-${t}-${randomBytes(4).toString("hex")}`;
}

/** The roster a receipt proves (older receipts carry only `expect`). */
export function rosterOf(r: Pick<Receipt, "roster" | "expect">): string[] {
  return r.roster ?? r.expect ?? [];
}

export async function saveReceipt(ledger: Ledger, input: Receipt): Promise<Receipt> {
  const r: Receipt = { ...input, roster: rosterOf(input) };
  if (!/^[a-z0-9-]+$/i.test(r.receipt_id)) throw new Error(`bad receipt id ${r.receipt_id}`);
  ledger.write(`receipts/${r.receipt_id}`, r);
  const summary: ReceiptSummary = {
    receipt_id: r.receipt_id,
    host: r.host,
    remote_path: r.remote_path,
    ...(r.run_id ? { run_id: r.run_id } : {}),
    local_dir: r.local_dir,
    file_count: r.files.length,
    manifest_sha256: r.manifest_sha256,
    created_at: r.created_at,
  };
  await ledger.update<ReceiptSummary[]>(INDEX, [], (cur) => [...cur.filter((x) => x.receipt_id !== r.receipt_id), summary]);
  return r;
}

export function getReceipt(ledger: Ledger, id: string): Receipt | undefined {
  if (!/^[a-z0-9-]+$/i.test(id)) return undefined;
  return ledger.read<Receipt | undefined>(`receipts/${id}`, undefined);
}

/** Receipts matching the filter, newest first (full records). */
export function listReceipts(ledger: Ledger, filter: { host?: string; run_id?: string } = {}): Receipt[] {
  const idx = ledger.read<ReceiptSummary[]>(INDEX, []);
  const out: Receipt[] = [];
  for (let i = idx.length - 1; i >= 0; i--) {
    const s = idx[i];
    if (filter.host !== undefined && s.host !== filter.host) continue;
    if (filter.run_id !== undefined && s.run_id !== filter.run_id) continue;
    const r = getReceipt(ledger, s.receipt_id);
    if (r) out.push(r);
  }
  return out;
}
