import { describe, it, expect, beforeEach } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadProfiles, getProfile, parseProfile, clearProfileCache, defaultProfilesDir, ProfileError, profileSection } from "../../src/knowledge/profiles.js";
import { PROFILE_SECTIONS, expandBoxPath } from "../../src/knowledge/schema.js";
import { listReferences, getReference } from "../../src/knowledge/references.js";

const ALL = ["autodl", "china", "colab-kaggle", "generic-ssh", "kubernetes", "lambda", "local", "paperspace", "runpod", "slurm", "vastai"];
const SRC = defaultProfilesDir();

/** A temp profiles dir holding a copy of autodl.md edited by `edit`. */
function brokenCopy(edit: (text: string) => string, file = "autodl.md"): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-prof-"));
  const text = fs.readFileSync(path.join(SRC, file), "utf8");
  const out = edit(text);
  expect(out).not.toBe(text); // the edit really changed something
  fs.writeFileSync(path.join(d, file), out);
  return path.join(d, file);
}

function errorOf(fn: () => unknown): ProfileError {
  try { fn(); } catch (e) { expect(e).toBeInstanceOf(ProfileError); return e as ProfileError; }
  throw new Error("expected a ProfileError");
}

beforeEach(() => clearProfileCache());

describe("the shipped profiles", () => {
  it("are exactly the eleven platforms (ten rentals and schedulers + the local workstation) and all validate", () => {
    expect(loadProfiles().map((p) => p.name)).toEqual(ALL);
  });

  it("carry the 8 sections in order, and every frontmatter gotcha id as a ### heading", () => {
    for (const p of loadProfiles()) {
      const heads = [...p.body.matchAll(/^## (.+)$/gm)].map((m) => m[1].trim());
      expect(heads.filter((h) => (PROFILE_SECTIONS as readonly string[]).includes(h)), p.name).toEqual([...PROFILE_SECTIONS]);
      for (const g of p.gotchas) expect(p.body, `${p.name} ${g.id}`).toMatch(new RegExp(`^### ${g.id} — ${g.title.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`, "m"));
      expect(profileSection(p, "5. Teardown / billing").length, p.name).toBeGreaterThan(100);
    }
  });

  it("stamp every money/data fact: meter stop, actions, danger clocks, mounts", () => {
    for (const p of loadProfiles()) {
      expect(p.meter_stop.verified, p.name).toMatch(/^\d{4}-\d{2}$/);
      for (const a of p.actions) expect(a.verified).toMatch(/^\d{4}-\d{2}$/);
      for (const c of p.danger_clocks) expect(c.verified).toMatch(/^\d{4}-\d{2}$/);
      for (const m of p.mounts) expect(m.verified, `${p.name} ${m.path}`).toMatch(/^\d{4}-\d{2}$/);
    }
  });

  it("hold the documented meter-stop command templates", () => {
    expect(getProfile("vastai")!.meter_stop).toMatchObject({ verb: "destroy", irreversible: true, via: "provider_cli", command: "vastai destroy instance {instance_id}", api_key_env: "VAST_API_KEY" });
    expect(getProfile("runpod")!.meter_stop).toMatchObject({ verb: "terminate", irreversible: true, command: "runpodctl remove pod {instance_id}" });
    const lam = getProfile("lambda")!.meter_stop;
    expect(lam).toMatchObject({ via: "api", api_key_env: "LAMBDA_API_KEY", irreversible: true });
    expect(lam.command).toContain("/instance-operations/terminate");
    expect(lam.command).toContain("{instance_id}");
    expect(getProfile("slurm")!.meter_stop).toMatchObject({ via: "scheduler", command: "scancel {job_id}" });
    expect(getProfile("kubernetes")!.meter_stop.command).toBe("kubectl delete job {name} -n {namespace}");
  });

  it("give AutoDL the markers, dirs, inode cap and 15-day clock the lab and tools rely on", () => {
    const a = getProfile("autodl")!;
    expect(a.detect.any.map((m) => m.path)).toEqual(["/root/autodl-tmp", "/root/autodl-fs", "/etc/network_turbo"]);
    expect(a.data_dir).toBe("/root/autodl-tmp");
    expect(a.durable_dir).toBe("/root/autodl-fs");
    expect(a.mounts.find((m) => m.path === "/root/autodl-fs")).toMatchObject({ role: "durable", shared: true, survives_destroy: true });
    expect(a.mounts.find((m) => m.path === "/root/autodl-tmp")).toMatchObject({ role: "data", survives_stop: true, survives_destroy: false });
    expect(a.inode_cap).toBe(200000);
    expect(a.no_credentials_on).toContain("/root/autodl-fs");
    expect(a.meter_stop.irreversible).toBe(false);
    expect(a.danger_clocks.find((c) => c.id === "AD-DANGER")?.hours).toBe(360);
    expect(a.gotchas.map((g) => g.id)).toEqual(["AD1", "AD2", "AD3", "AD4", "AD5", "AD6", "AD7", "AD8", "AD9"]);
  });

  it("mark shared mounts as credential-free everywhere", () => {
    for (const p of loadProfiles()) {
      for (const m of p.mounts.filter((x) => x.shared)) expect(p.no_credentials_on, `${p.name} ${m.path}`).toContain(m.path.replace(/\/\$USER$/, ""));
    }
  });

  it("merge a variant over its family (china/gpushare, china + lanrui)", () => {
    const g = getProfile("china/gpushare")!;
    expect(g.variant).toBe("gpushare");
    expect(g.data_dir).toBe("/hy-tmp");
    expect(g.durable_dir).toBe("/hy-netdisk");
    expect(g.danger_clocks.find((c) => c.id === "GS-AUTORELEASE")?.hours).toBe(240);
    const l = getProfile("china", "lanrui")!;
    expect(l.meter_stop.still_bills).toMatch(/数据盘/);
    expect(getProfile("china", "nope")).toBeUndefined();
    expect(getProfile("nope")).toBeUndefined();
    expect(getProfile("china")!.gotchas.length).toBe(16); // variants keep the family's gotchas
  });

  it("have exactly one fallback: generic-ssh", () => {
    expect(loadProfiles().filter((p) => p.detect.fallback).map((p) => p.name)).toEqual(["generic-ssh"]);
  });

  it("expands box path placeholders", () => {
    expect(expandBoxPath("/scratch/$USER", { USER: "ana" })).toBe("/scratch/ana");
    expect(expandBoxPath("~/x", { HOME: "/home/ana" })).toBe("/home/ana/x");
    expect(expandBoxPath("$TMPDIR", { TMPDIR: "/tmp/j1" })).toBe("/tmp/j1");
  });
});

describe("a broken profile fails loading with the file and field named", () => {
  it("missing meter_stop.verified", () => {
    const f = brokenCopy((t) => t.replace(/^(meter_stop:[\s\S]*?)\n  verified: 2026-06\n/m, "$1\n"));
    const e = errorOf(() => parseProfile(f));
    expect(e.message).toContain("autodl.md");
    expect(e.message).toContain("meter_stop.verified");
  });

  it("malformed verified stamp on a mount", () => {
    const f = brokenCopy((t) => t.replace("    note: fast local NVMe data disk, size per plan; expandable\n    verified: 2026-06", "    note: fast local NVMe data disk, size per plan; expandable\n    verified: June 2026"));
    const e = errorOf(() => parseProfile(f));
    expect(e.message).toMatch(/mounts\[1\]\.verified/);
    expect(e.message).toMatch(/YYYY-MM/);
  });

  it("unknown mount role", () => {
    const f = brokenCopy((t) => t.replace("    role: durable\n    shared: true", "    role: forever\n    shared: true"));
    expect(errorOf(() => parseProfile(f)).message).toMatch(/mounts\[2\]\.role/);
  });

  it("a command marker standing alone without the evidence it needs", () => {
    const f = brokenCopy((t) => t.replace("    - path: /etc/network_turbo\n", "    - path: /etc/network_turbo\n    - command: nvidia-smi\n"));
    expect(errorOf(() => parseProfile(f)).message).toMatch(/needs/);
  });

  it("unknown field (a typo is not silently ignored)", () => {
    const f = brokenCopy((t) => t.replace("data_dir: /root/autodl-tmp", "data_dri: /root/autodl-tmp"));
    expect(errorOf(() => parseProfile(f)).message).toMatch(/data_d/);
  });

  it("api meter stop without a key env var", () => {
    const f = brokenCopy((t) => t.replace("  api_key_env: LAMBDA_API_KEY\n", ""), "lambda.md");
    expect(errorOf(() => parseProfile(f)).message).toMatch(/lambda\.md.*meter_stop/);
  });

  it("a gotcha id with no heading, and a heading with no id", () => {
    const f1 = brokenCopy((t) => t.replace("### AD4 — ", "### AD4x — "));
    expect(errorOf(() => parseProfile(f1)).message).toMatch(/gotchas.*AD4 has no/);
    const f2 = brokenCopy((t) => t.replace("## 8. Script overrides", "### AD99 — an extra one\ntext\n\n## 8. Script overrides"));
    expect(errorOf(() => parseProfile(f2)).message).toMatch(/gotchas.*AD99/);
  });

  it("a section missing or out of order", () => {
    const f = brokenCopy((t) => t.replace("## 3. Network", "## 3. Networking"));
    expect(errorOf(() => parseProfile(f)).message).toMatch(/body.*3\. Network/);
  });

  it("no frontmatter, or frontmatter that is not YAML", () => {
    const f = brokenCopy((t) => t.replace(/^---\n/, ""));
    expect(errorOf(() => parseProfile(f)).message).toMatch(/frontmatter/);
    const g = brokenCopy((t) => t.replace("title: AutoDL", "title: [AutoDL"));
    expect(errorOf(() => parseProfile(g)).message).toMatch(/YAML/);
  });

  it("platform name that differs from the file name", () => {
    const f = brokenCopy((t) => t.replace("platform: autodl", "platform: autodl2"));
    expect(errorOf(() => parseProfile(f)).message).toMatch(/field platform/);
  });

  it("loadProfiles of a dir with a bad file throws instead of skipping it", () => {
    const f = brokenCopy((t) => t.replace("  verb: 关机 (shutdown)\n  irreversible: false\n  via: console", "  verb: 关机 (shutdown)\n  irreversible: maybe\n  via: console"));
    expect(() => loadProfiles(path.dirname(f))).toThrow(/meter_stop\.irreversible/);
  });
});

describe("references", () => {
  it("lists nested docs, reads them, and refuses names that escape the folder", () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-refs-"));
    fs.mkdirSync(path.join(d, "training"));
    fs.writeFileSync(path.join(d, "spot.md"), "# Spot notes\nbody\n");
    fs.writeFileSync(path.join(d, "training", "oom.md"), "# OOM ladder\n");
    fs.writeFileSync(path.join(path.dirname(d), "outside.md"), "secret");
    expect(listReferences(d).map((r) => [r.name, r.title])).toEqual([["spot", "Spot notes"], ["training/oom", "OOM ladder"]]);
    expect(getReference("training/oom", d)).toBe("# OOM ladder\n");
    expect(getReference("spot.md", d)).toContain("body");
    expect(getReference("../outside", d)).toBeUndefined();
    expect(getReference("/etc/passwd", d)).toBeUndefined();
    expect(getReference("missing", d)).toBeUndefined();
    expect(listReferences(path.join(d, "nope"))).toEqual([]);
  });
});
