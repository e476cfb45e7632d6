/**
 * The Iron Law, as pure policy: given what the ledger and the box said, may this host's meter be stopped?
 * No I/O here; request_teardown gathers the facts and this module decides.
 *
 * Order of the checks (TOOLS.md): live run → evidence (receipts covering every run's roster, whose
 * hashes the box still reproduces) → billing-fact freshness (a warning, never a block) → human approval.
 *
 * Evidence policy, decided here and documented:
 *  - Every run recorded on the host needs a receipt covering each of its cells' roster entries
 *    (`expect`) on that host. A run with no roster needs at least one receipt tied to it.
 *  - A receipt "still holds" only when the box, re-hashing now, reports the same sha256 for every file
 *    in it. A changed file means the box holds something newer than what was pulled. A file that is
 *    gone also fails closed: the gate cannot tell a deliberate clean-up from a lost artifact.
 *  - A host with no runs of ours and no receipts is refused (UNVERIFIED_ARTIFACTS), except when the
 *    caller named the action explicitly AND nothing of ours was ever launched there (no run in the
 *    ledger, no run state directory on the box). Then the gate goes on to the human with a
 *    NO_EVIDENCE warning: the human alone decides, knowing nothing was verified.
 *  - Every receipt on the host must hold, even one no roster needs: it is evidence the user asked for,
 *    and a drift there means the box has something newer. A newer pull of the same source (same
 *    remote_path and run) supersedes the older receipt, so pulling again clears a stale one.
 *  - A receipt is evidence only against an explicit roster (issue 12.6): the run's `expect`; for a run
 *    without one, or a host with no run of ours, the roster given at pull time (`receipt.roster`) or
 *    the checkpoints the box holds under the profile's data/durable dirs (every one must be in a
 *    receipt). A pull of a directory with none of these never satisfies the gate.
 *
 * `decide(facts)` at the end is the one entry point request_teardown uses: local facts first (which
 * action, is the adapter configured, is this a machine that bills at all), then the box's facts, then
 * the approval.
 */
import { createHash } from "node:crypto";
import * as path from "node:path";
import { RefusalCode, warning, type Warning } from "../common/result.js";

export interface TeardownRun {
  run_id: string;
  hosts: string[];
  expect: string[];
  cells: { name: string; host: string; output_dir: string }[];
  durable_dir?: string;
}

export interface TeardownReceipt {
  receipt_id: string;
  host: string;
  remote_path: string;
  run_id?: string;
  files: { path: string; bytes: number; sha256: string }[];
  manifest_sha256: string;
  created_at: string;
  /** the roster the pull was checked against (pull_verify's `expect`); empty or absent = none */
  roster?: string[];
}

export interface FreshHash { path: string; bytes: number; sha256: string }

/** receipt_id → what the box reports now for that receipt's root (or the error that stopped it). */
export type FreshHashes = Record<string, FreshHash[] | { error: string }>;

export interface LiveRun { run_id: string; cells_running: string[] }

export interface StaleFact { platform: string; section: string; fact: string; verified: string; age_months: number }

export interface Refusal { code: string; reason: string; remedy: string; extra?: Record<string, unknown> }

export interface EvidenceInput {
  host: string;
  runs: TeardownRun[];
  receipts: TeardownReceipt[];
  fresh: FreshHashes;
  /** true when the caller passed `action` explicitly */
  explicitAction: boolean;
  /** true when the box shows no run state directory of ours */
  boxHasNothingOfOurs: boolean;
  /** extra roots a run's artifacts may be copied to (e.g. <durable_dir>/rgt/<run>/<cell>) */
  artifactRoots?: (run: TeardownRun, cell: string) => string[];
  /** checkpoint files the box holds under the profile's data/durable dirs (absolute); null/absent = not looked */
  checkpoints?: string[] | null;
  /** the box's $HOME, so a receipt rooted at "~/x" compares with absolute checkpoint paths */
  home?: string;
}

export type EvidenceDecision =
  | { ok: true; receipt_ids: string[]; evidence_hash: string; warnings: Warning[]; covered: { run_id: string; artifacts: number }[] }
  | { ok: false; refusal: Refusal };

/** Normalise a remote path for comparison ("~/x" and "$HOME/x" are kept as written; no fs access). */
function norm(p: string): string {
  const n = path.posix.normalize(p.replace(/\/+$/, ""));
  return n === "." ? "" : n;
}

function absOf(receipt: TeardownReceipt, file: string): string {
  return norm(path.posix.join(receipt.remote_path, file));
}

/** Does `receipt` contain the roster entry `entry` of `cell` of `run`? */
export function receiptCovers(receipt: TeardownReceipt, run: TeardownRun, cell: { name: string; output_dir: string }, entry: string,
    extraRoots: string[] = []): boolean {
  const wanted = new Set([cell.output_dir, ...extraRoots].filter(Boolean).map((r) => norm(path.posix.join(r, entry))));
  const cellsOfRun = run.cells.length;
  for (const f of receipt.files) {
    if (wanted.has(absOf(receipt, f.path))) return true;
    if (receipt.run_id === run.run_id) {
      const rel = norm(f.path);
      if (rel === norm(`${cell.name}/${entry}`) || rel.endsWith(`/${norm(`${cell.name}/${entry}`)}`)) return true;
      // a receipt pulled straight from the cell's own dir names the entry bare
      if (rel === norm(entry) && (cellsOfRun === 1 || norm(receipt.remote_path).endsWith(`/${cell.name}`))) return true;
    }
  }
  return false;
}

/** A receipt holds when the box reproduces every file's sha256. Returns the first difference, or null. */
export function receiptDrift(receipt: TeardownReceipt, fresh: FreshHashes): string | null {
  const now = fresh[receipt.receipt_id];
  if (!now) return "the box was not asked to re-hash it";
  if (!Array.isArray(now)) return `re-hashing on the box failed: ${now.error}`;
  const byPath = new Map(now.map((h) => [norm(h.path), h]));
  for (const f of receipt.files) {
    const h = byPath.get(norm(f.path));
    if (!h) return `${f.path} is no longer on the box`;
    if (h.sha256 !== f.sha256) return `${f.path} changed on the box after the pull (sha256 ${f.sha256.slice(0, 12)}… → ${h.sha256.slice(0, 12)}…)`;
  }
  return null;
}

/** One hash over the manifests of the receipts that back a teardown (order-independent). */
export function evidenceHash(host: string, receipts: Pick<TeardownReceipt, "receipt_id" | "manifest_sha256">[]): string {
  const lines = receipts.map((r) => `${r.receipt_id}:${r.manifest_sha256}`).sort();
  return createHash("sha256").update(`host=${host}\n${lines.join("\n")}`).digest("hex");
}

/**
 * A newer pull of the same source (same remote_path and run) supersedes the older receipt: only the
 * newest one per source is evidence, so re-pulling after a change on the box clears a stale receipt.
 */
export function latestReceipts(receipts: TeardownReceipt[]): TeardownReceipt[] {
  const best = new Map<string, TeardownReceipt>();
  for (const r of receipts) {
    const k = `${norm(r.remote_path)}|${r.run_id ?? ""}`;
    const cur = best.get(k);
    if (!cur || r.created_at > cur.created_at) best.set(k, r);
  }
  return [...best.values()];
}

const hasRoster = (r: TeardownReceipt): boolean => (r.roster?.length ?? 0) > 0;

function expandHome(p: string, home: string | undefined): string {
  if (!home) return p;
  if (p === "~" || p === "$HOME") return home;
  if (p.startsWith("~/")) return `${home}/${p.slice(2)}`;
  if (p.startsWith("$HOME/")) return `${home}/${p.slice(6)}`;
  return p;
}

/**
 * The checkpoints found on the box, as a roster: null when none was found (or nobody looked), else the
 * ones no receipt holds (by absolute path).
 */
export function uncoveredCheckpoints(receipts: TeardownReceipt[], checkpoints: string[] | null | undefined, home?: string): string[] | null {
  if (!checkpoints || checkpoints.length === 0) return null;
  const held = new Set<string>();
  for (const r of receipts) for (const f of r.files) held.add(norm(path.posix.join(expandHome(r.remote_path, home), f.path)));
  return checkpoints.filter((c) => !held.has(norm(expandHome(c, home))));
}

export function checkLiveRuns(host: string, live: LiveRun[]): Refusal | null {
  const active = live.filter((r) => r.cells_running.length > 0);
  if (active.length === 0) return null;
  const list = active.slice(0, 5).map((r) => `${r.run_id} (${r.cells_running.slice(0, 4).join(", ")}${r.cells_running.length > 4 ? ", …" : ""})`).join("; ");
  return {
    code: RefusalCode.RUN_ACTIVE,
    reason: `${active.length} run(s) still running on ${host}: ${list}`,
    remedy: "Let the run finish (watch it with run_status) or stop it with stop_run, then pull_verify its artifacts and ask again.",
    extra: { live_runs: active.slice(0, 5) },
  };
}

export function checkEvidence(inp: EvidenceInput): EvidenceDecision {
  const { host } = inp;
  const receipts = latestReceipts(inp.receipts.filter((r) => r.host === host));
  const runs = inp.runs.filter((r) => r.hosts.includes(host) || r.cells.some((c) => c.host === host));
  const warnings: Warning[] = [];
  const pullHint = (what: string) => `Run pull_verify { host: "${host}", ${what} } until it returns ok:true, then ask for teardown again.`;
  const rosterHint = pullHint(`remote_path: "<results dir>", local_dir: "<local dir>", expect: ["best.pth", ...]`);
  const uncovered = uncoveredCheckpoints(receipts, inp.checkpoints, inp.home);
  const refuse = (reason: string, remedy: string, extra?: Record<string, unknown>): EvidenceDecision =>
    ({ ok: false, refusal: { code: RefusalCode.UNVERIFIED_ARTIFACTS, reason, remedy, ...(extra ? { extra } : {}) } });

  if (runs.length === 0 && receipts.length === 0) {
    if (uncovered && uncovered.length > 0) {
      return refuse(`${host} holds ${uncovered.length} checkpoint(s) in the profile's data/durable dirs (${uncovered.slice(0, 4).join(", ")}) and nothing was pulled from it.`, rosterHint, { missing: uncovered.slice(0, 20) });
    }
    if (inp.explicitAction && inp.boxHasNothingOfOurs) {
      warnings.push(warning("NO_EVIDENCE", "danger", `Nothing of ours was ever launched on ${host} and nothing was pulled from it, so no artifact was verified; the human approving decides alone.`));
      return { ok: true, receipt_ids: [], evidence_hash: evidenceHash(host, []), warnings, covered: [] };
    }
    return refuse(
      `No pull receipt exists for ${host}${inp.runs.length ? ` (${inp.runs.length} run(s) recorded there)` : ""}, so nothing proves the results are off the box.`,
      pullHint(`remote_path: "<results dir>", local_dir: "<local dir>", expect: [...]`) +
        (inp.boxHasNothingOfOurs ? " If the box truly holds nothing you need, pass `action` explicitly to go to the human without evidence." : ""),
    );
  }

  // 1. roster coverage, run by run
  const used = new Set<string>();
  const covered: { run_id: string; artifacts: number }[] = [];
  for (const run of runs) {
    const cells = run.cells.filter((c) => c.host === host);
    const gaps: string[] = [];
    let count = 0;
    if (run.expect.length === 0) {
      const tied = receipts.filter((r) => r.run_id === run.run_id || cells.some((c) => norm(r.remote_path).startsWith(norm(c.output_dir))));
      const withRoster = tied.filter(hasRoster);
      if (withRoster.length > 0) {
        for (const r of withRoster) { used.add(r.receipt_id); count += r.roster!.length; }
      } else if (uncovered && uncovered.length === 0) {
        for (const r of tied) used.add(r.receipt_id);
        count = inp.checkpoints!.length;
      } else if (uncovered) {
        gaps.push(...uncovered);
      } else {
        gaps.push(tied.length ? `(no roster: run ${run.run_id} has no expect, its receipt(s) ${tied.map((r) => r.receipt_id).join(", ")} were pulled without one and no checkpoint was found)` : "(no roster and no receipt tied to this run)");
      }
    } else {
      for (const cell of cells) {
        const roots = inp.artifactRoots ? inp.artifactRoots(run, cell.name) : [];
        for (const entry of run.expect) {
          const hit = receipts.find((r) => receiptCovers(r, run, cell, entry, roots));
          if (hit) { used.add(hit.receipt_id); count++; } else gaps.push(`${cell.name}/${entry}`);
        }
      }
    }
    if (gaps.length > 0) {
      const noRoster = gaps.length === 1 && gaps[0].startsWith("(no roster");
      return refuse(
        `No receipt covers run ${run.run_id} on ${host}: missing ${gaps.slice(0, 6).join(", ")}${gaps.length > 6 ? ` and ${gaps.length - 6} more` : ""}.`,
        noRoster ? rosterHint : pullHint(`run_id: "${run.run_id}", local_dir: "<local dir>"`),
        { run_id: run.run_id, missing: gaps.slice(0, 20) },
      );
    }
    covered.push({ run_id: run.run_id, artifacts: count });
  }
  // a host with no run of ours: the receipts must cover a roster given at pull time, or the checkpoints found
  if (runs.length === 0 && !receipts.some(hasRoster)) {
    if (!uncovered) {
      return refuse(
        `The receipt(s) for ${host} (${receipts.map((r) => r.receipt_id).slice(0, 4).join(", ")}) were pulled without a roster and no checkpoint was found in the profile's data/durable dirs, so nothing says the pull holds every result.`,
        rosterHint, { receipt_ids: receipts.map((r) => r.receipt_id).slice(0, 8) },
      );
    }
    if (uncovered.length > 0) {
      return refuse(`${uncovered.length} checkpoint(s) on ${host} are in no receipt: ${uncovered.slice(0, 4).join(", ")}.`, rosterHint, { missing: uncovered.slice(0, 20) });
    }
  }
  // receipts not needed by any roster still count as evidence the user produced; they must hold too
  for (const r of receipts) used.add(r.receipt_id);

  // 2. every receipt we lean on must still hold on the box
  const chosen = receipts.filter((r) => used.has(r.receipt_id));
  for (const r of chosen) {
    const drift = receiptDrift(r, inp.fresh);
    if (drift) {
      return refuse(
        `Receipt ${r.receipt_id} (${r.remote_path}) no longer matches the box: ${drift}.`,
        pullHint(r.run_id ? `run_id: "${r.run_id}", local_dir: "<local dir>"` : `remote_path: "${r.remote_path}", local_dir: "<local dir>"`) +
          " A file deliberately removed after the pull cannot be told apart from a lost one; if so, stop the meter by hand.",
        { receipt_id: r.receipt_id },
      );
    }
  }
  const ids = chosen.map((r) => r.receipt_id).sort();
  return { ok: true, receipt_ids: ids, evidence_hash: evidenceHash(host, chosen), warnings, covered };
}

/** Billing facts past their freshness threshold become warnings (never a block). */
export function staleFactWarnings(stale: StaleFact[], ref?: string): Warning[] {
  if (stale.length === 0) return [];
  const first = stale.slice(0, 3).map((s) => `${s.platform} ${s.section}: "${s.fact.slice(0, 80)}" (verified ${s.verified}, ${s.age_months} months ago)`).join("; ");
  return [warning("STALE_FACT", "warn", `${stale.length} billing fact(s) this teardown relies on may be out of date: ${first}. Re-check the platform's current docs before approving.`, ref)];
}

// ---------------------------------------------------------------- approvals

export interface ApprovalBinding {
  host: string;
  instance_id: string;
  action: string;
  evidence_hash: string;
}

export type ApprovalState = "pending" | "approved" | "denied" | "used";

export interface ApprovalView extends ApprovalBinding {
  state: ApprovalState;
  expires_at: number; // epoch ms
}

export type ApprovalDecision =
  | { ok: true }
  | { ok: false; refusal: Refusal };

/**
 * Check a presented approval against the binding this call would act on.
 * `record` is undefined when the id matches nothing (forged, mistyped, from another RGT_HOME).
 */
export function checkApproval(record: ApprovalView | undefined, want: ApprovalBinding, now: number, approvalId: string): ApprovalDecision {
  const again = `Call request_teardown { host: "${want.host}" } without approval_id to get a fresh approval id, and have the human approve that one.`;
  const invalid = (reason: string): ApprovalDecision => ({ ok: false, refusal: { code: RefusalCode.APPROVAL_INVALID, reason, remedy: again } });
  if (!record) return invalid("This approval id matches no approval issued by this server (forged, mistyped, or from another state directory).");
  if (record.state === "used") return invalid("This approval was already used once; approvals are single-use.");
  if (now >= record.expires_at) return invalid(`This approval expired at ${new Date(record.expires_at).toISOString()}.`);
  const diffs: string[] = [];
  if (record.host !== want.host) diffs.push(`host (${record.host}, not ${want.host})`);
  if (record.instance_id !== want.instance_id) diffs.push("instance");
  if (record.action !== want.action) diffs.push(`action (${record.action}, not ${want.action})`);
  if (record.evidence_hash !== want.evidence_hash) diffs.push("receipts (the pulled evidence changed since it was issued)");
  if (diffs.length > 0) return invalid(`This approval is bound to something else: ${diffs.join(", ")}.`);
  if (record.state === "denied") {
    return { ok: false, refusal: { code: RefusalCode.APPROVAL_DENIED, reason: "The human declined this teardown.", remedy: "Nothing was stopped. Ask the user before requesting teardown again." } };
  }
  if (record.state === "pending") {
    return {
      ok: false,
      refusal: {
        code: RefusalCode.APPROVAL_REQUIRED,
        reason: "The human has not approved this teardown yet.",
        remedy: `Ask the user to run \`rgt approve ${approvalId}\` in their own terminal, then call request_teardown again with this approval_id.`,
        extra: { approval_id: approvalId },
      },
    };
  }
  return { ok: true };
}

/** The elicitation answer counts as approval only when the human typed the host name exactly. */
export function elicitationApproves(host: string, answer: { action: string; content?: Record<string, unknown> } | undefined): "approved" | "denied" | "no_answer" {
  if (!answer) return "no_answer";
  if (answer.action === "decline") return "denied";
  if (answer.action !== "accept") return "no_answer";
  const typed = answer.content?.confirm_host;
  if (typeof typed === "string" && typed.trim() === host) return "approved";
  return "denied";
}

/** The elicitation form: one string field, deliberately NOT marked required (see the issue). */
export function elicitationSchema(host: string): Record<string, unknown> {
  return {
    type: "object",
    properties: {
      confirm_host: {
        type: "string",
        title: "Type the host name to approve",
        description: `Type ${host} exactly to approve. Anything else, or nothing, means no.`,
      },
    },
  };
}

// ---------------------------------------------------------------- the one decision

/** What the ledger, the knowledge and the box said, gathered by src/teardown/facts.ts. No I/O behind it. */
export interface TeardownFacts {
  host: string;
  now: number;
  platform: string;
  /** the profile's kind; "workstation" is the user's own machine (profiles/local.md): nothing bills */
  kind: string;
  instance_id: string;
  meter: { verb: string; irreversible: boolean; via: string };
  /** other lifecycle actions the profile lists */
  actions: { verb: string; irreversible: boolean }[];
  /** the caller's `action`, as given */
  asked?: string;
  /** the adapter that stops this platform's meter: its name and what it still lacks; null = a human's job */
  adapter: { name: string; describe: string; missing: { field: string; fix: string } | null } | null;
  runs: TeardownRun[];
  receipts: TeardownReceipt[];
  artifactRoots?: (run: TeardownRun, cell: string) => string[];
  stale: StaleFact[];
  staleRef?: string;
  /** the approval the caller presented, if any, and what the ledger holds for it */
  approval?: { id: string; record: ApprovalView | undefined };
  /** what the box said; absent until the local facts have passed (no connection for a BAD_INPUT) */
  box?: {
    live: LiveRun[];
    fresh: FreshHashes;
    hasOurState: boolean;
    checkpoints: string[] | null;
    home?: string;
  };
}

export type TeardownPlan = { via: "provider"; adapter: string; describe: string } | { via: "manual"; describe: string };

export interface TeardownVerdict {
  action: string;
  irreversible: boolean;
  binding: ApprovalBinding;
  evidence: { receipt_ids: string[]; covered: { run_id: string; artifacts: number }[] };
  plan: TeardownPlan;
  warnings: Warning[];
}

export type TeardownDecisionResult =
  | { kind: "refuse"; refusal: Refusal; warnings: Warning[] }
  /** the local facts pass: gather the box's and decide again */
  | { kind: "need_box"; action: string; meterVerb: boolean }
  /** everything holds; a human must approve (an approval id is issued, elicitation may be tried) */
  | ({ kind: "ask" } & TeardownVerdict)
  /** a valid approval was presented: consume it and act */
  | ({ kind: "act"; approval_id: string } & TeardownVerdict);

/** "关机 (shutdown)" also answers to "关机" and "shutdown". */
function verbNames(v: string): string[] {
  const m = /^(.*?)\s*\((.+)\)\s*$/.exec(v);
  return [v, ...(m ? [m[1], m[2]] : [])].map((x) => x.trim().toLowerCase());
}

/** Which action the call means: the meter-stop verb or another listed action, or a refusal. */
export function resolveAction(f: Pick<TeardownFacts, "meter" | "actions" | "asked" | "platform">): { action: string; irreversible: boolean; meterVerb: boolean } | Refusal {
  const listed = f.actions.map((a) => a.verb);
  const allowed = [f.meter.verb, ...listed.filter((v) => v !== f.meter.verb)];
  const asked = f.asked?.trim();
  if (!asked || asked === "meter_stop") return { action: f.meter.verb, irreversible: f.meter.irreversible, meterVerb: true };
  const hit = allowed.find((v) => verbNames(v).includes(asked.toLowerCase()));
  if (!hit) {
    return {
      code: RefusalCode.BAD_INPUT,
      reason: `action: "${asked.slice(0, 40)}" is not an action the ${f.platform} profile knows`,
      remedy: `Use one of: ${allowed.map((v) => `"${v}"`).join(", ")} (or omit action for the meter-stop verb "${f.meter.verb}").`,
    };
  }
  if (hit === f.meter.verb) return { action: hit, irreversible: f.meter.irreversible, meterVerb: true };
  return { action: hit, irreversible: f.actions.find((a) => a.verb === hit)?.irreversible ?? true, meterVerb: false };
}

const isRefusal = (x: object): x is Refusal => "code" in x;

/**
 * The Iron Law in one pure function. Order: is there a meter at all → which action → is its adapter
 * configured → (box facts) live run → evidence against a roster → stale billing facts (warning) →
 * the approval. Call it with `box` absent first; a `need_box` answer means gather the box's facts and
 * call again.
 */
export function decide(f: TeardownFacts): TeardownDecisionResult {
  const refuse = (refusal: Refusal, warnings: Warning[] = []): TeardownDecisionResult => ({ kind: "refuse", refusal, warnings });
  if (f.kind === "workstation") {
    return refuse({
      code: RefusalCode.BAD_INPUT,
      reason: `host: ${f.host} uses the ${f.platform} profile — the user's own machine, with no meter to stop; teardown never applies to it`,
      remedy: "Nothing to tear down. To free the GPU, stop the run with stop_run; if this host is in fact a rental, set its profile in registry.yaml.",
    });
  }
  const a = resolveAction(f);
  if (isRefusal(a)) return refuse(a);
  const adapter = a.meterVerb ? f.adapter : null;
  if (adapter?.missing) {
    return refuse({ code: RefusalCode.BAD_INPUT, reason: `${adapter.missing.field}: needed to ${f.meter.verb} ${f.host} on ${f.platform}`, remedy: `${adapter.missing.fix} Nothing was changed.` });
  }
  if (!f.box) return { kind: "need_box", action: a.action, meterVerb: a.meterVerb };

  const live = checkLiveRuns(f.host, f.box.live);
  if (live) return refuse(live);

  const noRunsNoReceipts = f.runs.length === 0 && f.receipts.filter((r) => r.host === f.host).length === 0;
  const ev = checkEvidence({
    host: f.host, runs: f.runs, receipts: f.receipts, fresh: f.box.fresh, explicitAction: !!f.asked,
    boxHasNothingOfOurs: noRunsNoReceipts && !!f.asked && !f.box.hasOurState,
    artifactRoots: f.artifactRoots, checkpoints: f.box.checkpoints, home: f.box.home,
  });
  if (!ev.ok) return refuse(ev.refusal);

  const warnings: Warning[] = [...ev.warnings, ...staleFactWarnings(f.stale, f.staleRef)];
  if (!a.meterVerb) warnings.push(warning("MANUAL_ACTION", "info", `"${a.action}" is not the meter-stop verb "${f.meter.verb}" of ${f.platform}; it is returned as manual steps only.`));
  const binding: ApprovalBinding = { host: f.host, instance_id: f.instance_id, action: a.action, evidence_hash: ev.evidence_hash };
  const plan: TeardownPlan = adapter ? { via: "provider", adapter: adapter.name, describe: adapter.describe } : { via: "manual", describe: `manual steps (${f.meter.via})` };
  const verdict: TeardownVerdict = { action: a.action, irreversible: a.irreversible, binding, evidence: { receipt_ids: ev.receipt_ids,
    covered: ev.covered }, plan, warnings };

  if (f.approval) {
    const d = checkApproval(f.approval.record, binding, f.now, f.approval.id);
    if (!d.ok) return refuse(d.refusal, warnings);
    return { kind: "act", approval_id: f.approval.id, ...verdict };
  }
  return { kind: "ask", ...verdict };
}
