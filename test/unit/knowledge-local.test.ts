/**
 * The `local` workstation profile (profiles/local.md, from the upstream 2026-08 snapshot): no meter,
 * the user's own machine to protect. It is never detected from markers (so no rental is ever taken for
 * it), teardown never applies (decide() refuses), its home is protected from destructive commands, and
 * its stamps are what check_staleness sees.
 */
import { describe, expect, it } from "vitest";
import { getProfile, loadProfiles } from "../../src/knowledge/profiles.js";
import { allMarkers, detectProfile } from "../../src/knowledge/detect.js";
import { decide } from "../../src/guard/teardown.js";
import { protectedPathsFor } from "../../src/ledger/hostinfo.js";
import { scanStaleness } from "../../src/knowledge/staleness.js";

describe("the local workstation profile", () => {
  const p = getProfile("local")!;

  it("validates: kind workstation, no meter, home durable", () => {
    expect(p.kind).toBe("workstation");
    expect(p.meter_stop.via).toBe("none");
    expect(p.meter_stop.irreversible).toBe(false);
    expect(p.spot.available).toBe(false);
    expect(p.detect).toMatchObject({ declared_only: true, any: [], all: [] });
    expect(p.mounts.find((m) => m.path === "~")?.role).toBe("durable");
  });

  it("is never detected, whatever a box shows — every rental's markers, or none at all", () => {
    const m = allMarkers();
    const everything = { paths_present: m.paths, env_present: m.env, commands: m.commands, hostname: "localhost", evidence: { slurm_controller: true } };
    for (const f of [everything, { paths_present: [], env_present: [], commands: [], hostname: "localhost" }, { paths_present: ["/home/me"], env_present: ["HOME", "DISPLAY"], commands: ["nvidia-smi", "conda"], hostname: "my-desktop" }]) {
      expect(detectProfile(f).name).not.toBe("local");
    }
    for (const r of loadProfiles().filter((x) => x.kind !== "workstation" && !x.detect.fallback)) {
      const marker = [...r.detect.any, ...r.detect.all][0];
      const f = { paths_present: marker.path ? [marker.path] : [], env_present: marker.env ? [marker.env] : [], commands: marker.command ? [marker.command] : [], hostname: "", evidence: { slurm_controller: true } };
      expect(detectProfile(f).name, r.name).toBe(r.name);
    }
  });

  it("teardown never applies: decide() refuses before anything is asked of the box", () => {
    const d = decide({
      host: "me", now: Date.now(), platform: "local", kind: p.kind, instance_id: "",
      meter: { verb: p.meter_stop.verb, irreversible: false, via: "none" }, actions: [], adapter: null,
      runs: [], receipts: [], stale: [],
    });
    expect(d.kind).toBe("refuse");
    if (d.kind === "refuse") {
      expect(d.refusal.code).toBe("BAD_INPUT");
      expect(d.refusal.reason).toMatch(/^host: .*no meter/);
    }
  });

  it("protects the home directory and everything the profile names as data/durable", () => {
    const paths = protectedPathsFor({ host: "me", profile: p, platform: "local", platform_from: "registry" }, []);
    expect(paths).toEqual(expect.arrayContaining(["~", "$HOME"]));
  });

  it("its stamps are scanned by check_staleness (the 2026-08 snapshot)", () => {
    const r = scanStaleness({ platform: "local", today: "2026-09" });
    expect(r.stamps_scanned).toBeGreaterThan(5);
    expect(r.newest_stamp).toBe("2026-08");
    expect(r.stale).toEqual([]);
  });
});
