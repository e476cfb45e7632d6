/**
 * Which adapter stops which platform's meter. Platforms whose meter stop is console-only (AutoDL's
 * 关机, Paperspace, the Chinese rentals, a bare box) get the profile's exact manual steps instead: the
 * server never shuts a rented box down from inside, because on several platforms that does not stop
 * the bill and can strand the instance in a state that still charges.
 */
import { lambda } from "./lambda.js";
import { runpod, vastai } from "./rentals.js";
import { kubernetes, slurm } from "./schedulers.js";
import type { MeterStopOutcome, MeterStopTarget, ProviderAdapter } from "./types.js";

export type { MeterStopOutcome, MeterStopTarget, ProviderAdapter, ProviderDeps, MeterStopSpec } from "./types.js";

const BY_PLATFORM: Record<string, ProviderAdapter> = { vastai, runpod, lambda, slurm, kubernetes };

/** The adapter that acts for this target, or undefined when the meter stop is a human's job. */
export function adapterFor(t: MeterStopTarget): ProviderAdapter | undefined {
  const a = BY_PLATFORM[t.platform];
  if (!a) return undefined;
  if (t.meter_stop.via === "console" || t.meter_stop.via === "none") return undefined;
  return a;
}

function fill(s: string, t: MeterStopTarget): string {
  return s
    .replaceAll("{instance_id}", t.instance_id ?? "<instance id>")
    .replaceAll("{host}", t.host)
    .replaceAll("{job_id}", t.slurm_job_ids.join(" ") || "<job id>")
    .replaceAll("{namespace}", t.k8s?.namespace ?? "<namespace>")
    .replaceAll("{name}", t.k8s?.name ?? "<job name>");
}

/** Exact steps for a human, from the profile, with what we know filled in. */
export function manualSteps(t: MeterStopTarget): string[] {
  const steps = t.meter_stop.manual_steps.map((s) => fill(s, t));
  if (steps.length > 0) return steps.slice(0, 12);
  const out = [
    `Open the ${t.platform} console and find the instance behind ${t.host}${t.instance_id ? ` (id ${t.instance_id})` : ""}.`,
    `Use "${t.meter_stop.verb}" on it${t.meter_stop.irreversible ? " — this deletes its local disk; the pulled copies are your only copy" : ""}.`,
    "Refresh the list and confirm it no longer shows as running or billing.",
  ];
  if (t.meter_stop.command) out.splice(1, 0, `Or run: ${fill(t.meter_stop.command, t)}`);
  return out;
}

export function describeAction(t: MeterStopTarget): string {
  const a = adapterFor(t);
  return a ? a.describe(t) : `manual: ${t.meter_stop.verb} in the ${t.platform} console`;
}

export function manualOutcome(t: MeterStopTarget): MeterStopOutcome {
  return { status: "manual_steps", steps: manualSteps(t), warnings: [] };
}
