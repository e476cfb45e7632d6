/**
 * The teardown gate needs a roster (issue 12.6), and the post-stop check polls until the provider says
 * gone (issue 15.1), through the real built server and a real sshd box:
 *  - a directory pulled without `expect` from a host with no run of ours → UNVERIFIED_ARTIFACTS with
 *    the remedy (pull_verify with expect); nothing is destroyed;
 *  - a checkpoint in the profile's data dir that no receipt holds → refused, naming it;
 *  - a pull that holds every checkpoint found → to the human; approved by elicitation, the destroy runs
 *    once and the stub provider, which keeps listing the instance for 2 looks after the destroy, is polled
 *    until it no longer does → recheck.gone true after 3 polls.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";

let lab: Lab;
let s: ServerConnection;
let state: string;

const calls = () => (fs.existsSync(path.join(state, "calls")) ? fs.readFileSync(path.join(state, "calls"), "utf8").trim().split("\n") : []);

beforeAll(async () => {
  lab = await startLab([{ name: "v3", profile: "vastai", gpus: 1 }]);
  state = fs.mkdtempSync(path.join(lab.root, "vast-state-"));
  // a provider whose read side lags its destroy: the listing names the instance for 2 looks afterwards
  fs.writeFileSync(path.join(lab.localBin, "vastai"), `#!/bin/bash
d=${state}
echo "$*" >> "$d/calls"
if [ "$1" = destroy ]; then touch "$d/destroyed"; echo "destroying instance $3."; exit 0; fi
if [ "$1" = show ]; then
  if [ -f "$d/destroyed" ]; then n=$(cat "$d/n" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$d/n"; [ "$n" -le 2 ] && echo 333; fi
  [ -f "$d/destroyed" ] || echo 333
  echo 7; exit 0
fi
`, { mode: 0o755 });
  fs.writeFileSync(path.join(lab.env.RGT_HOME!, "registry.yaml"), "hosts:\n  v3: { profile: vastai, instance_id: '333', price_per_hour: 0.4 }\n");
  await lab.boxes.v3.writeFile("/workspace/res/log.txt", "epoch 9 done\n");
  await lab.boxes.v3.writeFile("/workspace/res/metrics.json", "{\"acc\": 0.9}\n");
  s = await connectServer({ ...lab.env, RGT_TEARDOWN_POLL_BASE_MS: "100" }, { elicitation: () => ({ action: "accept", content: { confirm_host: "v3" } }) });
}, 180_000);

afterAll(async () => {
  await s?.close().catch(() => {});
  await lab?.stop();
});

async function pull(expectList?: string[]): Promise<string> {
  const local = fs.mkdtempSync(path.join(lab.root, "pull-"));
  const r = await s.call("pull_verify", { host: "v3", remote_path: "/workspace/res", local_dir: local, ...(expectList ? { expect: expectList } : {}) });
  expect(r.ok, JSON.stringify(r).slice(0, 500)).toBe(true);
  return r.receipt_id;
}

describe("the teardown gate needs a roster", () => {
  it("a directory pulled without a roster does not satisfy it: UNVERIFIED_ARTIFACTS, remedy pull_verify with expect", async () => {
    const id = await pull();
    const r = await s.call("request_teardown", { host: "v3" });
    expect(r.refused?.code, JSON.stringify(r).slice(0, 500)).toBe("UNVERIFIED_ARTIFACTS");
    expect(r.refused.reason).toContain(id);
    expect(r.refused.reason).toMatch(/without a roster/);
    expect(r.refused.remedy).toMatch(/pull_verify.*expect/);
    expect(calls().filter((c) => c.startsWith("destroy"))).toEqual([]);
  });

  it("a checkpoint in the profile's data dir that no receipt holds is named in the refusal", async () => {
    const w = await lab.boxes.v3.exec("mkdir -p /workspace/ckpt && python3 -c \"import torch; torch.save({'w': torch.zeros(2)}, '/workspace/ckpt/epoch9.pt')\"", { timeoutMs: 120_000 });
    expect(w.code, w.stderr).toBe(0);
    const r = await s.call("request_teardown", { host: "v3" });
    expect(r.refused?.code).toBe("UNVERIFIED_ARTIFACTS");
    expect(r.refused.reason).toContain("/workspace/ckpt/epoch9.pt");
    expect(calls().filter((c) => c.startsWith("destroy"))).toEqual([]);
  });

  it("once every checkpoint found is in a receipt: approved, destroyed once, polled until the provider says gone", async () => {
    await lab.boxes.v3.exec("mv /workspace/ckpt/epoch9.pt /workspace/res/epoch9.pt");
    await pull();
    const r = await s.call("request_teardown", { host: "v3" });
    expect(r.ok, JSON.stringify(r).slice(0, 700)).toBe(true);
    expect(r.status).toBe("done");
    expect(r.recheck.gone).toBe(true);
    expect(r.recheck.polls).toBe(3);
    expect(calls().filter((c) => c.startsWith("destroy"))).toEqual(["destroy instance 333"]);
    expect(r.warnings.map((w: { code: string }) => w.code)).not.toContain("METER_RECHECK");
  });
});
