/**
 * rgt approve <approval_id> [--deny] — a human approves (or refuses) a pending teardown from their own
 * terminal. Interactive only: with no TTY on stdin it refuses, so an agent cannot pipe a "yes" into it.
 * The human sees what will happen (host, action, irreversible or not, receipts, cost so far) and must
 * type the host name; anything else leaves the approval unapproved.
 */
import * as readline from "node:readline";
import { Ledger } from "../ledger/store.js";
import { decideApproval, findApproval, looksLikeApprovalId } from "../ledger/approvals.js";
import { getReceipt } from "../ledger/receipts.js";

function ask(question: string): Promise<string> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  return new Promise((resolve) => {
    let done = false;
    rl.question(question, (a) => { done = true; rl.close(); resolve(a); });
    rl.on("close", () => { if (!done) resolve(""); });
  });
}

export async function run(argv: string[]): Promise<number> {
  const deny = argv.includes("--deny");
  const id = argv.find((a) => !a.startsWith("--"));
  if (!id) {
    process.stderr.write("usage: rgt approve <approval_id> [--deny]\n");
    return 2;
  }
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    process.stderr.write("rgt approve: refusing — this must be run by a person in an interactive terminal (stdin and stdout must be a TTY).\n");
    return 2;
  }
  const ledger = new Ledger();
  const rec = looksLikeApprovalId(id) ? findApproval(ledger, id) : undefined;
  if (!rec) {
    process.stderr.write(`rgt approve: no approval with that id in ${ledger.dir} (forged, mistyped, or issued by a server with another RGT_HOME).\n`);
    return 1;
  }
  if (rec.state !== "pending") {
    process.stderr.write(`rgt approve: this approval is already ${rec.state}; ask the agent to request a new one.\n`);
    return 1;
  }
  if (Date.now() >= rec.expires_at) {
    process.stderr.write(`rgt approve: this approval expired at ${new Date(rec.expires_at).toISOString()}; ask the agent to request a new one.\n`);
    return 1;
  }
  const s = rec.summary;
  const lines = [
    "",
    s.kind === "park" ? "  Park request (the box stops its own meter once the sweep is done and every roster is hashed)" : "  Teardown request",
    `  host          ${rec.host}`,
    `  platform      ${s.platform}${rec.instance_id ? `   instance ${rec.instance_id}` : ""}`,
    `  action        ${rec.action}${s.irreversible ? "   IRREVERSIBLE — the box's disk is gone afterwards" : "   (reversible)"}`,
    `  will do       ${s.via}`,
    `  cost so far   ${s.cost_so_far ?? "unknown"}`,
    `  evidence      ${s.kind === "park" ? "checked by the box itself before it parks: every cell done, every roster hashed on a mount the park keeps" : s.receipt_ids.length === 0 ? "NONE — no pull receipt backs this" : `${s.receipt_ids.length} pull receipt(s), re-hashed on the box just now:`}`,
  ];
  for (const rid of s.receipt_ids.slice(0, 10)) {
    const r = getReceipt(ledger, rid);
    lines.push(`                ${rid}  ${r ? `${r.files.length} file(s) from ${r.remote_path} → ${r.local_dir}` : "(record missing)"}`);
  }
  for (const t of s.still_ticking ?? []) lines.push(`  still ticking ${t}`);
  for (const w of s.kind === "park" ? [] : s.warnings) lines.push(`  warning       ${w}`);
  lines.push(`  expires       ${new Date(rec.expires_at).toISOString()}`, "");
  process.stdout.write(lines.join("\n") + "\n");

  if (deny) {
    await decideApproval(ledger, id, "denied", "cli");
    process.stdout.write("Refused. Nothing will be stopped.\n");
    return 0;
  }
  const typed = (await ask(`Type the host name (${rec.host}) to approve, anything else to leave it unapproved: `)).trim();
  if (typed !== rec.host) {
    process.stdout.write("Not approved (the text did not match the host name). Nothing will be stopped.\n");
    return 1;
  }
  try {
    await decideApproval(ledger, id, "approved", "cli");
  } catch (e) {
    process.stderr.write(`rgt approve: ${(e as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`Approved. The agent may now call request_teardown with this approval_id (single use, until ${new Date(rec.expires_at).toISOString()}).\n`);
  return 0;
}
