/**
 * Detection needs evidence (issue 15.5), on real lab boxes through the built server:
 *  - a bare box that merely has the Slurm client installed (this machine's sbatch on PATH, no controller)
 *    is generic-ssh, with a DETECTION_NOTE saying why, and its missing GPU is a danger;
 *  - a box where a real single-node Slurm controller answers (the Slurm lab) is a login node: slurm, and
 *    a missing GPU there is expected;
 *  - a box the user declared `local` that shows a rental's markers gets LOCAL_LOOKS_RENTED.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { startSlurm, type SlurmCluster } from "../../src/lab/slurm.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";

let lab: Lab;
let slurm: SlurmCluster;
let s: ServerConnection;
type W = { code: string; severity: string; message: string };
const codes = (r: { warnings: W[] }) => r.warnings.map((w) => w.code);

beforeAll(async () => {
  lab = await startLab([{ name: "bare", gpus: 0 }, { name: "hpc", gpus: 0 }, { name: "mine", profile: "vastai", gpus: 1 }]);
  slurm = await startSlurm({ exec: (c, t) => lab.boxes.hpc.exec(c, { timeoutMs: t }), installConf: true });
  fs.writeFileSync(path.join(lab.env.RGT_HOME!, "registry.yaml"), "hosts:\n  mine: { profile: local }\n");
  s = await connectServer(lab.env);
}, 240_000);

afterAll(async () => {
  await s?.close().catch(() => {});
  await slurm?.stop().catch(() => {});
  await lab?.stop();
});

describe("detection needs evidence", () => {
  it("the Slurm client without a controller is generic-ssh with a note, not a login node", async () => {
    const r = await s.call("probe_env", { host: "bare" });
    expect(r.ok, JSON.stringify(r).slice(0, 400)).toBe(true);
    expect(r.tools.sbatch).toBe(true);
    expect(r.profile.name).toBe("generic-ssh");
    const note = r.warnings.find((w: W) => w.code === "DETECTION_NOTE");
    expect(note?.message).toMatch(/sbatch.*no Slurm controller answered.*not treated as slurm/);
    expect(r.warnings.find((w: W) => w.code === "NO_GPU")?.severity).toBe("danger");
  });

  it("where a controller answers, the box is a Slurm login node and a missing GPU is expected", async () => {
    const r = await s.call("probe_env", { host: "hpc" });
    expect(r.ok, JSON.stringify(r).slice(0, 400)).toBe(true);
    expect(r.profile).toMatchObject({ name: "slurm", detected_by: "command sbatch" });
    expect(codes(r)).not.toContain("DETECTION_NOTE");
    const w = r.warnings.find((x: W) => x.code === "NO_GPU");
    expect(w?.severity).toBe("info");
    expect(w?.message).toContain("scheduler");
  });

  it("a box declared local that shows a rental's markers is flagged: its meter may be running", async () => {
    const r = await s.call("probe_env", { host: "mine" });
    expect(r.ok, JSON.stringify(r).slice(0, 400)).toBe(true);
    expect(r.profile.name).toBe("local");
    expect(r.profile.detected_by).toMatch(/markers suggest vastai/);
    const w = r.warnings.find((x: W) => x.code === "LOCAL_LOOKS_RENTED");
    expect(w?.severity).toBe("danger");
    const td = await s.call("request_teardown", { host: "mine" });
    expect(td.refused.code).toBe("BAD_INPUT");
    expect(td.refused.reason).toMatch(/no meter/);
  });
});
