/**
 * Teardown, step 3: act on the decision. Provider adapters stop the meter (every call bounded, the
 * post-stop check polls until the provider says gone, bounded too); console-only platforms get the
 * profile's exact steps. Asking the human (approval id, elicitation) is here as well.
 */
import { RefusalCode, refuse, type Warning } from "../common/result.js";
import type { ToolContext } from "../server/tool.js";
import { elicitationApproves, elicitationSchema, type TeardownVerdict } from "../guard/teardown.js";
import { consumeApproval, decideApproval, issueApproval, type ApprovalSummary } from "../ledger/approvals.js";
import { meterView, readMeters, recordTeardown } from "../ledger/meter.js";
import { adapterFor, manualSteps, type MeterStopTarget } from "../providers/index.js";
import { pollSettings } from "../providers/poll.js";
import type { Gathered } from "./facts.js";
import { setting } from "../common/config.js";

const PROVIDER_TIMEOUT_MS = 60_000;

type Out = Record<string, unknown> & { ok: boolean; warnings: Warning[] };

function elicitTimeoutMs(): number {
  return setting("RGT_ELICIT_TIMEOUT_S") * 1000;
}

/** Stop the meter (or hand over the steps) and record what happened. The approval is already spent. */
export async function act(ctx: ToolContext, host: string, v: TeardownVerdict, target: MeterStopTarget): Promise<Out> {
  const { action, irreversible } = v;
  const evidence = { receipt_ids: v.evidence.receipt_ids };
  const warnings = [...v.warnings];
  const adapter = v.plan.via === "provider" ? adapterFor(target) : undefined;
  if (!adapter) {
    await recordTeardown(ctx.ledger, host, { action, status: "manual_steps", outcome: "exact steps handed to the human; the meter runs until they are done" });
    return { ok: true, status: "manual_steps", action, irreversible, evidence, steps: manualSteps(target), warnings };
  }
  const out = await adapter.act(target, { remote: ctx.remote, env: process.env, timeoutMs: PROVIDER_TIMEOUT_MS, poll: pollSettings(process.env) });
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
}

/** Spend a presented approval (single-use) and act. */
export async function actApproved(ctx: ToolContext, g: Gathered, v: TeardownVerdict & { approval_id: string }, meterVerb: boolean): Promise<Out> {
  if (!(await consumeApproval(ctx.ledger, v.approval_id))) {
    refuse(RefusalCode.APPROVAL_INVALID, "This approval was used or expired a moment ago.", `Call request_teardown { host: "${g.facts.host}" } again for a fresh approval id.`);
  }
  return act(ctx, g.facts.host, v, g.target(v.action, meterVerb));
}

/** Issue an approval id; ask through elicitation when the client can; else APPROVAL_REQUIRED. */
export async function askHuman(ctx: ToolContext, g: Gathered, v: TeardownVerdict, meterVerb: boolean): Promise<Out> {
  const { host, platform } = g.facts;
  const info = g.info;
  const mv = readMeters(ctx.ledger)[host];
  const cost = mv ? meterView(host, mv, info.registry).cost_text : "unknown (host not seen by the meter yet)";
  const summary: ApprovalSummary = {
    platform, verb: v.action, irreversible: v.irreversible, via: v.plan.describe,
    receipt_ids: v.evidence.receipt_ids, cost_so_far: cost,
    warnings: v.warnings.map((w) => `${w.code}: ${w.message}`.slice(0, 240)).slice(0, 4),
  };
  const { id, record } = await issueApproval(ctx.ledger, v.binding, summary, g.facts.now);
  const summaryOut = {
    host, platform, instance_id: info.instance_id ?? null, action: v.action, irreversible: v.irreversible,
    will_do: summary.via, receipts: v.evidence.receipt_ids, covered: v.evidence.covered, cost_so_far: cost,
    expires_at: new Date(record.expires_at).toISOString(),
  };
  const warnings = v.warnings;
  if (ctx.elicit) {
    const msg = `Approve "${v.action}" of ${host} (${platform}${info.instance_id ? `, instance ${info.instance_id}` : ""})? ${v.irreversible ? "IRREVERSIBLE: the box's disk is deleted. " : ""}Evidence: ${v.evidence.receipt_ids.length} verified pull receipt(s). Cost so far: ${cost}. Type the host name ${host} to approve; anything else means no.`;
    let answer: Awaited<ReturnType<NonNullable<ToolContext["elicit"]>>>;
    try { answer = await ctx.elicit(msg, elicitationSchema(host), elicitTimeoutMs()); } catch { answer = undefined; }
    const verdict = elicitationApproves(host, answer);
    if (verdict === "approved") {
      await decideApproval(ctx.ledger, id, "approved", "elicitation");
      if (!(await consumeApproval(ctx.ledger, id))) refuse(RefusalCode.APPROVAL_INVALID, "The approval expired before it could be used.", "Request teardown again.");
      return act(ctx, host, v, g.target(v.action, meterVerb));
    }
    if (verdict === "denied") {
      await decideApproval(ctx.ledger, id, "denied", "elicitation").catch(() => undefined);
      refuse(RefusalCode.APPROVAL_DENIED, `The human did not confirm by typing ${host}; nothing was stopped.`, "Ask the user before requesting teardown again.", { approval: summaryOut, warnings });
    }
  }
  refuse(
    RefusalCode.APPROVAL_REQUIRED,
    `Teardown of ${host} needs a human's approval (gates passed: no live run, ${v.evidence.receipt_ids.length} receipt(s) still match the box).`,
    `Ask the user to run \`rgt approve ${id}\` in their own terminal (it shows this summary and asks them to type the host name), then call request_teardown again with this approval_id before ${summaryOut.expires_at}.`,
    { approval_id: id, approval: summaryOut, how_to_approve: `rgt approve ${id}`, warnings },
  );
}
