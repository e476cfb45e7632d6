/**
 * Is the GPU on the box the one that was asked for? A marketplace's GPU-name filter is coarse (vast.ai
 * VAST14, verified 2026-06): one name covers the 40 GB and 80 GB A100, the H100's SXM, PCIe and NVL parts,
 * and a substring match lets a "4090" filter land on a "4090 D". So the ask and the name nvidia-smi reports
 * are both read into parts and compared part by part. Pure: no I/O.
 *
 * - model: the token with a digit ("a100", "h100", "4090", "l40s", "a6000"); it must be equal (L40 is not
 *   L40S, A10 is not A10G, H800 is not H100).
 * - card suffixes (every other word: "d", "ti", "super", "ada", "pro", "blackwell", "laptop" …) name another
 *   card: they must be the same on both sides, so a "4090" ask is not met by a "4090 D" and a "4090 D" ask
 *   not by a plain 4090.
 * - form factor (sxm/sxm4/sxm5, pcie, nvl): checked only when the ask names one; otherwise any form passes
 *   and the finding says which it is. nvidia-smi names Hopper SXM parts without the word ("NVIDIA H100 80GB
 *   HBM3", "NVIDIA H200"), so an H100/H200/H800/H20 (and a B100/B200) without "PCIe" or "NVL" counts as SXM.
 * - a memory size in the ask ("80GB") is a minimum, checked against memory.total as nvidia-smi reports it
 *   (which lands a few percent under the marketed size: 90 % of it passes).
 * - brand words (NVIDIA, GeForce, Tesla, Quadro, RTX, GTX) and the memory type (HBM3) are ignored.
 */

export interface GpuParts {
  model?: string;
  /** words that make it another card (sorted) */
  suffixes: string[];
  form?: "sxm" | "pcie" | "nvl";
  /** a size written in the name or the ask, in GB */
  gb?: number;
}

const BRAND = new Set(["nvidia", "geforce", "tesla", "quadro", "rtx", "gtx", "generation", "graphics", "gpu", "card"]);
const MEMTYPE = /^(?:hbm\d?e?|gddr\d+x?)$/;
// parts nvidia-smi names without their form, sold only (or by default) as SXM modules: Hopper, and
// Blackwell's B100/B200 (HGX boards only)
const HOPPER = /^(?:h100|h200|h800|h20|gh200|b100|b200|gb200)$/;

/** An ask or a reported name, split into its parts. */
export function gpuParts(text: string): GpuParts {
  const s = text
    .toLowerCase()
    .replace(/pci[\s-]?e(?:xpress)?/g, "pcie")
    .replace(/\b(rtx|gtx)(?=\d)/g, "$1 ")
    .replace(/[-_/,()]+/g, " ")
    .replace(/\b(\d+)\s*gi?b\b/g, "$1gb")
    .replace(/\b(\d+)g\b/g, "$1gb");
  const parts: GpuParts = { suffixes: [] };
  for (let w of s.split(/\s+/).filter(Boolean)) {
    // "4090d", "3090ti": a consumer model number with its suffix glued on
    const glued = /^(\d{3,})([a-z]+)$/.exec(w);
    if (glued && glued[2] !== "gb") { w = glued[1]; parts.suffixes.push(glued[2]); }
    const mem = /^(\d+)gb$/.exec(w);
    if (mem) { parts.gb = Number(mem[1]); continue; }
    if (BRAND.has(w) || MEMTYPE.test(w)) continue;
    if (/^sxm\d?$/.test(w)) { parts.form = "sxm"; continue; }
    if (w === "pcie" || w === "nvl") { parts.form = w; continue; }
    if (!parts.model && /\d/.test(w)) { parts.model = w; continue; }
    parts.suffixes.push(w);
  }
  parts.suffixes.sort();
  return parts;
}

/** The form a reported name implies, including Hopper's unnamed SXM. */
function formOf(p: GpuParts): GpuParts["form"] {
  return p.form ?? (p.model && HOPPER.test(p.model) ? "sxm" : undefined);
}

const FORM_LABEL = { sxm: "SXM", pcie: "PCIe", nvl: "NVL" } as const;

/** Whether an ask is something this check can judge: a model, or at least a memory size. */
export function gpuAskProblem(ask: string): string | undefined {
  const p = gpuParts(ask);
  if (!p.model && p.gb === undefined) return "names no GPU model (e.g. \"H100\", \"RTX 4090 D\") and no memory size (e.g. \"80GB\")";
  return undefined;
}

export interface SeenGpu { name: string; memory_total_mib: number | null }

export interface GpuVerdict {
  match: boolean;
  /** what the box has, with the form factor and memory the check used */
  found: string;
  /** why not, naming asked vs found; absent on a match */
  why?: string;
}

/** One GPU type against the ask. */
export function matchGpu(ask: string, seen: SeenGpu): GpuVerdict {
  const a = gpuParts(ask);
  const f = gpuParts(seen.name);
  const form = formOf(f);
  const mib = seen.memory_total_mib ?? (f.gb !== undefined ? f.gb * 1024 : null);
  const found = `${seen.name.trim()}${form && !f.form ? ` (${FORM_LABEL[form]})` : ""}${mib !== null ? `, ${mib} MiB` : ""}`;
  const no = (why: string): GpuVerdict => ({ match: false, found, why });
  if (a.model && a.model !== f.model) return no(`model ${f.model ?? "unknown"}, not ${a.model}`);
  if (a.model && a.suffixes.join(" ") !== f.suffixes.join(" ")) {
    const extra = f.suffixes.filter((x) => !a.suffixes.includes(x));
    const lacking = a.suffixes.filter((x) => !f.suffixes.includes(x));
    return no(extra.length ? `a different card: ${f.model} ${extra.join(" ")}, not ${ask.trim()}` : `a different card: no "${lacking.join(" ")}" in the name`);
  }
  if (a.form && a.form !== form) return no(`form factor ${form ? FORM_LABEL[form] : "unknown (the name does not say)"}, not ${FORM_LABEL[a.form]}`);
  if (a.gb !== undefined) {
    if (mib === null) return no(`memory unknown, asked at least ${a.gb} GB`);
    if (mib < a.gb * 1024 * 0.9) return no(`${Math.round(mib / 1024)} GB of memory, asked at least ${a.gb} GB`);
  }
  return { match: true, found };
}

/** Every distinct GPU type on the box against the ask; the box matches when each of them does. */
export function checkGpus(ask: string, gpus: SeenGpu[], o: { scheduler?: boolean } = {}): { asked: string; match: boolean; found: string; why?: string } {
  if (!gpus.length && o.scheduler) {
    return { asked: ask, match: false, found: "no GPU on this host", why: "not checked: the scheduler hands GPUs to jobs (probe inside a job, or read the partition's GPU type)" };
  }
  if (!gpus.length) return { asked: ask, match: false, found: "no GPU", why: "no GPU visible on the box" };
  const kinds = new Map<string, SeenGpu>();
  for (const g of gpus) kinds.set(`${g.name}|${g.memory_total_mib}`, g);
  const verdicts = [...kinds.values()].map((g) => matchGpu(ask, g));
  const bad = verdicts.filter((v) => !v.match);
  return {
    asked: ask,
    match: bad.length === 0,
    found: verdicts.map((v) => v.found).join("; ").slice(0, 300),
    ...(bad.length ? { why: bad.map((v) => v.why).join("; ").slice(0, 300) } : {}),
  };
}
