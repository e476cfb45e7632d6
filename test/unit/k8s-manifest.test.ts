import { describe, it, expect } from "vitest";
import { parseAllDocuments } from "yaml";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildK8sManifest, k8sJobName, parseIndexes, walltimeSeconds, type SchedulerLaunchRequest } from "../../src/backends/k8s.js";
import { RefusalError } from "../../src/common/result.js";

const DIGEST = "registry.example/train@sha256:" + "a".repeat(64);

function req(over: Partial<SchedulerLaunchRequest> = {}): SchedulerLaunchRequest {
  return {
    run_id: "lr-sweep",
    run_name: "LR sweep",
    hosts: ["cluster"],
    workdir: "/workspace/proj",
    cells: [
      { name: "lr1e-3", command: "python train.py --lr 1e-3", env: { LR: "1e-3" }, gpus: 1 },
      { name: "lr1e-4", command: "python train.py --lr 1e-4", env: { LR: "1e-4", NOTE: "it's quoted" }, gpus: 1 },
      { name: "lr1e-5", command: "python train.py --lr 1e-5", env: {}, gpus: 1 },
    ],
    expect: ["best.pth", "metrics/final.json"],
    durable_dir: "/mnt/ckpt",
    scheduler: { lanes: 2, image: DIGEST, walltime: "2:00:00" },
    ...over,
  };
}

/** every path in an object tree where key `name` occurs */
function findKey(v: unknown, name: string, at = "$"): string[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => findKey(x, name, `${at}[${i}]`));
  if (v && typeof v === "object") {
    return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) => [
      ...(k === name ? [`${at}.${k}`] : []),
      ...findKey(x, name, `${at}.${k}`),
    ]);
  }
  return [];
}

describe("k8s indexed Job manifest", () => {
  const m = buildK8sManifest(req(), {});
  const parsed = parseAllDocuments(m.yaml).map((d) => d.toJS() as Record<string, any>);
  const job = parsed.find((d) => d.kind === "Job")!;
  const cm = parsed.find((d) => d.kind === "ConfigMap")!;
  const pvc = parsed.find((d) => d.kind === "PersistentVolumeClaim")!;
  const pod = job.spec.template.spec;
  const container = pod.containers[0];

  it("YAML round-trips to the same objects, in apply order ConfigMap, PVC, Job", () => {
    expect(parsed.map((d) => d.kind)).toEqual(["ConfigMap", "PersistentVolumeClaim", "Job"]);
    expect(parsed).toEqual(JSON.parse(JSON.stringify(m.docs)));
    for (const d of parsed) expect(d.metadata.namespace).toBe("default");
  });

  it("has every required Job field", () => {
    expect(job.apiVersion).toBe("batch/v1");
    expect(job.metadata.name).toBe(m.jobName);
    expect(job.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(job.spec.completionMode).toBe("Indexed");
    expect(job.spec.completions).toBe(3);
    expect(job.spec.parallelism).toBe(2);
    expect(job.spec.backoffLimit).toBeGreaterThanOrEqual(1);
    // 2 h per cell, 2 waves of cells, plus slack
    expect(job.spec.activeDeadlineSeconds).toBe(7200 * 2 + 600);
    expect(job.spec.ttlSecondsAfterFinished).toBeGreaterThan(0);
    expect(pod.restartPolicy).toBe("Never");
    expect(container.image).toBe(DIGEST);
    expect(container.workingDir).toBe("/workspace/proj");
  });

  it("asks for GPUs in limits only", () => {
    expect(container.resources.limits["nvidia.com/gpu"]).toBe(1);
    expect(container.resources.requests).toBeUndefined();
    const requests = findKey(parsed, "requests");
    // the only `requests` in the whole manifest is the PVC's storage request
    expect(requests).toEqual(["$[1].spec.resources.requests"]);
    expect(JSON.stringify(pvc.spec.resources.requests)).not.toContain("nvidia");
  });

  it("mounts a PVC at the durable dir and the cell launchers read-only", () => {
    const durable = container.volumeMounts.find((v: any) => v.mountPath === "/mnt/ckpt");
    expect(durable).toBeDefined();
    const vol = pod.volumes.find((v: any) => v.name === durable.name);
    expect(vol.persistentVolumeClaim.claimName).toBe(pvc.metadata.name);
    expect(pvc.spec.accessModes).toEqual(["ReadWriteMany"]);
    const cells = container.volumeMounts.find((v: any) => v.mountPath === "/rgt/cells");
    expect(cells.readOnly).toBe(true);
    expect(pod.volumes.find((v: any) => v.name === cells.name).configMap.name).toBe(cm.metadata.name);
  });

  it("selects the cell by JOB_COMPLETION_INDEX and passes RGT_* env", () => {
    expect(container.command.slice(0, 2)).toEqual(["bash", "-c"]);
    expect(container.command[2]).toContain("JOB_COMPLETION_INDEX");
    expect(container.command[2]).toContain("/rgt/cells/cell-$i.sh");
    expect(Object.keys(cm.data).sort()).toEqual(["cell-0.sh", "cell-1.sh", "cell-2.sh", "cells"]);
    expect(cm.data.cells).toBe("lr1e-3\nlr1e-4\nlr1e-5\n");
    const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
    expect(env).toMatchObject({ RGT_RUN_ID: "lr-sweep", RGT_WORKDIR: "/workspace/proj", RGT_DURABLE_ROOT: "/mnt/ckpt" });
    expect(cm.data["cell-1.sh"]).toContain("export RGT_CELL='lr1e-4'");
    expect(cm.data["cell-1.sh"]).toContain("export RGT_OUTPUT_DIR='/mnt/ckpt/rgt/lr-sweep/lr1e-4'");
  });

  it("a cell launcher really runs its cell: env, output dir, roster check, state files", () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-k8s-"));
    try {
      const work = path.join(tmp, "work");
      fs.mkdirSync(work);
      const r = req({
        workdir: work,
        durable_dir: path.join(tmp, "pvc"),
        cells: [
          { name: "ok", command: 'mkdir -p "$RGT_OUTPUT_DIR/metrics"; printf "%s|%s|%s" "$RGT_CELL" "$NOTE" "$CUDA_VISIBLE_DEVICES" > "$RGT_OUTPUT_DIR/best.pth"; echo {} > "$RGT_OUTPUT_DIR/metrics/final.json"', env: { NOTE: "it's $HOME `x`" }, gpus: 2 },
          { name: "no-artifact", command: "echo trained", env: {}, gpus: 2 },
          { name: "crash", command: "exit 7", env: {}, gpus: 2 },
        ],
      });
      const mm = buildK8sManifest(r, { RGT_K8S_IMAGE: DIGEST });
      const data = (mm.docs[0] as any).data as Record<string, string>;
      const run = (i: number) => {
        try { execFileSync("bash", ["-c", data[`cell-${i}.sh`]], { stdio: "pipe", env: { PATH: process.env.PATH!, HOME: "/nonexistent" } }); return 0; } catch (e: any) { return e.status as number; }
      };
      expect(run(0)).toBe(0);
      const out = path.join(tmp, "pvc", "rgt", "lr-sweep", "ok");
      expect(fs.readFileSync(path.join(out, "best.pth"), "utf8")).toBe("ok|it's $HOME `x`|0,1");
      const st = (c: string, f: string) => fs.readFileSync(path.join(tmp, "pvc", ".rgt", "runs", "lr-sweep", "cells", c, f), "utf8").trim();
      expect(st("ok", "state")).toBe("done");
      expect(run(1)).toBe(3);
      expect(st("no-artifact", "state")).toBe("failed");
      expect(st("no-artifact", "reason")).toContain("best.pth");
      expect(run(2)).toBe(7);
      expect(st("crash", "exit_code")).toBe("7");
      // a done cell is not run again (a retried pod of a finished index)
      fs.rmSync(path.join(out, "best.pth"));
      expect(run(0)).toBe(0);
      expect(fs.existsSync(path.join(out, "best.pth"))).toBe(false);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("refuses bad input naming the field", () => {
    const code = (f: () => unknown) => {
      try { f(); return "none"; } catch (e) { return e instanceof RefusalError ? `${e.refusal.code} ${e.refusal.reason}` : String(e); }
    };
    expect(code(() => buildK8sManifest(req({ scheduler: { lanes: 2 } }), {}))).toMatch(/^BAD_INPUT scheduler\.image/);
    expect(code(() => buildK8sManifest(req({ scheduler: { image: DIGEST, walltime: "soon" } }), {}))).toMatch(/^BAD_INPUT scheduler\.walltime/);
    expect(code(() => buildK8sManifest(req({ scheduler: { image: DIGEST, namespace: "Bad_NS" } }), {}))).toMatch(/^BAD_INPUT scheduler\.namespace/);
    expect(code(() => buildK8sManifest(req({ scheduler: { image: DIGEST, lanes: 0 } }), {}))).toMatch(/^BAD_INPUT scheduler\.lanes/);
    expect(code(() => buildK8sManifest(req({ cells: [] }), {}))).toMatch(/^BAD_INPUT cells/);
  });

  it("warns on a tag image, uses an existing PVC when named, and omits GPU limits for CPU cells", () => {
    const m2 = buildK8sManifest(req({ cells: [{ name: "cpu", command: "true", env: {}, gpus: 0 }], scheduler: { image: "pytorch/pytorch:latest", pvc: "team-ckpt" } }), {});
    expect(m2.warnings.map((w) => w.code)).toContain("K8S_IMAGE_TAG");
    expect(m2.docs.map((d: any) => d.kind)).toEqual(["ConfigMap", "Job"]);
    const j = m2.docs[1] as any;
    expect(j.spec.template.spec.volumes[0].persistentVolumeClaim.claimName).toBe("team-ckpt");
    expect(j.spec.template.spec.containers[0].resources).toEqual({});
    expect(j.spec.activeDeadlineSeconds).toBeGreaterThan(0);
  });

  it("helpers: job names, walltime text, index lists", () => {
    expect(k8sJobName("A_very.Long_run-name" + "x".repeat(80)).length).toBeLessThanOrEqual(48);
    expect(k8sJobName("Sweep_1")).toBe("rgt-sweep-1");
    expect(walltimeSeconds("30")).toBe(1800);
    expect(walltimeSeconds("0:20")).toBe(20);
    expect(walltimeSeconds("1:02:03")).toBe(3723);
    expect(walltimeSeconds("1-02")).toBe(93600);
    expect(walltimeSeconds(90)).toBe(90);
    expect(walltimeSeconds("x")).toBeUndefined();
    expect(parseIndexes("0-2,5")).toEqual([0, 1, 2, 5]);
    expect(parseIndexes("")).toEqual([]);
  });
});

describe("max_hours on the schedulers: the scheduler's own clock enforces it", () => {
  it("Kubernetes: the Job's activeDeadlineSeconds is the cap when it is the smaller, with a note", () => {
    const m = buildK8sManifest(req({ while_run: { max_hours: 1.5 } }), {});
    const job = m.docs.find((d: any) => d.kind === "Job") as any;
    expect(job.spec.activeDeadlineSeconds).toBe(5400);
    expect(m.warnings.find((w) => w.code === "MAX_HOURS_SCHEDULER")?.message).toMatch(/activeDeadlineSeconds \(5400 s\)/);
    // a cap longer than the walltime waves leaves the Job's own deadline
    const long = buildK8sManifest(req({ while_run: { max_hours: 100 } }), {}).docs.find((d: any) => d.kind === "Job") as any;
    expect(long.spec.activeDeadlineSeconds).toBe(7200 * 2 + 600);
  });

  it("Slurm: each array task's --time is the smaller of max_hours and walltime", async () => {
    const { sbatchOptions } = await import("../../src/backends/slurm.js");
    const time = (r: SchedulerLaunchRequest) => sbatchOptions(r).find((a) => a.startsWith("--time="));
    expect(time(req({ while_run: { max_hours: 0.5 } }))).toBe("--time=30:00");
    expect(time(req({ while_run: { max_hours: 5 } }))).toBe("--time=2:00:00");
    expect(time(req({ while_run: { max_hours: 5 }, scheduler: { lanes: 2, image: DIGEST } }))).toBe("--time=300:00");
    expect(time(req())).toBe("--time=2:00:00");
  });
});
