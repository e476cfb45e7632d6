/**
 * The failure classifier over a corpus of how frameworks word the same failure (PyTorch, Lightning,
 * Accelerate, DeepSpeed, HF Trainer, JAX/XLA, TensorFlow, NCCL, the shell, the kernel), each embedded in
 * the noise of a real log end (progress lines, warnings, tracebacks, launcher wrappers).
 */
import { describe, expect, it } from "vitest";
import { classifyFailure, classifyLog, cleanLine, FAILURE_CLASSES, oomRung, provisioningRefusal, refFor, remedyFor, type FailureClass, type FailureFacts } from "../../src/knowledge/failures.js";

const TB = (file: string) => ["Traceback (most recent call last):", `  File "${file}", line 212, in <module>`, "    main()", `  File "${file}", line 180, in main`, "    loss = step(batch)"];
const NOISE = ["Epoch 3:  41%|████      | 410/1000 [02:11<03:09,  3.11it/s, loss=2.31, v_num=0]", "{'loss': 2.2841, 'grad_norm': 1.73, 'learning_rate': 4.2e-05, 'epoch': 0.41}"];

interface Case { cls: FailureClass; lines: string[]; facts?: Partial<FailureFacts>; note: string }
const C = (cls: FailureClass, note: string, lines: string[], facts: Partial<FailureFacts> = {}): Case => ({ cls, note, lines, facts });

const corpus: Case[] = [
  // ---- cuda_oom
  C("cuda_oom", "torch 2.x", [...NOISE, ...TB("train.py"), "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.15 GiB of which 1.12 GiB is free. Including non-PyTorch memory, this process has 78.02 GiB memory in use."], { exit_code: 1 }),
  C("cuda_oom", "torch 1.x", [...TB("run.py"), "RuntimeError: CUDA out of memory. Tried to allocate 512.00 MiB (GPU 0; 23.69 GiB total capacity; 21.90 GiB already allocated; 301.56 MiB free; 22.31 GiB reserved in total by PyTorch)"], { exit_code: 1 }),
  C("cuda_oom", "HF Trainer wrapped in accelerate launch", [...NOISE, "[rank1]: torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.53 GiB. GPU 1 has a total capacity of 39.39 GiB", "E1201 12:00:01.123000 140 torch/distributed/elastic/multiprocessing/api.py:833] failed (exitcode: 1) local_rank: 1 (pid: 4242) of binary: /usr/bin/python3", "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ", "train.py FAILED", "Root Cause (first observed failure):", "  exitcode  : 1 (pid: 4242)"], { exit_code: 1 }),
  C("cuda_oom", "JAX / XLA", ["I1201 jax/_src/xla_bridge.py] Unable to initialize backend 'rocm'", "jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to allocate 17179869184 bytes."], { exit_code: 1 }),
  C("cuda_oom", "TensorFlow", ["2026-12-01 12:00:00.1 W tensorflow/core/common_runtime/bfc_allocator.cc:479] Allocator (GPU_0_bfc) ran out of memory trying to allocate 4.00GiB", "tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM when allocating tensor with shape[64,1024,1024] and type float on /job:localhost/replica:0/task:0/device:GPU:0"], { exit_code: 1 }),
  C("cuda_oom", "cuBLAS alloc", [...TB("model.py"), "RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"], { exit_code: 1 }),
  C("cuda_oom", "cuDNN alloc", ["RuntimeError: cuDNN error: CUDNN_STATUS_ALLOC_FAILED"], { exit_code: 1 }),
  C("cuda_oom", "C++ abort after OOM", ["terminate called after throwing an instance of 'c10::OutOfMemoryError'", "  what():  CUDA out of memory. Tried to allocate 20.00 MiB", "Aborted (core dumped)"], { exit_code: 134 }),
  C("cuda_oom", "NCCL carrying an OOM", ["torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, unhandled cuda error (run with NCCL_DEBUG=INFO for details), NCCL version 2.20.5", "ncclUnhandledCudaError: Call to CUDA function failed.", "Last error:", "Cuda failure 'out of memory'"], { exit_code: 1 }),
  C("cuda_oom", "DeepSpeed", ["[2026-12-01 12:00:00,000] [INFO] [stage_1_and_2.py:150:__init__] Reduce bucket size 500000000", "RuntimeError: CUDA error: out of memory", "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect."], { exit_code: 1 }),
  C("cuda_oom", "ANSI-coloured Lightning", ["\x1b[31mtorch.cuda.OutOfMemoryError\x1b[0m: CUDA out of memory. Tried to allocate 64.00 MiB"], { exit_code: 1 }),
  C("cuda_oom", "ROCm", ["RuntimeError: HIP out of memory. Tried to allocate 2.00 GiB (GPU 0; 63.98 GiB total capacity)"], { exit_code: 1 }),
  // ---- oom (host)
  C("oom", "cgroup counter", ["step 40"], { exit_code: 137, oom: { before: 0, now: 1, file: "/sys/fs/cgroup/x/memory.events" } }),
  C("oom", "dmesg", ["step 40", "Killed"], { exit_code: 137, dmesg: ["[12345.6] Out of memory: Killed process 4242 (python3) total-vm:90000000kB, anon-rss:60000000kB"] }),
  C("oom", "CPU allocator", [...TB("train.py"), "RuntimeError: [enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to allocate 4000000000000 bytes. Error code 12 (Cannot allocate memory)"], { exit_code: 1 }),
  C("oom", "numpy", ["numpy.core._exceptions._ArrayMemoryError: Unable to allocate 74.5 GiB for an array with shape (100000, 100000) and data type float64"], { exit_code: 1 }),
  C("oom", "Python MemoryError", [...TB("prep.py"), "MemoryError"], { exit_code: 1 }),
  C("oom", "DataLoader worker killed", [...NOISE, "RuntimeError: DataLoader worker (pid 31337) is killed by signal: Killed. "], { exit_code: 1 }),
  C("oom", "shm", ["ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory (shm).", "RuntimeError: DataLoader worker (pid(s) 1234) exited unexpectedly"], { exit_code: 1 }),
  C("oom", "C++ bad_alloc", ["terminate called after throwing an instance of 'std::bad_alloc'", "  what():  std::bad_alloc", "Aborted (core dumped)"], { exit_code: 134 }),
  // ---- nan_inf
  C("nan_inf", "anomaly detection", [...TB("train.py"), "RuntimeError: Function 'LogBackward0' returned nan values in its 0th output."], { exit_code: 1 }),
  C("nan_inf", "user check", ["step 120 loss 3.1", "step 130 loss nan", "ValueError: loss is NaN at step 130"], { exit_code: 1 }),
  C("nan_inf", "Lightning EarlyStopping", ["Monitored metric val_loss = nan is not finite. Previous best value was 0.412. Signaling Trainer to stop."], { exit_code: 1 }),
  C("nan_inf", "DeepSpeed fp16", ["[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 1, reducing to 1", "Exception: Current loss scale already at minimum - cannot decrease scale anymore. Exiting run."], { exit_code: 1 }),
  C("nan_inf", "JAX debug_nans", ["FloatingPointError: invalid value (nan) encountered in jit(train_step)"], { exit_code: 1 }),
  C("nan_inf", "HF Trainer dict", ["{'loss': 0.0, 'grad_norm': nan, 'learning_rate': 1e-05, 'epoch': 2.0}", "RuntimeError: non-finite loss detected, stopping"], { exit_code: 1 }),
  C("nan_inf", "assert isfinite", ["AssertionError: Loss became infinite or NaN at iteration=512!"], { exit_code: 1 }),
  // ---- nccl
  C("nccl", "watchdog timeout", ["[rank3]:[E1201 12:00:00.000 ProcessGroupNCCL.cpp:616] [Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=4012, OpType=ALLREDUCE, NumelIn=2048, NumelOut=2048, Timeout(ms)=600000) ran for 600034 milliseconds before timing out.", "[rank3]:[E1201 ProcessGroupNCCL.cpp:1537] [PG 0 Rank 3] Exception (either an error or timeout) detected by watchdog at work: 4012"], { exit_code: 134 }),
  C("nccl", "ncclSystemError", ["torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1691, unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.19.3", "ncclSystemError: System call (e.g. socket, malloc) or external library call failed or device error."], { exit_code: 1 }),
  C("nccl", "NCCL WARN", ["node1:4242:4300 [0] misc/socket.cc:484 NCCL WARN socketStartConnect: Connect to 10.0.0.2<45231> failed : Software caused connection abort", "RuntimeError: NCCL communicator was aborted on rank 1."], { exit_code: 1 }),
  C("nccl", "no NCCL build", [...TB("ddp.py"), "RuntimeError: Distributed package doesn't have NCCL built in"], { exit_code: 1 }),
  C("nccl", "c10d store", ["torch.distributed.DistNetworkError: Connection reset by peer", "[W socket.cpp:464] [c10d] The server socket has failed to bind to [::]:29500"], { exit_code: 1 }),
  C("nccl", "rendezvous", ["torch.distributed.elastic.rendezvous.api.RendezvousTimeoutError"], { exit_code: 1 }),
  // ---- disk_full / inode_full
  C("disk_full", "torch.save", [...TB("train.py"), "RuntimeError: [enforce fail at inline_container.cc:595] . unexpected pos 1249984 vs 1249872"], { exit_code: 1, disks: [{ mount: "/data", used_pct: 100, inodes_used_pct: 3 }] }),
  C("disk_full", "ENOSPC", ["OSError: [Errno 28] No space left on device: '/data/ckpt/step_900.pt'"], { exit_code: 1, disks: [{ mount: "/data", used_pct: 100, inodes_used_pct: 2 }] }),
  C("disk_full", "quota", ["OSError: [Errno 122] Disk quota exceeded"], { exit_code: 1 }),
  C("disk_full", "stream writer", ["RuntimeError: PytorchStreamWriter failed writing file data/12: file write failed"], { exit_code: 1 }),
  C("disk_full", "df only", ["step 900", "saving"], { exit_code: 1, disks: [{ mount: "/root/autodl-tmp", used_pct: 100, inodes_used_pct: 10 }] }),
  C("inode_full", "ENOSPC with free bytes", ["OSError: [Errno 28] No space left on device: '/root/autodl-fs/cache/x_19999.npy'"], { exit_code: 1, disks: [{ mount: "/root/autodl-fs", used_pct: 31, inodes_used_pct: 100 }] }),
  C("inode_full", "shell", ["cp: cannot create regular file '/fs/out/s_1.bin': No space left on device"], { exit_code: 1, disks: [{ mount: "/fs", used_pct: 5, inodes_used_pct: 100 }] }),
  // ---- missing_module
  C("missing_module", "ModuleNotFoundError", [...TB("train.py"), "ModuleNotFoundError: No module named 'timm'"], { exit_code: 1 }),
  C("missing_module", "cannot import name", ["ImportError: cannot import name 'LlamaForCausalLM' from 'transformers' (/usr/lib/python3/dist-packages/transformers/__init__.py)"], { exit_code: 1 }),
  C("missing_module", "HF extra", ["ImportError: Using the `Trainer` with `PyTorch` requires `accelerate>=0.26.0`: Please run `pip install transformers[torch]` or `pip install 'accelerate>=0.26.0'`"], { exit_code: 1 }),
  C("missing_module", "no program", ["bash: line 1: torchrun: command not found"], { exit_code: 127 }),
  C("missing_module", "native lib", ["ImportError: libGL.so.1: cannot open shared object file: No such file or directory"], { exit_code: 1 }),
  // ---- missing_file
  C("missing_file", "FileNotFoundError", [...TB("data.py"), "FileNotFoundError: [Errno 2] No such file or directory: 'data/train.jsonl'"], { exit_code: 1 }),
  C("missing_file", "python can't open", ["python3: can't open file '/root/proj/trian.py': [Errno 2] No such file or directory"], { exit_code: 2 }),
  C("missing_file", "hydra", ["hydra.errors.MissingConfigException: Cannot find primary config 'train'. Check that it's in your config search path."], { exit_code: 1 }),
  C("missing_file", "HF from_pretrained", ["OSError: ./ckpt/final does not appear to have a file named config.json. Checkout 'https://huggingface.co/./ckpt/final/tree/None' for available files."], { exit_code: 1 }),
  C("missing_file", "resume path", ["ValueError: Checkpoint path /data/ckpt/last.ckpt does not exist"], { exit_code: 1 }),
  // ---- cuda_unavailable
  C("cuda_unavailable", "CPU wheel", [...TB("train.py"), "AssertionError: Torch not compiled with CUDA enabled"], { exit_code: 1 }),
  C("cuda_unavailable", "no driver", ["RuntimeError: Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU and installed a driver from http://www.nvidia.com/Download/index.aspx"], { exit_code: 1 }),
  C("cuda_unavailable", "driver too old", ["RuntimeError: The NVIDIA driver on your system is too old (found version 11040). Please update your GPU driver"], { exit_code: 1 }),
  C("cuda_unavailable", "insufficient driver", ["RuntimeError: CUDA error: CUDA driver version is insufficient for CUDA runtime version"], { exit_code: 1 }),
  C("cuda_unavailable", "NVML mismatch", ["Failed to initialize NVML: Driver/library version mismatch", "NVML library version: 550.54"], { exit_code: 1 }),
  C("cuda_unavailable", "arch", ["RuntimeError: CUDA error: no kernel image is available for execution on the device"], { exit_code: 1 }),
  C("cuda_unavailable", "ordinal", ["RuntimeError: CUDA error: invalid device ordinal"], { exit_code: 1 }),
  C("cuda_unavailable", "libcudart", ["OSError: libcudart.so.12: cannot open shared object file: No such file or directory"], { exit_code: 1 }),
  // ---- crash
  C("crash", "segfault (shell)", ["step 10", "bash: line 1:  4242 Segmentation fault      (core dumped) python3 train.py"], { exit_code: 139 }),
  C("crash", "illegal access", ["RuntimeError: CUDA error: an illegal memory access was encountered", "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions."], { exit_code: 1 }),
  C("crash", "device assert", ["../aten/src/ATen/native/cuda/IndexKernel.cu:92: operator(): block: [0,0,0], thread: [0,0,0] Assertion `-sizes[i] <= index && index < sizes[i] && \"index out of bounds\"` failed.", "RuntimeError: CUDA error: device-side assert triggered"], { exit_code: 1 }),
  C("crash", "fatal python error", ["Fatal Python error: Segmentation fault", "", "Current thread 0x00007f (most recent call first):", '  File "/usr/lib/python3/dist-packages/torch/nn/functional.py", line 2233 in embedding'], { exit_code: 139 }),
  C("crash", "bare SIGSEGV exit", ["step 10"], { exit_code: 139 }),
  C("crash", "abort", ["free(): invalid pointer", "Aborted"], { exit_code: 134 }),
  // ---- gpu_fault
  C("gpu_fault", "Xid in dmesg", ["RuntimeError: CUDA error: unspecified launch failure"], { exit_code: 1, dmesg: ["[86000.1] NVRM: Xid (PCI:0000:3b:00): 79, pid=4242, name=python3, GPU has fallen off the bus."] }),
  C("gpu_fault", "ECC in log", ["RuntimeError: CUDA error: uncorrectable ECC error encountered"], { exit_code: 1 }),
  C("gpu_fault", "nvidia-smi lost", ["Unable to determine the device handle for GPU0000:3B:00.0: Unknown Error"], { exit_code: 1 }),
  // ---- killed
  C("killed", "kill -9", ["step 40", "bash: line 1:  4242 Killed                  python3 train.py"], { exit_code: 137 }),
  C("killed", "SIGTERM", ["step 40"], { exit_code: 143, recorded: "killed" }),
  C("killed", "torchrun", ["WARNING:torch.distributed.elastic.multiprocessing.api:Sending process 4243 closing signal SIGTERM", "Root Cause (first observed failure):", "  exitcode  : -9 (pid: 4242)"], { exit_code: 1 }),
  // ---- hangup / walltime / preempted / unknown
  C("hangup", "runner SIGHUP", ["step 40"], { exit_code: 129, signal: "HUP 1764590000" }),
  C("walltime", "slurm", ["slurmstepd: error: *** JOB 4242 ON node07 CANCELLED AT 2026-12-01T12:00:00 DUE TO TIME LIMIT ***"], { exit_code: 1 }),
  C("unknown", "plain exit 1", ["step 40", "done with epoch"], { exit_code: 1 }),
  C("unknown", "a config dump that mentions spot is no cause", ["config: use_spot=False interruptible=False", "resources: {'cloud': 'aws', 'spot_recovery': None}", "step 40"], { exit_code: 1 }),
  // ---- a cell that provisions machines: spot refused for the account vs no capacity in the market
  C("spot_not_enabled", "provider CLI: interruptible not enabled", ["launching 4 x RTX 4090 (interruptible) ...", "Error: interruptible instances are not enabled for this account"], { exit_code: 1 }),
  C("spot_not_enabled", "not enabled, word order reversed", ["sky.exceptions.ProvisionError: Low-priority capacity has not been enabled for GPU type A100 on this account"], { exit_code: 1 }),
  C("spot_not_enabled", "AWS spot quota", ["botocore.exceptions.ClientError: An error occurred (MaxSpotInstanceCountExceeded) when calling the RunInstances operation: Max spot instance count exceeded"], { exit_code: 1 }),
  C("spot_not_enabled", "GCP preemptible GPU quota", ["googleapiclient.errors.HttpError: Quota 'PREEMPTIBLE_NVIDIA_A100_GPUS' exceeded. Limit: 0.0 in region us-central1."], { exit_code: 1 }),
  C("spot_not_enabled", "Azure low-priority quota", ["ERROR: Operation could not be completed as it results in exceeding approved LowPriorityCores quota."], { exit_code: 1 }),
  C("spot_not_enabled", "spot disabled for the organisation", ["provision failed: spot instances are disabled for your account"], { exit_code: 2 }),
  C("no_capacity", "AWS market", ["botocore.exceptions.ClientError: An error occurred (InsufficientInstanceCapacity) when calling the RunInstances operation: We currently do not have sufficient p4d.24xlarge capacity"], { exit_code: 1 }),
  C("no_capacity", "GCP zone exhausted", ["ERROR: (gcloud.compute.instances.create) Could not fetch resource: The zone 'projects/p/zones/us-central1-a' does not have enough resources available to fulfill the request. '(resource type:compute)'. ZONE_RESOURCE_POOL_EXHAUSTED"], { exit_code: 1 }),
  C("no_capacity", "SkyPilot", ["sky.exceptions.ResourcesUnavailableError: Failed to provision all possible launchable resources. Relax the task's resource requirements: 1x AWS({'H100': 8})"], { exit_code: 1 }),
  C("no_capacity", "RunPod", ["Error: There are no longer any instances available with the requested specifications. Please refresh and try again."], { exit_code: 1 }),
  C("no_capacity", "generic", ["[launcher] no spot capacity available for H100 in any region"], { exit_code: 1 }),
];

describe("classifyFailure over a corpus of framework wordings", () => {
  it(`classifies ≥ 90 % right (${corpus.length} cases, every class that a log can show)`, () => {
    const wrong: string[] = [];
    for (const c of corpus) {
      const got = classifyFailure({ lines: c.lines, ...c.facts });
      if (got.cause !== c.cls) wrong.push(`${c.cls} (${c.note}) -> ${got.cause}: ${got.evidence}`);
      expect(got.ref).toBe(refFor(got.cause));
      expect(got.evidence.length).toBeGreaterThan(5);
    }
    const rate = (corpus.length - wrong.length) / corpus.length;
    expect(wrong, `correct ${(rate * 100).toFixed(1)} %`).toEqual([]);
    expect(rate).toBeGreaterThanOrEqual(0.9);
  });

  it("the evidence is the deciding line, cleaned of escape codes", () => {
    const r = classifyFailure({ lines: ["x", "\x1b[1;31mModuleNotFoundError: No module named 'timm'\x1b[0m"], exit_code: 1 });
    expect(r).toEqual({ cause: "missing_module", evidence: "ModuleNotFoundError: No module named 'timm'", ref: "rgt://references/training-failures#missing-module" });
  });

  it("a final exception outweighs earlier warnings and many progress lines", () => {
    const lines = [...Array.from({ length: 30 }, (_, i) => `step ${i} loss nan`), "UserWarning: CUDA out of memory earlier, retrying", ...TB("t.py"), "ModuleNotFoundError: No module named 'foo'"];
    expect(classifyLog(lines)?.cls).toBe("missing_module");
  });

  it("reads a progress bar's last frame and strips ANSI", () => {
    expect(cleanLine("\x1b[32m 10%|#   | 1/10\r 90%|######### | 9/10\x1b[0m\r")).toBe(" 90%|######### | 9/10");
  });

  it("every class has a remedy; none but the transient ones says retry", () => {
    const transient = new Set<FailureClass>(["reboot", "preempted", "hangup", "nccl", "no_capacity"]);
    for (const c of FAILURE_CLASSES) {
      const r = remedyFor(c, { cells: ["a"], relaunch: "launch_queue again" });
      expect(r.length).toBeGreaterThan(20);
      if (!transient.has(c)) expect(r).not.toMatch(/retr(?:y|ied)/i);
    }
  });

  it("spot refused for the account is told apart from a dry market: enable it, not wait for capacity", () => {
    const acct = remedyFor("spot_not_enabled", { cells: ["a"], relaunch: "launch_queue again" });
    expect(acct).toMatch(/not a dry market/);
    expect(acct).toMatch(/enable it or ask for quota/);
    expect(acct).not.toMatch(/retry|later/i);
    expect(remedyFor("no_capacity", { cells: ["a"], relaunch: "x" })).toMatch(/retry later.*check spot\/interruptible is enabled/);
    expect(refFor("spot_not_enabled")).toBe("rgt://references/training-failures#spot-not-enabled");
  });

  it("provisioningRefusal reads a command's output: the account setting, the market, or nothing", () => {
    expect(provisioningRefusal("creating pod...\nError: interruptible instances are not enabled for this account\n")).toEqual({ cause: "spot_not_enabled", line: "Error: interruptible instances are not enabled for this account" });
    expect(provisioningRefusal("An error occurred (InsufficientInstanceCapacity) when calling the RunInstances operation")?.cause).toBe("no_capacity");
    expect(provisioningRefusal("ModuleNotFoundError: No module named 'runpod'")).toBeUndefined();
    expect(provisioningRefusal("all good")).toBeUndefined();
  });

  it("the OOM ladder climbs from what the cell already does", () => {
    expect(oomRung("python train.py --batch_size 64")).toMatch(/64 -> 32.*accumulation/);
    expect(oomRung("python train.py --per_device_train_batch_size=8 --gradient_accumulation_steps 2")).toMatch(/8 -> 4.*double the accumulation/);
    expect(oomRung("python train.py")).toMatch(/bf16/);
    expect(oomRung("python train.py --bf16")).toMatch(/activation/);
    expect(oomRung("python train.py --bf16 --gradient_checkpointing")).toMatch(/FSDP|ZeRO/);
  });
});

describe("references/training-failures.md", () => {
  it("has a section for every class, stays under 25 KB, and the skill hub names it", async () => {
    const fs = await import("node:fs");
    const path = await import("node:path");
    const root = path.resolve(__dirname, "..", "..");
    const doc = fs.readFileSync(path.join(root, "references", "training-failures.md"), "utf8");
    expect(Buffer.byteLength(doc)).toBeLessThanOrEqual(25 * 1024);
    for (const c of FAILURE_CLASSES) {
      const anchor = refFor(c).split("#")[1];
      expect(doc, c).toContain(`<a id="${anchor}"></a>`);
    }
    expect(fs.readFileSync(path.join(root, "skill", "SKILL.md"), "utf8")).toContain("rgt://references/training-failures");
  });
});

describe("traceback shapes", () => {
  it("a `python -c` traceback has no source echo: the exception line right after File … is read", () => {
    expect(classifyLog(["Traceback (most recent call last):", '  File "<string>", line 1, in <module>', "ModuleNotFoundError: No module named 'x'"])?.cls).toBe("missing_module");
  });
  it("a source echo under File … is code, not a message", () => {
    expect(classifyLog(["Traceback (most recent call last):", '  File "t.py", line 3, in <module>', "    raise RuntimeError('CUDA out of memory')", "SyntaxError: bad"])).toBeUndefined();
  });
});
