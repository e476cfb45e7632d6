/**
 * GPU health from what nvidia-smi and the kernel say, for probe_env and run_status: NVIDIA Xid lines
 * since boot, uncorrected ECC errors, pages waiting to be retired, hardware/thermal/power slowdowns,
 * persistence mode, and GPU memory held by processes that are gone, belong to an earlier run of this
 * server, or belong to someone else. Pure: the scripts gather, this judges and keeps it compact (only
 * the GPUs and fields that tell something; a value shared by every GPU said once).
 */

/** GPU memory in use at or above this (MiB) means someone holds the GPU, whether or not a process is listed. */
export const BUSY_GPU_MIB = 1024;

/** The --query-gpu fields of the health query, in this order (all present in drivers since R450). */
export const HEALTH_FIELDS = [
  "index", "persistence_mode", "ecc.errors.uncorrected.volatile.total", "retired_pages.pending",
  "clocks_throttle_reasons.hw_slowdown", "clocks_throttle_reasons.hw_thermal_slowdown",
  "clocks_throttle_reasons.hw_power_brake_slowdown", "clocks_throttle_reasons.sw_thermal_slowdown",
  "clocks_throttle_reasons.sw_power_cap",
] as const;
export const HEALTH_QUERY = HEALTH_FIELDS.join(",");

const THROTTLES: [number, string][] = [[4, "hw_slowdown"], [5, "hw_thermal"], [6, "hw_power_brake"], [7, "sw_thermal"], [8, "sw_power_cap"]];

export interface GpuHealthRow { index: number; persistence?: boolean; ecc_uncorrected?: number; retired_pending?: boolean; throttle: string[] }

/** Rows of `nvidia-smi --query-gpu=<HEALTH_QUERY> --format=csv,noheader,nounits`; [N/A] reads as unknown. */
export function parseHealth(csv: string[]): GpuHealthRow[] {
  const out: GpuHealthRow[] = [];
  for (const line of csv) {
    const f = line.split(",").map((x) => x.trim());
    if (f.length < HEALTH_FIELDS.length || !/^\d+$/.test(f[0])) continue;
    const ecc = /^\d+$/.test(f[2]) ? Number(f[2]) : undefined;
    out.push({
      index: Number(f[0]),
      ...(/^(enabled|disabled)$/i.test(f[1]) ? { persistence: /^enabled$/i.test(f[1]) } : {}),
      ...(ecc !== undefined ? { ecc_uncorrected: ecc } : {}),
      ...(/^(yes|no)$/i.test(f[3]) ? { retired_pending: /^yes$/i.test(f[3]) } : {}),
      throttle: THROTTLES.filter(([i]) => /^active$/i.test(f[i] ?? "")).map(([, n]) => n),
    });
  }
  return out;
}

/** One Xid line, short: "Xid 79 (PCI:0000:07:00): GPU has fallen off the bus" */
export function xidSummary(line: string): string {
  const m = /Xid \(([^)]*)\):\s*(\d+)(?:,\s*pid=[^,]*)?(?:,\s*name=[^,]*)?,?\s*(.*)$/i.exec(line);
  const s = m ? `Xid ${m[2]} (${m[1]})${m[3] ? `: ${m[3]}` : ""}` : line.replace(/^\[[^\]]*\]\s*/, "");
  return s.length > 72 ? `${s.slice(0, 71)}…` : s;
}

/** A GPU memory holder as the box saw it. */
export interface GpuHolder {
  gpu: number | null; pid: number; used_mib: number | null; alive: boolean; user?: string; command?: string;
  /** RGT_RUN_ID / RGT_CELL from the process's environment, and that cell's recorded state on the box */
  rgt_run?: string; rgt_cell?: string; rgt_state?: string;
}

export interface GpuHealth {
  /** ok: nothing to say; degraded: slowed or needs attention; faulty: do not place work on the named GPUs */
  status: "ok" | "degraded" | "faulty";
  /** one line per GPU that tells something, e.g. "GPU 3: 2 uncorrected ECC errors, retired pages pending" */
  issues?: string[];
  /** GPUs not to use */
  faulty_gpus?: number[];
  /** Xid lines since boot (newest last, at most 3) */
  xid?: string[];
  /** GPU memory held by processes that are gone or by an earlier run of this server */
  zombies?: { gpu: number | null; pid: number; used_mib: number | null; owner: string; reclaim?: string }[];
}

/** What one GPU's health row tells: faulty (uncorrected ECC, pages waiting to retire) or slowed by hardware. */
export function rowFindings(r: GpuHealthRow): { said: string[]; faulty: boolean; slowed: boolean } {
  const said: string[] = [];
  const faulty = (r.ecc_uncorrected ?? 0) > 0 || r.retired_pending === true;
  if ((r.ecc_uncorrected ?? 0) > 0) said.push(`${r.ecc_uncorrected} uncorrected ECC error(s)`);
  if (r.retired_pending) said.push("retired pages pending");
  const hw = r.throttle.filter((t) => t !== "sw_power_cap");
  if (hw.length) said.push(`slowdown: ${hw.join(", ")}`);
  return { said, faulty, slowed: hw.length > 0 };
}

/** Judge rows + Xid lines + memory holders into a compact health report. */
export function judgeHealth(rows: GpuHealthRow[], xidLines: string[], holders: GpuHolder[] = []): GpuHealth {
  const issues: string[] = [];
  const faulty = new Set<number>();
  let degraded = false;
  for (const r of rows) {
    const f = rowFindings(r);
    if (f.faulty) faulty.add(r.index);
    if (f.slowed) degraded = true;
    if (f.said.length) issues.push(`GPU ${r.index}: ${f.said.join(", ")}`);
  }
  // persistence mode: one line for all GPUs it is off on
  const off = rows.filter((r) => r.persistence === false).map((r) => r.index);
  if (off.length) issues.push(`persistence mode off on ${off.length === rows.length ? "every GPU" : `GPU ${off.join(",")}`} (first CUDA call per process is slower; GPU state can reset between jobs)`);
  const xid = xidLines.filter((l) => /xid/i.test(l)).slice(-3).map(xidSummary);
  if (xid.length) degraded = true;
  if (xidLines.some((l) => /fallen off the bus|xid[^,]*:\s*(?:48|63|64|74|79|92|94|95)\b/i.test(l))) {
    // a hardware Xid: the bus id does not map to an index here, so the whole box is suspect
    degraded = true;
  }
  const zombies = holders
    // gone, or left behind by a cell of ours that is no longer running (a worker that outlived it)
    .filter((h) => !h.alive || (h.rgt_run && h.rgt_state !== "running"))
    .map((h) => ({
      gpu: h.gpu, pid: h.pid, used_mib: h.used_mib,
      owner: h.rgt_run ? `rgt run ${h.rgt_run} cell ${h.rgt_cell ?? "?"} (${h.rgt_state || "no state"})` : h.alive ? `${h.user ?? "?"}: ${(h.command ?? "").slice(0, 60)}` : "pid gone (or in another container)",
      ...(h.rgt_run ? { reclaim: `stop_run { run_id: "${h.rgt_run}" }` } : {}),
    }));
  const status = faulty.size ? "faulty" : degraded || zombies.length ? "degraded" : "ok";
  return {
    status,
    ...(issues.length ? { issues } : {}),
    ...(faulty.size ? { faulty_gpus: [...faulty].sort((a, b) => a - b) } : {}),
    ...(xid.length ? { xid } : {}),
    ...(zombies.length ? { zombies } : {}),
  };
}
