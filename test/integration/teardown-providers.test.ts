/**
 * Each provider's meter stop through the real server, approved by the human over MCP elicitation:
 * Lambda (terminate over its API — a local HTTP server stands in, the key only in the header),
 * RunPod (`runpodctl remove pod <id>`), Kubernetes (`kubectl delete job` + the node-pool reminder),
 * AutoDL (console only → exact steps, the 15-day danger clock surfaced). Stubs record argv; nothing
 * is called before the human typed the host name.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";

const KEY = "lam_" + randomBytes(20).toString("hex");
let lab: Lab;
let api: http.Server;
let apiBase: string;
const apiSeen: { method: string; url: string; auth?: string; body: string }[] = [];
let env: Record<string, string>;
let stubLog: string;
let answerHost = "";
const servers: ServerConnection[] = [];
const results: unknown[] = [];

function calls(): string[][] {
  if (!fs.existsSync(stubLog)) return [];
  return fs.readFileSync(stubLog, "utf8").split("\n").filter(Boolean).map((l) => l.split("\x1f"));
}
function stub(name: string, body: string): void {
  fs.writeFileSync(path.join(lab.localBin, name),
    `#!/bin/bash\n{ printf '%s' ${name}; for a in "$@"; do printf '\\x1f%s' "$a"; done; printf '\\n'; } >> ${stubLog}\n${body}\n`, { mode: 0o755 });
}

async function connect(extra: Record<string, string> = {}): Promise<ServerConnection> {
  const c = await connectServer({ ...env, ...extra }, {
    elicitation: () => ({ action: "accept", content: { confirm_host: answerHost } }),
  });
  servers.push(c);
  return c;
}

async function pulled(c: ServerConnection, host: string, remote: string): Promise<void> {
  await lab.boxes[host].writeFile(`${remote}/model.safetensors.txt`, `weights ${randomBytes(16).toString("hex")}`);
  const r = await c.call("pull_verify", { host, remote_path: remote, local_dir: fs.mkdtempSync(path.join(lab.root, "p-")), expect: ["model.safetensors.txt"] });
  results.push(r);
  expect(r.ok, JSON.stringify(r).slice(0, 500)).toBe(true);
}

beforeAll(async () => {
  api = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      apiSeen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
      res.setHeader("content-type", "application/json");
      if (req.headers.authorization !== `Basic ${Buffer.from(`${KEY}:`).toString("base64")}`) { res.statusCode = 401; res.end("{}"); return; }
      if (req.method === "POST" && req.url === "/api/v1/instance-operations/terminate") res.end(JSON.stringify({ data: { terminated_instances: [{ id: "inst-lam-1", status: "terminating" }] } }));
      else if (req.url === "/api/v1/instances/inst-lam-1") res.end(JSON.stringify({ data: { id: "inst-lam-1", status: "terminating" } }));
      else { res.statusCode = 404; res.end("{}"); }
    });
  });
  await new Promise<void>((r) => api.listen(0, "127.0.0.1", () => r()));
  apiBase = `http://127.0.0.1:${(api.address() as { port: number }).port}/api/v1`;

  lab = await startLab([{ name: "lam1", gpus: 1 }, { name: "rp1", gpus: 1 }, { name: "k1", gpus: 0 }, { name: "ad2", profile: "autodl", gpus: 1 }]);
  stubLog = path.join(lab.root, "provider-calls.log");
  stub("runpodctl", 'if [ "$1" = get ]; then printf "ID  NAME  STATUS\\nother1  x  RUNNING\\n"; exit 0; fi\necho "pod \\"$3\\" removed"');
  stub("kubectl", 'if [ "$1" = get ]; then echo "Error from server (NotFound): jobs.batch \\"$3\\" not found" >&2; exit 1; fi\nif [ "$1" = config ]; then exit 1; fi\necho "job.batch \\"$3\\" deleted"');
  fs.writeFileSync(path.join(lab.env.RGT_HOME!, "registry.yaml"), [
    "lam1: { profile: lambda, instance_id: inst-lam-1, price_per_hour: 2.49 }",
    "rp1: { profile: runpod, instance_id: podabc123, price_per_hour: 0.69 }",
    "k1: { profile: kubernetes, namespace: ml, job_name: sweep-a }",
    "ad2: { profile: autodl, instance_id: ad-77, price_per_hour: 1.88, currency: CNY }",
    "",
  ].join("\n"));
  env = { ...lab.env, RGT_LAMBDA_API_BASE: apiBase };
}, 180_000);

afterAll(async () => {
  for (const c of servers) await c.close().catch(() => {});
  await lab?.stop();
  await new Promise<void>((r) => api?.close(() => r()));
});

describe("provider meter stops through the gate", () => {
  it("Lambda without its key in the server environment: BAD_INPUT before any approval or request", async () => {
    const c = await connect();
    await pulled(c, "lam1", "/root/out");
    answerHost = "lam1";
    const r = await c.call("request_teardown", { host: "lam1" });
    results.push(r);
    expect(r.refused.code).toBe("BAD_INPUT");
    expect(r.refused.reason).toContain("LAMBDA_API_KEY");
    expect(apiSeen).toHaveLength(0);
  });

  it("Lambda: approved by elicitation → one terminate POST, key only in the Authorization header", async () => {
    const c = await connect({ LAMBDA_API_KEY: KEY });
    answerHost = "lam1";
    const r = await c.call("request_teardown", { host: "lam1" });
    results.push(r);
    expect(r.ok, JSON.stringify(r).slice(0, 600)).toBe(true);
    expect(r.status).toBe("done");
    expect(r.action).toBe("terminate");
    const posts = apiSeen.filter((x) => x.method === "POST");
    expect(posts).toHaveLength(1);
    expect(posts[0].url).toBe("/api/v1/instance-operations/terminate");
    expect(JSON.parse(posts[0].body)).toEqual({ instance_ids: ["inst-lam-1"] });
    expect(r.recheck.gone).toBe(true);
    expect(r.warnings.map((w: { code: string }) => w.code)).toContain("LAM_NFS_BILLS");
  });

  it("RunPod: the human typing another name stops nothing; the host name → `runpodctl remove pod <id>`", async () => {
    const c = await connect();
    await pulled(c, "rp1", "/root/out");
    answerHost = "lam1";
    const no = await c.call("request_teardown", { host: "rp1" });
    expect(no.refused.code).toBe("APPROVAL_DENIED");
    expect(calls().filter((x) => x[0] === "runpodctl")).toEqual([]);
    answerHost = "rp1";
    const r = await c.call("request_teardown", { host: "rp1" });
    results.push(r);
    expect(r.status).toBe("done");
    expect(calls().filter((x) => x[0] === "runpodctl")[0]).toEqual(["runpodctl", "remove", "pod", "podabc123"]);
    expect(calls().filter((x) => x[1] === "remove")).toHaveLength(1);
  });

  it("Kubernetes: `kubectl delete job <name> -n <ns>` and the node-pool reminder", async () => {
    const c = await connect();
    await pulled(c, "k1", "/root/out");
    answerHost = "k1";
    const r = await c.call("request_teardown", { host: "k1" });
    results.push(r);
    expect(r.status, JSON.stringify(r).slice(0, 500)).toBe("done");
    expect(calls().filter((x) => x[0] === "kubectl" && x[1] === "delete")).toEqual([["kubectl", "delete", "job", "sweep-a", "-n", "ml"]]);
    expect(r.warnings.map((w: { code: string }) => w.code)).toContain("K8S_NODE_POOL");
  });

  it("AutoDL: console-only → exact manual steps, no CLI; the idle meter surfaces the 15-day clock once", async () => {
    const idle = await connect({ RGT_IDLE_METER_S: "0" });
    const first = await idle.call("remote_exec", { host: "ad2", command: "true" });
    const codes = (first.warnings as { code: string }[]).map((w) => w.code);
    expect(codes).toContain("IDLE_METER");
    expect(codes).toContain("AD-DANGER");
    const second = await idle.call("remote_exec", { host: "ad2", command: "true" });
    expect((second.warnings as { code: string }[]).map((w) => w.code)).not.toContain("AD-DANGER");
    await pulled(idle, "ad2", "/root/autodl-tmp/out");
    const before = calls().length;
    answerHost = "ad2";
    const r = await idle.call("request_teardown", { host: "ad2", action: "shutdown" });
    results.push(r);
    expect(r.status).toBe("manual_steps");
    expect(r.irreversible).toBe(false);
    expect(r.steps.join("\n")).toContain("关机");
    expect(calls().length).toBe(before);
  });

  it("no credential value in any result, server stderr or state file", () => {
    const blob = JSON.stringify(results) + servers.map((c) => c.stderr()).join("\n");
    expect(blob).not.toContain(KEY);
    for (const f of fs.readdirSync(env.RGT_HOME, { recursive: true }) as string[]) {
      const p = path.join(env.RGT_HOME, f);
      if (fs.statSync(p).isFile()) expect(fs.readFileSync(p, "latin1"), p).not.toContain(KEY);
    }
    expect(fs.readFileSync(stubLog, "utf8")).not.toContain(KEY);
  });
});
