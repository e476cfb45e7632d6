/**
 * Park (launch_queue on_done: "park"): when every cell is done and each roster is hashed on the box in a
 * mount the profile says the park keeps, the box performs the profile's reversible meter-stop by itself
 * (scripts/run_watch.sh). Decided here at launch: whether the profile allows it (planPark, pure), and the
 * human's approval, through the same single-use, expiring, bound records as teardown (armPark). Read back
 * at run_status: a box that recorded PARK_READY (no documented on-box way) is marked in the ledger and
 * carries its idle cost in every later result until a human parks it.
 */
import { randomBytes } from "node:crypto";
import { warning, type Warning } from "../common/result.js";
import { checkApproval, elicitationApproves, elicitationSchema } from "../guard/teardown.js";
import type { Profile } from "../knowledge/schema.js";
import { consumeApproval, decideApproval, findApproval, issueApproval, looksLikeApprovalId, parkBinding } from "../ledger/approvals.js";
import { hostInfo } from "../ledger/hostinfo.js";
import { meterView, readMeters } from "../ledger/meter.js";
import { clearParkReady, markParkReady, parkReadyWarning } from "../ledger/parks.js";
import type { RunRecord } from "../ledger/runs.js";
import type { Ledger } from "../ledger/store.js";
import type { CellStatus } from "./types.js";
import type { ArmedPark, WatchRow } from "./while_run.js";

export { pick } from "./while_run.js";

export interface ParkAsk {
  hosts: string[];
  run_id: string;
  profile?: Profile;
  expect: string[];
  backend: string;
  durable_dir?: string;
  data_dir?: string;
}
export type ParkPlan =
  | { ok: true; verb: string; command: string; mounts: { path: string; keeps: boolean }[]; still_ticking: string[] }
  | { ok: false; reason: string; ref?: string };

/** The mount (longest listed prefix) a path lies on, and whether the park keeps it. */
export function keptByPark(p: Profile, dir: string): boolean {
  const keeps = new Set(p.park?.keeps_mounts ?? []);
  let best: string | undefined;
  for (const m of p.mounts) {
    const root = m.path.replace(/\/+$/, "");
    if (root === "" || dir === root || dir.startsWith(`${root}/`)) if (best === undefined || root.length > best.replace(/\/+$/, "").length) best = m.path;
  }
  return best !== undefined && keeps.has(best);
}

/** May this run be parked by the box, according to the profile? Pure. */
export function planPark(a: ParkAsk): ParkPlan {
  const p = a.profile;
  if (!p) return { ok: false, reason: "no platform profile is known for the host (run probe_env or pass profile); only a profile can say which stop keeps the disks" };
  const park = p.park;
  const ref = `rgt://profiles/${p.name}`;
  if (!park) return { ok: false, reason: `the ${p.name} profile documents no reversible meter-stop that keeps the disks; pull the results and use request_teardown`, ref };
  if (!park.safe) return { ok: false, reason: `${park.verb} on ${p.title} is no safe park${park.gotcha ? ` (${park.gotcha})` : ""}: ${park.why_not}`, ref };
  if (a.hosts.length !== 1) return { ok: false, reason: "park is decided per box: launch a run with on_done: \"park\" on one host" };
  if (a.expect.length === 0) return { ok: false, reason: "park needs a roster (expect): the box hashes it before it stops the meter" };
  if (a.backend !== "tmux" && a.backend !== "nohup") return { ok: false, reason: `the ${a.backend} backend has no on-box watcher; park runs only with tmux or nohup lanes` };
  const where = (a.durable_dir ?? p.durable_dir) || (a.data_dir ?? p.data_dir);
  if (where && /^\//.test(where) && !keptByPark(p, where)) return { ok: false, reason: `the rosters would lie in ${where}, on a mount ${park.verb} does not keep`, ref };
  return {
    ok: true, verb: park.verb, command: park.on_box?.command ?? "",
    mounts: p.mounts.map((m) => ({ path: m.path, keeps: park.keeps_mounts.includes(m.path) })),
    still_ticking: park.still_ticking,
  };
}

export interface ParkCtx {
  ledger: Ledger;
  elicit?: (message: string, schema: Record<string, unknown>, timeoutMs: number) => Promise<{ action: string; content?: Record<string, unknown> } | undefined>;
}

/** The profile's plan plus the human: an armed park for the box, or why there is none (in `view`). */
export async function armPark(ctx: ParkCtx, a: ParkAsk, approvalId: string | undefined, now = Date.now()): Promise<{ armed?: ArmedPark;
  view: Record<string, unknown>; warnings: Warning[] }> {
  const plan = planPark(a);
  if (!plan.ok) {
    return { view: { armed: false, refused: { code: "PARK_REFUSED", reason: plan.reason } }, warnings: [warning("PARK_REFUSED", "warn", `on_done park refused: ${plan.reason}. The box will bill idle after the sweep until someone stops it.`, plan.ref)] };
  }
  const host = a.hosts[0];
  const base = { verb: plan.verb, still_ticking: plan.still_ticking };
  const armed: ArmedPark = { token: randomBytes(8).toString("hex"), verb: plan.verb, command: plan.command, mounts: plan.mounts };
  if (!plan.command) {
    // nothing will be done on the box, so nothing to approve: it checks the rosters and records PARK_READY
    return { armed, view: { ...base, armed: true, on_box: false, note: `no on-box way to ${plan.verb} is documented: when the sweep is safe the box records PARK_READY and bills idle until a human does it` }, warnings: [] };
  }
  const binding = parkBinding(host, a.run_id, plan.verb, hostInfo(ctx.ledger, host).instance_id ?? "");
  const unarmed = (code: string, reason: string, extra: Record<string, unknown> = {}) => ({
    view: { ...base, armed: false, refused: { code, reason }, ...extra },
    warnings: [warning(code, "warn", `park not armed: ${reason}`.slice(0, 400))],
  });
  if (approvalId) {
    const rec = looksLikeApprovalId(approvalId) ? findApproval(ctx.ledger, approvalId) : undefined;
    const d = checkApproval(rec, binding, now, approvalId);
    if (!d.ok) return unarmed(d.refusal.code, d.refusal.reason);
    if (!(await consumeApproval(ctx.ledger, approvalId, now))) return unarmed("APPROVAL_INVALID", "this approval was used or expired a moment ago");
    return { armed, view: { ...base, armed: true, on_box: true, approved_via: "approval_id" }, warnings: [] };
  }
  const { id, record } = await issueApproval(ctx.ledger, binding, {
    kind: "park", platform: a.profile!.name, verb: plan.verb, irreversible: false, via: `on the box, after every roster is hashed: ${plan.command}`.slice(0, 200),
    receipt_ids: [], still_ticking: plan.still_ticking, warnings: plan.still_ticking.slice(0, 3),
  }, now);
  if (ctx.elicit) {
    const msg = `Approve that ${host} parks itself (${plan.verb}) once run ${a.run_id} is done and every roster is hashed on a kept mount? Still ticking afterwards: ${plan.still_ticking.join("; ") || "nothing documented"}. Type the host name ${host} to approve; anything else means no.`;
    let answer: Awaited<ReturnType<NonNullable<ParkCtx["elicit"]>>>;
    try { answer = await ctx.elicit(msg, elicitationSchema(host), 120_000); } catch { answer = undefined; }
    const verdict = elicitationApproves(host, answer);
    if (verdict === "approved") {
      await decideApproval(ctx.ledger, id, "approved", "elicitation");
      if (await consumeApproval(ctx.ledger, id)) return { armed, view: { ...base, armed: true, on_box: true, approved_via: "elicitation" }, warnings: [] };
    }
    if (verdict === "denied") {
      await decideApproval(ctx.ledger, id, "denied", "elicitation").catch(() => undefined);
      return unarmed("APPROVAL_DENIED", `the human did not confirm parking ${host}; the box will not park itself`);
    }
  }
  return unarmed("APPROVAL_REQUIRED", `a human must approve the park: \`rgt approve ${id}\`, then launch_queue again with the same run_name and park_approval_id before ${new Date(record.expires_at).toISOString()}`, { approval_id: id, how_to_approve: `rgt approve ${id}` });
}

/** Warnings run_status adds from what the box did on its own; PARK_READY is kept in the ledger. */
export async function whileRunWarnings(ledger: Ledger, run: RunRecord, cells: CellStatus[], watch: Map<string, WatchRow> | undefined): Promise<Warning[]> {
  const out: Warning[] = [];
  const blocked = cells.filter((c) => c.state === "blocked" && c.blocked);
  if (blocked.length) {
    const b = blocked[0].blocked!;
    const gb = (x?: number) => (x === undefined ? "?" : `${(x / 1e9).toFixed(2)} GB`);
    out.push(warning("DISK_LOW", "warn", `${blocked.map((c) => c.name).join(", ")} not started: ${b.dir} has ${gb(b.free_bytes)} / ${b.free_inodes ?? "?"} inodes free, budget ${gb(b.need_bytes)} / ${b.need_inodes ?? "?"} inodes${b.waiting_until ? " (still re-checking)" : ""}`.slice(0, 400)));
  }
  for (const [host, w] of watch ?? []) {
    if (w.park_state === "ready") {
      const info = hostInfo(ledger, host);
      const m = readMeters(ledger)[host];
      const cost = m ? meterView(host, m, info.registry).cost_text : "unknown";
      const ticking = info.profile?.park?.still_ticking ?? [];
      await markParkReady(ledger, host, { run_id: run.run_id, verb: info.profile?.park?.verb ?? "park", since: (w.park_at ?? 0) * 1000, still_ticking: ticking });
      out.push(parkReadyWarning(host, info.profile?.park?.verb ?? "park", cost));
    } else if (w.park_state === "done") {
      await clearParkReady(ledger, host);
    }
  }
  return out;
}
