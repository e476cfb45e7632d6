/** A process's resident memory, sampled while something runs (VmRSS every 20 ms, plus the kernel's VmHWM). */
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

/** Run fn while sampling pid's RSS; the peak seen (bytes) and the high-water mark after. */
export async function peakRss(pid: number, fn: () => Promise<void>): Promise<{ peak: number; hwm: number }> {
  let peak = 0;
  const timer = setInterval(() => { peak = Math.max(peak, rssOf(pid).rss); }, 20);
  try { await fn(); } finally { clearInterval(timer); }
  return { peak: Math.max(peak, rssOf(pid).rss), hwm: rssOf(pid).hwm };
}
