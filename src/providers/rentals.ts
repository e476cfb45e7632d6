/**
 * Provider-CLI rentals: vast.ai (`vastai destroy instance <id>`) and RunPod (`runpodctl remove pod <id>`).
 * Both CLIs keep their own API key in their own config; we pass nothing secret. After the stop we list
 * the account's instances with the same CLI until it no longer names the instance (a destroy is
 * eventually consistent: the list can show it for a while), bounded by src/providers/poll.ts. Every
 * call is bounded; a stop call that times out is judged by that listing, not retried blind. The list is read for the id alone (vast `show instances
 * -q` prints one id
 * a line; runpodctl's table starts each row with the pod id), so no wording of either CLI is relied on;
 * a list that fails proves nothing either way (gone: null).
 */
import { warning } from "../common/result.js";
import { runCli, safeId } from "./cli.js";
import { pollSettings, pollUntilGone, timedOutOutcome, type GoneCheck } from "./poll.js";
import type { MeterStopOutcome, MeterStopTarget, ProviderAdapter, ProviderDeps } from "./types.js";

/** The line of a listing that names `id` as a whole word (its first column or any other), if any. */
export function listedLine(out: string, id: string): string | undefined {
  return out.split("\n").find((l) => l.split(/[\s,|]+/).includes(id));
}

function cliAdapter(name: string, bin: string, stopArgs: (id: string) => string[], listArgs: string[]): ProviderAdapter {
  return {
    name,
    missing(t) {
      if (!safeId(t.instance_id)) {
        return { field: `registry.yaml hosts.${t.host}.instance_id`, fix: `Add the ${name} instance id of ${t.host} to registry.yaml in RGT_HOME (or run probe_env so the box reports it).` };
      }
      return null;
    },
    describe(t) {
      return [bin, ...stopArgs(t.instance_id ?? "<instance_id>")].join(" ");
    },
    async act(t: MeterStopTarget, deps: ProviderDeps): Promise<MeterStopOutcome> {
      const id = t.instance_id!;
      const argv = [bin, ...stopArgs(id)];
      const r = await runCli(argv, deps.env, deps.timeoutMs);
      if (r.notFound) {
        return { status: "failed", performed: argv.join(" "), detail: `${bin} is not installed on this machine`, steps: t.meter_stop.manual_steps, warnings: [] };
      }
      if (!r.timedOut && r.code !== 0) {
        return { status: "failed", performed: argv.join(" "), detail: `exit ${r.code}: ${r.out}`, steps: t.meter_stop.manual_steps, warnings: [] };
      }
      // a stop that timed out may still have landed: look before calling it failed, and never retry blind
      const what = `${bin} ${listArgs.join(" ")}`;
      const look = async (budgetMs: number): Promise<GoneCheck> => {
        const list = await runCli([bin, ...listArgs], deps.env, Math.min(deps.timeoutMs, budgetMs));
        if (list.notFound || list.timedOut || list.code !== 0) {
          return { gone: null, detail: `${what}: ${list.timedOut ? "timed out" : list.notFound ? "not runnable" : `exit ${list.code}: ${list.out.slice(0, 160)}`}` };
        }
        const line = listedLine(list.out, id);
        return { gone: !line, detail: line ? `${what} still lists it: ${line.trim().slice(0, 160)}` : `${what} no longer lists ${id}` };
      };
      const recheck = await pollUntilGone(look, deps.poll ?? pollSettings(deps.env));
      if (r.timedOut) return timedOutOutcome(argv.join(" "), recheck, bin, { steps: t.meter_stop.manual_steps });
      const warnings = recheck.gone === true ? [] : [warning("METER_RECHECK", "warn", recheck.gone === false
        ? `${name} accepted the stop but still lists instance ${id} after ${recheck.waited_s} s of polling; check the console.`
        : `${name} accepted the stop, but listing the instances afterwards failed, so it is unconfirmed; check the console.`)];
      return { status: "done", performed: argv.join(" "), detail: r.out, recheck, warnings };
    },
  };
}

export const vastai = cliAdapter("vastai", "vastai", (id) => ["destroy", "instance", id], ["show", "instances", "-q"]);
export const runpod = cliAdapter("runpod", "runpodctl", (id) => ["remove", "pod", id], ["get", "pod"]);
