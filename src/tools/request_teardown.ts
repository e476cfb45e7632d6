/**
 * request_teardown — the Iron Law gate, as facts → decide → act:
 *   src/teardown/facts.ts gathers (ledger, knowledge, then the box), src/guard/teardown.ts `decide()`
 *   answers (a refusal, or the plan and its binding), src/teardown/act.ts asks the human and acts
 *   through the provider adapters (bounded calls; the post-stop check polls until the provider says gone).
 * Order of the gates: a meter at all (the `local` profile has none) → action → adapter configured →
 * no live run (RUN_ACTIVE) → receipts covering an explicit roster whose hashes the box still reproduces
 * (UNVERIFIED_ARTIFACTS) → billing-fact freshness (a warning) → a human approval bound to host +
 * instance + action + evidence, single-use and expiring (APPROVAL_REQUIRED / APPROVAL_DENIED / APPROVAL_INVALID).
 */
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { RefusalError } from "../common/result.js";
import { decide } from "../guard/teardown.js";
import { gatherBox, gatherLocal } from "../teardown/facts.js";
import { actApproved, askHuman } from "../teardown/act.js";
import { hostText } from "./fields.js";

export const requestTeardown = defineTool({
  name: "request_teardown",
  title: "Stop a host's meter, behind the Iron Law gate",
  description:
    "Stop a host's billing, only with no live run, verified receipts and a human's approval; the first call returns APPROVAL_REQUIRED + approval_id.",
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
    recheck: z.object({ gone: z.boolean().nullable(), detail: z.string(), polls: z.number().optional(), waited_s: z.number().optional() }).optional(),
    approval_id: z.string().optional(),
    approval: z.record(z.string(), z.unknown()).optional().describe("what the human is asked to approve"),
    how_to_approve: z.string().optional(),
  },
  effect: "destroy",
  meter: { reportsItself: true },
  async handler(args, ctx) {
    const g = gatherLocal(ctx, args.host, args);
    const first = decide(g.facts);
    if (first.kind === "refuse") throw new RefusalError(first.refusal.code, first.refusal.reason, first.refusal.remedy, { ...(first.refusal.extra ?? {}), ...(first.warnings.length ? { warnings: first.warnings } : {}) });
    if (first.kind !== "need_box") throw new Error("decide answered without the box's facts");
    g.facts.box = await gatherBox(ctx, g);
    const d = decide(g.facts);
    if (d.kind === "refuse") throw new RefusalError(d.refusal.code, d.refusal.reason, d.refusal.remedy, { ...(d.refusal.extra ?? {}), ...(d.warnings.length ? { warnings: d.warnings } : {}) });
    if (d.kind === "need_box") throw new Error("decide asked for the box twice");
    if (d.kind === "act") return actApproved(ctx, g, d, first.meterVerb);
    return askHuman(ctx, g, d, first.meterVerb);
  },
});
