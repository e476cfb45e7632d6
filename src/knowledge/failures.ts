/**
 * Why a training cell died, from the evidence one run_status round trip gathers: the end of its log, the
 * exit code or signal, the memory cgroup's oom_kill counter, kernel lines (OOM killer, NVIDIA Xid), the
 * fill of its output mounts, the box's boot time. Pure: no I/O.
 *
 * The log is read from its end. Each line is normalised (ANSI codes, rank prefixes, `E ` markers dropped)
 * and given at most one class by the first cue that matches it; cues are phrases the frameworks actually
 * print (PyTorch, Lightning, Accelerate, DeepSpeed, HF Trainer, JAX/XLA, TensorFlow, NCCL, cuDNN/cuBLAS,
 * the shell). A line that is a Python exception line (the last of a traceback, or a chained one) or a C++
 * `what():` counts most, recent lines more than old ones. Classes that name a root cause (out of memory,
 * a full disk, a missing module…) beat the ones that only wrap one (an NCCL error carrying "out of
 * memory" is an OOM; an abort after a CUDA OOM is an OOM).
 */

export const FAILURE_CLASSES = [
  "cuda_oom", "oom", "nan_inf", "nccl", "disk_full", "inode_full", "missing_module", "missing_file",
  "cuda_unavailable", "crash", "gpu_fault", "killed", "hangup", "reboot", "stopped", "walltime", "preempted",
  "spot_not_enabled", "no_capacity", "unknown",
] as const;
export type FailureClass = (typeof FAILURE_CLASSES)[number];

export interface FailureCause {
  cause: FailureClass;
  /** the line or counter that decided it */
  evidence: string;
  /** where the class and its remedy are explained */
  ref: string;
}

export const FAILURES_REF = "rgt://references/training-failures";
export function refFor(c: FailureClass): string {
  return `${FAILURES_REF}#${c.replace(/_/g, "-")}`;
}

export interface FailureFacts {
  /** the end of the cell's log, oldest line first */
  lines: string[];
  exit_code?: number;
  /** the signal the runner saw (HUP, TERM, INT) */
  signal?: string;
  /** what the runner recorded itself ("oom" when the cgroup counter rose, "killed" for exit > 128) */
  recorded?: string;
  oom?: { before?: number; now?: number; file?: string };
  /** kernel lines that concern this cell (OOM killer on its pid, NVIDIA Xid since it started) */
  dmesg?: string[];
  /** the mounts its outputs and state live on */
  disks?: { mount: string; used_pct?: number; inodes_used_pct?: number }[];
}

// ------------------------------------------------------------------------------------------------
// log cues: first match per line wins, so the specific come before the generic

type Cue = [RegExp | ((line: string) => boolean), FailureClass];
const NONFINITE = /\b(?:nan|inf|-inf|infinite|infinity|non-?finite|not finite)\b/;
const NUMERIC_CONTEXT = /\b(?:loss\w*|grad\w*|norm|metric|values?|outputs?|tensor|logits?|detected|encountered|found|returned|scale|overflow|weights?|activations?|perplexity|ppl)\b/;
const NAN_PHRASES = /loss scale already at minimum|cannot decrease (?:loss )?scale|invalid value \(nan\)/;
const DEVICE = String.raw`(?:cuda|gpu|device|hbm|vram|hip|xla|tpu|cudnn|cublas|nccl)`;
const SPOT = String.raw`(?:spot|interruptible|preemptible|low[- ]priority)`;
const CUES: Cue[] = [
  // the box / kernel
  [/\bxid\b|fallen off the bus|gpu is lost|uncorrect(?:able|ed) ecc|double[- ]bit ecc|ecc ?uncorrectable|row ?remap(?:ping)? failure|gpu requires reset|unable to determine the device handle/, "gpu_fault"],
  [/out of memory: kill(?:ed)? process|oom-kill|oom_reaper|memory cgroup out of memory/, "oom"],
  // device memory
  [new RegExp(String.raw`${DEVICE}[^\n]{0,80}out of memory|out of memory[^\n]{0,60}${DEVICE}|outofmemoryerror|_status_alloc_failed|cudaerrormemoryallocation|resource_?exhausted|resourceexhaustederror|oom when allocating|failed to allocate[^\n]{0,80}(?:${DEVICE}|bfc)|cuda failure 'out of memory'`), "cuda_oom"],
  // host memory
  [/defaultcpuallocator|can(?:no|')t allocate memory|cannot allocate memory|errno 12\b|\benomem\b|^memoryerror\b|_arraymemoryerror|unable to allocate [\d.]+ [kmgt]?i?b|std::bad_alloc|insufficient shared memory|dataloader worker[^\n]*(?:killed by signal|exited unexpectedly)|killed by the oom killer/, "oom"],
  // a numerics failure: a non-finite word next to what went non-finite
  [(l) => NONFINITE.test(l) && NUMERIC_CONTEXT.test(l) || NAN_PHRASES.test(l), "nan_inf"],
  // a device the code cannot use
  [/not compiled with cuda|no nvidia driver|no cuda gpus are available|no cuda-capable device|cuda driver version is insufficient|driver\/library version mismatch|couldn't communicate with the nvidia driver|no kernel image is available|cudaerrornodevice|cuda_error_no_device|system_driver_mismatch|forward compatibility was attempted|nvidia driver on your system is too old|error from cudagetdevicecount|cuda initialization|invalid device ordinal|unable to initialize backend '(?:cuda|gpu|rocm)'|lib(?:cudart|cudnn|cublas\w*|nvrtc|nvidia-ml|cuda)\S*: cannot open shared object/, "cuda_unavailable"],
  // storage
  [/no space left on device|errno 28\b|\benospc\b|disk quota exceeded|errno 122\b|\bedquot\b|not enough (?:free )?disk space|pytorchstreamwriter failed writing|file write failed|unexpected pos \d+ vs \d+/, "disk_full"],
  // a cell that provisions machines (SkyPilot, a launcher script calling a provider): spot refused for the
  // account (a setting or a quota) is not the market being dry (RunPod RP15, verified 2026-04)
  [new RegExp(String.raw`${SPOT}[^\n]{0,60}(?:not (?:been |yet )?(?:enabled|activated)|requires? enabling)|not (?:been )?enabled[^\n]{0,40}${SPOT}` +
    String.raw`|${SPOT}[^\n]{0,60}(?:not allowed|disabled|not available)[^\n]{0,40}(?:account|organi[sz]ation|project|team)` +
    String.raw`|maxspotinstancecountexceeded|quota[^\n]{0,40}(?:preemptible_|lowpriority|spot)|(?:preemptible_|lowpriority|spot)\w*[^\n]{0,40}quota`), "spot_not_enabled"],
  [/insufficientinstancecapacity|zone_resource_pool_exhausted|insufficient[- ]capacity|resourcesunavailableerror|failed to provision all possible launchable resources|(?:no|not enough) (?:\w+ ){0,2}capacity (?:available|to fulfill|left)|no longer any instances available|does not have enough resources available|overconstrainedallocationrequest|\ballocationfailed\b|no (?:matching )?offers? (?:found|available|match)/, "no_capacity"],
  // code and files
  [/modulenotfounderror|no module named|cannot import name|importerror|cannot open shared object file|command not found|requires the \S+ library but it was not found/, "missing_module"],
  [/filenotfounderror|no such file or directory|errno 2\b|\benoent\b|can't open file|cannot find primary config|does not appear to have a file named|can't load (?:tokenizer|config|the model)|checkpoint[^\n]{0,40}not found|(?:path|file|directory|dir)\b[^\n]{0,80}does not exist/, "missing_file"],
  // collectives
  [/\bnccl|watchdog caught collective|collective operation timeout|ran for \d+ milliseconds before timing out|processgroup(?:nccl|gloo)|distbackenderror|distnetworkerror|rendezvous\w*(?:error|timeout)|\bgloo\b|c10d[^\n]{0,60}(?:timeout|connection|refused|reset)|tcpstore/, "nccl"],
  // the process died of its own bug
  [/segmentation fault|\bsegfault|\bsigsegv\b|illegal memory access|illegal (?:instruction|address)|misaligned address|device-side assert|unspecified launch failure|core dumped|\baborted\b|fatal python error|double free|invalid pointer|corrupted (?:size|double-linked)|bus error|floating point exception|stack smashing|status_execution_failed|status_internal_error|sigabrt|sigbus|sigfpe|sigill/, "crash"],
  // something outside killed it
  [/due to time limit|time limit exceeded|walltime/, "walltime"],
  [/due to preemption|preempted|spot (?:instance )?(?:interruption|termination)/, "preempted"],
  [/^killed$|\d+ killed\b|^terminated$|\d+ terminated\b|received signal (?:sigterm|sigkill|9|15)|got signal:? (?:9|15)|sigterm received|exitcode\s*:\s*-(?:9|15)\b|cancelled at/, "killed"],
];

/** Classes that wrap another failure: any root-cause class in the same message beats them. */
const WRAPPERS = new Set<FailureClass>(["nccl", "crash", "killed"]);

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

/** A log line as a reader sees it: escape sequences gone, a progress bar's last frame kept. */
export function cleanLine(s: string): string {
  const frames = s.replace(ANSI, "").split("\r").filter((f) => f.trim() !== "");
  // eslint-disable-next-line no-control-regex
  return (frames[frames.length - 1] ?? "").replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "").trimEnd();
}

/** lower case, rank/launcher prefixes and pytest's `E ` markers dropped */
function norm(line: string): string {
  return cleanLine(line)
    .replace(/^\s*(?:\[(?:rank|default|local_rank)?\d+\]:?\s*|rank\s*\d+:\s*|\d+:\s+|e\s{2,})/i, "")
    .trim()
    .toLowerCase();
}

/** A Python exception line (`pkg.mod.SomeError: text`), a C++ `what():`, or a `Fatal Python error`. */
const EXC = /^(?:[a-z_][\w.]*\.)?[a-z_]\w*(?:error|exception|exit|interrupt|failure)\b(?::|$)|^what\(\):|^fatal python error|^terminate called|^error:|^\*\*\*.*\*\*\*$/;
/** wrapper exceptions that say nothing themselves (the cause is in the lines before) */
const NEUTRAL = /childfailederror|calledprocesserror|subprocess\.|exitcode\s*:\s*1\b|^error: .*exited with|^traceback/;

/** a long line cut to start shortly before the words that decided it (so a clipped reply keeps them) */
function around(line: string, lower: string, t: Cue[0]): string {
  if (line.length <= 100) return line;
  const m = (typeof t === "function" ? NONFINITE : t).exec(lower);
  const at = m ? Math.max(0, lower.indexOf(m[0]) - 12) : 0;
  // the normalised line dropped a prefix; find the same words in the original
  const off = m ? Math.max(0, line.toLowerCase().indexOf(m[0]) - 12) : at;
  return off > 0 ? `…${line.slice(off)}` : line;
}

interface Hit { cls: FailureClass; idx: number; weight: number; line: string }

function scan(lines: string[]): Hit[] {
  const hits: Hit[] = [];
  const n = lines.length;
  for (let i = n - 1, seen = 0; i >= 0 && seen < 200; i--, seen++) {
    const raw = lines[i];
    if (raw.startsWith("[rgt]")) continue;
    // a traceback's echo of the source line is code, not a message (`raise OutOfMemoryError(...)`)
    // (indented under its `File "…", line N`; a `python -c` traceback has none, the exception follows)
    if (i > 0 && /^\s/.test(raw) && /^\s*File ".*", line \d+/.test(cleanLine(lines[i - 1]))) continue;
    const l = norm(raw);
    if (!l || NEUTRAL.test(l)) continue;
    const cue = CUES.find(([t]) => (typeof t === "function" ? t(l) : t.test(l)));
    if (!cue) continue;
    const fromEnd = n - 1 - i;
    const weight = (EXC.test(l) ? 6 : 1) * (fromEnd < 25 ? 2 : 1);
    hits.push({ cls: cue[1], idx: i, weight, line: around(cleanLine(raw).trim(), l, cue[0]) });
  }
  return hits;
}

/** the best class the log itself supports, with the line that decided it */
export function classifyLog(lines: string[]): { cls: FailureClass; line: string } | undefined {
  const hits = scan(lines);
  if (!hits.length) return undefined;
  const score = new Map<FailureClass, { s: number; best: Hit }>();
  for (const h of hits) {
    const cur = score.get(h.cls);
    // a class's score saturates: twenty "loss: nan" progress lines must not outvote one final exception
    const add = Math.min(h.weight, 12 - Math.min(12, cur?.s ?? 0));
    if (!cur) score.set(h.cls, { s: add, best: h });
    else {
      cur.s += add;
      if (h.weight > cur.best.weight) cur.best = h;
    }
  }
  const ranked = [...score.entries()].sort((a, b) => b[1].s - a[1].s || b[1].best.idx - a[1].best.idx);
  const roots = ranked.filter(([c]) => !WRAPPERS.has(c));
  // a root cause wins when it is more than incidental beside the wrapper: an exception line or a few lines,
  // or a line of the wrapper's own message (NCCL's "Last error: Cuda failure 'out of memory'")
  const top = ranked[0][1];
  const r = roots[0]?.[1];
  const pick = r && (r.s >= Math.min(4, top.s) || (r.s >= 2 && Math.abs(r.best.idx - top.best.idx) <= 6)) ? roots[0] : ranked[0];
  return { cls: pick[0], line: pick[1].best.line };
}

/**
 * A provider refusing to hand out machines, in any output a tool reads (a command's tail, a cell's log):
 * spot refused for the account (a setting or a quota) or no capacity in the market. Undefined otherwise.
 */
export function provisioningRefusal(text: string): { cause: "spot_not_enabled" | "no_capacity"; line: string } | undefined {
  const log = classifyLog(text.split("\n"));
  return log && (log.cls === "spot_not_enabled" || log.cls === "no_capacity") ? { cause: log.cls, line: log.line } : undefined;
}

function clip(s: string, n = 220): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

const SIGNALS: Record<number, string> = { 1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 15: "SIGTERM" };
export function signalOf(code: number | undefined): string | undefined {
  return code !== undefined && code > 128 && code < 160 ? SIGNALS[code - 128] ?? `signal ${code - 128}` : undefined;
}

/** An ENOSPC is a full inode table when the mount has inodes at the cap but bytes to spare. */
function diskClass(disks: FailureFacts["disks"]): { cls: "disk_full" | "inode_full"; ev: string } | undefined {
  const full = (disks ?? []).map((d) => ({ d, i: d.inodes_used_pct ?? 0, b: d.used_pct ?? 0 })).filter((x) => x.i >= 99 || x.b >= 99);
  if (!full.length) return undefined;
  const ino = full.find((x) => x.i >= 99 && x.b < 98);
  if (ino) return { cls: "inode_full", ev: `df: ${ino.d.mount} inodes ${ino.i}% used, bytes ${ino.b}%` };
  const x = full.sort((a, b) => b.b - a.b)[0];
  return { cls: "disk_full", ev: `df: ${x.d.mount} ${x.b}% full (inodes ${x.i}%)` };
}

function killedText(f: FailureFacts): string {
  const sig = signalOf(f.exit_code);
  return `exit ${f.exit_code ?? "?"}${sig ? ` (128+${f.exit_code! - 128}: ${sig})` : ""}; no OOM kill counted (cgroup oom_kill ${f.oom?.now ?? "n/a"})`;
}

/** Decide why a cell failed. Counters (cgroup, kernel) beat the log; the log beats the bare exit code. */
export function classifyFailure(f: FailureFacts): FailureCause {
  const make = (cause: FailureClass, evidence: string): FailureCause => ({ cause, evidence: clip(evidence, 300), ref: refFor(cause) });
  const oomGrew = f.oom?.before !== undefined && f.oom?.now !== undefined && f.oom.now > f.oom.before;
  const oomLine = (f.dmesg ?? []).find((d) => /out of memory|oom-kill|killed process/i.test(d));
  if (oomGrew || f.recorded === "oom" || oomLine) {
    const parts = [oomGrew ? `oom_kill in ${f.oom?.file ?? "the cell's memory cgroup"} went ${f.oom?.before} -> ${f.oom?.now}` : "", oomLine ? `dmesg: ${clip(oomLine, 160)}` : ""];
    return make("oom", parts.filter(Boolean).join("; ") || "the runner counted an OOM kill in the cell's memory cgroup");
  }
  const log = classifyLog(f.lines);
  const xid = (f.dmesg ?? []).find((d) => /xid|fallen off the bus|ecc/i.test(d));
  if (xid && (!log || WRAPPERS.has(log.cls) || log.cls === "cuda_unavailable")) return make("gpu_fault", `dmesg: ${xid}`);
  if (log) {
    if (log.cls === "disk_full") {
      const d = diskClass(f.disks);
      if (d?.cls === "inode_full") return make("inode_full", `${log.line} | ${d.ev}`);
      return make("disk_full", d ? `${log.line} | ${d.ev}` : log.line);
    }
    if (log.cls === "killed") return make("killed", `${log.line}; ${killedText(f)}`);
    return make(log.cls, log.line);
  }
  const sig = signalOf(f.exit_code);
  if (f.signal?.startsWith("HUP")) return make("hangup", "the runner got SIGHUP (its terminal or tmux server went away) and passed it on");
  if (sig === "SIGSEGV" || sig === "SIGABRT" || sig === "SIGBUS" || sig === "SIGFPE" || sig === "SIGILL") return make("crash", `exit ${f.exit_code} (128+${f.exit_code! - 128}: ${sig})`);
  const d = diskClass(f.disks);
  if (d) return make(d.cls, `${d.ev}; the log names no other cause`);
  if (sig || f.recorded === "killed") return make("killed", killedText(f));
  const last = [...f.lines].reverse().map(cleanLine).find((l) => l.trim() && !l.startsWith("[rgt]"));
  return make("unknown", `exit ${f.exit_code ?? "?"}; no known failure in the log's end${last ? `; last line: ${clip(last.trim(), 160)}` : ""}`);
}

// ------------------------------------------------------------------------------------------------
// remedies

/** The knobs a cell's command and env show, for the OOM ladder's next rung. */
export interface CellKnobs { text: string }

function batchOf(t: string): { name: string; value: number } | undefined {
  const m = /(--?[\w-]*batch[_-]?size|\b[\w]*batch_?size|\bBS)(?:\s*[= ]\s*)(\d+)/i.exec(t);
  return m ? { name: m[1], value: Number(m[2]) } : undefined;
}

/** The next rung of the fit-it ladder for this cell, judged from its command/env text. */
export function oomRung(text: string): string {
  const t = text ?? "";
  const b = batchOf(t);
  const accum = /accum/i.test(t);
  const lowPrec = /bf16|bfloat16|fp16|float16|half|mixed_precision|precision[ =]["']?(?:16|bf16)|amp\b/i.test(t);
  const ckpt = /gradient_checkpointing|grad_ckpt|activation_checkpoint|checkpoint_activations/i.test(t);
  if (b && b.value > 1 && !accum) return `halve ${b.name} ${b.value} -> ${Math.floor(b.value / 2)} and add gradient accumulation ×2 (same effective batch)`;
  if (b && b.value > 1) return `halve ${b.name} ${b.value} -> ${Math.floor(b.value / 2)} and double the accumulation steps`;
  if (!lowPrec) return "turn on bf16 autocast (fp16 + GradScaler on pre-Ampere cards)";
  if (!ckpt) return "turn on activation (gradient) checkpointing";
  return "shard the optimizer state (FSDP / ZeRO-2) or use an 8-bit optimizer; then shorten sequences";
}

/** One concrete next step per class; a retry only where the class is transient. */
export function remedyFor(cause: FailureClass, ctx: { cells: string[]; knobs?: string; relaunch: string }): string {
  const who = ctx.cells.join(", ");
  switch (cause) {
    case "cuda_oom": return `${who}: CUDA out of memory — ${oomRung(ctx.knobs ?? "")}, then ${ctx.relaunch}. The same config fails the same way again.`;
    case "oom": return `${who}: host/cgroup memory ran out — fewer DataLoader workers, no in-RAM dataset cache, a larger /dev/shm if workers died on shm; then ${ctx.relaunch}.`;
    case "nan_inf": return `${who}: loss/gradients went NaN/Inf — resume from the last finite checkpoint with a lower LR or longer warmup, grad clipping, bf16 over fp16; find the op with anomaly detection first. Relaunching unchanged repeats it.`;
    case "nccl": return `${who}: a collective failed or timed out — look for the rank that died first (its own error is the cause); a single timeout with every rank healthy may be retried once, from the checkpoint.`;
    case "disk_full": return `${who}: disk full — free space (prune old checkpoints, pull then delete) then ${ctx.relaunch}; done cells are kept.`;
    case "inode_full": return `${who}: the inode table is full while bytes are free — delete or pack small files (tar/shards) on that mount, then ${ctx.relaunch}; done cells are kept.`;
    case "missing_module": return `${who}: a module/program is missing — install it or fix the import (requirements, RGT_PYTHON), push_code, then ${ctx.relaunch}.`;
    case "missing_file": return `${who}: a file the code reads is missing — push_code it or fix the path (data_dir, checkpoint path), then ${ctx.relaunch}.`;
    case "cuda_unavailable": return `${who}: CUDA is not usable (no device, or torch built for a newer CUDA than the driver) — probe_env { deep: true }, install a matching torch wheel; do not relaunch until cuda_available is true.`;
    case "crash": return `${who}: the process crashed (segfault/abort/illegal access) — rerun one cell with CUDA_LAUNCH_BLOCKING=1 (and faulthandler) to find the op; check library versions; unchanged it crashes again.`;
    case "gpu_fault": return `${who}: the GPU itself faulted (Xid/ECC) — do not reuse that GPU; ask the provider for a replacement box, then ${ctx.relaunch} there.`;
    case "killed": return `${who}: killed from outside rgt without an OOM count — find who (provider console, another user, a watchdog), then ${ctx.relaunch}.`;
    case "hangup": return `${who}: the detach was lost (tmux server or terminal gone) — ${ctx.relaunch}; resume is from the checkpoint.`;
    case "reboot": return `${who}: the box rebooted under the run (transient) — ${ctx.relaunch}; resume is from the checkpoint.`;
    case "preempted": return `${who}: preempted (transient) — ${ctx.relaunch}; resume is from the checkpoint.`;
    case "spot_not_enabled": return `${who}: the provider refused spot/interruptible capacity for this account (a setting or a quota, not a dry market) — enable it or ask for quota for that GPU type in the account console, or launch on demand; relaunching unchanged fails the same way.`;
    case "no_capacity": return `${who}: no capacity for that machine type right now (transient) — retry later or in another region/zone or GPU type; a spot ask that never gets capacity may be an account setting: check spot/interruptible is enabled for that GPU type before calling the market dry.`;
    case "walltime": return `${who}: hit the scheduler's time limit — ask for more time or checkpoint more often, then ${ctx.relaunch}.`;
    case "stopped": return `${who}: stopped by stop_run; files are kept. To continue, ${ctx.relaunch}.`;
    default: return `${who}: no known cause in the evidence — read the tail (run_status with log_offset) and fix what it says before ${ctx.relaunch}.`;
  }
}
