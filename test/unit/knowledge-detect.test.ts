import { describe, it, expect } from "vitest";
import { detectProfile, allMarkers, type BoxFacts } from "../../src/knowledge/detect.js";
import { loadProfiles } from "../../src/knowledge/profiles.js";

const none: BoxFacts = { paths_present: [], env_present: [], hostname: "box1", commands: [] };
const facts = (f: Partial<BoxFacts>): BoxFacts => ({ ...none, ...f });

describe("detectProfile", () => {
  it("recognises AutoDL by any one of its three markers", () => {
    for (const p of ["/root/autodl-tmp", "/root/autodl-fs", "/etc/network_turbo"]) {
      expect(detectProfile(facts({ paths_present: [p] }))).toEqual({ name: "autodl", detected_by: `path ${p}` });
    }
  });

  it("falls back to generic-ssh when no marker is present, and says so", () => {
    const d = detectProfile(none);
    expect(d.name).toBe("generic-ssh");
    expect(d.detected_by).toMatch(/fallback/);
  });

  it("uses commands, env vars and paths for schedulers and clusters", () => {
    // a command marker counts only with the evidence it names: a Slurm controller that answered
    expect(detectProfile(facts({ commands: ["sbatch"], evidence: { slurm_controller: true } }))).toEqual({ name: "slurm", detected_by: "command sbatch" });
    expect(detectProfile(facts({ env_present: ["SLURM_JOB_ID"] })).name).toBe("slurm");
    expect(detectProfile(facts({ paths_present: ["/var/run/secrets/kubernetes.io/serviceaccount"] })).name).toBe("kubernetes");
    expect(detectProfile(facts({ env_present: ["VAST_CONTAINERLABEL"] }))).toEqual({ name: "vastai", detected_by: "env VAST_CONTAINERLABEL" });
    expect(detectProfile(facts({ env_present: ["RUNPOD_POD_ID"] })).name).toBe("runpod");
    expect(detectProfile(facts({ paths_present: ["/lambda/nfs"] })).name).toBe("lambda");
    expect(detectProfile(facts({ paths_present: ["/home/paperspace"] })).name).toBe("paperspace");
  });

  it("needs evidence: the Slurm client alone is generic-ssh with a note, never a login node", () => {
    for (const evidence of [undefined, { slurm_controller: false }, { slurm_controller: null }]) {
      const d = detectProfile(facts({ commands: ["sbatch"], ...(evidence ? { evidence } : {}) }));
      expect(d.name).toBe("generic-ssh");
      expect(d.notes).toHaveLength(1);
      expect(d.notes![0]).toMatch(/command sbatch is there, but no Slurm controller answered.*not treated as slurm/);
    }
    // a caller that must err toward shared mounts may still count the weak marker
    expect(detectProfile(facts({ commands: ["sbatch"] }), undefined, { weakMarkersCount: true }).name).toBe("slurm");
    // inside a job the scheduler's own variable is evidence enough
    expect(detectProfile(facts({ commands: ["sbatch"], env_present: ["SLURM_JOB_ID"] })).name).toBe("slurm");
  });

  it("a generic container variable is no platform marker (toolbox and distrobox set CONTAINER_ID too)", () => {
    expect(detectProfile(facts({ env_present: ["CONTAINER_ID"] })).name).toBe("generic-ssh");
    expect(detectProfile(facts({ env_present: ["CONTAINER_ID", "VAST_CONTAINERLABEL"] })).name).toBe("vastai");
  });

  it("every command marker that stands alone in a profile names the evidence it needs", () => {
    for (const p of loadProfiles()) {
      for (const m of [...p.detect.any, ...p.variants.flatMap((v) => v.detect?.any ?? [])]) {
        if (m.command !== undefined) expect(m.needs, `${p.name}: command ${m.command}`).toBeDefined();
      }
    }
  });

  it("names the sub-platform of a family", () => {
    expect(detectProfile(facts({ paths_present: ["/hy-tmp"] }))).toEqual({ name: "china", detected_by: "path /hy-tmp", variant: "gpushare" });
    expect(detectProfile(facts({ paths_present: ["/home/user/datadisk"] })).variant).toBe("lanrui");
    expect(detectProfile(facts({ paths_present: ["/public/script"] })).variant).toBe("matpool");
    expect(detectProfile(facts({ paths_present: ["/home/featurize"] })).variant).toBe("featurize");
    expect(detectProfile(facts({ paths_present: ["/kaggle/working"] }))).toMatchObject({ name: "colab-kaggle", variant: "kaggle" });
  });

  it("prefers the higher-priority profile when markers of two platforms are present", () => {
    // a Slurm login node that happens to expose a kubernetes path still has AutoDL's markers win over both
    expect(detectProfile(facts({ paths_present: ["/root/autodl-fs", "/var/run/secrets/kubernetes.io/serviceaccount"], commands: ["sbatch"] })).name).toBe("autodl");
    // a pod running inside a kaggle-like image: kubernetes (20) beats colab-kaggle (10)
    expect(detectProfile(facts({ paths_present: ["/kaggle/working", "/var/run/secrets/kubernetes.io/serviceaccount"] })).name).toBe("kubernetes");
  });

  it("honours `all` rules and hostname regexes", () => {
    const base = loadProfiles();
    const custom = [
      ...base,
      { ...base[0], name: "corp", detect: { any: [{ hostname_regex: "^gpu-\\d+\\.corp$" }], all: [{ command: "nvidia-smi" }], priority: 99, fallback: false }, variants: [] },
    ];
    expect(detectProfile(facts({ hostname: "gpu-7.corp", commands: ["nvidia-smi"] }), custom)).toEqual({ name: "corp", detected_by: "command nvidia-smi + hostname matches /^gpu-\\d+\\.corp$/" });
    // the `all` marker missing -> not corp
    expect(detectProfile(facts({ hostname: "gpu-7.corp" }), custom).name).toBe("generic-ssh");
  });

  it("tolerates missing fact arrays from a partial probe", () => {
    expect(detectProfile({ hostname: "x" } as unknown as BoxFacts).name).toBe("generic-ssh");
  });
});

describe("allMarkers", () => {
  it("is the union the probe script must check, including variant markers", () => {
    const m = allMarkers();
    for (const p of ["/root/autodl-tmp", "/root/autodl-fs", "/etc/network_turbo", "/hy-tmp", "/home/featurize", "/kaggle/working", "/var/run/secrets/kubernetes.io/serviceaccount"]) expect(m.paths).toContain(p);
    expect(m.commands).toContain("sbatch");
    expect(m.env).toEqual(expect.arrayContaining(["SLURM_JOB_ID", "VAST_CONTAINERLABEL", "RUNPOD_POD_ID", "KUBERNETES_SERVICE_HOST"]));
    expect(new Set(m.paths).size).toBe(m.paths.length);
    for (const p of m.paths) expect(p.startsWith("/")).toBe(true);
  });
});
