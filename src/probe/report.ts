/**
 * What probe_env makes of the probe script's document: the disks that matter with bytes and inodes, the
 * GPUs (names said once when every GPU shares one), who holds GPU memory, GPU health (Xid, ECC, retired
 * pages, slowdowns, persistence, VRAM zombies), python/torch, tools and memory, each with the warnings
 * that apply. Pure: the tool runs the script and records the host; this judges.
 */
import { warning, type Warning } from "../common/result.js";
import { versionAtLeast } from "../common/text.js";
import { expandBoxPath, type Profile } from "../knowledge/schema.js";
import { BUSY_GPU_MIB, judgeHealth, parseHealth, type GpuHealth } from "../knowledge/gpu-health.js";
import { allMarkers, detectProfile } from "../knowledge/detect.js";
import { getProfile } from "../knowledge/profiles.js";
import { checkGpus } from "../knowledge/gpus.js";

const INODE_WARN_PCT = 90;
const DISK_WARN_PCT = 90;
/** a GPU this hot is worth naming (most throttle in the high 80s) */
const HOT_C = 80;

interface RawDisk { path: string; exists: boolean; mountpoint?: string; filesystem?: string; size_kb?: number | null; used_kb?: number | null;
  inodes_total?: number | null; inodes_used?: number | null }
export interface RawProbe {
  hostname: string; uptime_s: number | null; home: string; user: string;
  gpus: { index: number; name: string; memory_total_mib: number | null; memory_used_mib: number | null; utilization_pct: number | null;
    temperature_c: number | null; uuid: string }[];
  gpu_processes: { gpu_uuid: string; pid: number; used_memory_mib: number | null; user: string; command: string; alive?: boolean; rgt_run?: string;
    rgt_cell?: string; rgt_state?: string }[];
  gpu_health?: string[]; xid?: string[];
  driver_version: string | null; cuda_version: string | null; gpu_error: string | null;
  disks: RawDisk[];
  memory: { cgroup_limit_bytes: number | "max" | null; host_total_bytes: number | null };
  tools: Record<string, boolean>;
  python: { path: string; version: string | null; torch: { version: string | null; cuda_build: string | null; cuda_available?: boolean;
    device_count?: number; method: string } | null; torch_error?: string } | null;
  markers: { paths: string[]; env: string[]; commands: string[]; env_values: Record<string, string>; evidence?: Record<string, boolean | null> };
  pip_index?: boolean;
}

type Torch = { version: string | null; cuda_available: boolean | null; basis: "metadata" | "import"; cuda_build?: string };
export interface ProbeReport {
  disks: { mount: string; role: "data" | "durable" | "system" | "other"; size_bytes: number | null; used_pct: number | null; inodes_used_pct: number | null }[];
  gpus: { index: number; name?: string; memory_total_mib?: number | null; memory_used_mib: number | null; utilization_pct?: number | null;
    temperature_c?: number | null }[];
  /** the name and memory size every GPU shares (then absent from each GPU) */
  gpu_name?: string;
  gpu_memory_total_mib?: number;
  gpu_health?: GpuHealth;
  running: { pid: number; gpu: number | null; used_memory_mib: number | null; user: string; command: string }[];
  python: { path: string; version: string | null; torch?: Torch | null } | null;
  tools: { tmux: boolean; rsync: boolean; python: boolean; sbatch: boolean; kubectl: boolean };
  memory: { cgroup_limit_bytes: number | null; host_total_bytes: number | null };
  warnings: Warning[];
}

const pct = (used?: number | null, total?: number | null) => (used != null && total ? Math.round((used / total) * 1000) / 10 : null);

export function mountsOf(p: Profile | undefined): Profile["mounts"] {
  return p?.mounts ?? [];
}

export function buildReport(raw: RawProbe, o: { profile?: Profile; ref: string; userMounts: string[] }): ProbeReport {
  const { profile, ref } = o;
  const boxEnv = { HOME: raw.home, USER: raw.user };
  const warnings: Warning[] = [];
  // ---- disks ----
  const profileMounts = mountsOf(profile).map((m) => ({ ...m, abs: expandBoxPath(m.path, boxEnv) }));
  const userMounts = new Set(o.userMounts.map((m) => expandBoxPath(m, boxEnv)));
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
    warnings.push(warning("GPU_BUSY", "warn", `GPU ${idx.join(",")} already hold${idx.length === 1 ? "s" : ""} another process's memory (pid ${running.map((r) => r.pid).slice(0, 4).join(", ")}); launch_queue skips ${idx.length === 1 ? "it" : "them"}.`));
  }

  // memory held with no process listed: another container's job on a shared host (its pids are not in this
  // namespace) or a context a dead process left in the driver; launch_queue treats the GPU as busy either way
  const listed = new Set(running.map((r) => r.gpu));
  const unseen = gpus.filter((g) => (g.memory_used_mib ?? 0) >= BUSY_GPU_MIB && !listed.has(g.index));
  if (unseen.length) {
    warnings.push(warning("GPU_MEMORY_UNSEEN", "warn", `GPU ${unseen.map((g) => `${g.index} (${g.memory_used_mib} MiB)`).slice(0, 4).join(", ")}${unseen.length > 4 ? "…" : ""}: memory in use, no process listed — another container's job or a context left by a dead process; launch_queue skips ${unseen.length === 1 ? "it" : "them"}. If the box is yours alone, ask the provider or reboot before paying for it idle.`));
  }

  // one name for every GPU: said once (an 8-GPU box of "NVIDIA H100 80GB HBM3" repeats it eight times)
  const names = new Set(gpus.map((g) => g.name));
  const gpu_name = gpus.length > 1 && names.size === 1 ? gpus[0].name : undefined;
  const totals = new Set(gpus.map((g) => g.memory_total_mib));
  const gpu_memory_total_mib = gpus.length > 1 && totals.size === 1 ? gpus[0].memory_total_mib ?? undefined : undefined;
  // per GPU only what tells something: its memory in use, and utilisation / temperature when not idle / hot
  const gpusOut = gpus.map(({ name, memory_total_mib, utilization_pct, temperature_c, ...g }) => ({
    ...g,
    ...(gpu_name ? {} : { name }),
    ...(gpu_memory_total_mib !== undefined ? {} : { memory_total_mib }),
    ...(gpus.length > 1 && !utilization_pct ? {} : { utilization_pct }),
    ...(gpus.length > 1 && (temperature_c ?? 0) < HOT_C ? {} : { temperature_c }),
  }));
  const health = judgeHealth(parseHealth(raw.gpu_health ?? []), raw.xid ?? [], raw.gpu_processes.map((p) => ({
    gpu: uuidToIndex.get(p.gpu_uuid) ?? null, pid: p.pid, used_mib: p.used_memory_mib, alive: p.alive ?? true, user: p.user, command: p.command,
    ...(p.rgt_run ? { rgt_run: p.rgt_run, rgt_cell: p.rgt_cell, rgt_state: p.rgt_state } : {}),
  })));
  if (health.faulty_gpus?.length) warnings.push(warning("GPU_FAULT", "danger", `GPU ${health.faulty_gpus.join(",")}: hardware errors (gpu_health); do not use, get another box`, "rgt://references/training-failures#gpu-fault"));
  else if (health.xid?.length) warnings.push(warning("GPU_XID", "warn", `${health.xid.length} NVIDIA Xid error(s) since boot (gpu_health.xid)`, "rgt://references/training-failures#gpu-fault"));
  const reclaim = health.zombies?.find((z) => z.reclaim)?.reclaim;
  if (reclaim) warnings.push(warning("VRAM_ZOMBIE", "warn", `${reclaim} frees GPU memory its leftover processes hold`));

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

  // a holder already named in gpu_health.zombies (with its owner) is not listed again
  const zombiePids = new Set((health.zombies ?? []).map((z) => z.pid));
  const runningOut = running.filter((r) => !zombiePids.has(r.pid));
  return {
    disks, gpus: gpusOut, ...(gpu_name ? { gpu_name } : {}), ...(gpu_memory_total_mib !== undefined ? { gpu_memory_total_mib } : {}), ...(health.status !== "ok" || health.issues ? { gpu_health: health } : {}),
    running: runningOut, python, tools, memory, warnings,
  };
}

/** The probe script's arguments: every profile's markers (or the forced one's), the mounts to measure. */
export function probeArgs(profiles: Profile[], forced: Profile | undefined, mounts: string[], deep: boolean, idEnvs: string[]): string[] {
  const markers = allMarkers(profiles);
  const mountPaths = new Set<string>();
  for (const p of forced ? [forced] : profiles) for (const m of mountsOf(p)) mountPaths.add(m.path);
  for (const m of mounts) mountPaths.add(m);
  const out: string[] = [];
  for (const p of markers.paths) out.push("--path", p);
  for (const e of new Set([...markers.env, ...idEnvs])) out.push("--env", e);
  for (const c of markers.commands) out.push("--cmd", c);
  for (const m of mountPaths) out.push("--mount", m);
  if (forced?.python_path) out.push("--python", forced.python_path);
  if (deep) out.push("--deep");
  return out;
}

/** The platform: forced (caller or host registry) or detected from markers, with the warnings that go with it. */
export function detectionOf(raw: RawProbe, profiles: Profile[], forced: Profile | undefined, forcedBy: string, preamble: string[]) {
  const detected = detectProfile({ paths_present: raw.markers.paths, env_present: raw.markers.env, hostname: raw.hostname,
    commands: raw.markers.commands, evidence: raw.markers.evidence }, profiles);
  const detection: { name: string; detected_by: string; variant?: string } = forced
    ? {
        name: forced.name,
        // say whether the box's own markers back the declared platform: a mismatch is worth a look
        detected_by: `${forcedBy}; ${detected.name === forced.name ? `markers agree: ${detected.detected_by}` : `markers suggest ${detected.name}`}`,
        ...(forced.variant ? { variant: forced.variant } : {}),
      }
    : { name: detected.name, detected_by: detected.detected_by, ...(detected.variant ? { variant: detected.variant } : {}) };
  const profile = forced ?? getProfile(detection.name, detection.variant);
  const warnings: Warning[] = [];
  // markers seen without the evidence they need (e.g. the Slurm client but no controller): say so
  for (const n of forced ? [] : detected.notes ?? []) warnings.push(warning("DETECTION_NOTE", "info", n.slice(0, 240)));
  // declared the user's own machine, but the box shows a rental's markers: its meter may be running
  if (forced?.kind === "workstation" && !["generic-ssh", forced.name].includes(detected.name)) {
    warnings.push(warning("LOCAL_LOOKS_RENTED", "danger", `declared ${forced.name} (your own machine, no meter), but the box shows ${detected.name} markers (${detected.detected_by}); if it is a rental, its meter runs — set its real profile in registry.yaml.`));
  }
  // anything printed before the probe's document came from the login shell's start-up files: it would
  // corrupt rsync and SFTP streams the same way
  const noise = preamble.filter((l) => l.trim());
  if (noise.length) {
    warnings.push(warning("SHELL_NOISE", "danger", `the login shell prints on non-interactive ssh sessions ("${noise[0].slice(0, 60)}"${noise.length > 1 ? ` +${noise.length - 1} line(s)` : ""}): rsync and SFTP will fail until ~/.bashrc returns early for non-interactive shells`));
  }
  return { detection, profile, warnings };
}

/**
 * First sight of a host: the profile's conveniences and danger clocks, once. The clocks' full text is in
 * the profile resource; here they are named with their stamps so the agent can tell the user and cite them.
 */
export function firstSightLines(profile: Profile, ref: string): string[] {
  return [
    ...profile.surface_to_user,
    ...(profile.danger_clocks.length ? [`Danger clocks (${ref}): ${profile.danger_clocks.map((c) => `${c.id}${c.hours ? ` ${c.hours >= 48 ? `${Math.round(c.hours / 24)} d` : `${c.hours} h`}` : ""} (verified ${c.verified})`).join("; ")}`] : []),
  ];
}

/**
 * expect_gpu against the box's GPUs (src/knowledge/gpus.ts), adding its warning: GPU_MISMATCH first, or
 * GPU_UNCHECKED on a scheduler host that has no GPU of its own (the jobs get theirs from the scheduler).
 */
export function gpuAskFindings(ask: string, raw: RawProbe, profile: Profile | undefined, warnings: Warning[]): ReturnType<typeof checkGpus> {
  const scheduler = profile?.kind === "slurm" || profile?.kind === "kubernetes";
  const check = checkGpus(ask, raw.gpus, { scheduler });
  if (check.match) return check;
  if (scheduler && !raw.gpus.length) warnings.push(warning("GPU_UNCHECKED", "info", `expect_gpu ${check.why}`));
  else warnings.unshift(warning("GPU_MISMATCH", "danger", `asked "${check.asked}", the box has ${check.found}: ${check.why}. GPU-name filters are coarse; get the right box before an expensive run.`, "rgt://profiles/vastai"));
  return check;
}
