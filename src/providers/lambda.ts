/**
 * Lambda Cloud: terminate over its REST API. The key is read from the environment variable the
 * profile names (LAMBDA_API_KEY by default) and travels only in the Authorization header of a fetch —
 * never in argv, a log or a result. The base URL can be pointed elsewhere with RGT_LAMBDA_API_BASE
 * (the tests run a local HTTP server there). Every request is bounded (AbortSignal.timeout); a terminate
 * that does not answer is judged by re-reading the instance, never retried blind (LAM14, verified 2026-06).
 */
import { warning } from "../common/result.js";
import { safeId } from "./cli.js";
import { pollSettings, pollUntilGone, timedOutOutcome, type GoneCheck } from "./poll.js";
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
    const performed = `POST ${endpoint}`;
    let r: Awaited<ReturnType<typeof call>> | undefined;
    let hung = "";
    try {
      r = await call(endpoint, key, deps.timeoutMs, { method: "POST", body: { instance_ids: [id] } });
    } catch (e) {
      // LAM14: the terminate call itself can hang; a timeout is judged by re-reading the instance
      const err = e as Error;
      if (err.name !== "TimeoutError" && err.name !== "AbortError") {
        return { status: "failed", performed, detail: `request failed: ${err.message}`, steps: t.meter_stop.manual_steps, warnings: [] };
      }
      hung = `no answer within ${Math.round(deps.timeoutMs / 1000)} s`;
    }
    if (r && (r.status < 200 || r.status >= 300)) {
      return { status: "failed", performed, detail: `HTTP ${r.status}: ${r.text}`, steps: t.meter_stop.manual_steps, warnings: [] };
    }
    const look = async (budgetMs: number): Promise<GoneCheck> => {
      try {
        const g = await call(`${base(deps.env)}/instances/${encodeURIComponent(id)}`, key, Math.min(deps.timeoutMs, budgetMs), { method: "GET" });
        const st = (g.json as { data?: { status?: string } } | undefined)?.data?.status;
        const detail = `GET instance: HTTP ${g.status}${st ? `, status ${st}` : ""}`;
        if (g.status === 404 || st === "terminated" || st === "terminating") return { gone: true, detail };
        return { gone: g.status >= 200 && g.status < 300 ? false : null, detail };
      } catch (e) {
        return { gone: null, detail: `re-check failed: ${(e as Error).message}` };
      }
    };
    const recheck = await pollUntilGone(look, deps.poll ?? pollSettings(deps.env));
    const nfs = warning("LAM_NFS_BILLS", "info", "An attached Lambda filesystem is not deleted by terminate and keeps billing until you delete it yourself.");
    if (hung) return timedOutOutcome(performed, recheck, "Lambda's terminate", { steps: t.meter_stop.manual_steps, warnings: [nfs] });
    return {
      status: "done",
      performed,
      detail: `HTTP ${r!.status}`,
      recheck,
      warnings: [
        ...(recheck.gone === false ? [warning("METER_RECHECK", "warn", `Lambda accepted the terminate but instance ${id} is not yet terminating after ${recheck.waited_s} s; check the console.`)] : []),
        nfs,
      ],
    };
  },
};
