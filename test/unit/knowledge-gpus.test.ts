/** GPU asks against the names nvidia-smi reports: precise about variants, a size in the ask is a minimum (src/knowledge/gpus.ts). */
import { describe, expect, it } from "vitest";
import { checkGpus, gpuAskProblem, gpuParts, matchGpu } from "../../src/knowledge/gpus.js";

const g = (name: string, memory_total_mib: number | null) => ({ name, memory_total_mib });
const RTX4090 = g("NVIDIA GeForce RTX 4090", 24564);
const RTX4090D = g("NVIDIA GeForce RTX 4090 D", 24564);
const H100SXM = g("NVIDIA H100 80GB HBM3", 81559);
const H100PCIE = g("NVIDIA H100 PCIe", 81559);
const H100NVL = g("NVIDIA H100 NVL", 95830);
const A100_40 = g("NVIDIA A100-SXM4-40GB", 40960);
const A100_80P = g("NVIDIA A100 80GB PCIe", 81920);

describe("gpuParts", () => {
  it("reads model, card suffixes, form factor and size from asks and reported names alike", () => {
    expect(gpuParts("NVIDIA GeForce RTX 4090 D")).toEqual({ model: "4090", suffixes: ["d"] });
    expect(gpuParts("4090D")).toEqual({ model: "4090", suffixes: ["d"] });
    expect(gpuParts("rtx3090ti")).toEqual({ model: "3090", suffixes: ["ti"] });
    expect(gpuParts("NVIDIA A100-SXM4-40GB")).toEqual({ model: "a100", suffixes: [], form: "sxm", gb: 40 });
    expect(gpuParts("A100 80 GB PCI-E")).toEqual({ model: "a100", suffixes: [], form: "pcie", gb: 80 });
    expect(gpuParts("NVIDIA H100 80GB HBM3")).toEqual({ model: "h100", suffixes: [], gb: 80 });
    expect(gpuParts("NVIDIA RTX 6000 Ada Generation")).toEqual({ model: "6000", suffixes: ["ada"] });
    expect(gpuParts("NVIDIA RTX A6000")).toEqual({ model: "a6000", suffixes: [] });
    expect(gpuParts("48GB")).toEqual({ suffixes: [], gb: 48 });
  });
});

describe("matchGpu", () => {
  it("a 4090 ask is not met by a 4090 D, nor a 4090 D ask by a 4090", () => {
    expect(matchGpu("RTX 4090", RTX4090)).toMatchObject({ match: true });
    const d = matchGpu("RTX 4090", RTX4090D);
    expect(d.match).toBe(false);
    expect(d.why).toMatch(/different card: 4090 d, not RTX 4090/);
    expect(d.found).toBe("NVIDIA GeForce RTX 4090 D, 24564 MiB");
    expect(matchGpu("4090 D", RTX4090)).toMatchObject({ match: false, why: expect.stringMatching(/no "d"/) });
    expect(matchGpu("4090d", RTX4090D).match).toBe(true);
    expect(matchGpu("3090", g("NVIDIA GeForce RTX 3090 Ti", 24564)).match).toBe(false);
  });

  it("H100 with no form is met by any H100 and the finding says which; a named form must be the one", () => {
    expect(matchGpu("H100", H100SXM)).toEqual({ match: true, found: "NVIDIA H100 80GB HBM3 (SXM), 81559 MiB" });
    expect(matchGpu("H100", H100PCIE)).toEqual({ match: true, found: "NVIDIA H100 PCIe, 81559 MiB" });
    expect(matchGpu("H100", H100NVL).match).toBe(true);
    expect(matchGpu("H100 SXM", H100SXM).match).toBe(true);
    expect(matchGpu("H100 SXM5", H100SXM).match).toBe(true);
    expect(matchGpu("H100 SXM", H100PCIE)).toMatchObject({ match: false, why: "form factor PCIe, not SXM" });
    expect(matchGpu("H100 PCIe", H100NVL)).toMatchObject({ match: false, why: "form factor NVL, not PCIe" });
    expect(matchGpu("H100", g("NVIDIA H800", 81559))).toMatchObject({ match: false, why: "model h800, not h100" });
    // B200 comes on HGX boards only: nvidia-smi's "NVIDIA B200" is an SXM part
    expect(matchGpu("B200 SXM", g("NVIDIA B200", 183359)).match).toBe(true);
    expect(matchGpu("B200", g("NVIDIA GB200", 189471))).toMatchObject({ match: false, why: "model gb200, not b200" });
  });

  it("a size in the ask is a minimum, judged on memory.total (which reads a little under the label)", () => {
    expect(matchGpu("A100 80GB", A100_40)).toMatchObject({ match: false, why: "40 GB of memory, asked at least 80 GB" });
    expect(matchGpu("A100 80GB", A100_80P).match).toBe(true);
    expect(matchGpu("A100 40GB", A100_80P).match).toBe(true);
    expect(matchGpu("A100", A100_40)).toEqual({ match: true, found: "NVIDIA A100-SXM4-40GB, 40960 MiB" });
    expect(matchGpu("L40S 48GB", g("NVIDIA L40S", 46068)).match).toBe(true);
    expect(matchGpu("48GB", RTX4090).match).toBe(false);
    expect(matchGpu("H100 80GB", g("NVIDIA H100 80GB HBM3", null)).match).toBe(true); // memory unknown: the name's size
    expect(matchGpu("A100 80GB", g("NVIDIA A100-SXM4", null))).toMatchObject({ match: false, why: "memory unknown, asked at least 80 GB" });
  });

  it("model tokens must be equal: L40 is not L40S, A10 is not A10G or A100", () => {
    expect(matchGpu("L40", g("NVIDIA L40S", 46068)).match).toBe(false);
    expect(matchGpu("A10", g("NVIDIA A10G", 23028)).match).toBe(false);
    expect(matchGpu("A10", A100_40).match).toBe(false);
    expect(matchGpu("RTX 6000", g("NVIDIA RTX 6000 Ada Generation", 49140)).match).toBe(false);
    expect(matchGpu("RTX 6000 Ada", g("NVIDIA RTX 6000 Ada Generation", 49140)).match).toBe(true);
  });
});

describe("checkGpus and the ask's validity", () => {
  it("every GPU type on the box must match; none visible is a mismatch", () => {
    expect(checkGpus("H100", [H100SXM, H100SXM])).toEqual({ asked: "H100", match: true, found: "NVIDIA H100 80GB HBM3 (SXM), 81559 MiB" });
    const mixed = checkGpus("RTX 4090", [RTX4090, RTX4090D]);
    expect(mixed.match).toBe(false);
    expect(mixed.found).toBe("NVIDIA GeForce RTX 4090, 24564 MiB; NVIDIA GeForce RTX 4090 D, 24564 MiB");
    expect(checkGpus("H100", [])).toMatchObject({ match: false, found: "no GPU" });
    expect(checkGpus("H100", [], { scheduler: true })).toMatchObject({ match: false, found: "no GPU on this host", why: expect.stringMatching(/^not checked: the scheduler/) });
  });

  it("an ask with neither a model nor a size is refused as input", () => {
    expect(gpuAskProblem("a fast one")).toMatch(/names no GPU model/);
    expect(gpuAskProblem("")).toBeDefined();
    expect(gpuAskProblem("80GB")).toBeUndefined();
    expect(gpuAskProblem("RTX 4090 D")).toBeUndefined();
  });
});
