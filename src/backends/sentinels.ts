/**
 * Sentinels beyond a silent log, judged across patrols: a GPU near zero on a live cell is reported only
 * once the previous patrol saw it too (a moment of eval or checkpointing is not a stall), and the output
 * and durable mounts' free space is compared with the previous patrol's to say when they will be full;
 * a live cell's newest checkpoint is held against the cadence checkpoint_cadence gave.
 * The previous patrol's readings live in the local ledger (sentinels/<run_id>). `judge` is pure.
 */
import { warning, type Warning } from "../common/result.js";
import type { Ledger } from "../ledger/store.js";
import type { CellStatus, DiskStatus } from "./types.js";

export interface PatrolMemo {
  t: number;
  /** cell -> epoch seconds its GPU was first seen idle */
  idle_since: Record<string, number>;
  /** "host:mount" -> free bytes at t */
  avail: Record<string, number>;
}

/** warn when a mount is full within this many seconds at the last two patrols' rate */
const FILL_WARN_S = 6 * 3600;
/** a GPU idle this long (across patrols) is a sentinel */
const IDLE_MIN_S = 60;

function hours(s: number): string {
  return s >= 3600 ? `${(s / 3600).toFixed(1)} h` : `${Math.max(1, Math.round(s / 60))} min`;
}

export function judge(prev: PatrolMemo | undefined, nowS: number, cells: CellStatus[], disks: DiskStatus[], ckptEveryS?: number): { memo: PatrolMemo;
  warnings: Warning[] } {
  const memo: PatrolMemo = { t: nowS, idle_since: {}, avail: {} };
  const warnings: Warning[] = [];
  if (ckptEveryS) {
    // the newest checkpoint older than twice the cadence (or none after twice the cadence of running)
    const stale = cells.filter((c) => c.state === "running" && c.ckpt_age_s !== undefined && Math.abs(c.ckpt_age_s) > 2 * ckptEveryS);
    if (stale.length) {
      const c = stale[0];
      warnings.push(warning("CHECKPOINT_STALE", "warn", `${stale.map((x) => x.name).slice(0, 4).join(", ")}: ${c.ckpt_age_s! < 0 ? `no checkpoint after ${hours(-c.ckpt_age_s!)} of running` : `newest checkpoint ${hours(c.ckpt_age_s!)} old`}, cadence ${hours(ckptEveryS)}: a preemption now loses that much`, "rgt://references/spot-resilience"));
    }
  }
  for (const c of cells) {
    if (c.stall?.kind !== "gpu_idle") continue;
    const since = prev?.idle_since[c.name] ?? nowS;
    memo.idle_since[c.name] = since;
    if (nowS - since >= IDLE_MIN_S) c.stall = { ...c.stall, since_s: nowS - since };
    else delete c.stall; // seen once: wait for the next patrol before saying it
  }
  for (const d of disks) {
    if (d.avail_bytes === undefined) continue;
    const key = `${d.host}:${d.mount}`;
    memo.avail[key] = d.avail_bytes;
    const before = prev?.avail[key];
    const dt = prev ? nowS - prev.t : 0;
    if (before === undefined || dt <= 0 || d.avail_bytes >= before) continue;
    const rate = (before - d.avail_bytes) / dt;
    const ttf = d.avail_bytes / rate;
    if (ttf <= FILL_WARN_S) {
      warnings.push(warning("DISK_FILLING", ttf <= 3600 ? "danger" : "warn", `${key} loses ${(rate * 3600 / 2 ** 30).toFixed(1)} GiB/h: full in ~${hours(ttf)} at the last two patrols' rate; prune checkpoints or pull now`, "rgt://references/training-failures#disk-full"));
    }
  }
  return { memo, warnings };
}

/** judge against the memo the previous patrol left in the ledger, and leave this one's */
export function patrolSentinels(ledger: Ledger, runId: string, cells: CellStatus[], disks: DiskStatus[], ckptEveryS?: number,
  nowS = Math.floor(Date.now() / 1000)): Warning[] {
  const name = `sentinels/${runId.replace(/[^\w.-]/g, "_")}`;
  let prev: PatrolMemo | undefined;
  try { prev = ledger.read<PatrolMemo | undefined>(name, undefined); } catch { prev = undefined; }
  const { memo, warnings } = judge(prev, nowS, cells, disks, ckptEveryS);
  try { ledger.write(name, memo); } catch { /* a read-only ledger: sentinels then speak per patrol only */ }
  return warnings;
}
