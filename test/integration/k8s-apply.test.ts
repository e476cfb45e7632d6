/**
 * The Kubernetes backend against a stub `kubectl` on PATH (the one thing that cannot run here: a cluster).
 * The stub records every argv and stdin; whether it has a "current context" is a file in its dir.
 */
import { describe, it, expect, beforeAll, afterAll, beforeEach } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseAllDocuments } from "yaml";
import { k8sBackend, type SchedulerLaunchRequest } from "../../src/backends/k8s.js";
import { Ledger } from "../../src/ledger/store.js";
import type { BackendContext } from "../../src/backends/types.js";
import { RefusalError } from "../../src/common/result.js";
import { connectServer } from "../../src/lab/client.js";

const STUB = `#!/bin/bash
d="$KUBECTL_STUB_DIR"
n=$(ls "$d/calls" | wc -l)
c="$d/calls/$(printf %03d "$n")"
mkdir -p "$c"
printf '%s\\n' "$@" > "$c/argv"
case "$1 $2" in
  "config current-context")
    if [ -f "$d/context" ]; then cat "$d/context"; exit 0; fi
    echo "error: current-context is not set" >&2; exit 1;;
esac
case "$1" in
  apply) cat > "$c/stdin"; [ -f "$d/apply_fails" ] && { echo 'The Job "x" is invalid: spec.template: field is immutable' >&2; exit 1; }
         echo "configmap/x created"; echo "job.batch/x created";;
  get) cat "$d/get.json";;
  patch) echo "job.batch/$3 patched";;
  *) echo "stub: unexpected $*" >&2; exit 9;;
esac
`;

let dir: string;
let oldPath: string | undefined;
const ctx = (): BackendContext => ({ remote: undefined as never, ledger: new Ledger(path.join(dir, "ledger")) });

function calls(): { argv: string[]; stdin?: string }[] {
  return fs.readdirSync(path.join(dir, "calls")).sort().map((c) => {
    const p = path.join(dir, "calls", c);
    return {
      argv: fs.readFileSync(path.join(p, "argv"), "utf8").trimEnd().split("\n"),
      stdin: fs.existsSync(path.join(p, "stdin")) ? fs.readFileSync(path.join(p, "stdin"), "utf8") : undefined,
    };
  });
}

const req: SchedulerLaunchRequest = {
  run_id: "k8s-sweep",
  run_name: "k8s sweep",
  hosts: ["gpu-cluster"],
  workdir: "/workspace",
  cells: Array.from({ length: 4 }, (_, i) => ({ name: `seed${i}`, command: `python train.py --seed ${i}`, env: { SEED: String(i) }, gpus: 1 })),
  expect: ["best.pth"],
  durable_dir: "/checkpoints",
  scheduler: { lanes: 2, image: "ghcr.io/me/train@sha256:" + "b".repeat(64) },
};

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-kubectl-"));
  fs.mkdirSync(path.join(dir, "bin"));
  fs.writeFileSync(path.join(dir, "bin", "kubectl"), STUB, { mode: 0o755 });
  oldPath = process.env.PATH;
  process.env.PATH = `${path.join(dir, "bin")}:${oldPath}`;
  process.env.KUBECTL_STUB_DIR = dir;
});
afterAll(() => {
  process.env.PATH = oldPath;
  delete process.env.KUBECTL_STUB_DIR;
  fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  fs.rmSync(path.join(dir, "calls"), { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, "calls"));
  for (const f of ["context", "apply_fails", "get.json"]) fs.rmSync(path.join(dir, f), { force: true });
});

describe("k8s backend with a stub kubectl", () => {
  it("no context: returns the manifest and never calls kubectl apply", async () => {
    const out = await k8sBackend.launch(ctx(), req);
    const argvs = calls().map((c) => c.argv.join(" "));
    expect(argvs).toEqual(["config current-context"]);
    expect(argvs.some((a) => a.startsWith("apply"))).toBe(false);
    expect(out.started).toEqual([]);
    expect(out.warnings.map((w) => w.code)).toContain("K8S_NOT_APPLIED");
    const manifest = out.extra?.manifest as string;
    const kinds = parseAllDocuments(manifest).map((d) => (d.toJS() as any).kind);
    expect(kinds).toEqual(["ConfigMap", "PersistentVolumeClaim", "Job"]);
    expect(out.record.backend).toBe("k8s");
    expect(out.record.cells.map((c) => c.output_dir)).toEqual(req.cells.map((c) => `/checkpoints/rgt/k8s-sweep/${c.name}`));
    expect((out.record.extra as any).k8s).toMatchObject({ applied: false, namespace: "default" });
  });

  it("with a context: applies the manifest through stdin (kubectl apply -f -)", async () => {
    fs.writeFileSync(path.join(dir, "context"), "lab-cluster\n");
    const out = await k8sBackend.launch(ctx(), req);
    const cs = calls();
    expect(cs.map((c) => c.argv.join(" "))).toEqual(["config current-context", "apply -f -"]);
    const applied = parseAllDocuments(cs[1].stdin!).map((d) => d.toJS() as any);
    const job = applied.find((d) => d.kind === "Job");
    expect(job.spec).toMatchObject({ completionMode: "Indexed", completions: 4, parallelism: 2 });
    // nothing of the command travels in argv; the manifest went on stdin only
    expect(cs[1].argv.join(" ")).not.toContain("train.py");
    expect(out.started).toEqual(["seed0", "seed1", "seed2", "seed3"]);
    expect(out.extra?.manifest).toBeUndefined();
    expect((out.extra as any).k8s).toMatchObject({ applied: true, context: "lab-cluster", job: "rgt-k8s-sweep" });
  });

  it("a failed apply is a structured refusal carrying the manifest", async () => {
    fs.writeFileSync(path.join(dir, "context"), "lab-cluster\n");
    fs.writeFileSync(path.join(dir, "apply_fails"), "");
    const err = await k8sBackend.launch(ctx(), req).then(() => undefined, (e) => e);
    expect(err).toBeInstanceOf(RefusalError);
    expect(err.refusal.code).toBe("K8S_APPLY_FAILED");
    expect(err.refusal.reason).toContain("immutable");
    expect(err.extra.manifest).toContain("completionMode: Indexed");
  });

  it("status maps completed/failed indexes and running pods to cells; stop suspends, never deletes", async () => {
    fs.writeFileSync(path.join(dir, "context"), "lab-cluster\n");
    const out = await k8sBackend.launch(ctx(), req);
    const pod = (i: number, phase: string, t: string) => ({
      kind: "Pod",
      metadata: { name: `rgt-k8s-sweep-${i}-x`, creationTimestamp: t, annotations: { "batch.kubernetes.io/job-completion-index": String(i) } },
      status: { phase },
    });
    fs.writeFileSync(path.join(dir, "get.json"), JSON.stringify({
      items: [
        { kind: "Job", metadata: { name: "rgt-k8s-sweep" }, spec: {}, status: { completedIndexes: "0", failedIndexes: "3" } },
        pod(0, "Succeeded", "2026-01-01T00:00:00Z"),
        pod(1, "Failed", "2026-01-01T00:00:00Z"),
        pod(1, "Running", "2026-01-01T00:01:00Z"),
        pod(3, "Failed", "2026-01-01T00:00:00Z"),
      ],
    }));
    const st = await k8sBackend.status(ctx(), out.record, { stall_after_s: 600, tail_lines: 5 });
    expect(st.cells.map((c) => [c.name, c.state])).toEqual([["seed0", "done"], ["seed1", "running"], ["seed2", "pending"], ["seed3", "failed"]]);
    const getCall = calls().map((c) => c.argv.join(" ")).find((a) => a.startsWith("get"));
    expect(getCall).toBe("get jobs,pods -n default -l rgt/run-id=k8s-sweep -o json");

    const stop = await k8sBackend.stop(ctx(), out.record);
    const last = calls().at(-1)!.argv;
    expect(last.slice(0, 3)).toEqual(["patch", "job", "rgt-k8s-sweep"]);
    expect(JSON.parse(last.at(-1)!)).toEqual({ spec: { suspend: true } });
    expect(calls().some((c) => c.argv[0] === "delete")).toBe(false);
    expect(stop.stopped).toHaveLength(4);
  });

  it("through the built server: launch_queue detach k8s with no context returns the manifest, applies nothing", async () => {
    const home = path.join(dir, "rgt-home");
    const server = await connectServer({ RGT_HOME: home, PATH: process.env.PATH, KUBECTL_STUB_DIR: dir, RGT_K8S_IMAGE: "ghcr.io/me/train@sha256:" + "c".repeat(64) });
    try {
      const r = await server.call("launch_queue", {
        host: "gpu-cluster", run_name: "K8s Sweep", workdir: "/workspace", detach: "k8s", expect: ["best.pth"],
        cells: [{ name: "a", command: "python train.py --seed 1" }, { name: "b", command: "python train.py --seed 2" }],
        scheduler: { lanes: 1, walltime: "1:00:00" },
      });
      expect(r.ok, JSON.stringify(r)).toBe(true);
      expect(r.backend).toBe("k8s");
      expect(r.started).toEqual([]);
      const docs = parseAllDocuments(r.manifest as string).map((d) => d.toJS() as any);
      const job = docs.find((d) => d.kind === "Job");
      expect(job.spec).toMatchObject({ completionMode: "Indexed", completions: 2, parallelism: 1, activeDeadlineSeconds: 3600 * 2 + 600 });
      const argvs = calls().map((c) => c.argv.join(" "));
      expect(argvs.length).toBeGreaterThan(0);
      expect(argvs.every((a) => a === "config current-context")).toBe(true);
      // run_status without a context answers "unknown" per cell, never dead
      const st = await server.call("run_status", { run_id: r.run_id });
      expect(st.cells.map((c: any) => c.state)).toEqual(["unknown", "unknown"]);
    } finally {
      await server.close();
    }
  });
});
