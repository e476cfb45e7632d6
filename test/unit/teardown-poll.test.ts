/**
 * The post-stop check polls until the provider says gone (a destroy is eventually consistent:
 * vast.ai VAST15, RunPod RP14), bounded in total; a stop call that hangs is judged by the listing,
 * never retried blind. Stub CLIs on PATH run for real and count what they were asked.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { adapterFor, type MeterStopTarget } from "../../src/providers/index.js";
import { pollSettings, pollUntilGone } from "../../src/providers/poll.js";
import type { Remote } from "../../src/remote/types.js";

const noRemote = {} as Remote;
let dir: string;
const FAST = { totalMs: 8000, baseMs: 50, capMs: 200 };

function target(platform = "vastai", id = "4242"): MeterStopTarget {
  const cmd = platform === "vastai" ? "vastai destroy instance {instance_id}" : "runpodctl remove pod {instance_id}";
  return { host: "box", platform, instance_id: id, slurm_job_ids: [], meter_stop: { verb: "destroy", irreversible: true, via: "provider_cli", command: cmd, manual_steps: [] } };
}

/** a vastai stub whose listing keeps naming the instance for `lag` looks after the destroy */
function laggingVast(lag: number, destroyBody = ""): void {
  fs.writeFileSync(path.join(dir, "vastai"), `#!/bin/bash
d=${dir}
echo "$*" >> "$d/calls"
if [ "$1" = destroy ]; then ${destroyBody} touch "$d/destroyed"; echo "destroying instance $3."; exit 0; fi
if [ "$1" = show ]; then
  if [ -f "$d/destroyed" ]; then
    n=$(cat "$d/n" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$d/n"
    if [ "$n" -le ${lag} ]; then printf '4242\\n7\\n'; else printf '7\\n'; fi
  else printf '4242\\n'; fi
  exit 0
fi
`, { mode: 0o755 });
}
const calls = () => fs.readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n");
const env = () => ({ PATH: `${dir}:/usr/bin:/bin` });

beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-poll-")); });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("eventually consistent destroy", () => {
  it("keeps polling while the provider still lists the instance, then reports gone: true", async () => {
    laggingVast(3);
    const out = await adapterFor(target())!.act(target(), { remote: noRemote, env: env(), timeoutMs: 5000, poll: FAST });
    expect(out.status).toBe("done");
    expect(out.recheck?.gone).toBe(true);
    expect(out.recheck?.polls).toBe(4);
    expect(out.warnings).toEqual([]);
    expect(calls().filter((c) => c.startsWith("destroy"))).toEqual(["destroy instance 4242"]);
    expect(calls().filter((c) => c.startsWith("show"))).toHaveLength(4);
  });

  it("still listed when the budget runs out → gone: false with METER_RECHECK, and the polling stopped at the bound", async () => {
    laggingVast(1000);
    const t0 = Date.now();
    const out = await adapterFor(target())!.act(target(), { remote: noRemote, env: env(), timeoutMs: 5000, poll: { totalMs: 700, baseMs: 100, capMs: 200 } });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(out.status).toBe("done");
    expect(out.recheck?.gone).toBe(false);
    expect(out.recheck!.polls!).toBeGreaterThan(1);
    expect(out.warnings.map((w) => w.code)).toEqual(["METER_RECHECK"]);
  });

  it("a destroy call that hangs but landed: judged by the listing, done with STOP_CALL_TIMED_OUT, never retried", async () => {
    laggingVast(1, `touch "$d/destroyed"; sleep 30;`);
    const out = await adapterFor(target())!.act(target(), { remote: noRemote, env: env(), timeoutMs: 400, poll: FAST });
    expect(out.status).toBe("done");
    expect(out.recheck?.gone).toBe(true);
    expect(out.warnings.map((w) => w.code)).toEqual(["STOP_CALL_TIMED_OUT"]);
    expect(calls().filter((c) => c.startsWith("destroy"))).toHaveLength(1);
  });
});

describe("every provider call is bounded and re-checked", () => {
  it("kubectl delete that hangs but landed: NotFound on the re-check → done, STOP_CALL_TIMED_OUT; the node-pool reminder stays", async () => {
    fs.writeFileSync(path.join(dir, "kubectl"), `#!/bin/bash
d=${dir}
echo "$*" >> "$d/calls"
if [ "$1" = delete ]; then touch "$d/deleted"; sleep 30; fi
if [ "$1" = get ]; then if [ -f "$d/deleted" ]; then echo 'Error from server (NotFound): jobs.batch "j" not found' >&2; exit 1; fi; echo job.batch/j; fi
`, { mode: 0o755 });
    const t: MeterStopTarget = { host: "k", platform: "kubernetes", slurm_job_ids: [], k8s: { namespace: "ml", name: "j" }, meter_stop: { verb: "delete job", irreversible: false, via: "scheduler", command: "kubectl delete job {name} -n {namespace}", manual_steps: [] } };
    const out = await adapterFor(t)!.act(t, { remote: noRemote, env: env(), timeoutMs: 400, poll: FAST });
    expect(out.status).toBe("done");
    expect(out.recheck?.gone).toBe(true);
    expect(out.warnings.map((w) => w.code)).toEqual(["STOP_CALL_TIMED_OUT", "K8S_NODE_POOL"]);
    expect(calls().filter((c) => c.startsWith("delete"))).toHaveLength(1);
  });
});

describe("pollUntilGone", () => {
  it("an unanswerable provider stays gone: null and the budget holds", async () => {
    let n = 0;
    const r = await pollUntilGone(async () => { n++; return { gone: null, detail: "list failed" }; }, { totalMs: 300, baseMs: 50, capMs: 100 });
    expect(r.gone).toBeNull();
    expect(n).toBe(r.polls);
    expect(r.polls).toBeGreaterThan(1);
    expect(r.detail).toContain(`after ${r.polls} polls`);
  });
  it("one look suffices when the first answer is gone", async () => {
    const r = await pollUntilGone(async () => ({ gone: true, detail: "gone" }), FAST);
    expect(r).toMatchObject({ gone: true, polls: 1, detail: "gone" });
  });
  it("settings: 120 s by default, bounded from the environment", () => {
    expect(pollSettings({}).totalMs).toBe(120_000);
    expect(pollSettings({ RGT_TEARDOWN_POLL_S: "5", RGT_TEARDOWN_POLL_BASE_MS: "100" })).toMatchObject({ totalMs: 5000, baseMs: 100 });
    // out of range is pulled into 0-600 s (the config schema clamps it); rgt doctor lists the value in force
    expect(pollSettings({ RGT_TEARDOWN_POLL_S: "99999" }).totalMs).toBe(600_000);
  });
});
