/**
 * Human approvals for request_teardown, and for a park the box performs on its own when a sweep is safe
 * (launch_queue on_done: "park"; bound to host + run + the park verb, see parkBinding). An approval id is 128 random bits shown once to the caller;
 * the ledger keeps only HMAC-SHA256(id) under a per-state-dir key (approval.key, 0600), so reading the
 * ledger does not reveal a usable id and a made-up id matches nothing. Records are single-use, expire,
 * and are bound to host + instance + action + the receipts' evidence hash (see src/guard/teardown.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Ledger } from "./store.js";
import type { ApprovalBinding, ApprovalState, ApprovalView } from "../guard/teardown.js";
import { setting } from "../common/config.js";

const DOC = "approvals";

export interface ApprovalSummary {
  /** what is approved: a teardown (default) or a park the box performs by itself later */
  kind?: "teardown" | "park";
  /** for a park: what keeps billing or ticking once parked (from the profile) */
  still_ticking?: string[];
  platform: string;
  verb: string;
  irreversible: boolean;
  via: string;
  receipt_ids: string[];
  cost_so_far?: string;
  warnings: string[];
}

export interface ApprovalRecord extends ApprovalView {
  /** HMAC of the id; the id itself is never stored */
  key: string;
  created_at: number;
  summary: ApprovalSummary;
  decided_at?: number;
  decided_via?: "elicitation" | "cli";
  used_at?: number;
}

interface ApprovalDoc { records: ApprovalRecord[] }

export function approvalTtlMs(env: NodeJS.ProcessEnv = process.env): number {
  return setting("RGT_APPROVAL_TTL_S", env) * 1000;
}

function secretKey(ledger: Ledger): Buffer {
  const file = path.join(ledger.dir, "approval.key");
  try {
    const k = fs.readFileSync(file);
    if (k.length >= 32) return k;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  const k = randomBytes(32);
  try {
    fs.writeFileSync(file, k, { flag: "wx", mode: 0o600 });
    return k;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return fs.readFileSync(file); // another process won the race
    throw e;
  }
}

export function approvalKey(ledger: Ledger, id: string): string {
  return createHmac("sha256", secretKey(ledger)).update(id).digest("hex");
}

/** Shape check only: a well-formed id is "apv_" + 22 base64url chars (128 bits). */
export function looksLikeApprovalId(id: string): boolean {
  return /^apv_[A-Za-z0-9_-]{22}$/.test(id);
}

function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex"), y = Buffer.from(b, "hex");
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Issue a pending approval; returns the id (the only time it exists in clear). */
export async function issueApproval(ledger: Ledger, binding: ApprovalBinding, summary: ApprovalSummary,
    now = Date.now()): Promise<{ id: string; record: ApprovalRecord }> {
  const id = `apv_${randomBytes(16).toString("base64url")}`;
  const record: ApprovalRecord = {
    ...binding,
    key: approvalKey(ledger, id),
    state: "pending",
    created_at: now,
    expires_at: now + approvalTtlMs(),
    summary,
  };
  await ledger.update<ApprovalDoc>(DOC, { records: [] }, (doc) => {
    // keep the file small: drop records that ended more than a day ago
    const keep = doc.records.filter((r) => r.expires_at > now - 86_400_000);
    return { records: [...keep, record] };
  });
  return { id, record };
}

export function findApproval(ledger: Ledger, id: string): ApprovalRecord | undefined {
  if (!looksLikeApprovalId(id)) return undefined;
  const key = approvalKey(ledger, id);
  return ledger.read<ApprovalDoc>(DOC, { records: [] }).records.find((r) => sameKey(r.key, key));
}

/** Human decision (CLI or elicitation). Only a pending, unexpired record can be decided. */
export async function decideApproval(ledger: Ledger, id: string, decision: "approved" | "denied", via: "elicitation" | "cli", now = Date.now()): Promise<ApprovalRecord> {
  const key = approvalKey(ledger, id);
  let out: ApprovalRecord | undefined;
  let why = "no such approval";
  await ledger.update<ApprovalDoc>(DOC, { records: [] }, (doc) => {
    const records = doc.records.map((r) => {
      if (!sameKey(r.key, key)) return r;
      if (r.state !== "pending") { why = `it is already ${r.state}`; return r; }
      if (now >= r.expires_at) { why = "it expired"; return r; }
      out = { ...r, state: decision as ApprovalState, decided_at: now, decided_via: via };
      return out;
    });
    return { records };
  });
  if (!out) throw new Error(`cannot decide approval: ${why}`);
  return out;
}

/**
 * Atomically turn an approved record into a used one. Returns false when it was not (or no longer)
 * approved and unexpired — a concurrent second use loses here.
 */
export async function consumeApproval(ledger: Ledger, id: string, now = Date.now()): Promise<boolean> {
  const key = approvalKey(ledger, id);
  let ok = false;
  await ledger.update<ApprovalDoc>(DOC, { records: [] }, (doc) => ({
    records: doc.records.map((r) => {
      if (!sameKey(r.key, key) || r.state !== "approved" || now >= r.expires_at) return r;
      ok = true;
      return { ...r, state: "used" as ApprovalState, used_at: now };
    }),
  }));
  return ok;
}

/** A park approval is bound to this host, this run and this action (the park verb); instance as known. */
export function parkBinding(host: string, runId: string, verb: string, instanceId = ""): ApprovalBinding {
  return { host, instance_id: instanceId, action: `park: ${verb}`, evidence_hash: `run:${runId}` };
}

export function listApprovals(ledger: Ledger): ApprovalRecord[] {
  return ledger.read<ApprovalDoc>(DOC, { records: [] }).records;
}
