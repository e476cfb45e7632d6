/**
 * Decide a cell's state (and cause, when it died) from its on-box record as run_status.sh reports it.
 * Pure: unit-tested against hand-made rows.
 */
import { redactCutLines, redactCutText } from "../guard/redact.js";
import type { RunCell } from "../ledger/runs.js";
import type { CellCause, CellStatus, DiskStatus, GpuStatus, StatusOptions } from "./types.js";
import { classifyFailure, cleanLine, refFor, signalOf, type FailureClass } from "../knowledge/failures.js";
import { parseHealth, type GpuHealthRow } from "../knowledge/gpu-health.js";
import { num, tsv } from "./scripts.js";
import { parseGate, parseWatch, type GateRow, type WatchRow } from "./while_run.js";

export interface BoxCellRow {
  name: string; state: string; exit_code?: number; alive: boolean; log_bytes: number; log_mtime: number; beat_mtime: number;
  hb_mtime: number; started_at?: number; ended_at?: number; signal: string; reason: string; cause: string; oom_before?: number; pid?: number;
    oom_now?: number; oom_file?: string;
  /** the cell's runner (run_one.sh) is alive; undefined when the box recorded no runner pid (older runs) */
  runner_alive?: boolean;
  tail: string[]; new_text?: string; new_from?: number; missing?: boolean;
  /** the seatbelt's refusal line, when a shim stopped a destroy this cell reached at run time */
  seatbelt?: string;
  /** a failed cell's command start and batch/precision env entries (for the OOM ladder) */
  knobs?: string;
  /** a live cell's newest checkpoint mtime (0 = none yet) */
  ckpt_mtime?: number;
}
export interface BoxStatus {
  host: string; now: number; uptime_s: number; boot: number; nostate: boolean;
  cells: Map<string, BoxCellRow>;
  lanes: { id: string; alive: boolean; signal: string; cells: string[]; ended: boolean }[];
  gpus: GpuStatus[]; disks: DiskStatus[]; dmesg: string[];
  /** the GPUs' health fields (ECC, retired pages, slowdowns), when the driver gave them */
  health: GpuHealthRow[];
  /** the disk gate's record per cell, and the run watcher's (time cap, park) */
  gates?: Map<string, GateRow>;
  watch?: WatchRow;
}

export function parseStatus(host: string, stdout: string): BoxStatus {
  const b: BoxStatus = { host, now: 0, uptime_s: 0, boot: 0, nostate: false, cells: new Map(), lanes: [], gpus: [], disks: [], dmesg: [], health: [] };
  for (const r of tsv(stdout)) {
    switch (r[0]) {
      case "NOW": b.now = num(r[1]) ?? 0; b.uptime_s = num(r[2]) ?? 0; b.boot = num(r[3]) ?? 0; break;
      case "NOSTATE": b.nostate = true; break;
      case "CELL":
        if (r[2] === "missing") { b.cells.set(r[1], { name: r[1], state: "missing", missing: true, alive: false, log_bytes: -1, log_mtime: 0, beat_mtime: 0, hb_mtime: 0, signal: "", reason: "", cause: "", tail: [] }); break; }
        b.cells.set(r[1], {
          name: r[1], state: r[2] || "pending", exit_code: num(r[3]), alive: r[4] === "1", log_bytes: num(r[5]) ?? -1,
          log_mtime: num(r[6]) ?? 0, beat_mtime: num(r[7]) ?? 0, hb_mtime: num(r[8]) ?? 0, started_at: num(r[9]), ended_at: num(r[10]),
          signal: r[11] ?? "", reason: r[12] ?? "", cause: r[13] ?? "", oom_before: num(r[14]), pid: num(r[15]), oom_now: num(r[16]), oom_file: r[17] || undefined,
          runner_alive: r[18] === "1" ? true : r[18] === "0" ? false : undefined, tail: [],
        });
        break;
      case "TAIL": b.cells.get(r[1])?.tail.push(r.slice(2).join(" ")); break;
      case "NEW": {
        const c = b.cells.get(r[1]);
        if (c) { c.new_from = num(r[2]); c.new_text = Buffer.from(r[3] ?? "", "base64").toString("utf8"); }
        break;
      }
      case "LANE": b.lanes.push({ id: r[1], alive: r[2] === "1", signal: r[3] ?? "", cells: (r[4] ?? "").split(",").filter(Boolean), ended: r[5] === "ended" }); break;
      case "GPU": {
        b.gpus.push({ host, index: Number(r[1]), memory_used_mib: num(r[2]), memory_total_mib: num(r[3]), utilization_pct: num(r[4]) });
        if (r[5]) b.health.push(...parseHealth([`${r[1]},${r[5]}`]));
        break;
      }
      case "DISK": { const a = num(r[5]); b.disks.push({ host, mount: r[1], size_bytes: num(r[2]), used_pct: num(r[3]), inodes_used_pct: num(r[4]), ...(a !== undefined ? { avail_bytes: a } : {}) }); break; }
      case "DMESG": b.dmesg.push(r.slice(1).join(" ")); break;
      case "CKPT": { const c = b.cells.get(r[1]); if (c) c.ckpt_mtime = num(r[2]) ?? 0; break; }
      case "GATE": (b.gates ??= new Map()).set(r[1], parseGate(r[2] ?? "", r[3] ?? "")); break;
      case "WATCH": b.watch = parseWatch(r); break;
      case "SEATBELT": { const c = b.cells.get(r[1]); if (c) c.seatbelt = r.slice(2).join(" ").slice(0, 300); break; }
      case "KNOB": { const c = b.cells.get(r[1]); if (c) c.knobs = r.slice(2).join(" "); break; }
    }
  }
  // what the box cut (a log's last 3 KB, lines at 300 chars, new text at 32 KB) is made safe, then redacted
  for (const c of b.cells.values()) {
    if (c.tail.length) c.tail = redactCutLines(c.tail, { firstPartial: c.log_bytes > 3072, cap: 300 });
    if (c.new_text !== undefined) c.new_text = redactCutText(c.new_text, (c.new_from ?? 0) + Buffer.byteLength(c.new_text) < c.log_bytes);
  }
  return b;
}

const STEP_RES = [
  /\bstep['"]?\s*[=:]?\s*(\d+)\s*(?:\/|of)\s*(\d+)/i,
  /\b(?:global_step|step|iter(?:ation)?)['"]?\s*[=:]?\s*(\d+)/i,
];
const EPOCH_RE = /\bepoch['"]?\s*[=:]?\s*(\d+)(?:\s*(?:\/|of)\s*(\d+))?/i;
const PCT_RE = /(\d{1,3})%\|/;

/**
 * Progress from the newest line that carries any (tqdm, HF Trainer, Lightning and plain prints), read
 * after escape codes and a progress bar's earlier frames are dropped; only the epoch may come from an
 * older line (it is printed less often).
 */
export function parseProgress(lines: string[]): CellStatus["progress"] | undefined {
  const p: NonNullable<CellStatus["progress"]> = {};
  let found = false;
  for (let i = lines.length - 1, n = 0; i >= 0 && n < 200; i--, n++) {
    if (lines[i].startsWith("[rgt]")) continue;
    const l = cleanLine(lines[i]);
    if (!found) {
      const m = STEP_RES[0].exec(l);
      if (m) { p.step = Number(m[1]); p.total_steps = Number(m[2]); }
      else { const m2 = STEP_RES[1].exec(l); if (m2) p.step = Number(m2[1]); }
      const pm = PCT_RE.exec(l);
      if (pm) p.pct = Number(pm[1]);
    }
    if (p.epoch === undefined) { const m = EPOCH_RE.exec(l); if (m) { p.epoch = Number(m[1]); if (m[2]) p.total_epochs = Number(m[2]); } }
    found ||= p.step !== undefined || p.pct !== undefined || p.epoch !== undefined;
    if (found && p.epoch !== undefined) break;
  }
  if (p.pct === undefined && p.step !== undefined && p.total_steps) p.pct = Math.min(100, Math.round((100 * p.step) / p.total_steps));
  return Object.keys(p).length ? p : undefined;
}

/** "exit 137 (128+9: SIGKILL)": a shell reports death by signal N as exit 128+N; say which signal. */
export function exitText(code: number | null | undefined): string {
  if (code == null) return "no exit code";
  const sig = signalOf(code);
  return sig ? `exit ${code} (128+${code - 128}: ${sig})` : `exit ${code}`;
}

function sigName(sig: string): string {
  return sig.split(" ")[0] ?? "";
}

/** Decide a cell's state from its on-box record. Pure: unit-tested against hand-made rows. */
export function classifyCell(b: BoxStatus, row: BoxCellRow | undefined, cell: RunCell, opts: StatusOptions): CellStatus {
  const base: CellStatus = { name: cell.name, host: cell.host, state: "unknown", log_age_s: -1, gpu_indices: cell.gpu_indices };
  if (!row || row.missing || b.nostate) {
    const why = b.nostate ? "the run's state dir is gone from the box" : "no record of this cell on the box";
    return { ...base, state: "vanished", reason: why, cause: { cause: "unknown", evidence: `${why} (box re-created or disk wiped?)`, ref: refFor("unknown") } };
  }
  const lastChange = Math.max(row.log_mtime, row.beat_mtime, row.started_at ?? 0);
  const out: CellStatus = { ...base, log_age_s: row.log_bytes >= 0 && lastChange ? Math.max(0, b.now - lastChange) : -1 };
  if (row.exit_code !== undefined) out.exit_code = row.exit_code;
  if (row.log_bytes >= 0) out.log_bytes = row.log_bytes;
  const prog = parseProgress(row.tail);
  if (prog) out.progress = prog;
  if (row.tail.length && opts.tail_lines > 0) {
    out.tail = row.tail.slice(-opts.tail_lines).map(cleanLine).map((l) => (l.length > 160 ? `${l.slice(0, 160)}…` : l));
  }
  if (row.new_text !== undefined) out.new_text = row.new_text;
  if (row.reason) out.reason = row.reason;
  if (row.seatbelt) out.destroy_blocked = row.seatbelt;
  // a relaunch gives the cell a new lane beside the dead one of the earlier attempt: the live lane speaks
  // for it, else the newest (lane ids sort by creation time)
  const holding = b.lanes.filter((l) => l.cells.includes(cell.name));
  const lane = holding.find((l) => l.alive) ?? holding[holding.length - 1];
  const oomGrew = row.oom_before !== undefined && row.oom_now !== undefined && row.oom_now > row.oom_before;
  const dmesgHit = row.pid ? b.dmesg.find((d) => new RegExp(`process ${row.pid}\\b`).test(d)) : undefined;
  const oomEvidence = () => [oomGrew ? `oom_kill in ${row.oom_file ?? "the cell's memory cgroup"} went ${row.oom_before} -> ${row.oom_now}` : "", dmesgHit ? `dmesg: ${dmesgHit}` : ""].filter(Boolean).join("; ");
  const failure = (): CellCause => classifyFailure({
    lines: row.tail, exit_code: row.exit_code, signal: row.signal, recorded: row.cause,
    oom: { before: row.oom_before, now: row.oom_now, file: row.oom_file },
    dmesg: [...(dmesgHit ? [dmesgHit] : []), ...gpuFaultLines(b, row.started_at)],
    disks: b.disks,
  });
  if (row.knobs) out.knobs = row.knobs;
  if (row.ckpt_mtime !== undefined) out.ckpt_age_s = row.ckpt_mtime ? Math.max(0, b.now - row.ckpt_mtime) : -(b.now - (row.started_at ?? b.now));

  // the runner writes exit_code a moment before state: a finished process with an exit code is not "vanished"
  let st = row.state;
  if (st === "running" && !row.alive && row.exit_code !== undefined) {
    if (row.exit_code === 0) {
      out.state = "running";
      out.reason = "command exited 0; checking the roster and copying to the durable dir";
      return out;
    }
    st = "failed";
  }
  switch (st) {
    case "done":
      out.state = "done";
      delete out.tail;
      return out;
    case "stopped":
      out.state = "stopped";
      out.cause = { cause: "stopped", evidence: /max_hours/.test(row.reason) ? row.reason : `stop_run asked for it; exit ${row.exit_code ?? "?"} after the stop`, ref: refFor("stopped") };
      return out;
    case "blocked": {
      // the disk gate kept it from starting; while its runner lives it is still re-checking (on_disk_low: wait)
      out.state = "blocked";
      delete out.tail;
      const g = b.gates?.get(cell.name)?.blocked;
      if (g) {
        const { waiting_until, ...rest } = g;
        out.blocked = waiting_until && row.runner_alive ? g : rest;
      }
      return out;
    }
    case "failed": {
      out.state = "failed";
      out.cause = row.exit_code === 0 && row.reason
        // exited 0 but the roster or the durable copy failed: the reason is the evidence
        ? { cause: /durable/.test(row.reason) && b.disks.some((d) => (d.used_pct ?? 0) >= 99) ? "disk_full" : "missing_file", evidence: row.reason, ref: "" }
        : failure();
      out.cause.ref = refFor(out.cause.cause);
      return out;
    }
    case "running": {
      if (row.alive) {
        const quiet = b.now - lastChange;
        const mine = b.gpus.filter((g) => cell.gpu_indices.includes(g.index) && g.utilization_pct !== undefined);
        const util = mine.length ? Math.max(...mine.map((g) => g.utilization_pct!)) : undefined;
        if (quiet > opts.stall_after_s) {
          out.state = "stalled";
          out.reason = `process ${row.pid} alive but its log has not grown for ${quiet}s (threshold ${opts.stall_after_s}s)`;
          // log silent while the GPU works: a hung collective or a long silent phase, not a dead loader
          if (util !== undefined && util >= 50) out.stall = { kind: "hang", evidence: `log silent ${quiet}s while GPU ${mine.map((g) => g.index).join(",")} at ${util}%` };
        } else {
          out.state = "running";
          // a GPU near zero on a live cell: starved input or a wait in a collective (confirmed over two
          // patrols by the run level before it is reported)
          if (util !== undefined && util <= 2 && (b.now - (row.started_at ?? b.now)) > 60) out.stall = { kind: "gpu_idle", evidence: `GPU ${mine.map((g) => g.index).join(",")} at ${util}% utilisation` };
        }
        return out;
      }
      if (row.runner_alive) {
        // the command has ended and its runner is alive, about to write the exit code: not a vanish
        out.state = "running";
        out.reason = `process ${row.pid ?? "?"} has ended; its runner is recording the outcome`;
        return out;
      }
      if (capStop(b, out)) return out;
      out.state = "vanished";
      out.cause = vanishCause(b, row, lane, oomGrew || !!dmesgHit, oomEvidence(), failure);
      out.reason = `process ${row.pid ?? "?"} is gone and the runner wrote no exit code`;
      return out;
    }
    default: {
      // pending: fine while its lane lives; otherwise nothing will ever start it
      if (lane?.alive) { out.state = "pending"; return out; }
      if (capStop(b, out)) return out;
      out.state = "vanished";
      out.reason = lane ? `its lane ${lane.id} is gone before the cell started` : "no lane holds this cell";
      out.cause = vanishCause(b, { ...row, signal: lane?.signal || row.signal }, lane, false, "", undefined);
      return out;
    }
  }
}

/** NVIDIA Xid / ECC / bus lines the kernel logged since the cell started (lines without a time count) */
function gpuFaultLines(b: BoxStatus, since?: number): string[] {
  return b.dmesg.filter((d) => {
    if (!/xid|fallen off the bus|ecc/i.test(d)) return false;
    const m = /^\[\s*(\d+(?:\.\d+)?)\]/.exec(d);
    return !m || !since || !b.boot || b.boot + Number(m[1]) >= since - 5;
  });
}

/** The box's own time cap is stopping the run (stop_reason recorded, stop_run under way): gone = stopped. */
function capStop(b: BoxStatus, out: CellStatus): boolean {
  const why = b.watch?.stop_reason;
  if (!why) return false;
  out.state = "stopped";
  out.reason = `stopping: ${why}`;
  out.cause = { cause: "stopped", evidence: why, ref: refFor("stopped") };
  return true;
}

function vanishCause(
  b: BoxStatus, row: BoxCellRow, lane: BoxStatus["lanes"][number] | undefined, oom: boolean, oomEv: string, fromLog: (() => CellCause) | undefined,
): CellCause {
  const mk = (cause: FailureClass, evidence: string): CellCause => ({ cause, evidence, ref: refFor(cause) });
  const since = row.started_at ?? 0;
  if (b.boot && since && b.boot > since) {
    return mk("reboot", `box booted at ${iso(b.boot)} (uptime ${b.uptime_s}s), after the cell started at ${iso(since)}`);
  }
  if (oom) return mk("oom", oomEv);
  const sig = sigName(row.signal) || sigName(lane?.signal ?? "");
  if (sig === "HUP") return mk("hangup", `the runner got SIGHUP at ${iso(Number((row.signal || lane?.signal || "").split(" ")[1]))} (tmux server or its terminal went away) and passed it to the cell`);
  if (sig === "TERM" || sig === "INT") return mk("killed", `the runner got SIG${sig} at ${iso(Number((row.signal || lane?.signal || "").split(" ")[1]))} from outside rgt`);
  // the log (or the kernel's Xid lines) may still say why
  const c = fromLog?.();
  if (c && c.cause !== "unknown" && c.cause !== "killed") return c;
  return mk("unknown", `pid ${row.pid ?? "?"} gone, no exit code, no signal recorded, no OOM kill counted, box up ${b.uptime_s}s (runner killed with SIGKILL?)`);
}

function iso(epoch: number): string {
  return Number.isFinite(epoch) && epoch > 0 ? new Date(epoch * 1000).toISOString().replace(/\.\d+Z$/, "Z") : "?";
}
