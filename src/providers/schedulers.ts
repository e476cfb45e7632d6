/**
 * Schedulers: Slurm (scancel of OUR runs' job ids only, run on the login box over the pooled ssh
 * connection by scripts/slurm_jobs.sh) and Kubernetes (`kubectl delete job` from this machine, then the reminder that deleting a
 * Job does not shrink the node pool that bills).
 */
import { warning } from "../common/result.js";
import { runCli } from "./cli.js";
import { pollSettings, pollUntilGone, timedOutOutcome, type GoneCheck } from "./poll.js";
import type { MeterStopOutcome, MeterStopTarget, ProviderAdapter, ProviderDeps } from "./types.js";

const JOB_ID = /^\d+(_\d+)?$/;


export const slurm: ProviderAdapter = {
  name: "slurm",
  missing(t) {
    const bad = t.slurm_job_ids.find((j) => !JOB_ID.test(j));
    return bad ? { field: "runs.slurm_job_id", fix: `The run ledger holds a malformed Slurm job id (${bad.slice(0, 40)}); fix or remove that run record.` } : null;
  },
  describe(t) {
    return t.slurm_job_ids.length ? `scancel ${t.slurm_job_ids.join(" ")} (our jobs only) on ${t.host}` : `nothing to cancel on ${t.host} (no Slurm job of ours)`;
  },
  async act(t: MeterStopTarget, deps: ProviderDeps): Promise<MeterStopOutcome> {
    const ids = t.slurm_job_ids.filter((j) => JOB_ID.test(j));
    if (ids.length === 0) return { status: "done", performed: "none", detail: "no Slurm job of ours recorded for this host", warnings: [] };
    const queued = async (): Promise<string[]> => {
      const q = await deps.remote.runScript(t.host, "slurm_jobs.sh", ["queued", ...ids], { timeoutMs: deps.timeoutMs, maxOutputBytes: 65_536 });
      return q.stdout.split(/\s+/).filter(Boolean);
    };
    // only what is still queued or running needs cancelling; finished jobs are left alone
    const before = await queued();
    if (before.length === 0) {
      return { status: "done", performed: "none", detail: `none of our jobs (${ids.join(" ")}) is still queued or running`, recheck: { gone: true, detail: "squeue lists none of them" }, warnings: [] };
    }
    const cmd = `scancel ${ids.join(" ")}`;
    const r = await deps.remote.runScript(t.host, "slurm_jobs.sh", ["cancel", ...ids], { timeoutMs: deps.timeoutMs, maxOutputBytes: 16_384 });
    if (!r.timedOut && r.exitCode !== 0) return { status: "failed", performed: cmd, detail: `exit ${r.exitCode}: ${r.stderr.slice(-300)}`, warnings: [] };
    const look = async (): Promise<GoneCheck> => {
      const left = await queued();
      return { gone: left.length === 0, detail: left.length ? `still queued: ${left.slice(0, 8).join(" ")}` : "squeue lists none of them" };
    };
    const recheck = await pollUntilGone(look, deps.poll ?? { ...pollSettings(deps.env), baseMs: 500 });
    // a scancel that hung is judged by squeue, not retried
    if (r.timedOut) return timedOutOutcome(cmd, recheck, "scancel");
    return {
      status: "done",
      performed: cmd,
      recheck,
      warnings: recheck.gone ? [] : [warning("METER_RECHECK", "warn", `Slurm still lists some of our job(s) after scancel and ${recheck.waited_s} s of polling; they may be completing.`)],
    };
  },
};

export const kubernetes: ProviderAdapter = {
  name: "kubernetes",
  missing(t) {
    if (!t.k8s) return { field: `registry.yaml hosts.${t.host}.job_name`, fix: `Add namespace and job_name for ${t.host} to registry.yaml in RGT_HOME.` };
    return null;
  },
  describe(t) {
    return `kubectl delete job ${t.k8s?.name ?? "<job>"} -n ${t.k8s?.namespace ?? "<namespace>"}`;
  },
  async act(t: MeterStopTarget, deps: ProviderDeps): Promise<MeterStopOutcome> {
    const { name, namespace } = t.k8s!;
    const argv = ["kubectl", "delete", "job", name, "-n", namespace];
    const r = await runCli(argv, deps.env, deps.timeoutMs);
    const pool = warning("K8S_NODE_POOL", "warn", "Deleting the Job frees its pods, but the GPU node pool does not scale down by itself unless an autoscaler does it; scale the pool to zero (or delete it) in the cloud console to stop that bill.");
    if (r.notFound || (!r.timedOut && r.code !== 0)) {
      return { status: "failed", performed: argv.join(" "), detail: r.notFound ? "kubectl is not installed on this machine" : `exit ${r.code}: ${r.out}`, warnings: [pool] };
    }
    // only NotFound proves it gone; an unreachable API server proves nothing
    const look = async (budgetMs: number): Promise<GoneCheck> => {
      const g = await runCli(["kubectl", "get", "job", name, "-n", namespace, "-o", "name"], deps.env, Math.min(deps.timeoutMs, budgetMs));
      if (g.code === 0) return { gone: false, detail: `kubectl get job still lists ${name}` };
      if (/NotFound|not found/.test(g.out)) return { gone: true, detail: "kubectl get job: NotFound" };
      return { gone: null, detail: `kubectl get job: ${g.timedOut ? "timed out" : `exit ${g.code}: ${g.out.slice(0, 160)}`}` };
    };
    const recheck = await pollUntilGone(look, deps.poll ?? pollSettings(deps.env));
    if (r.timedOut) return timedOutOutcome(argv.join(" "), recheck, "kubectl delete", { warnings: [pool] });
    return { status: "done", performed: argv.join(" "), detail: r.out, recheck, warnings: [pool] };
  },
};
