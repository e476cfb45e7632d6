/**
 * Teardown, step 1: gather the facts. The ledger (host, runs, receipts, approvals), the knowledge
 * (profile, stale billing stamps) and the box (live runs, fresh hashes of every receipt, our state dirs,
 * checkpoints under the profile's data/durable dirs) are read here; src/guard/teardown.ts decides.
 * The box is asked only once the local facts pass (decide answers need_box).
 */
import { RefusalError } from "../common/result.js";
import type { ToolContext } from "../server/tool.js";
import type { FreshHashes, TeardownFacts, TeardownReceipt } from "../guard/teardown.js";
import { findApproval, looksLikeApprovalId } from "../ledger/approvals.js";
import { listReceipts, rosterOf, type Receipt } from "../ledger/receipts.js";
import { artifactRoot, type RunRecord } from "../ledger/runs.js";
import { hostInfo, ownSlurmJobIds, runsOnHost, type HostInfo } from "../ledger/hostinfo.js";
import { remoteHashes } from "../remote/hashes.js";
import { liveRunsOn } from "../backends/index.js";
import { billingFactsStale } from "../knowledge/staleness.js";
import { getProfile } from "../knowledge/profiles.js";
import { adapterFor, type MeterStopSpec, type MeterStopTarget } from "../providers/index.js";
import { latestReceipts } from "../guard/teardown.js";

export interface Gathered {
  facts: TeardownFacts;
  info: HostInfo;
  runs: RunRecord[];
  receipts: Receipt[];
  /** the target an adapter acts on, for the meter verb or (manual only) another action */
  target(action: string, meterVerb: boolean): MeterStopTarget;
}

function meterSpecOf(info: HostInfo): MeterStopSpec {
  const p = info.profile ?? getProfile("generic-ssh");
  if (p) return p.meter_stop;
  return { verb: "stop", irreversible: true, via: "console", manual_steps: [] };
}

const CONNECTION_CODES = ["UNREACHABLE", "AUTH_FAILED", "HOST_KEY_UNKNOWN", "HOST_KEY_CHANGED"];

/** Re-hash every receipt's files on the box (one round trip per receipt root). */
async function rehash(ctx: ToolContext, host: string, receipts: Receipt[]): Promise<FreshHashes> {
  const out: FreshHashes = {};
  for (const r of receipts) {
    try {
      if (r.cells && r.cells.length > 0) {
        const all: { path: string; bytes: number; sha256: string }[] = [];
        for (const c of r.cells) {
          const prefix = `${c.name}/`;
          const rels = r.files.filter((f) => f.path.startsWith(prefix)).map((f) => f.path.slice(prefix.length));
          if (rels.length === 0) continue;
          const hs = await remoteHashes(ctx.remote, host, c.remote_dir, rels);
          for (const h of hs) all.push({ ...h, path: `${prefix}${h.path}` });
        }
        out[r.receipt_id] = all;
      } else {
        out[r.receipt_id] = await remoteHashes(ctx.remote, host, r.remote_path, r.files.map((f) => f.path));
      }
    } catch (e) {
      if (e instanceof RefusalError && CONNECTION_CODES.includes(e.refusal.code)) throw e;
      out[r.receipt_id] = { error: (e as Error).message.slice(0, 200) };
    }
  }
  return out;
}

const SAFE_DIR = /^[A-Za-z0-9_./~$-]+$/;

/** Our run state dirs and the checkpoints under the profile's data/durable dirs (scripts/teardown_facts.sh). */
async function boxState(ctx: ToolContext, host: string, info: HostInfo): Promise<{ hasOurState: boolean; checkpoints: string[] | null; home?: string }> {
  const durable = info.profile?.durable_dir ?? "";
  const data = info.profile?.data_dir ?? "";
  const args: string[] = ["--state", "~/.rgt/runs"];
  if (durable && SAFE_DIR.test(durable)) args.push("--state", `${durable.replace(/\/+$/, "")}/.rgt/runs`);
  const scans = [...new Set([data, durable].filter((d) => d && SAFE_DIR.test(d) && !d.includes("$TMPDIR")))];
  for (const d of scans) args.push("--scan", d);
  const r = await ctx.remote.runScript(host, "teardown_facts.sh", args, { timeoutMs: 45_000, maxOutputBytes: 64 * 1024, signal: ctx.signal });
  const rows = r.stdout.split("\n").filter(Boolean).map((l) => l.split("\t"));
  const done = rows.some((x) => x[0] === "DONE");
  const ckpts = rows.filter((x) => x[0] === "CKPT").map((x) => x[1]);
  return {
    hasOurState: rows.some((x) => x[0] === "OURS") || !done,
    // an output cut short counts what it listed; a scan that never ran (no dirs) is "not looked"
    checkpoints: scans.length === 0 ? null : ckpts,
    home: rows.find((x) => x[0] === "HOME")?.[1],
  };
}

function asTeardownReceipt(r: Receipt): TeardownReceipt {
  return { receipt_id: r.receipt_id, host: r.host, remote_path: r.remote_path, run_id: r.run_id, files: r.files, manifest_sha256: r.manifest_sha256,
    created_at: r.created_at, roster: rosterOf(r) };
}

/** The ledger's and the knowledge's facts: no connection. */
export function gatherLocal(ctx: ToolContext, host: string, args: { action?: string; approval_id?: string }, now = Date.now()): Gathered {
  const info = hostInfo(ctx.ledger, host, { strict: true });
  const meter = meterSpecOf(info);
  const runs = runsOnHost(ctx.ledger, host);
  const receipts = latestReceipts(listReceipts(ctx.ledger, { host })) as Receipt[];
  const k8s = info.registry?.namespace && info.registry?.job_name ? { namespace: info.registry.namespace, name: info.registry.job_name } : undefined;
  const target = (action: string, meterVerb: boolean): MeterStopTarget => ({
    host, platform: info.platform, instance_id: info.instance_id, slurm_job_ids: ownSlurmJobIds(runs), k8s,
    meter_stop: meterVerb ? meter : { ...meter, verb: action, via: "console", command: undefined },
  });
  const t = target(meter.verb, true);
  const adapter = adapterFor(t);
  let stale: TeardownFacts["stale"] = [];
  try { stale = billingFactsStale(info.platform).entries; } catch { /* no profile facts to judge */ }
  const id = args.approval_id;
  const facts: TeardownFacts = {
    host, now, platform: info.platform, kind: info.profile?.kind ?? "generic", instance_id: info.instance_id ?? "",
    meter: { verb: meter.verb, irreversible: meter.irreversible, via: meter.via },
    actions: (info.profile?.actions ?? []).map((a) => ({ verb: a.verb, irreversible: a.irreversible })),
    asked: args.action,
    adapter: adapter ? { name: adapter.name, describe: adapter.describe(t), missing: adapter.missing(t, process.env) } : null,
    runs, receipts: receipts.map(asTeardownReceipt),
    artifactRoots: (run, cell) => { try { return [artifactRoot(run as RunRecord, cell)]; } catch { return []; } },
    stale, staleRef: `rgt://profiles/${info.platform}`,
    ...(id ? { approval: { id, record: looksLikeApprovalId(id) ? findApproval(ctx.ledger, id) : undefined } } : {}),
  };
  return { facts, info, runs, receipts, target };
}

/** The box's facts: live runs, fresh hashes, our state and its checkpoints. */
export async function gatherBox(ctx: ToolContext, g: Gathered): Promise<NonNullable<TeardownFacts["box"]>> {
  const host = g.facts.host;
  const live = await liveRunsOn(ctx.remote, ctx.ledger, host);
  const state = await boxState(ctx, host, g.info);
  const fresh = await rehash(ctx, host, g.receipts);
  return { live, fresh, ...state };
}
