/**
 * Kubernetes backend: a run becomes one indexed Job (completionMode Indexed, one completion per cell,
 * parallelism = lanes) plus a ConfigMap holding each cell's launcher and a PVC mounted at the durable dir,
 * because a pod's own filesystem is gone when the pod is.
 *
 * When `kubectl config current-context` succeeds on this machine the manifest is applied with
 * `kubectl apply -f -` (manifest on stdin). Otherwise nothing is run and the manifest is returned for the
 * user to apply. Stop suspends the Job (pods end, the Job, the PVC and every file stay); deleting is a
 * teardown matter and never done here.
 */
import { shq } from "../common/text.js";
import { execa } from "execa";
import { stringify } from "yaml";
import { RefusalError, warning, type Warning } from "../common/result.js";
import { setting } from "../common/config.js";
import type {
  Backend, BackendContext, CellState, CellStatus, LaunchOutcome, LaunchRequest, RunRecord, StatusOptions, StatusOutcome, StopOutcome,
} from "./types.js";

/** Scheduler knobs a caller may pass alongside a LaunchRequest (all optional). */
export interface SchedulerOptions {
  /** how many cells run at once (Slurm `%K`, Job `parallelism`); default: all cells */
  lanes?: number;
  /** wall-clock limit of one cell: Slurm `--time` text ("30", "1:00:00", "0:20") or seconds */
  walltime?: string | number;
  /** Slurm partition */
  partition?: string;
  /** seconds before the walltime that the cell gets USR1 (Slurm `--signal=B:USR1@lead`); default 120 */
  signal_lead_s?: number;
  /** Kubernetes: container image (default $RGT_K8S_IMAGE) */
  image?: string;
  /** Kubernetes namespace (default $RGT_K8S_NAMESPACE or "default") */
  namespace?: string;
  /** Kubernetes: an existing PVC to mount instead of creating rgt-<run>-durable */
  pvc?: string;
  pvc_size?: string;
  storage_class?: string;
  /** Kubernetes: retries for the whole Job (default 2 per cell, at most 20) */
  backoff_limit?: number;
  /** Kubernetes: seconds a finished Job is kept before the cluster removes it (default 7 days) */
  ttl_after_finished_s?: number;
}

export type SchedulerLaunchRequest = LaunchRequest & { scheduler?: SchedulerOptions };

const DEFAULT_DURABLE = "/checkpoints";
const DEFAULT_TTL_S = 7 * 24 * 3600;
const DEFAULT_DEADLINE_S = 7 * 24 * 3600;
const KUBECTL_TIMEOUT_MS = 20_000;

export { shq };

/** A DNS-1123 label for the Job: short enough that `<name>-<index>` pod hostnames stay within 63 chars. */
export function k8sJobName(runId: string): string {
  const base = runId.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
  return `rgt-${base || "run"}`.slice(0, 48).replace(/-+$/, "");
}

/** Walltime text (Slurm-style "MM", "MM:SS", "HH:MM:SS", "D-HH[:MM[:SS]]") or seconds → seconds. */
export function walltimeSeconds(w: string | number | undefined): number | undefined {
  if (w === undefined || w === "") return undefined;
  if (typeof w === "number") return w > 0 ? Math.ceil(w) : undefined;
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(w.trim());
  if (!m) return undefined;
  const days = Number(m[1] ?? 0);
  const parts = [m[2], m[3], m[4]].filter((x) => x !== undefined).map(Number);
  let s: number;
  if (m[1] !== undefined) {
    // D-HH, D-HH:MM, D-HH:MM:SS
    s = days * 86400 + parts[0] * 3600 + (parts[1] ?? 0) * 60 + (parts[2] ?? 0);
  } else if (parts.length === 1) s = parts[0] * 60; // minutes
  else if (parts.length === 2) s = parts[0] * 60 + parts[1]; // MM:SS
  else s = parts[0] * 3600 + parts[1] * 60 + parts[2];
  return s > 0 ? s : undefined;
}

function durableDirOf(req: LaunchRequest): string {
  const d = req.durable_dir !== undefined ? req.durable_dir : req.profile?.durable_dir;
  return (d && d.startsWith("/") ? d : DEFAULT_DURABLE).replace(/\/+$/, "") || DEFAULT_DURABLE;
}

function badInput(field: string, why: string, remedy: string): RefusalError {
  return new RefusalError("BAD_INPUT", `${field}: ${why}`, remedy);
}

/** The shell text one pod runs for its cell (stored in the ConfigMap as cell-<index>.sh). */
export function cellLauncher(o: {
  runId: string; cell: string; command: string; env: Record<string, string>; workdir: string;
  outputDir: string; stateDir: string; expect: string[]; gpus: number;
}): string {
  const lines = [
    "# launcher for one cell, written by remote-gpu-trainer",
    "set -u",
    `export RGT_CELL=${shq(o.cell)}`,
    `export RGT_OUTPUT_DIR=${shq(o.outputDir)}`,
    `export CUDA_VISIBLE_DEVICES=${shq(Array.from({ length: o.gpus }, (_, i) => String(i)).join(","))}`,
  ];
  for (const [k, v] of Object.entries(o.env)) lines.push(`export ${k}=${shq(v)}`);
  lines.push(
    `st=${shq(`${o.stateDir}/cells/${o.cell}`)}`,
    'mkdir -p "$RGT_OUTPUT_DIR" "$st" || exit 2',
    'if [ "$(cat "$st/state" 2>/dev/null)" = done ]; then echo "rgt: cell already done"; exit 0; fi',
    'echo running > "$st/state"; date +%s > "$st/started_at"',
    `cd ${shq(o.workdir)} || { echo failed > "$st/state"; echo "workdir missing" > "$st/reason"; exit 2; }`,
    `bash -c ${shq(o.command)} 2>&1 | tee -a "$st/log"`,
    "rc=${PIPESTATUS[0]}",
    'echo "$rc" > "$st/exit_code"; date +%s > "$st/ended_at"',
    'if [ "$rc" -ne 0 ]; then echo failed > "$st/state"; exit "$rc"; fi',
    "missing=",
  );
  for (const p of o.expect) lines.push(`[ -s "$RGT_OUTPUT_DIR"/${shq(p)} ] || missing="$missing ${p.replace(/[^A-Za-z0-9._/-]/g, "_")}"`);
  lines.push(
    'if [ -n "$missing" ]; then echo failed > "$st/state"; echo "missing artifacts:$missing" > "$st/reason"; exit 3; fi',
    'echo done > "$st/state"',
    "exit 0",
    "",
  );
  return lines.join("\n");
}

export interface K8sManifest {
  jobName: string;
  namespace: string;
  pvcName: string;
  createsPvc: boolean;
  /** the objects, in apply order */
  docs: Record<string, unknown>[];
  yaml: string;
  warnings: Warning[];
  outputDirs: Record<string, string>;
  stateDir: string;
}

const ENTRYPOINT = [
  "set -u",
  'i="${JOB_COMPLETION_INDEX:?this pod is not part of an indexed Job}"',
  'f="/rgt/cells/cell-$i.sh"',
  '[ -f "$f" ] || { echo "rgt: no cell for completion index $i" >&2; exit 2; }',
  'exec bash "$f"',
].join("\n");

/** Build the ConfigMap + PVC + indexed Job for a run. Pure. */
export function buildK8sManifest(req: SchedulerLaunchRequest, env: NodeJS.ProcessEnv = process.env): K8sManifest {
  const opts = req.scheduler ?? {};
  const warnings: Warning[] = [];
  const n = req.cells.length;
  if (n === 0) throw badInput("cells", "no cells to run", "Pass at least one cell.");
  const lanes = opts.lanes ?? n;
  if (!Number.isInteger(lanes) || lanes < 1) throw badInput("scheduler.lanes", "must be a whole number ≥ 1", "Pass lanes ≥ 1 (cells running at once).");
  const image = opts.image ?? setting("RGT_K8S_IMAGE", env);
  if (!image) {
    throw badInput("scheduler.image", "a Kubernetes run needs a container image holding the code and its Python", "Pass scheduler.image (pinned by @sha256 digest), or set RGT_K8S_IMAGE for the server.");
  }
  if (!/@sha256:[0-9a-f]{64}$/.test(image)) {
    warnings.push(warning("K8S_IMAGE_TAG", "warn", `image ${image} is not pinned by digest; a retried pod may pull different bits. Prefer image@sha256:…`));
  }
  const namespace = opts.namespace ?? setting("RGT_K8S_NAMESPACE", env);
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace) || namespace.length > 63) {
    throw badInput("scheduler.namespace", `"${namespace}" is not a valid namespace name`, "Use lower-case letters, digits and '-'.");
  }
  const jobName = k8sJobName(req.run_id);
  const durable = durableDirOf(req);
  const pvcName = opts.pvc ?? `${jobName}-durable`.slice(0, 63);
  const createsPvc = !opts.pvc;
  const deadline = walltimeSeconds(opts.walltime);
  if (opts.walltime !== undefined && deadline === undefined) {
    throw badInput("scheduler.walltime", `"${opts.walltime}" is not a duration`, 'Use seconds or Slurm-style text: "90" (minutes), "1:30:00", "2-00:00:00".');
  }
  // the Job's own clock: walltime per wave of pods, or a default; max_hours caps the whole Job (every pod ends at that age)
  const jobDeadline = deadline !== undefined ? deadline * Math.ceil(n / Math.min(lanes, n)) + 600 : DEFAULT_DEADLINE_S;
  const capS = req.while_run?.max_hours !== undefined ? Math.max(60, Math.round(req.while_run.max_hours * 3600)) : undefined;
  if (capS !== undefined) {
    warnings.push(warning("MAX_HOURS_SCHEDULER", "info", `max_hours is the Job's activeDeadlineSeconds (${Math.min(capS, jobDeadline)} s): Kubernetes ends every pod of the run at that age; checkpoints on the PVC are kept`));
  }
  const gpus = Math.max(0, ...req.cells.map((c) => c.gpus ?? 1));
  if (new Set(req.cells.map((c) => c.gpus ?? 1)).size > 1) {
    warnings.push(warning("K8S_GPU_UNIFORM", "info", `cells ask for different GPU counts; one pod template serves all, so each pod gets ${gpus}`));
  }
  const stateDir = `${durable}/.rgt/runs/${req.run_id}`;
  const outputDirs: Record<string, string> = {};
  const labels = { "app.kubernetes.io/managed-by": "remote-gpu-trainer", "rgt/run-id": jobName.slice(4) };

  const cm: Record<string, string> = {};
  req.cells.forEach((c, i) => {
    const out = `${durable}/rgt/${req.run_id}/${c.name}`;
    outputDirs[c.name] = out;
    cm[`cell-${i}.sh`] = cellLauncher({
      runId: req.run_id, cell: c.name, command: c.command, env: c.env, workdir: req.workdir,
      outputDir: out, stateDir, expect: req.expect, gpus,
    });
  });
  cm["cells"] = req.cells.map((c) => c.name).join("\n") + "\n";

  const containerEnv: { name: string; value: string }[] = [
    { name: "RGT_RUN_ID", value: req.run_id },
    { name: "RGT_WORKDIR", value: req.workdir },
    { name: "RGT_DURABLE_ROOT", value: durable },
    { name: "RGT_STATE_DIR", value: stateDir },
  ];
  if (req.profile?.hf_home) containerEnv.push({ name: "HF_HOME", value: req.profile.hf_home });

  const resources: Record<string, unknown> = {};
  if (gpus > 0) resources.limits = { "nvidia.com/gpu": gpus };

  const configMap = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: `${jobName}-cells`, namespace, labels },
    data: cm,
  };
  const pvc = {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: pvcName, namespace, labels },
    spec: {
      accessModes: [lanes > 1 ? "ReadWriteMany" : "ReadWriteOnce"],
      resources: { requests: { storage: opts.pvc_size ?? "50Gi" } },
      ...(opts.storage_class ? { storageClassName: opts.storage_class } : {}),
    },
  };
  if (createsPvc && lanes > 1) {
    warnings.push(warning("K8S_RWX", "info", `${lanes} pods share the PVC ${pvcName} (ReadWriteMany); the storage class must support it, or pass scheduler.pvc`));
  }
  const job = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: jobName, namespace, labels, annotations: { "rgt/run-name": req.run_name } },
    spec: {
      completionMode: "Indexed",
      completions: n,
      parallelism: Math.min(lanes, n),
      backoffLimit: opts.backoff_limit ?? Math.min(20, 2 * n),
      activeDeadlineSeconds: capS !== undefined ? Math.min(capS, jobDeadline) : jobDeadline,
      ttlSecondsAfterFinished: opts.ttl_after_finished_s ?? DEFAULT_TTL_S,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: "Never",
          terminationGracePeriodSeconds: opts.signal_lead_s ?? 120,
          containers: [
            {
              name: "cell",
              image,
              workingDir: req.workdir,
              command: ["bash", "-c", ENTRYPOINT],
              env: containerEnv,
              resources,
              volumeMounts: [
                { name: "durable", mountPath: durable },
                { name: "cells", mountPath: "/rgt/cells", readOnly: true },
              ],
            },
          ],
          volumes: [
            { name: "durable", persistentVolumeClaim: { claimName: pvcName } },
            { name: "cells", configMap: { name: `${jobName}-cells` } },
          ],
        },
      },
    },
  };
  const docs: Record<string, unknown>[] = createsPvc ? [configMap, pvc, job] : [configMap, job];
  const yaml = docs.map((d) => stringify(d, { lineWidth: 0 })).join("---\n");
  return { jobName, namespace, pvcName, createsPvc, docs, yaml, warnings, outputDirs, stateDir };
}

async function kubectl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string; missing: boolean }> {
  try {
    const r = await execa("kubectl", args, { input, reject: false, timeout: KUBECTL_TIMEOUT_MS, stripFinalNewline: true, all: false });
    const missing = (r as { code?: string }).code === "ENOENT";
    return { code: r.exitCode ?? (r.timedOut ? 124 : 1), stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") + (r.timedOut ? " (timed out)" : ""), missing };
  } catch (e) {
    return { code: 127, stdout: "", stderr: e instanceof Error ? e.message : String(e), missing: true };
  }
}

/** The local kubectl context, or undefined when there is none (or no kubectl). */
export async function currentContext(): Promise<string | undefined> {
  const r = await kubectl(["config", "current-context"]);
  const ctx = r.stdout.trim();
  return r.code === 0 && ctx ? ctx : undefined;
}

/** "0-2,5" → [0,1,2,5] */
export function parseIndexes(s: string | undefined): number[] {
  if (!s) return [];
  const out: number[] = [];
  for (const part of s.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const a = Number(m[1]);
    const b = m[2] !== undefined ? Number(m[2]) : a;
    for (let i = a; i <= b && out.length < 100_000; i++) out.push(i);
  }
  return out;
}

function clip(s: string, n = 300): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

export const k8sBackend: Backend = {
  name: "k8s",

  async launch(_ctx: BackendContext, req: LaunchRequest): Promise<LaunchOutcome> {
    const m = buildK8sManifest(req as SchedulerLaunchRequest);
    const warnings = [...m.warnings];
    const context = await currentContext();
    let applied = false;
    let applyOutput = "";
    if (context) {
      const r = await kubectl(["apply", "-f", "-"], m.yaml);
      if (r.code !== 0) {
        throw new RefusalError(
          "K8S_APPLY_FAILED",
          `kubectl apply (context ${context}) failed: ${clip(r.stderr || r.stdout, 600)}`,
          "Fix the cause above (an immutable Job from an earlier launch with different cells needs a new run_name), or apply the manifest yourself.",
          { manifest: m.yaml },
        );
      }
      applied = true;
      applyOutput = clip(r.stdout, 600);
    } else {
      warnings.push(warning("K8S_NOT_APPLIED", "info", "no kubectl context is configured here; the manifest is returned for you to apply with `kubectl apply -f <file>`"));
    }
    const now = new Date().toISOString();
    const record: RunRecord = {
      run_id: req.run_id,
      run_name: req.run_name,
      hosts: req.hosts,
      backend: "k8s",
      workdir: req.workdir,
      state_dir: m.stateDir,
      cells: req.cells.map((c) => ({ name: c.name, host: req.hosts[0] ?? `k8s:${m.namespace}`, gpu_indices: [], output_dir: m.outputDirs[c.name] })),
      expect: req.expect,
      durable_dir: durableDirOf(req),
      created_at: req.existing?.created_at ?? now,
      updated_at: now,
      profile: req.profile?.name,
      extra: { k8s: { job: m.jobName, namespace: m.namespace, pvc: m.pvcName, context: context ?? null, applied } },
    };
    return {
      record,
      placement: req.cells.map((c, i) => ({ cell: c.name, host: `${m.namespace}/${m.jobName}#${i}`, gpu_indices: [] })),
      session: `job/${m.jobName} -n ${m.namespace}`,
      log_dir: `${m.stateDir}/cells`,
      started: applied ? req.cells.map((c) => c.name) : [],
      skipped_done: [],
      skipped_live: [],
      warnings,
      extra: {
        k8s: { job: m.jobName, namespace: m.namespace, context: context ?? null, applied, ...(applyOutput ? { kubectl: applyOutput } : {}) },
        ...(applied ? {} : { manifest: m.yaml, apply_with: "kubectl apply -f <saved manifest file>" }),
      },
    };
  },

  async status(_ctx: BackendContext, run: RunRecord, _opts: StatusOptions): Promise<StatusOutcome> {
    const info = (run.extra?.k8s ?? {}) as { job?: string; namespace?: string };
    const job = info.job ?? k8sJobName(run.run_id);
    const ns = info.namespace ?? "default";
    const warnings: Warning[] = [];
    const unknown = (reason: string): StatusOutcome => ({
      cells: run.cells.map((c) => ({ name: c.name, host: c.host, state: "unknown", log_age_s: -1, reason })),
      gpus: [], disks: [], unreachable: [], warnings,
    });
    if (!(await currentContext())) {
      warnings.push(warning("K8S_NO_CONTEXT", "info", "no kubectl context here; read the Job with `kubectl get job " + job + " -n " + ns + "`"));
      return unknown("no kubectl context on this machine");
    }
    const r = await kubectl(["get", "jobs,pods", "-n", ns, "-l", `rgt/run-id=${job.slice(4)}`, "-o", "json"]);
    if (r.code !== 0) return unknown(`kubectl get failed: ${clip(r.stderr, 200)}`);
    let items: Record<string, any>[] = [];
    try { items = (JSON.parse(r.stdout).items ?? []) as Record<string, any>[]; } catch { return unknown("kubectl returned no JSON"); }
    const j = items.find((x) => x.kind === "Job" && x.metadata?.name === job);
    if (!j) return unknown(`Job ${job} not found in ${ns}`);
    const done = new Set(parseIndexes(j.status?.completedIndexes));
    const failedIdx = new Set(parseIndexes(j.status?.failedIndexes));
    const conds = (j.status?.conditions ?? []) as { type: string; status: string; reason?: string }[];
    const jobFailed = conds.find((c) => c.type === "Failed" && c.status === "True");
    const suspended = j.spec?.suspend === true;
    const podsByIndex = new Map<number, Record<string, any>[]>();
    for (const p of items.filter((x) => x.kind === "Pod")) {
      const idx = Number(p.metadata?.annotations?.["batch.kubernetes.io/job-completion-index"]);
      if (!Number.isInteger(idx)) continue;
      podsByIndex.set(idx, [...(podsByIndex.get(idx) ?? []), p]);
    }
    const cells: CellStatus[] = run.cells.map((c, i) => {
      const pods = (podsByIndex.get(i) ?? []).sort((a, b) => String(a.metadata?.creationTimestamp).localeCompare(String(b.metadata?.creationTimestamp)));
      const last = pods[pods.length - 1];
      const phase = last?.status?.phase as string | undefined;
      let state: CellState = "pending";
      let reason: string | undefined;
      let cause: CellStatus["cause"];
      if (done.has(i)) state = "done";
      else if (failedIdx.has(i)) state = "failed";
      else if (phase === "Running") state = "running";
      else if (jobFailed) {
        state = "failed";
        reason = `Job failed: ${jobFailed.reason ?? "unknown"}`;
        if (jobFailed.reason === "DeadlineExceeded") cause = { cause: "walltime", evidence: "Job condition Failed/DeadlineExceeded (activeDeadlineSeconds)" };
      } else if (suspended) state = "stopped";
      if (phase === "Failed" && state === "pending") reason = `pod ${last.metadata?.name} failed; the Job will retry it`;
      const waiting = last?.status?.containerStatuses?.[0]?.state?.waiting?.reason as string | undefined;
      if (waiting && !reason) reason = waiting;
      return { name: c.name, host: c.host, state, log_age_s: -1, ...(reason ? { reason } : {}), ...(cause ? { cause } : {}) };
    });
    return { cells, gpus: [], disks: [], unreachable: [], warnings };
  },

  async stop(_ctx: BackendContext, run: RunRecord, cells?: string[]): Promise<StopOutcome> {
    const info = (run.extra?.k8s ?? {}) as { job?: string; namespace?: string };
    const job = info.job ?? k8sJobName(run.run_id);
    const ns = info.namespace ?? "default";
    const warnings: Warning[] = [];
    if (cells && cells.length && cells.length < run.cells.length) {
      warnings.push(warning("K8S_STOP_WHOLE_JOB", "warn", "an indexed Job is suspended as a whole; every cell of the run stops"));
    }
    const names = run.cells.map((c) => c.name);
    if (!(await currentContext())) {
      throw new RefusalError("UNREACHABLE", "no kubectl context on this machine, so the Job cannot be reached",
        `Suspend it yourself: kubectl patch job ${job} -n ${ns} --type=merge -p '{"spec":{"suspend":true}}'`);
    }
    const r = await kubectl(["patch", "job", job, "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { suspend: true } })]);
    if (r.code !== 0) {
      throw new RefusalError("K8S_PATCH_FAILED", `kubectl patch failed: ${clip(r.stderr || r.stdout, 400)}`, "Check the context and namespace, or suspend the Job by hand.");
    }
    return { stopped: names, already_stopped: [], still_alive: [], gpu_memory_freed: null, evidence: [`job/${job} suspended in ${ns}: ${clip(r.stdout, 200)}`], warnings };
  },
};
