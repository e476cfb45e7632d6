/**
 * probe_env — what is on this box, in one round trip: GPUs, driver/CUDA, disks with bytes AND inodes,
 * memory limits, python/torch, tools, platform (auto-detected from markers), and the traps that apply.
 */
import * as z from "zod";
import { RefusalError, refuse, warning } from "../common/result.js";
import { getProfile, loadProfiles, profileNames } from "../knowledge/profiles.js";
import type { Profile } from "../knowledge/schema.js";
import { hostInfo } from "../ledger/hostinfo.js";
import { recordProbe } from "../ledger/hosts.js";
import { defineTool } from "../server/tool.js";
import { buildReport, detectionOf, firstSightLines, gpuAskFindings, probeArgs, type RawProbe } from "../probe/report.js";
import { hostText, nameText, pathText } from "./fields.js";
import { gpuAskProblem } from "../knowledge/gpus.js";

/** Env vars that carry a rental's instance id when a platform sets them (teardown needs the id). */
export const INSTANCE_ID_ENVS = ["CONTAINER_ID", "VAST_CONTAINERLABEL", "RUNPOD_POD_ID"];

/** GPU health (src/knowledge/gpu-health.ts): only present when something is worth saying */
const GpuHealthOut = z.object({
  status: z.enum(["ok", "degraded", "faulty"]),
  issues: z.array(z.string()).optional(),
  faulty_gpus: z.array(z.number()).optional(),
  xid: z.array(z.string()).optional(),
  zombies: z.array(z.object({ gpu: z.number().nullable(), pid: z.number(), used_mib: z.number().nullable(), owner: z.string(),
    reclaim: z.string().optional() })).optional(),
});

export const probeEnv = defineTool({
  name: "probe_env",
  title: "Probe a GPU box",
  description:
    "Audit a GPU box in one round trip: GPUs (vs expect_gpu), CUDA, disks (bytes, inodes), memory, python/torch, tools, platform traps. Call first on a new box.",
  input: {
    host: hostText(),
    profile: nameText(64).optional(),
    mounts: z.array(pathText("mounts").regex(/^(\/|~)/, "must be an absolute path")).max(20).optional(),
    deep: z.boolean().optional().describe("import torch, ask CUDA"),
    expect_gpu: z.string().max(64).optional(),
  },
  output: {
    host: z.string(),
    profile: z.object({ name: z.string(), detected_by: z.string(), variant: z.string().optional() }),
    // per GPU only what tells something; a name / memory size every GPU shares is in gpu_name / gpu_memory_total_mib
    gpus: z.array(z.object({ index: z.number(), name: z.string().optional(), memory_total_mib: z.number().nullable().optional(),
      memory_used_mib: z.number().nullable(), utilization_pct: z.number().nullable().optional(), temperature_c: z.number().nullable().optional() })),
    gpu_name: z.string().optional(),
    gpu_memory_total_mib: z.number().optional(),
    gpu_health: GpuHealthOut.optional(),
    /** expect_gpu against what nvidia-smi reports, part by part (src/knowledge/gpus.ts) */
    gpu_check: z.object({ asked: z.string(), match: z.boolean(), found: z.string(), why: z.string().optional() }).optional(),
    driver_version: z.string().nullable(),
    cuda_version: z.string().nullable(),
    disks: z.array(z.object({ mount: z.string(), role: z.enum(["data", "durable", "system", "other"]), size_bytes: z.number().nullable(), used_pct: z.number().nullable(), inodes_used_pct: z.number().nullable() })),
    memory: z.object({ cgroup_limit_bytes: z.number().nullable(), host_total_bytes: z.number().nullable() }),
    python: z.object({ path: z.string(), version: z.string().nullable(), torch: z.object({ version: z.string().nullable(), cuda_available: z.boolean().nullable(), basis: z.enum(["metadata", "import"]), cuda_build: z.string().optional() }).nullable().optional() }).nullable(),
    tools: z.object({ tmux: z.boolean(), rsync: z.boolean(), python: z.boolean(), sbatch: z.boolean(), kubectl: z.boolean() }),
    uptime_s: z.number().nullable(),
    running: z.array(z.object({ pid: z.number(), gpu: z.number().nullable(), used_memory_mib: z.number().nullable(), user: z.string(), command: z.string() })),
    instance_ids: z.record(z.string(), z.string()).optional(),
    surface_to_user: z.array(z.string()),
    elapsed_ms: z.number(),
  },
  effect: "read",
  async handler(args, ctx) {
    const t0 = Date.now();
    const profiles = loadProfiles();
    let forced: Profile | undefined;
    let forcedBy = "requested by caller";
    if (args.profile) {
      forced = getProfile(args.profile);
      if (!forced) refuse("BAD_INPUT", `profile: unknown profile '${args.profile}'`, `Use one of: ${profileNames().join(", ")} — or omit it to auto-detect.`);
    } else {
      // The user's host registry (RGT_HOME/hosts.yaml) is their own word about the platform: it beats detection.
      const info = hostInfo(ctx.ledger, args.host);
      if (info.platform_from === "registry" && info.profile) { forced = info.profile; forcedBy = "host registry"; }
    }
    const askProblem = args.expect_gpu !== undefined ? gpuAskProblem(args.expect_gpu) : undefined;
    if (askProblem) refuse("BAD_INPUT", `expect_gpu: '${args.expect_gpu!.slice(0, 64)}' ${askProblem}`, "Name the card as the offer did, e.g. \"RTX 4090\", \"H100 SXM\", \"A100 80GB\".", { field: "expect_gpu" });
    const scriptArgs = probeArgs(profiles, forced, args.mounts ?? [], !!args.deep, INSTANCE_ID_ENVS);

    const res = await ctx.remote.runScript(args.host, "probe.sh", scriptArgs, { timeoutMs: args.deep ? 150_000 : 45_000, maxOutputBytes: 256 * 1024 });
    if (res.timedOut) refuse("TIMEOUT", `the probe did not finish within ${args.deep ? 150 : 45} s on ${args.host} (it was killed on the box)`, "The box is overloaded or a GPU is hung (nvidia-smi blocking). Retry; if nvidia-smi hangs, the GPU needs the provider's attention.");
    let raw: RawProbe;
    const outLines = res.stdout.trim().split("\n");
    const docLine = outLines.pop() ?? "";
    try {
      raw = JSON.parse(docLine) as RawProbe;
    } catch {
      throw new RefusalError("INTERNAL", `probe output from ${args.host} was not JSON (exit ${res.exitCode}): ${res.stderr.slice(-300)}`, "Check that the login shell is bash-compatible and prints nothing on non-interactive logins.");
    }

    const { detection, profile, warnings } = detectionOf(raw, profiles, forced, forcedBy, outLines);
    const ref = `rgt://profiles/${detection.name}`;
    const rep = buildReport(raw, { profile, ref, userMounts: args.mounts ?? [] });
    warnings.push(...rep.warnings);
    const { gpus, disks, running, python, tools, memory } = rep;
    // a marketplace's GPU filter is coarse (VAST14): say whether the box has the card that was asked for
    const gpu_check = args.expect_gpu !== undefined ? gpuAskFindings(args.expect_gpu, raw, profile, warnings) : undefined;

    // ---- instance ids, ledger, first-seen surfacing ----
    const instance_ids: Record<string, string> = {};
    for (const k of INSTANCE_ID_ENVS) if (raw.markers.env_values?.[k]) instance_ids[k] = raw.markers.env_values[k];
    const resolved = await ctx.remote.resolve(args.host).catch(() => undefined);
    const { first } = await recordProbe(ctx.ledger, args.host, {
      endpoint: resolved?.key,
      profile: detection.name,
      variant: (detection as { variant?: string }).variant,
      detected_by: detection.detected_by,
      gpu_count: gpus.length,
      gpu_name: rep.gpu_name ?? gpus[0]?.name,
      ...(Object.keys(instance_ids).length ? { instance_ids } : {}),
    });
    const surface_to_user = first && profile ? firstSightLines(profile, ref) : [];
    // the box's own pip without the profile's mirror: said on first contact and on a deep probe (the
    // steady-state answer stays small; launch_queue sets the mirrors for its cells either way)
    if ((first || args.deep) && profile?.china_mirror_needed && profile.china_mirrors?.pip_index_url && raw.pip_index === false) {
      warnings.push(warning("MIRRORS_MISSING", "info", "the box's pip has no index set (PyPI direct: slow here); launch_queue sets the profile's mirrors", "rgt://references/china-network"));
    }

    return {
      ok: true,
      summary: `${detection.name}, ${gpus.length} GPU(s)${gpu_check ? (gpu_check.match ? `, as asked (${gpu_check.found})` : `, NOT the asked ${gpu_check.asked}`) : ""}${surface_to_user.length ? "; tell the user surface_to_user" : ""}.`,
      host: args.host,
      profile: detection,
      gpus,
      ...(rep.gpu_name ? { gpu_name: rep.gpu_name } : {}),
      ...(rep.gpu_memory_total_mib !== undefined ? { gpu_memory_total_mib: rep.gpu_memory_total_mib } : {}),
      ...(rep.gpu_health ? { gpu_health: rep.gpu_health } : {}),
      ...(gpu_check ? { gpu_check } : {}),
      driver_version: raw.driver_version,
      cuda_version: raw.cuda_version,
      disks,
      memory,
      python,
      tools,
      uptime_s: raw.uptime_s,
      running,
      ...(Object.keys(instance_ids).length ? { instance_ids } : {}),
      surface_to_user,
      warnings,
      elapsed_ms: Date.now() - t0,
    };
  },
});
