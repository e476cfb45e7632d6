/**
 * Picks the detach backend for a run and turns a backend's per-cell report into the run-level answer
 * run_status gives (state, vanished_cause, next_action). Also what teardown asks before acting:
 * liveRunsOn(host) — which recorded runs still have live cells there.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { RefusalError, warning, type Warning } from "../common/result.js";
import { cleanLine, refFor, remedyFor, type FailureClass } from "../knowledge/failures.js";
import { redactText } from "../guard/redact.js";
import { patrolSentinels } from "./sentinels.js";
import type { Ledger } from "../ledger/store.js";
import { getRun, listRuns, type BackendName, type RunRecord } from "../ledger/runs.js";
import type { Remote } from "../remote/types.js";
import type { Profile } from "../knowledge/schema.js";
import { tmuxBackend } from "./tmux.js";
import { nohupBackend } from "./nohup.js";
import { k8sBackend } from "./k8s.js";
import { slurmBackend } from "./slurm.js";
import { statusOfHost } from "./status.js";
import { classifyCell } from "./classify.js";
import { whileRunView } from "./while_run.js";
import { whileRunWarnings } from "./park.js";
import type { Backend, BackendContext, CellCause, CellStatus, DiskStatus, GpuStatus, RunState, StatusOptions, VanishCause } from "./types.js";

export const DEFAULT_STALL_S = 900;

/** explicit detach > the profile's detach > tmux (which falls back to nohup per host when tmux is missing) */
export function chooseBackendName(detach: string | undefined, profile?: Profile): BackendName {
  const d = detach ?? profile?.detach;
  if (d === "nohup" || d === "slurm" || d === "k8s" || d === "tmux") return d;
  return d === "notebook" ? "nohup" : "tmux";
}

export async function backendFor(name: BackendName): Promise<Backend> {
  switch (name) {
    case "tmux": return tmuxBackend;
    case "nohup": return nohupBackend;
    case "k8s": return k8sBackend;
    case "slurm": return slurmBackend;
  }
}

export interface RunStatusResult {
  ok: boolean;
  run_id: string;
  run_name: string;
  state: RunState;
  cells: CellStatus[];
  gpus: GpuStatus[];
  disks: DiskStatus[];
  vanished_cause?: CellCause;
  /** disk budgets, time cap, stop reason and park, as the box recorded them */
  while_run?: Record<string, unknown>;
  next_action: string;
  /** where every cell's new log text lies in full (<cell>.new.log), when the reply had to drop it */
  new_text_dir?: string;
  warnings: Warning[];
}

/** Run-level state from cell states. Never `vanished`/`failed` because a host did not answer. */
export function summarize(cells: CellStatus[], stopReason?: string): { state: RunState; vanished_cause?: CellCause } {
  const has = (s: string) => cells.some((c) => c.state === s);
  const waiting = cells.some((c) => c.state === "blocked" && c.blocked?.waiting_until);
  const firstCause = (s: string) => cells.find((c) => c.state === s && c.cause)?.cause;
  if (has("vanished")) return { state: "vanished", vanished_cause: firstCause("vanished") ?? { cause: "unknown", evidence: "no evidence recorded" } };
  if (has("stalled")) return { state: "stalled" };
  if (has("unknown")) return { state: "unknown" };
  if (has("running") || has("pending") || waiting) return { state: "running" };
  if (stopReason && has("stopped") && !has("failed")) return { state: "stopped" };
  if (has("blocked") && !has("failed")) return { state: "blocked" };
  if (has("failed") || has("stopped")) {
    const c = firstCause("failed");
    return { state: "failed", ...(c ? { vanished_cause: c } : {}) };
  }
  return { state: cells.length ? "done" : "unknown" };
}

/** The failed/vanished cells grouped by failure class, the biggest group first. */
function byCause(cells: CellStatus[]): { cls: FailureClass; cells: CellStatus[] }[] {
  const groups = new Map<FailureClass, CellStatus[]>();
  for (const c of cells) {
    if ((c.state !== "failed" && c.state !== "vanished") || !c.cause) continue;
    groups.set(c.cause.cause, [...(groups.get(c.cause.cause) ?? []), c]);
  }
  return [...groups.entries()].map(([cls, cs]) => ({ cls, cells: cs })).sort((a, b) => b.cells.length - a.cells.length);
}

/** one remedy for the biggest failure class, the other classes named with their cells */
function remedies(cells: CellStatus[], relaunch: string, fallback?: { cause: VanishCause }): string | undefined {
  const groups = byCause(cells);
  if (!groups.length) return fallback ? remedyFor(fallback.cause, { cells: ["the run"], relaunch }) : undefined;
  const [g, ...rest] = groups;
  const names = g.cells.map((c) => c.name);
  const who = names.length > 4 ? [`${names.length} cells (${names.slice(0, 3).join(", ")}…)`] : names;
  const main = remedyFor(g.cls, { cells: who, knobs: g.cells.find((c) => c.knobs)?.knobs, relaunch });
  const more = rest.map((r) => `${r.cls}: ${r.cells.slice(0, 3).map((c) => c.name).join(", ")}${r.cells.length > 3 ? "…" : ""}`);
  return more.length ? `${main} Also ${more.join("; ")} (each cell's cause.ref).` : main;
}

export function nextAction(run: RunRecord, state: RunState, cells: CellStatus[], cause?: { cause: VanishCause }): string {
  const names = (s: string) => cells.filter((c) => c.state === s).map((c) => c.name);
  const host = run.cells[0]?.host ?? run.hosts[0];
  const relaunch = `launch_queue again with run_name "${run.run_name}" (done cells are skipped, the rest resume from their checkpoints)`;
  switch (state) {
    case "done":
      return `All ${cells.length} cell(s) done. Pull and verify: pull_verify { host: "${host}", run_id: "${run.run_id}", local_dir: … }, then request_teardown.`;
    case "running": {
      const idle = cells.filter((c) => c.stall?.kind === "gpu_idle");
      if (idle.length && !byCause(cells).length) {
        return `${idle.map((c) => c.name).join(", ")}: alive but the GPU sits near 0 % (${idle[0].stall!.evidence}) — starved input (more DataLoader workers, data off the network mount) or a wait in a collective; look with remote_exec py-spy dump before stopping. See rgt://references/training-failures#nccl.`;
      }
      const f = remedies(cells, relaunch);
      return f
        ? `Still running. ${f}`
        : "Running. Poll run_status again in a few minutes (pass log_offset to get only new log text).";
    }
    case "stalled":
      return `${names("stalled").join(", ")} alive but silent past the threshold: look at it (remote_exec nvidia-smi / py-spy dump), or stop_run those cells and ${relaunch}.`;
    case "vanished":
      return remedies(cells, relaunch, cause ?? { cause: "unknown" })!;
    case "stopped":
      return `The box's own time cap stopped the run (${cells.find((c) => c.state === "stopped")?.reason ?? "max_hours"}); files and checkpoints are kept. Pull what is there, or ${relaunch} with a new max_hours.`;
    case "blocked":
      return `${names("blocked").join(", ")} not started: DISK_LOW (free space or inodes below the cell's budget; numbers in cells[].blocked). Free space on that mount (or lower min_free_gb / min_free_inodes), then ${relaunch}.`;
    case "failed": {
      const f = names("failed");
      const s = names("stopped");
      if (!f.length && s.length) return `Stopped by stop_run (${s.join(", ")}); files are kept. To continue, ${relaunch}.`;
      return remedies(cells, relaunch) ?? `${f.join(", ")} failed: read the tail/reason, fix the cause, then ${relaunch}.`;
    }
    default:
      return "Could not reach every host even after a re-check; the run may well be alive. Retry run_status later; do not relaunch or tear down on this answer.";
  }
}

/** agent-sized answers: the whole run_status reply stays under this */
export const STATUS_BUDGET_BYTES = 2040;
const NEW_TEXT_BUDGET = 700;

/**
 * New log text after log_offset: the whole of it goes to a local file (returned as new_text_file), the
 * answer carries only its newest lines, cleaned of escape codes and progress-bar frames.
 */
function keepNewText(ledgerDir: string, runId: string, cells: CellStatus[]): string | undefined {
  const withNew = cells.filter((c) => c.new_text !== undefined && c.new_text !== "");
  if (!withNew.length) return undefined;
  const per = Math.max(120, Math.floor(NEW_TEXT_BUDGET / withNew.length));
  const dir = path.join(ledgerDir, "logs", runId.replace(/[^\w.-]/g, "_"));
  for (const c of withNew) {
    const text = c.new_text!;
    // every cell's new text goes to <dir>/<cell>.new.log, so a reply cut to size loses nothing
    const file = path.join(dir, `${c.name.replace(/[^\w.-]/g, "_")}.new.log`);
    let saved = false;
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      // the agent reads this file too: the same redaction as the reply
      fs.writeFileSync(file, redactText(text), { mode: 0o600 });
      saved = true;
    } catch { /* the short end below is still returned */ }
    const clean = text.split("\n").map(cleanLine).join("\n");
    if (Buffer.byteLength(clean) > per) {
      if (saved) c.new_text_file = file;
      let end = clean.slice(-per);
      const nl = end.indexOf("\n");
      if (nl >= 0 && nl < end.length - 1) end = end.slice(nl + 1);
      c.new_text = `…${end}`;
    } else c.new_text = clean;
  }
  return dir;
}

function compact(cells: CellStatus[], tailBudget: number): CellStatus[] {
  // keep the answer small: tails only where they matter, fewer lines when there are many cells; a cell
  // whose cause is known needs no tail (the evidence is the deciding line)
  const interesting = cells.filter((c) => c.state !== "done" && c.state !== "pending");
  const per = interesting.length ? Math.max(1, Math.min(5, Math.floor(tailBudget / interesting.length))) : 0;
  return cells.map((c) => {
    const { gpu_indices: _g, knobs: _k, ckpt_age_s: _c, ...rest } = c;
    if (rest.cause && !rest.cause.ref) rest.cause = { ...rest.cause, ref: refFor(rest.cause.cause) };
    const known = rest.cause && rest.cause.cause !== "unknown";
    if (c.state === "done" || c.state === "pending" || (c.state === "running" && interesting.length > 4) || (known && interesting.length > 2)) delete rest.tail;
    else if (rest.tail) rest.tail = rest.tail.slice(-per);
    return rest;
  });
}

/** Cut a reply to the budget: shorter evidence, no tails, one host name, fewer GPUs/disks, shorter text. */
/**
 * Many hosts with the same finding (a throttling GPU or a full disk on each of 64 boxes) say it in a few
 * warnings, not one per host: the first `per - 1` of a code as they are, the rest folded into one that
 * counts them and keeps the worst severity.
 */
export function capWarnings(ws: Warning[], per = 3): Warning[] {
  const byCode = new Map<string, Warning[]>();
  for (const w of ws) byCode.set(w.code, [...(byCode.get(w.code) ?? []), w]);
  const rank = { info: 0, warn: 1, danger: 2 } as const;
  const out: Warning[] = [];
  for (const [code, group] of byCode) {
    if (group.length <= per) { out.push(...group); continue; }
    const kept = group.slice(0, per - 1);
    const rest = group.slice(per - 1);
    const worst = rest.reduce((a, w) => (rank[w.severity] > rank[a] ? w.severity : a), rest[0]!.severity);
    out.push(...kept, warning(code, worst, `+${rest.length} more like it: ${rest[0]!.message.slice(0, 120)}${rest[0]!.message.length > 120 ? "…" : ""}`, rest[0]!.ref));
  }
  return out;
}

function fit<T extends {
  cells: CellStatus[]; gpus: GpuStatus[]; disks: DiskStatus[]; vanished_cause?: CellCause; gpus_omitted?: number; disks_omitted?: number;
  next_action: string; new_text_dir?: string;
}>(r: T, newTextDir?: string): T {
  // + what the tool and the pipeline add after (elapsed_ms, a one-line summary)
  const size = () => Buffer.byteLength(JSON.stringify(r)) + 24 + 80;
  const clipEvidence = (n: number) => {
    for (const c of r.cells) {
      if (!c.cause || c.cause.evidence.length <= n) continue;
      // short of room, the exception's type goes first: its message is the evidence
      const e = n <= 60 ? c.cause.evidence.replace(/^[\w.]*(?:Error|Exception):\s*/, "") : c.cause.evidence;
      c.cause.evidence = e.length > n ? `${e.slice(0, n - 1)}…` : e;
    }
    if (r.vanished_cause && r.vanished_cause.evidence.length > 2 * n) r.vanished_cause.evidence = `${r.vanished_cause.evidence.slice(0, 2 * n - 1)}…`;
  };
  const dead = (c: CellStatus) => c.state === "failed" || c.state === "vanished" || c.state === "stopped";
  const steps: (() => void)[] = [
    () => clipEvidence(140),
    () => { for (const c of r.cells) delete c.tail; },
    () => { for (const c of r.cells) if (c.reason && c.reason.length > 80) c.reason = `${c.reason.slice(0, 79)}…`; },
    () => {
      // the same class and evidence on many cells: said in full once
      const seen = new Map<string, string>();
      for (const c of r.cells) {
        if (!c.cause) continue;
        const k = `${c.cause.cause}|${c.cause.evidence}`;
        if (seen.has(k)) c.cause = { ...c.cause, evidence: `as ${seen.get(k)}` };
        else seen.set(k, c.name);
      }
    },
    () => {
      // one host for every cell: it is the run's host, no need to repeat it per cell
      if (new Set(r.cells.map((c) => c.host)).size === 1) for (const c of r.cells) delete (c as Partial<CellStatus>).host;
      for (const c of r.cells) if (dead(c) && c.cause) { delete c.progress; if (c.reason && /^exit \d+$/.test(c.reason)) delete c.reason; }
    },
    () => clipEvidence(90),
    () => {
      r.gpus_omitted = (r.gpus_omitted ?? 0) + Math.max(0, r.gpus.length - 1);
      r.disks_omitted = (r.disks_omitted ?? 0) + Math.max(0, r.disks.length - 1);
      r.gpus = r.gpus.slice(0, 1);
      r.disks = [...r.disks].sort((a, b) => (b.used_pct ?? 0) - (a.used_pct ?? 0)).slice(0, 1);
      if (!r.gpus_omitted) delete r.gpus_omitted;
      if (!r.disks_omitted) delete r.disks_omitted;
    },
    () => { for (const c of r.cells) { delete c.reason; if (c.new_text && c.new_text.length > 100) c.new_text = `…${c.new_text.slice(-99)}`; } },
    () => clipEvidence(60),
    () => {
      // the worst case (many cells dead of many different causes): the cause is what matters on a dead
      // cell; its log size and age can be asked again with log_offset
      for (const c of r.cells) if (dead(c) && c.cause) { delete (c as Partial<CellStatus>).log_age_s; delete c.log_bytes; }
      if (r.vanished_cause) {
        const same = r.cells.find((c) => c.cause?.cause === r.vanished_cause!.cause);
        if (same) r.vanished_cause = { ...r.vanished_cause, evidence: `as ${same.name}` };
      }
      if (r.gpus.length) r.gpus_omitted = (r.gpus_omitted ?? 0) + r.gpus.length;
      if (r.disks.length) r.disks_omitted = (r.disks_omitted ?? 0) + r.disks.length;
      r.gpus = [];
      r.disks = [];
    },
    () => {
      // the other classes are on their cells already
      r.next_action = r.next_action
        .replace(/ Also (.*) \(each cell's cause\.ref\)\.$/, (_m, list: string) => ` Also ${list.split("; ").length} other class(es): see each cell's cause.ref.`)
        .replace(" (done cells are skipped, the rest resume from their checkpoints)", "")
        .replace(" The same config fails the same way again.", "");
      for (const c of r.cells) if (c.cause) c.cause.evidence = c.cause.evidence.replace(/\s{2,}/g, " ");
    },
    () => {
      // new text: all of it is in <new_text_dir>/<cell>.new.log; a dead cell's cause says more than its end
      if (!newTextDir) return;
      r.new_text_dir = newTextDir;
      for (const c of r.cells) { delete c.new_text_file; if (dead(c) && c.cause) delete c.new_text; }
    },
    () => clipEvidence(48),
    () => { for (const c of r.cells) delete c.new_text; },
    // the run's cause repeats a cell's: the cell keeps it
    () => { if (r.vanished_cause?.evidence.startsWith("as ")) delete r.vanished_cause; },
    // last: the while-run view, when no cell is held by it (dead cells' causes matter more)
    () => { if (!r.cells.some((c) => (c as { blocked?: unknown }).blocked)) delete (r as { while_run?: unknown }).while_run; },
    // a blocked cell carries its own need/free numbers: the per-cell budget list goes before any cell does
    () => { const w = (r as { while_run?: { disk_budget?: unknown } }).while_run; if (w) delete w.disk_budget; },
    () => {
      // many cells (a run over 64 boxes): every cell counted by state, the ones that need a look listed
      // first, the plain running / done / pending ones only as far as the budget allows
      const counts: Record<string, number> = {};
      for (const c of r.cells) counts[c.state] = (counts[c.state] ?? 0) + 1;
      const plain = (c: CellStatus) => (c.state === "running" || c.state === "done" || c.state === "pending" ? 1 : 0);
      const all = [...r.cells].sort((a, b) => plain(a) - plain(b));
      const out = r as T & { cell_counts?: Record<string, number>; cells_omitted?: number };
      out.cell_counts = counts;
      for (let n = all.length; n >= 0; n = n > 16 ? Math.floor(n * 0.75) : n - 1) {
        r.cells = all.slice(0, n);
        out.cells_omitted = all.length - n;
        if (size() <= STATUS_BUDGET_BYTES) break;
      }
    },
  ];
  for (const step of steps) {
    if (size() <= STATUS_BUDGET_BYTES) break;
    step();
  }
  return r;
}

export async function runStatusOf(
  remote: Remote, ledger: Ledger, runId: string, opts: Partial<StatusOptions> = {},
): Promise<RunStatusResult> {
  const run = getRun(ledger, runId);
  if (!run) throw new RefusalError("NOT_FOUND", `no run ${runId} in the ledger`, "List runs with `rgt status`, or pass the run_id launch_queue returned.");
  const backend = await backendFor(run.backend);
  const full: StatusOptions = {
    stall_after_s: opts.stall_after_s ?? DEFAULT_STALL_S, tail_lines: opts.tail_lines ?? 5,
    ...(opts.log_offset !== undefined ? { log_offset: opts.log_offset } : {}),
    ...(opts.checkpoint_every_s !== undefined ? { checkpoint_every_s: opts.checkpoint_every_s } : {}),
  };
  const ctx: BackendContext = { remote, ledger };
  const s = await backend.status(ctx, run, full);
  const stopReason = [...(s.watch?.values() ?? [])].find((w) => w.stop_reason)?.stop_reason;
  const { state, vanished_cause } = summarize(s.cells, stopReason);
  const warnings = [...s.warnings, ...(await whileRunWarnings(ledger, run, s.cells, s.watch)), ...patrolSentinels(ledger, run.run_id, s.cells,
    s.disks, full.checkpoint_every_s)];
  const whileRun = s.watch || s.gates ? whileRunView(s.watch ?? new Map(), s.gates ?? []) : undefined;
  // the seatbelt stopped a destroy that a cell reached at run time (nothing was destroyed)
  const blocked = s.cells.filter((c) => c.destroy_blocked);
  if (blocked.length) warnings.push(warning("DESTROY_BLOCKED_ON_BOX", "danger", `the seatbelt stopped a destroy in ${blocked.map((c) => c.name).slice(0, 5).join(", ")}: ${blocked[0]!.destroy_blocked!.slice(0, 200)}; ending a machine goes through request_teardown`));
  for (const d of s.disks) {
    if ((d.inodes_used_pct ?? 0) >= 90) warnings.push(warning("INODE_HIGH", (d.inodes_used_pct ?? 0) >= 97 ? "danger" : "warn", `${d.host}:${d.mount} inodes ${d.inodes_used_pct}% used (writes fail at 100% even with free bytes)`));
    if ((d.used_pct ?? 0) >= 90) warnings.push(warning("DISK_HIGH", (d.used_pct ?? 0) >= 97 ? "danger" : "warn", `${d.host}:${d.mount} ${d.used_pct}% full`));
  }
  // many hosts: keep the answer readable — the busiest GPUs and the fullest disks, with a count of the rest
  // (a patrol over many hosts is mostly "all fine": show the GPUs and disks that tell something)
  const manyHosts = run.hosts.length > 2;
  const gpus = s.gpus.length > 8 ? [...s.gpus].sort((a, b) => (b.memory_used_mib ?? 0) - (a.memory_used_mib ?? 0)).slice(0, manyHosts ? 4 : 8) : s.gpus;
  const pressure = (d: DiskStatus) => Math.max(d.used_pct ?? 0, d.inodes_used_pct ?? 0);
  const byPressure = [...s.disks].sort((a, b) => pressure(b) - pressure(a));
  for (const d of s.disks) delete d.avail_bytes;
  const disks = manyHosts ? byPressure.filter((d) => pressure(d) >= 80).slice(0, 6) : s.disks.length > 6 ? byPressure.slice(0, 6) : s.disks;
  const newTextDir = keepNewText(ledger.dir, run.run_id, s.cells);
  const next_action = nextAction(run, state, s.cells, vanished_cause);
  return fit({
    ok: true,
    run_id: run.run_id,
    run_name: run.run_name,
    state,
    cells: compact(s.cells, 12),
    gpus,
    disks,
    ...(s.gpus.length > gpus.length ? { gpus_omitted: s.gpus.length - gpus.length } : {}),
    ...(s.disks.length > disks.length ? { disks_omitted: s.disks.length - disks.length } : {}),
    ...(vanished_cause ? { vanished_cause: { ...vanished_cause, ref: vanished_cause.ref || refFor(vanished_cause.cause) } } : {}),
    ...(whileRun ? { while_run: whileRun } : {}),
    next_action,
    warnings: capWarnings(warnings),
  }, newTextDir);
}

/**
 * Runs recorded in the ledger that still have live cells on `host` (running, stalled, or pending under a
 * live lane). Throws UNREACHABLE when the host cannot be asked: a caller gating teardown must fail closed.
 */
export async function liveRunsOn(remote: Remote, ledger: Ledger, host: string): Promise<{ run_id: string; cells_running: string[] }[]> {
  const out: { run_id: string; cells_running: string[] }[] = [];
  for (const run of listRuns(ledger, { host })) {
    const cells = run.cells.filter((c) => c.host === host);
    if (!cells.length) continue;
    if (run.backend === "slurm" || run.backend === "k8s") {
      const b = await backendFor(run.backend);
      const s = await b.status({ remote, ledger }, run, { stall_after_s: DEFAULT_STALL_S, tail_lines: 0 });
      const live = s.cells.filter((c) => c.host === host && ["running", "pending", "stalled", "unknown"].includes(c.state)).map((c) => c.name);
      if (live.length) out.push({ run_id: run.run_id, cells_running: live });
      continue;
    }
    const opts: StatusOptions = { stall_after_s: DEFAULT_STALL_S, tail_lines: 0 };
    const b = await statusOfHost(remote, host, run.host_dirs?.[host]?.state_dir ?? run.state_dir, cells.map((c) => c.name), opts,
      run.host_dirs?.[host]?.scripts_dir);
    const live = cells.map((c) => classifyCell(b, b.cells.get(c.name), c, opts)).filter((c) => ["running", "pending", "stalled"].includes(c.state) || (c.state === "blocked" && !!c.blocked?.waiting_until)).map((c) => c.name);
    if (live.length) out.push({ run_id: run.run_id, cells_running: live });
  }
  return out;
}
