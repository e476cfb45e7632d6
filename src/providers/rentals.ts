/**
 * Provider-CLI rentals: vast.ai (`vastai destroy instance <id>`) and RunPod (`runpodctl remove pod <id>`).
 * Both CLIs keep their own API key in their own config; we pass nothing secret. After the stop we ask
 * the same CLI about the instance once, as a re-check, and record what it said.
 */
import { warning } from "../common/result.js";
import { runCli, safeId } from "./cli.js";
import type { MeterStopOutcome, MeterStopTarget, ProviderAdapter, ProviderDeps } from "./types.js";

function cliAdapter(name: string, bin: string, stopArgs: (id: string) => string[], showArgs: (id: string) => string[], goneRe: RegExp): ProviderAdapter {
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
      if (r.timedOut || r.code !== 0) {
        return { status: "failed", performed: argv.join(" "), detail: r.timedOut ? `${bin} timed out` : `exit ${r.code}: ${r.out}`, steps: t.meter_stop.manual_steps, warnings: [] };
      }
      const show = await runCli([bin, ...showArgs(id)], deps.env, deps.timeoutMs);
      const gone = show.code !== 0 || goneRe.test(show.out);
      return {
        status: "done",
        performed: argv.join(" "),
        detail: r.out,
        recheck: { gone: show.notFound ? null : gone, detail: show.notFound ? "no re-check possible" : `${showArgs(id)[0]} ${showArgs(id)[1]}: ${show.out.slice(0, 200) || `exit ${show.code}`}` },
        warnings: gone ? [] : [warning("METER_RECHECK", "warn", `${name} accepted the stop but still lists instance ${id}; check the console in a minute.`)],
      };
    },
  };
}

export const vastai = cliAdapter("vastai", "vastai", (id) => ["destroy", "instance", id], (id) => ["show", "instance", id], /not found|no such|destroy|exited|offline/i);
export const runpod = cliAdapter("runpod", "runpodctl", (id) => ["remove", "pod", id], (id) => ["get", "pod", id], /not found|no pod|terminated|removed/i);
