/**
 * A process's resident memory while something runs. The kernel's high-water mark (VmHWM) is the real
 * peak: it is reset to the current RSS before the run (writing 5 to /proc/<pid>/clear_refs, Linux ≥ 4.0,
 * root or the process's owner) and read after it. VmRSS is also sampled every 20 ms, the only measure
 * where the reset is refused; the larger of the two is the peak.
 */
import * as fs from "node:fs";

export function rssOf(pid: number): { rss: number; hwm: number } {
  try {
    const t = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(t)?.[1] ?? 0);
    return { rss: kb("VmRSS") * 1024, hwm: kb("VmHWM") * 1024 };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

/** whether pid's high-water mark could be reset to its current RSS */
function resetHwm(pid: number): boolean {
  try { fs.writeFileSync(`/proc/${pid}/clear_refs`, "5"); return true; } catch { return false; }
}

/**
 * Run fn while watching pid's RSS. peak: bytes, the kernel's high-water mark over the run when it could
 * be reset (hwmReset), else the largest sample; sampled: the largest 20 ms sample.
 */
export async function peakRss(pid: number, fn: () => Promise<void>): Promise<{ peak: number; hwm: number; sampled: number; hwmReset: boolean }> {
  const hwmReset = resetHwm(pid);
  let sampled = 0;
  const timer = setInterval(() => { sampled = Math.max(sampled, rssOf(pid).rss); }, 20);
  try { await fn(); } finally { clearInterval(timer); }
  const end = rssOf(pid);
  sampled = Math.max(sampled, end.rss);
  return { peak: hwmReset ? Math.max(sampled, end.hwm) : sampled, hwm: end.hwm, sampled, hwmReset };
}
