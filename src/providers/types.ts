/** What a provider adapter needs to stop a host's meter, and what it reports back. */
import type { Warning } from "../common/result.js";
import type { Remote } from "../remote/types.js";

export interface MeterStopSpec {
  verb: string;
  irreversible: boolean;
  via: "provider_cli" | "api" | "console" | "on_box" | "scheduler" | "none";
  command?: string;
  api_key_env?: string;
  manual_steps: string[];
}

export interface MeterStopTarget {
  host: string;
  /** profile name (vastai, runpod, lambda, slurm, kubernetes, autodl, generic-ssh …) */
  platform: string;
  meter_stop: MeterStopSpec;
  instance_id?: string;
  /** Slurm job ids of OUR runs on this host (never anyone else's) */
  slurm_job_ids: string[];
  k8s?: { namespace: string; name: string };
}

export interface ProviderDeps {
  remote: Remote;
  env: NodeJS.ProcessEnv;
  /** bound for every provider call */
  timeoutMs: number;
  /** the post-stop check's polling budget (default: pollSettings(env), 120 s) */
  poll?: import("./poll.js").PollSettings;
}

export interface MeterStopOutcome {
  status: "done" | "manual_steps" | "failed";
  /** what was done, for the record: the argv (never a key) or the endpoint called */
  performed?: string;
  /** provider output tail (redacted later by the tool wrapper) */
  detail?: string;
  steps?: string[];
  /** the post-stop check: gone true / still listed false / could not ask null, after `polls` looks */
  recheck?: { gone: boolean | null; detail: string; polls?: number; waited_s?: number };
  warnings: Warning[];
}

export interface ProviderAdapter {
  name: string;
  /** Is everything needed present? Return a problem (field + fix) or null. Pure, checked BEFORE any approval is issued. */
  missing(t: MeterStopTarget, env: NodeJS.ProcessEnv): { field: string; fix: string } | null;
  /** Human-readable description of exactly what will be done (shown in the approval summary). */
  describe(t: MeterStopTarget): string;
  act(t: MeterStopTarget, deps: ProviderDeps): Promise<MeterStopOutcome>;
}
