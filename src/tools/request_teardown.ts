/**
 * request_teardown — the Iron Law gate. In order: no live run (RUN_ACTIVE); pull receipts covering every
 * run's roster whose hashes the box still reproduces (UNVERIFIED_ARTIFACTS); billing-fact freshness (a
 * warning); a human approval bound to host + instance + action + evidence, single-use and expiring
 * (APPROVAL_REQUIRED / APPROVAL_DENIED / APPROVAL_INVALID). Only then is the meter stopped through the
 * provider adapter, or exact manual steps are returned where the platform has no API for it.
 * The policy itself lives in src/guard/teardown.ts; this file gathers facts and acts.
 */
import * as z from "zod";
import { defineTool, type ToolContext } from "../server/tool.js";
import { RefusalCode, RefusalError, refuse, warning, type Warning } from "../common/result.js";
import {
  checkApproval, checkEvidence, checkLiveRuns, latestReceipts, elicitationApproves, elicitationSchema, staleFactWarnings,
  type ApprovalBinding, type FreshHashes, type Refusal,
} from "../guard/teardown.js";
import { consumeApproval, decideApproval, findApproval, issueApproval, looksLikeApprovalId, type ApprovalSummary } from "../ledger/approvals.js";
import { listReceipts, type Receipt } from "../ledger/receipts.js";
import { artifactRoot, type RunRecord } from "../ledger/runs.js";
import { meterView, readMeters, recordTeardown } from "../ledger/meter.js";
import { remoteHashes } from "../remote/hashes.js";
import { liveRunsOn } from "../backends/index.js";
import { billingFactsStale } from "../knowledge/staleness.js";
import { getProfile } from "../knowledge/profiles.js";
import { hostInfo, ownSlurmJobIds, runsOnHost, type HostInfo } from "../ledger/hostinfo.js";
import { adapterFor, describeAction, manualSteps, type MeterStopSpec, type MeterStopTarget } from "../providers/index.js";
import { hostText } from "./fields.js";
import { setting } from "../common/config.js";

const PROVIDER_TIMEOUT_MS = 60_000;

function fail(r: Refusal): never {
  throw new RefusalError(r.code, r.reason, r.remedy, r.extra ?? {});
}

function elicitTimeoutMs(): number {
  return setting("RGT_ELICIT_TIMEOUT_S") * 1000;
}

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
      if (e instanceof RefusalError && ["UNREACHABLE", "AUTH_FAILED", "HOST_KEY_UNKNOWN", "HOST_KEY_CHANGED"].includes(e.refusal.code)) throw e;
      out[r.receipt_id] = { error: (e as Error).message.slice(0, 200) };
    }
  }
  return out;
}

/** Does the box hold any run state directory of ours? (one bounded round trip) */
async function boxHasOurState(ctx: ToolContext, host: string, info: HostInfo): Promise<boolean> {
  const durable = info.profile?.durable_dir ?? "";
  const dirs = ['"$HOME/.rgt/runs"', ...(durable && /^[A-Za-z0-9_./~$-]+$/.test(durable) ? [`${durable.replace(/^~/, '"$HOME"')}/.rgt/runs`] : [])];
  const cmd = `for d in ${dirs.join(" ")}; do if [ -d "$d" ] && [ -n "$(ls -A "$d" 2>/dev/null)" ]; then echo OURS; fi; done; true`;
  const r = await ctx.remote.exec(host, cmd, { timeoutMs: 20_000, maxOutputBytes: 4096, signal: ctx.signal });
  return r.stdout.includes("OURS");
}

function meterSpecOf(info: HostInfo): MeterStopSpec {
  const p = info.profile ?? getProfile("generic-ssh");
  if (p) return p.meter_stop;
  return { verb: "stop", irreversible: true, via: "console", manual_steps: [] };
}

export const requestTeardown = defineTool({
  name: "request_teardown",
  title: "Stop a host's meter, behind the Iron Law gate",
  description:
    "Stop a host's billing, only with no live run, verified pull receipts and a human's approval: the first call returns APPROVAL_REQUIRED and an approval_id.",
  input: {
    host: hostText(),
    action: z.string().min(1).max(64).optional(),
    approval_id: z.string().min(1).max(128).optional(),
  },
  output: {
    status: z.enum(["done", "manual_steps"]).optional(),
    action: z.string().optional(),
    irreversible: z.boolean().optional(),
    evidence: z.object({ receipt_ids: z.array(z.string()) }).optional(),
    steps: z.array(z.string()).optional(),
    performed: z.string().optional(),
    recheck: z.object({ gone: z.boolean().nullable(), detail: z.string() }).optional(),
    approval_id: z.string().optional(),
    approval: z.record(z.string(), z.unknown()).optional().describe("what the human is asked to approve"),
    how_to_approve: z.string().optional(),
  },
  effect: "destroy",
  meter: { reportsItself: true },
  async handler(args, ctx) {
    const { host } = args;
    const now = Date.now();
    const info = hostInfo(ctx.ledger, host, { strict: true });
    const meter = meterSpecOf(info);
    const profile = info.profile;

    // which action: the meter-stop verb (acted on by an adapter) or another listed action (manual only)
    const listed = (profile?.actions ?? []).map((a) => a.verb);
    const allowed = [meter.verb, ...listed.filter((v) => v !== meter.verb)];
    const asked = args.action?.trim();
    let action = meter.verb;
    let irreversible = meter.irreversible;
    let isMeterVerb = true;
    if (asked && asked !== "meter_stop") {
      // a verb written "关机 (shutdown)" also answers to "关机" and "shutdown"
      const names = (v: string) => { const m = /^(.*?)\s*\((.+)\)\s*$/.exec(v); return [v, ...(m ? [m[1], m[2]] : [])].map((x) => x.trim().toLowerCase()); };
      const hit = allowed.find((v) => names(v).includes(asked.toLowerCase()));
      if (!hit) refuse(RefusalCode.BAD_INPUT, `action: "${asked.slice(0, 40)}" is not an action the ${info.platform} profile knows`, `Use one of: ${allowed.map((v) => `"${v}"`).join(", ")} (or omit action for the meter-stop verb "${meter.verb}").`);
      action = hit;
      if (hit !== meter.verb) {
        isMeterVerb = false;
        irreversible = profile?.actions.find((a) => a.verb === hit)?.irreversible ?? true;
      }
    }

    const runs: RunRecord[] = runsOnHost(ctx.ledger, host);
    const k8s = info.registry?.namespace && info.registry?.job_name ? { namespace: info.registry.namespace, name: info.registry.job_name } : undefined;
    const target: MeterStopTarget = {
      host,
      platform: info.platform,
      meter_stop: isMeterVerb ? meter : { ...meter, verb: action, irreversible, via: "console", command: undefined },
      instance_id: info.instance_id,
      slurm_job_ids: ownSlurmJobIds(runs),
      k8s,
    };
    const adapter = isMeterVerb ? adapterFor(target) : undefined;
    if (adapter) {
      const m = adapter.missing(target, process.env);
      if (m) refuse(RefusalCode.BAD_INPUT, `${m.field}: needed to ${meter.verb} ${host} on ${info.platform}`, `${m.fix} Nothing was changed.`);
    }

    // 1. no live run
    const live = await liveRunsOn(ctx.remote, ctx.ledger, host);
    const liveRefusal = checkLiveRuns(host, live);
    if (liveRefusal) fail(liveRefusal);

    // 2. evidence: receipts covering each roster, still matching the box
    const receipts = latestReceipts(listReceipts(ctx.ledger, { host })) as Receipt[];
    const needBoxCheck = runs.length === 0 && receipts.length === 0 && !!asked;
    const nothingOfOurs = needBoxCheck ? !(await boxHasOurState(ctx, host, info)) : false;
    const fresh = await rehash(ctx, host, receipts);
    const ev = checkEvidence({
      host, runs, receipts, fresh, explicitAction: !!asked, boxHasNothingOfOurs: nothingOfOurs,
      artifactRoots: (run, cell) => {
        try { return [artifactRoot(run as RunRecord, cell)]; } catch { return []; }
      },
    });
    if (!ev.ok) fail(ev.refusal);
    const warnings: Warning[] = [...ev.warnings];

    // 3. billing facts fresh enough? (warning only)
    try {
      const st = billingFactsStale(info.platform);
      warnings.push(...staleFactWarnings(st.entries, `rgt://profiles/${info.platform}`));
    } catch { /* no profile facts to judge */ }
    if (!isMeterVerb) warnings.push(warning("MANUAL_ACTION", "info", `"${action}" is not the meter-stop verb "${meter.verb}" of ${info.platform}; it is returned as manual steps only.`));

    // 4. the human
    const binding: ApprovalBinding = { host, instance_id: info.instance_id ?? "", action, evidence_hash: ev.evidence_hash };
    const act = async (): Promise<Record<string, unknown> & { ok: boolean; warnings: Warning[] }> => {
      const evidence = { receipt_ids: ev.receipt_ids };
      if (!adapter) {
        const steps = manualSteps(target);
        await recordTeardown(ctx.ledger, host, { action, status: "manual_steps", outcome: "exact steps handed to the human; the meter runs until they are done" });
        return { ok: true, status: "manual_steps", action, irreversible, evidence, steps, warnings };
      }
      const out = await adapter.act(target, { remote: ctx.remote, env: process.env, timeoutMs: PROVIDER_TIMEOUT_MS });
      warnings.push(...out.warnings);
      const outcome = out.status === "done" ? `done: ${out.performed ?? ""}; recheck ${out.recheck ? out.recheck.detail : "n/a"}` : `failed: ${out.detail ?? ""}`;
      await recordTeardown(ctx.ledger, host, { action, status: out.status, outcome });
      if (out.status !== "done") {
        return {
          ok: false, action, irreversible, evidence, performed: out.performed, steps: manualSteps(target), warnings,
          refused: { code: "METER_STOP_FAILED", reason: `${out.performed ?? action} failed: ${(out.detail ?? "").slice(0, 300)}`, remedy: "The approval is spent. Stop the meter by hand with the steps listed, or fix the cause and request a new approval." },
        };
      }
      return { ok: true, status: "done", action, irreversible, evidence, performed: out.performed, recheck: out.recheck, warnings };
    };

    if (args.approval_id) {
      const id = args.approval_id;
      const rec = looksLikeApprovalId(id) ? findApproval(ctx.ledger, id) : undefined;
      const d = checkApproval(rec, binding, now, id);
      if (!d.ok) throw new RefusalError(d.refusal.code, d.refusal.reason, d.refusal.remedy, { ...(d.refusal.extra ?? {}), warnings });
      if (!(await consumeApproval(ctx.ledger, id))) {
        refuse(RefusalCode.APPROVAL_INVALID, "This approval was used or expired a moment ago.", `Call request_teardown { host: "${host}" } again for a fresh approval id.`);
      }
      return act();
    }

    const mv = readMeters(ctx.ledger)[host];
    const cost = mv ? meterView(host, mv, info.registry).cost_text : "unknown (host not seen by the meter yet)";
    const summary: ApprovalSummary = {
      platform: info.platform,
      verb: action,
      irreversible,
      via: adapter ? describeAction(target) : `manual steps (${meter.via})`,
      receipt_ids: ev.receipt_ids,
      cost_so_far: cost,
      warnings: warnings.map((w) => `${w.code}: ${w.message}`.slice(0, 240)).slice(0, 4),
    };
    const { id, record } = await issueApproval(ctx.ledger, binding, summary, now);
    const summaryOut = {
      host, platform: info.platform, instance_id: info.instance_id ?? null, action, irreversible,
      will_do: summary.via, receipts: ev.receipt_ids, covered: ev.covered, cost_so_far: cost,
      expires_at: new Date(record.expires_at).toISOString(),
    };

    if (ctx.elicit) {
      const msg = `Approve "${action}" of ${host} (${info.platform}${info.instance_id ? `, instance ${info.instance_id}` : ""})? ${irreversible ? "IRREVERSIBLE: the box's disk is deleted. " : ""}Evidence: ${ev.receipt_ids.length} verified pull receipt(s). Cost so far: ${cost}. Type the host name ${host} to approve; anything else means no.`;
      let answer: Awaited<ReturnType<NonNullable<ToolContext["elicit"]>>>;
      try { answer = await ctx.elicit(msg, elicitationSchema(host), elicitTimeoutMs()); } catch { answer = undefined; }
      const verdict = elicitationApproves(host, answer);
      if (verdict === "approved") {
        await decideApproval(ctx.ledger, id, "approved", "elicitation");
        if (!(await consumeApproval(ctx.ledger, id))) refuse(RefusalCode.APPROVAL_INVALID, "The approval expired before it could be used.", "Request teardown again.");
        return act();
      }
      if (verdict === "denied") {
        await decideApproval(ctx.ledger, id, "denied", "elicitation").catch(() => undefined);
        refuse(RefusalCode.APPROVAL_DENIED, `The human did not confirm by typing ${host}; nothing was stopped.`, "Ask the user before requesting teardown again.", { approval: summaryOut, warnings });
      }
    }

    refuse(
      RefusalCode.APPROVAL_REQUIRED,
      `Teardown of ${host} needs a human's approval (gates passed: no live run, ${ev.receipt_ids.length} receipt(s) still match the box).`,
      `Ask the user to run \`rgt approve ${id}\` in their own terminal (it shows this summary and asks them to type the host name), then call request_teardown again with this approval_id before ${summaryOut.expires_at}.`,
      { approval_id: id, approval: summaryOut, how_to_approve: `rgt approve ${id}`, warnings },
    );
  },
});
