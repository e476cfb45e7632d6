/** probe_env through an in-process server and an SDK client that listed the tools first (box cases: test/integration/probe). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { badArgumentChecks, expectRefusal, metadataChecks, startHarness, useHarness, NOWHERE, type Harness } from "./harness.js";
import { startLab, type Lab } from "../../src/lab/box.js";

const H = useHarness();

describe("probe_env", () => {
  metadataChecks(H, "probe_env");
  badArgumentChecks(H, "probe_env", { host: NOWHERE });

  it("UNREACHABLE for a host that does not resolve; the summary carries the code and the remedy", async () => {
    const sc = await expectRefusal(H(), "probe_env", { host: NOWHERE }, "UNREACHABLE");
    expect(sc.summary).toMatch(/Remedy:/);
  });

  it("BAD_INPUT for an unknown profile, before any connection; an option-looking host is refused too", async () => {
    expect((await expectRefusal(H(), "probe_env", { host: NOWHERE, profile: "nosuch" }, "BAD_INPUT")).refused.reason).toContain("profile");
    await expectRefusal(H(), "probe_env", { host: "-oProxyCommand=touch /tmp/pwn" }, "BAD_INPUT");
  });

  it("BAD_INPUT naming expect_gpu when it names neither a model nor a size, before any connection", async () => {
    const sc = await expectRefusal(H(), "probe_env", { host: NOWHERE, expect_gpu: "the fast one" }, "BAD_INPUT");
    expect(sc.field).toBe("expect_gpu");
    expect(sc.refused.reason).toMatch(/expect_gpu: 'the fast one' names no GPU model/);
  });
});

describe("probe_env expect_gpu (real lab boxes, the nvidia-smi stub naming the card)", () => {
  let lab: Lab;
  let h: Harness;
  beforeAll(async () => {
    lab = await startLab([
      { name: "gpu-4090d", gpus: 2, gpuModel: "NVIDIA GeForce RTX 4090 D", gpuMemoryMiB: 24564 },
      { name: "gpu-h100p", gpus: 1, gpuModel: "NVIDIA H100 PCIe", gpuMemoryMiB: 81559 },
      { name: "no-gpu", gpus: 0 },
    ]);
    h = await startHarness({ sshConfig: lab.sshConfig });
  });
  afterAll(async () => { await h?.close(); await lab?.stop(); });

  it("a 4090 ask on a 4090 D box: ok (the box is what it is) with a GPU_MISMATCH danger naming asked vs found and VRAM", async () => {
    const { sc } = await h.call("probe_env", { host: "gpu-4090d", expect_gpu: "RTX 4090" });
    expect(sc.ok).toBe(true);
    expect(sc.gpu_check).toEqual({ asked: "RTX 4090", match: false, found: "NVIDIA GeForce RTX 4090 D, 24564 MiB", why: "a different card: 4090 d, not RTX 4090" });
    const w = sc.warnings.find((x: { code: string }) => x.code === "GPU_MISMATCH");
    expect(w).toMatchObject({ severity: "danger", ref: "rgt://profiles/vastai" });
    expect(w.message).toMatch(/asked "RTX 4090", the box has NVIDIA GeForce RTX 4090 D, 24564 MiB/);
    expect(sc.summary).toMatch(/NOT the asked RTX 4090/);
  });

  it("the same box meets a 4090 D ask; no expect_gpu means no check at all", async () => {
    const { sc } = await h.call("probe_env", { host: "gpu-4090d", expect_gpu: "4090 D 24GB" });
    expect(sc.gpu_check).toMatchObject({ match: true });
    expect(sc.warnings.map((x: { code: string }) => x.code)).not.toContain("GPU_MISMATCH");
    const plain = (await h.call("probe_env", { host: "gpu-4090d" })).sc;
    expect(plain.gpu_check).toBeUndefined();
  });

  it("H100 with no variant is met by the PCIe card and the finding names it; H100 SXM is not", async () => {
    const any = (await h.call("probe_env", { host: "gpu-h100p", expect_gpu: "H100" })).sc;
    expect(any.gpu_check).toEqual({ asked: "H100", match: true, found: "NVIDIA H100 PCIe, 81559 MiB" });
    expect(any.summary).toMatch(/as asked \(NVIDIA H100 PCIe, 81559 MiB\)/);
    const sxm = (await h.call("probe_env", { host: "gpu-h100p", expect_gpu: "H100 SXM" })).sc;
    expect(sxm.gpu_check).toMatchObject({ match: false, why: "form factor PCIe, not SXM" });
    expect(sxm.warnings[0].code).toBe("GPU_MISMATCH");
  });

  it("no GPU: a mismatch on a box, but only 'not checked' on a scheduler's login node", async () => {
    const box = (await h.call("probe_env", { host: "no-gpu", expect_gpu: "H100" })).sc;
    expect(box.gpu_check).toMatchObject({ match: false, found: "no GPU" });
    expect(box.warnings.map((x: { code: string }) => x.code)).toContain("GPU_MISMATCH");
    const login = (await h.call("probe_env", { host: "no-gpu", profile: "slurm", expect_gpu: "H100" })).sc;
    const codes = login.warnings.map((x: { code: string }) => x.code);
    expect(codes).toContain("GPU_UNCHECKED");
    expect(codes).not.toContain("GPU_MISMATCH");
    expect(login.gpu_check.why).toMatch(/^not checked: the scheduler hands GPUs to jobs/);
  });

  it("a size above the card's memory is a mismatch too", async () => {
    const { sc } = await h.call("probe_env", { host: "gpu-h100p", expect_gpu: "H100 94GB" });
    expect(sc.gpu_check).toMatchObject({ match: false, why: "80 GB of memory, asked at least 94 GB" });
  });
});
