/**
 * Provider adapters against stand-ins that run for real: stub CLIs on PATH that record their argv, and
 * a local HTTP server in place of the Lambda API. No cloud is reachable from here.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adapterFor, manualSteps, type MeterStopTarget } from "../../src/providers/index.js";
import type { Remote } from "../../src/remote/types.js";

let bin: string;
let log: string;
const noRemote = {} as Remote; // CLI/API adapters never touch the box

function stub(name: string, body = ""): void {
  fs.writeFileSync(path.join(bin, name), `#!/bin/bash\n{ printf '%s' "${name}"; for a in "$@"; do printf '\\x1f%s' "$a"; done; printf '\\n'; } >> "${log}"\n${body}\nexit 0\n`, { mode: 0o755 });
}
function calls(): string[][] {
  if (!fs.existsSync(log)) return [];
  return fs.readFileSync(log, "utf8").split("\n").filter(Boolean).map((l) => l.split("\x1f"));
}
const env = () => ({ PATH: `${bin}:/usr/bin:/bin`, HOME: os.tmpdir() });

function target(over: Partial<MeterStopTarget>): MeterStopTarget {
  return {
    host: "box", platform: "vastai", instance_id: "4242", slurm_job_ids: [],
    meter_stop: { verb: "destroy", irreversible: true, via: "provider_cli", command: "vastai destroy instance {instance_id}", manual_steps: [] },
    ...over,
  };
}

beforeAll(() => {
  bin = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-stubs-"));
  log = path.join(bin, "calls.log");
  // after the stop, the account's listing no longer names the instance (vast: one id a line; runpodctl: a table)
  stub("vastai", 'if [ "$1" = show ]; then printf "1001\\n42420\\n"; exit 0; fi; echo "destroying instance $3."');
  stub("runpodctl", 'if [ "$1" = get ]; then printf "ID  NAME  GPU  STATUS\\nzz9abc  other  1 x A40  RUNNING\\n"; exit 0; fi; echo "pod $3 removed"');
  stub("kubectl", 'if [ "$1" = get ]; then echo "Error from server (NotFound)"; exit 1; fi; echo "job.batch deleted"');
});
afterAll(() => fs.rmSync(bin, { recursive: true, force: true }));

describe("provider CLIs", () => {
  it("vast.ai: exact argv, then a re-check", async () => {
    fs.rmSync(log, { force: true });
    const t = target({});
    const a = adapterFor(t)!;
    expect(a.name).toBe("vastai");
    expect(a.missing(t, env())).toBeNull();
    const out = await a.act(t, { remote: noRemote, env: env(), timeoutMs: 10_000 });
    expect(out.status).toBe("done");
    expect(calls()[0]).toEqual(["vastai", "destroy", "instance", "4242"]);
    expect(calls()[1]).toEqual(["vastai", "show", "instances", "-q"]);
    expect(out.recheck?.gone).toBe(true);
    expect(out.warnings).toEqual([]);
  });

  it("the re-check: still listed → gone false and METER_RECHECK; a listing that fails proves nothing (gone null)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-recheck-"));
    try {
      const t = target({});
      const run = async (list: string) => {
        fs.writeFileSync(path.join(dir, "vastai"), `#!/bin/bash\nif [ "$1" = show ]; then ${list}; fi\necho "destroying instance $3."\n`, { mode: 0o755 });
        // the post-stop check polls (a destroy is eventually consistent); a short budget keeps this quick
        return adapterFor(t)!.act(t, { remote: noRemote, env: { PATH: `${dir}:/usr/bin:/bin` }, timeoutMs: 10_000, poll: { totalMs: 600, baseMs: 100, capMs: 200 } });
      };
      const still = await run('printf "1001\\n4242\\n"; exit 0');
      expect(still.recheck).toMatchObject({ gone: false });
      expect(still.recheck?.detail).toContain("still lists");
      expect(still.warnings.map((w) => w.code)).toEqual(["METER_RECHECK"]);
      const down = await run('echo "failed to connect to console.vast.ai" >&2; exit 1');
      expect(down.status).toBe("done");
      expect(down.recheck?.gone).toBeNull();
      expect(down.recheck?.detail).toContain("exit 1");
      expect(down.warnings.map((w) => w.code)).toEqual(["METER_RECHECK"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("RunPod: runpodctl remove pod <id>", async () => {
    fs.rmSync(log, { force: true });
    const t = target({ platform: "runpod", instance_id: "abc123xyz", meter_stop: { verb: "terminate", irreversible: true, via: "provider_cli", command: "runpodctl remove pod {instance_id}", manual_steps: [] } });
    const out = await adapterFor(t)!.act(t, { remote: noRemote, env: env(), timeoutMs: 10_000 });
    expect(out.status).toBe("done");
    expect(calls()[0]).toEqual(["runpodctl", "remove", "pod", "abc123xyz"]);
    expect(calls()[1]).toEqual(["runpodctl", "get", "pod"]);
    expect(out.recheck?.gone).toBe(true);
  });

  it("a missing or unsafe instance id is caught before anything runs", () => {
    for (const id of [undefined, "", "1; rm -rf /", "$(id)", "-rf"]) {
      const t = target({ instance_id: id });
      expect(adapterFor(t)!.missing(t, env())?.field).toContain("instance_id");
    }
  });

  it("a failing CLI is reported as failed with the manual steps", async () => {
    const failing = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-fail-"));
    fs.writeFileSync(path.join(failing, "vastai"), "#!/bin/bash\necho 'Unauthorized' >&2\nexit 3\n", { mode: 0o755 });
    const t = target({ meter_stop: { verb: "destroy", irreversible: true, via: "provider_cli", manual_steps: ["open console", "destroy {instance_id}"] } });
    const out = await adapterFor(t)!.act(t, { remote: noRemote, env: { PATH: `${failing}:/usr/bin:/bin` }, timeoutMs: 10_000 });
    expect(out.status).toBe("failed");
    expect(out.detail).toContain("exit 3");
    expect(out.steps).toEqual(["open console", "destroy {instance_id}"]);
    fs.rmSync(failing, { recursive: true, force: true });
  });

  it("a CLI that hangs is killed at the bound", async () => {
    const slow = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-slow-"));
    fs.writeFileSync(path.join(slow, "vastai"), "#!/bin/bash\nsleep 30\n", { mode: 0o755 });
    const t0 = Date.now();
    // a stop that timed out is re-checked (bounded) before it is called failed; the listing hangs too here
    const out = await adapterFor(target({}))!.act(target({}), { remote: noRemote, env: { PATH: `${slow}:/usr/bin:/bin` }, timeoutMs: 500, poll: { totalMs: 1000, baseMs: 200, capMs: 400 } });
    expect(out.status).toBe("failed");
    expect(out.detail).toMatch(/timed out/);
    expect(out.detail).toMatch(/not confirmed gone/);
    expect(Date.now() - t0).toBeLessThan(5000);
    fs.rmSync(slow, { recursive: true, force: true });
  });

  it("Kubernetes: delete the Job, re-check, and warn that the node pool still bills", async () => {
    fs.rmSync(log, { force: true });
    const t = target({ platform: "kubernetes", instance_id: undefined, k8s: { namespace: "ml", name: "sweep-a" }, meter_stop: { verb: "delete job", irreversible: false, via: "scheduler", command: "kubectl delete job {name} -n {namespace}", manual_steps: [] } });
    const out = await adapterFor(t)!.act(t, { remote: noRemote, env: env(), timeoutMs: 10_000 });
    expect(calls()[0]).toEqual(["kubectl", "delete", "job", "sweep-a", "-n", "ml"]);
    expect(out.status).toBe("done");
    expect(out.recheck?.gone).toBe(true);
    expect(out.warnings.map((w) => w.code)).toContain("K8S_NODE_POOL");
    const none = target({ platform: "kubernetes", k8s: undefined, meter_stop: t.meter_stop });
    expect(adapterFor(none)!.missing(none, env())?.field).toContain("job_name");
  });

  it("console-only platforms get exact manual steps with the instance filled in, and no adapter", () => {
    const t = target({ platform: "autodl", instance_id: "i-9", meter_stop: { verb: "关机", irreversible: false, via: "console", manual_steps: ["Open the console", "Press 关机 on {instance_id}"] } });
    expect(adapterFor(t)).toBeUndefined();
    expect(manualSteps(t)).toEqual(["Open the console", "Press 关机 on i-9"]);
    const bare = target({ platform: "generic-ssh", meter_stop: { verb: "stop", irreversible: true, via: "none", manual_steps: [] } });
    expect(adapterFor(bare)).toBeUndefined();
    expect(manualSteps(bare).join(" ")).toContain("4242");
  });
});

describe("Lambda API", () => {
  const KEY = "lam_" + "Q".repeat(8) + "testkey";
  let server: http.Server;
  let base: string;
  const seen: { method: string; url: string; auth?: string; body: string }[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
        const okAuth = req.headers.authorization === `Basic ${Buffer.from(`${KEY}:`).toString("base64")}`;
        res.setHeader("content-type", "application/json");
        if (!okAuth) { res.statusCode = 401; res.end('{"error":{"code":"unauthorized"}}'); return; }
        if (req.url === "/api/v1/instance-operations/terminate") res.end('{"data":{"terminated_instances":[{"id":"inst-1","status":"terminating"}]}}');
        else if (req.url === "/api/v1/instances/inst-1") res.end('{"data":{"id":"inst-1","status":"terminating"}}');
        else { res.statusCode = 404; res.end("{}"); }
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}/api/v1`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const lt = () => target({ platform: "lambda", instance_id: "inst-1", meter_stop: { verb: "terminate", irreversible: true, via: "api", command: "POST /instance-operations/terminate", api_key_env: "LAMBDA_API_KEY", manual_steps: [] } });

  it("terminates with the key only in the Authorization header", async () => {
    seen.length = 0;
    const t = lt();
    const e = { LAMBDA_API_KEY: KEY, RGT_LAMBDA_API_BASE: base };
    expect(adapterFor(t)!.missing(t, e)).toBeNull();
    const out = await adapterFor(t)!.act(t, { remote: noRemote, env: e, timeoutMs: 5000 });
    expect(out.status).toBe("done");
    expect(seen[0].method).toBe("POST");
    expect(seen[0].url).toBe("/api/v1/instance-operations/terminate");
    expect(JSON.parse(seen[0].body)).toEqual({ instance_ids: ["inst-1"] });
    expect(out.recheck?.gone).toBe(true);
    expect(JSON.stringify(out)).not.toContain(KEY);
  });

  it("no key in the environment → caught before anything is sent", () => {
    seen.length = 0;
    const t = lt();
    expect(adapterFor(t)!.missing(t, { RGT_LAMBDA_API_BASE: base })?.field).toBe("env LAMBDA_API_KEY");
    expect(seen).toHaveLength(0);
  });

  it("a rejected key is failed, and the key is not echoed", async () => {
    const out = await adapterFor(lt())!.act(lt(), { remote: noRemote, env: { LAMBDA_API_KEY: "wrong-key-value", RGT_LAMBDA_API_BASE: base }, timeoutMs: 5000 });
    expect(out.status).toBe("failed");
    expect(out.detail).toContain("401");
    expect(JSON.stringify(out)).not.toContain("wrong-key-value");
  });
});
