/**
 * probe_env — what is on this box, in one round trip: GPUs, driver/CUDA, disks with bytes AND inodes,
 * memory limits, python/torch, tools, platform (auto-detected from markers), and the traps that apply.
 */
import * as z from "zod";
import { RefusalError, refuse, warning, type Warning } from "../common/result.js";
import { allMarkers, detectProfile } from "../knowledge/detect.js";
import { getProfile, loadProfiles, profileNames } from "../knowledge/profiles.js";
import { expandBoxPath, type Profile } from "../knowledge/schema.js";
import { hostInfo } from "../ledger/hostinfo.js";
import { recordProbe } from "../ledger/hosts.js";
import { defineTool } from "../server/tool.js";
import { versionAtLeast } from "../common/text.js";
import { hostText, nameText, pathText } from "./fields.js";

/** Env vars that carry a rental's instance id when a platform sets them (teardown needs the id). */
export const INSTANCE_ID_ENVS = ["CONTAINER_ID", "VAST_CONTAINERLABEL", "RUNPOD_POD_ID"];

const INODE_WARN_PCT = 90;
const DISK_WARN_PCT = 90;

interface RawDisk { path: string; exists: boolean; mountpoint?: string; filesystem?: string; size_kb?: number | null; used_kb?: number | null;
  inodes_total?: number | null; inodes_used?: number | null }
interface RawProbe {
  hostname: string; uptime_s: number | null; home: string; user: string;
  gpus: { index: number; name: string; memory_total_mib: number | null; memory_used_mib: number | null; utilization_pct: number | null;
    temperature_c: number | null; uuid: string }[];
  gpu_processes: { gpu_uuid: string; pid: number; used_memory_mib: number | null; user: string; command: string }[];
  driver_version: string | null; cuda_version: string | null; gpu_error: string | null;
  disks: RawDisk[];
  memory: { cgroup_limit_bytes: number | "max" | null; host_total_bytes: number | null };
  tools: Record<string, boolean>;
  python: { path: string; version: string | null; torch: { version: string | null; cuda_build: string | null; cuda_available?: boolean;
    device_count?: number; method: string } | null; torch_error?: string } | null;
  markers: { paths: string[]; env: string[]; commands: string[]; env_values: Record<string, string>; evidence?: Record<string, boolean | null> };
  pip_index?: boolean;
}

const pct = (used?: number | null, total?: number | null) => (used != null && total ? Math.round((used / total) * 1000) / 10 : null);


function mountsOf(p: Profile | undefined): Profile["mounts"] {
  return p?.mounts ?? [];
}

export const probeEnv = defineTool({
  name: "probe_env",
  title: "Probe a GPU box",
  description:
    "Audit a GPU box in one round trip: GPUs, CUDA, disks (bytes and inodes), memory, python/torch, tools, the platform and its traps. Call first on a new box.",
  input: {
    host: hostText(),
    profile: nameText(64).optional(),
    mounts: z.array(pathText("mounts").regex(/^(\/|~)/, "must be an absolute path")).max(20).optional(),
    deep: z.boolean().optional().describe("import torch, ask CUDA"),
  },
  output: {
    host: z.string(),
    profile: z.object({ name: z.string(), detected_by: z.string(), variant: z.string().optional() }),
    gpus: z.array(z.object({ index: z.number(), name: z.string(), memory_total_mib: z.number().nullable(), memory_used_mib: z.number().nullable(),
        utilization_pct: z.number().nullable(), temperature_c: z.number().nullable() })),
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
    const markers = allMarkers(profiles);
    const mountPaths = new Set<string>();
    for (const p of forced ? [forced] : profiles) for (const m of mountsOf(p)) mountPaths.add(m.path);
    for (const m of args.mounts ?? []) mountPaths.add(m);

    const scriptArgs: string[] = [];
    for (const p of markers.paths) scriptArgs.push("--path", p);
    for (const e of new Set([...markers.env, ...INSTANCE_ID_ENVS])) scriptArgs.push("--env", e);
    for (const c of markers.commands) scriptArgs.push("--cmd", c);
    for (const m of mountPaths) scriptArgs.push("--mount", m);
    if (forced?.python_path) scriptArgs.push("--python", forced.python_path);
    if (args.deep) scriptArgs.push("--deep");

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

    const detected = detectProfile({ paths_present: raw.markers.paths, env_present: raw.markers.env, hostname: raw.hostname,
      commands: raw.markers.commands, evidence: raw.markers.evidence }, profiles);
    const detection = forced
      ? {
          name: forced.name,
          // say whether the box's own markers back the declared platform: a mismatch is worth a look
          detected_by: `${forcedBy}; ${detected.name === forced.name ? `markers agree: ${detected.detected_by}` : `markers suggest ${detected.name}`}`,
          ...(forced.variant ? { variant: forced.variant } : {}),
        }
      : { name: detected.name, detected_by: detected.detected_by, ...(detected.variant ? { variant: detected.variant } : {}) };
    const profile = forced ?? getProfile(detection.name, (detection as { variant?: string }).variant);
    const boxEnv = { HOME: raw.home, USER: raw.user };
    const ref = `rgt://profiles/${detection.name}`;
    const warnings: Warning[] = [];
    // Anything printed before the probe's document came from the login shell's start-up files: it would
    // corrupt rsync and SFTP streams the same way.
    // markers seen without the evidence they need (e.g. the Slurm client but no controller): say so
    for (const n of forced ? [] : detected.notes ?? []) warnings.push(warning("DETECTION_NOTE", "info", n.slice(0, 240)));
    // declared the user's own machine, but the box shows a rental's markers: its meter may be running
    if (forced?.kind === "workstation" && !["generic-ssh", forced.name].includes(detected.name)) {
      warnings.push(warning("LOCAL_LOOKS_RENTED", "danger", `declared ${forced.name} (your own machine, no meter), but the box shows ${detected.name} markers (${detected.detected_by}); if it is a rental, its meter runs — set its real profile in registry.yaml.`));
    }
    const noise = outLines.filter((l) => l.trim());
    if (noise.length) {
      warnings.push(warning("SHELL_NOISE", "danger", `the login shell prints on non-interactive ssh sessions ("${noise[0].slice(0, 60)}"${noise.length > 1 ? ` +${noise.length - 1} line(s)` : ""}): rsync and SFTP will fail until ~/.bashrc returns early for non-interactive shells`));
    }

    // ---- disks ----
    const profileMounts = mountsOf(profile).map((m) => ({ ...m, abs: expandBoxPath(m.path, boxEnv) }));
    const userMounts = new Set((args.mounts ?? []).map((m) => expandBoxPath(m, boxEnv)));
    const disks: { mount: string; role: "data" | "durable" | "system" | "other"; size_bytes: number | null; used_pct: number | null; inodes_used_pct: number | null }[] = [];
    const seenMountpoints = new Set<string>();
    for (const d of raw.disks) {
      if (!d.exists) continue;
      const pm = profileMounts.find((m) => m.abs === d.path);
      const wanted = d.path === "/" || !!pm || userMounts.has(d.path) || (d.path === "/dev/shm" && (d.size_kb ?? 0) < 8 * 1024 * 1024);
      if (!wanted) continue;
      // The same filesystem seen through two paths is reported once, unless a profile names it.
      const key = `${d.mountpoint}|${d.filesystem}`;
      if (seenMountpoints.has(key) && !pm) continue;
      seenMountpoints.add(key);
      const role = pm?.role ?? (d.path === "/" ? "system" : "other");
      const used_pct = pct(d.used_kb, d.size_kb);
      const inodes_used_pct = pct(d.inodes_used, d.inodes_total);
      disks.push({ mount: d.path, role, size_bytes: d.size_kb != null ? d.size_kb * 1024 : null, used_pct, inodes_used_pct });
      if (inodes_used_pct != null && inodes_used_pct >= INODE_WARN_PCT) {
        warnings.push(warning("INODE_HIGH", inodes_used_pct >= 95 ? "danger" : "warn", `${d.path}: inodes ${inodes_used_pct}% used, bytes ${used_pct ?? "?"}%`));
        if (pm?.inode_gotcha) warnings.push(warning(pm.inode_gotcha, "danger", `${d.path}: hard inode cap${profile?.inode_cap ? ` ~${Math.round(profile.inode_cap / 1000)}K` : ""}`));
      }
      if (used_pct != null && used_pct >= DISK_WARN_PCT) {
        warnings.push(warning("DISK_HIGH", used_pct >= 97 ? "danger" : "warn", `${d.path}: ${used_pct}% of bytes used; checkpoints and logs will start failing. Prune scratch or pull and delete old checkpoints.`, ref));
      }
    }

    // ---- GPUs ----
    const uuidToIndex = new Map(raw.gpus.map((g) => [g.uuid, g.index]));
    const gpus = raw.gpus.map(({ uuid: _u, ...g }) => g);
    if (gpus.length === 0) {
      if (profile?.kind === "slurm" || profile?.kind === "kubernetes") {
        // a login node / a kubectl host has no GPU of its own: the scheduler hands them to jobs
        warnings.push(warning("NO_GPU", "info", `no GPU on this ${profile.kind === "slurm" ? "login node" : "host"}: jobs get theirs from the scheduler (launch_queue with detach "${profile.kind === "slurm" ? "slurm" : "k8s"}").`));
      } else {
        warnings.push(warning("NO_GPU", "danger", `no GPU visible${raw.gpu_error ? ` (${raw.gpu_error.slice(0, 120)})` : ""}. On a rental this is usually a container started without GPUs or a failed driver; do not launch GPU work here.`));
      }
    }
    const running = raw.gpu_processes.map((p) => ({ pid: p.pid, gpu: uuidToIndex.get(p.gpu_uuid) ?? null, used_memory_mib: p.used_memory_mib,
        user: p.user, command: p.command.slice(0, 100) }));
    if (running.length) {
      const idx = [...new Set(running.map((r) => r.gpu))].filter((x) => x !== null).sort();
      warnings.push(warning("GPU_BUSY", "warn", `GPU ${idx.join(",")} already hold${idx.length === 1 ? "s" : ""} memory of another process (${running.map((r) => r.pid).join(", ")}); launch_queue will skip those lanes.`));
    }

    // ---- tools, python ----
    const tools = { tmux: !!raw.tools.tmux, rsync: !!raw.tools.rsync, python: !!raw.tools.python3 || !!raw.python, sbatch: !!raw.tools.sbatch,
        kubectl: !!raw.tools.kubectl };
    if (!tools.tmux) warnings.push(warning("NO_TMUX", "info", "tmux is not installed: launch_queue will detach with setsid nohup instead (runs survive the connection either way)."));
    if (!tools.rsync) warnings.push(warning("NO_RSYNC", "info", "rsync is not installed on the box: push_code and pull_verify fall back to SFTP (slower, still resumable per file)."));
    let python: { path: string; version: string | null; torch?: { version: string | null; cuda_available: boolean | null; basis: "metadata" | "import"; cuda_build?: string } | null } | null = null;
    if (!raw.python) {
      warnings.push(warning("NO_PYTHON", "warn", `no ${profile?.python_path ?? "python3"} on the box's PATH; training commands must name their interpreter.`));
    } else {
      const t = raw.python.torch;
      let torch: { version: string | null; cuda_available: boolean | null; basis: "metadata" | "import"; cuda_build?: string } | null = null;
      if (t) {
        if (t.method === "import") {
          torch = { version: t.version, cuda_available: t.cuda_available ?? null, basis: "import" };
        } else {
          // Fast path: what torch was built for vs what the driver supports, no import.
          let avail: boolean | null = null;
          if (gpus.length === 0) avail = false;
          else if (!t.cuda_build) avail = false;
          else if (raw.cuda_version) avail = versionAtLeast(raw.cuda_version, t.cuda_build);
          // basis "metadata": read from the installed package (its CUDA build vs the driver's), not imported
          torch = { version: t.version, cuda_available: avail, basis: "metadata", ...(t.cuda_build ? { cuda_build: t.cuda_build } : {}) };
          if (gpus.length && t.cuda_build && raw.cuda_version && !versionAtLeast(raw.cuda_version, t.cuda_build)) {
            warnings.push(warning("TORCH_CUDA_MISMATCH", "danger", `torch ${t.version} is built for CUDA ${t.cuda_build} but the driver supports up to ${raw.cuda_version}: CUDA will be unavailable. Install a torch wheel for CUDA ≤ ${raw.cuda_version} (do not upgrade the driver on a rental).`));
          }
          // A CPU-only build shows as cuda_available:false without a cuda_build; no separate warning (2 KB budget).
        }
      }
      python = { path: raw.python.path, version: raw.python.version, ...(t || raw.python.torch_error ? { torch } : {}) };
    }

    // ---- memory ----
    const cg = typeof raw.memory.cgroup_limit_bytes === "number" && raw.memory.cgroup_limit_bytes < 2 ** 60 ? raw.memory.cgroup_limit_bytes : null;
    const memory = { cgroup_limit_bytes: cg, host_total_bytes: raw.memory.host_total_bytes };
    if (cg && raw.memory.host_total_bytes && cg < raw.memory.host_total_bytes * 0.9) {
      warnings.push(warning("CGROUP_MEMORY", "info", `the container may use ${(cg / 2 ** 30).toFixed(1)} GiB although the host shows ${(raw.memory.host_total_bytes / 2 ** 30).toFixed(1)} GiB (free/top lie inside containers); size DataLoader workers and caches to the cgroup limit.`));
    }

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
      gpu_name: gpus[0]?.name,
      ...(Object.keys(instance_ids).length ? { instance_ids } : {}),
    });
    // the box's own pip without the profile's mirror: said on first contact and on a deep probe (the
    // steady-state answer stays small; launch_queue sets the mirrors for its cells either way)
    if ((first || args.deep) && profile?.china_mirror_needed && profile.china_mirrors?.pip_index_url && raw.pip_index === false) {
      warnings.push(warning("MIRRORS_MISSING", "info", "the box's pip has no index set (PyPI direct: slow here); launch_queue sets the profile's mirrors", "rgt://references/china-network"));
    }
    // First sight of a host: the profile's conveniences and danger clocks, once. The clocks' full text is in
    // the profile resource; here they are named with their stamps so the agent can tell the user and cite them.
    const surface_to_user = first && profile
      ? [
          ...profile.surface_to_user,
          ...(profile.danger_clocks.length ? [`Danger clocks (${ref}): ${profile.danger_clocks.map((c) => `${c.id}${c.hours ? ` ${c.hours >= 48 ? `${Math.round(c.hours / 24)} d` : `${c.hours} h`}` : ""} (verified ${c.verified})`).join("; ")}`] : []),
        ]
      : [];

    return {
      ok: true,
      summary: `${detection.name}, ${gpus.length} GPU(s)${surface_to_user.length ? "; tell the user surface_to_user" : ""}.`,
      host: args.host,
      profile: detection,
      gpus,
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
