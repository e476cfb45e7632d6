/**
 * Lambda Cloud: terminate over its REST API. The key is read from the environment variable the
 * profile names (LAMBDA_API_KEY by default) and travels only in the Authorization header of a fetch —
 * never in argv, a log or a result. The base URL can be pointed elsewhere with RGT_LAMBDA_API_BASE
 * (the tests run a local HTTP server there).
 */
import { warning } from "../common/result.js";
import { safeId } from "./cli.js";
import type { MeterStopOutcome, MeterStopTarget, ProviderAdapter, ProviderDeps } from "./types.js";
import { setting } from "../common/config.js";

export const LAMBDA_DEFAULT_BASE = "https://cloud.lambdalabs.com/api/v1";

function base(env: NodeJS.ProcessEnv): string {
  return setting("RGT_LAMBDA_API_BASE", env).replace(/\/+$/, "");
}
function keyEnv(t: MeterStopTarget): string {
  return t.meter_stop.api_key_env || "LAMBDA_API_KEY";
}

async function call(url: string, key: string, timeoutMs: number,
    init: { method: string; body?: unknown }): Promise<{ status: number; json: unknown; text: string }> {
  const res = await fetch(url, {
    method: init.method,
    headers: {
      authorization: `Basic ${Buffer.from(`${key}:`).toString("base64")}`,
      accept: "application/json",
      ...(init.body ? { "content-type": "application/json" } : {}),
    },
    body: init.body ? JSON.stringify(init.body) : undefined,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let json: unknown = undefined;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text: text.slice(0, 300) };
}

export const lambda: ProviderAdapter = {
  name: "lambda",
  missing(t, env) {
    if (!safeId(t.instance_id)) return { field: `registry.yaml hosts.${t.host}.instance_id`, fix: `Add the Lambda instance id of ${t.host} to registry.yaml in RGT_HOME.` };
    if (!env[keyEnv(t)]) return { field: `env ${keyEnv(t)}`, fix: `Start the MCP server with ${keyEnv(t)} set in its environment (the key is read from there only).` };
    return null;
  },
  describe(t) {
    return `POST ${LAMBDA_DEFAULT_BASE}/instance-operations/terminate {"instance_ids":["${t.instance_id ?? "<instance_id>"}"]} (key from $${keyEnv(t)})`;
  },
  async act(t: MeterStopTarget, deps: ProviderDeps): Promise<MeterStopOutcome> {
    const key = deps.env[keyEnv(t)] ?? "";
    const id = t.instance_id!;
    const endpoint = `${base(deps.env)}/instance-operations/terminate`;
    let r;
    try {
      r = await call(endpoint, key, deps.timeoutMs, { method: "POST", body: { instance_ids: [id] } });
    } catch (e) {
      return { status: "failed", performed: `POST ${endpoint}`, detail: `request failed: ${(e as Error).message}`, steps: t.meter_stop.manual_steps, warnings: [] };
    }
    if (r.status < 200 || r.status >= 300) {
      return { status: "failed", performed: `POST ${endpoint}`, detail: `HTTP ${r.status}: ${r.text}`, steps: t.meter_stop.manual_steps, warnings: [] };
    }
    let recheck: MeterStopOutcome["recheck"];
    try {
      const g = await call(`${base(deps.env)}/instances/${encodeURIComponent(id)}`, key, deps.timeoutMs, { method: "GET" });
      const st = (g.json as { data?: { status?: string } } | undefined)?.data?.status;
      recheck = { gone: g.status === 404 || st === "terminated" || st === "terminating", detail: `GET instance: HTTP ${g.status}${st ? `, status ${st}` : ""}` };
    } catch (e) {
      recheck = { gone: null, detail: `re-check failed: ${(e as Error).message}` };
    }
    return {
      status: "done",
      performed: `POST ${endpoint}`,
      detail: `HTTP ${r.status}`,
      recheck,
      warnings: [
        ...(recheck.gone === false ? [warning("METER_RECHECK", "warn", `Lambda accepted the terminate but instance ${id} is not yet terminating; check the console.`)] : []),
        warning("LAM_NFS_BILLS", "info", "An attached Lambda filesystem is not deleted by terminate and keeps billing until you delete it yourself."),
      ],
    };
  },
};
