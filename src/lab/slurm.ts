/**
 * A throwaway single-node Slurm for the test suite, the demo and the bench.
 *
 * Everything lives in one temp directory: a private munge key and socket (the system's
 * /etc/munge and /run/munge are never touched), the slurm.conf, state, spool, pid files and logs.
 * The daemons daemonise with pid files; `stop()` cancels this cluster's jobs, kills exactly
 * those pids and removes the directory.
 *
 * By default the cluster runs in this process's mount namespace and clients find it through
 * `SLURM_CONF` (see `env`). Pass `exec` (e.g. a lab box's `exec`) to run all of it inside another
 * mount namespace instead — the box's own /root, /tmp view — so jobs see the same files the box's
 * ssh sessions see; with `installConf` the config is also written to the box's /etc/slurm/slurm.conf
 * (refused when that namespace is ours, so the real /etc is never written).
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import { randomBytes } from "node:crypto";
import { shq } from "../common/text.js";

export interface ShellResult { code: number; stdout: string; stderr: string }

/** Runs one bash script text and reports its exit status and output. */
export type ShellRunner = (script: string, timeoutMs: number) => Promise<ShellResult>;

export interface SlurmOptions {
  /**
   * Run inside another mount namespace: a function that runs a shell command there as root
   * (e.g. `(cmd, t) => box.exec(cmd, { timeoutMs: t })`). Its result may be any object with
   * code/exitCode + stdout/stderr.
   */
  exec?: (cmd: string, timeoutMs: number) => Promise<unknown>;
  /** also write the config to /etc/slurm/slurm.conf (only allowed inside a namespace other than ours) */
  installConf?: boolean;
  /** CPUs the node advertises (slurmd is told to trust the config); default 8 */
  cpus?: number;
  /** how long to wait for the node to turn idle; default 30 s */
  startTimeoutMs?: number;
  /** extra slurm.conf lines (appended) */
  extraConf?: string[];
}

export interface SlurmCluster {
  /** path of slurm.conf (inside the namespace it runs in) */
  conf: string;
  /** the temp directory holding everything */
  dir: string;
  node: string;
  partition: string;
  ports: { ctld: number; slurmd: number };
  /** environment for client commands in the cluster's namespace */
  env: { SLURM_CONF: string };
  /** run a shell command line with SLURM_CONF set, in the cluster's namespace */
  run(cmd: string, timeoutMs?: number): Promise<ShellResult>;
  /** the tails of the daemons' logs (for failure messages) */
  logs(): Promise<string>;
  stop(): Promise<void>;
}

const BINARIES = ["munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo"];

function localRunner(): ShellRunner {
  return (script, timeoutMs) =>
    new Promise((resolve) => {
      const child = spawn("bash", ["-c", script], { stdio: ["ignore", "pipe", "pipe"], detached: true });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
      child.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
      const t = setTimeout(() => {
        try { process.kill(-child.pid!, "SIGKILL"); } catch { /* gone */ }
      }, timeoutMs);
      child.on("close", (code, sig) => {
        clearTimeout(t);
        resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr: sig ? `${stderr}\n[killed: ${sig} after ${timeoutMs} ms]` : stderr });
      });
    });
}

function adaptExec(exec: (cmd: string, timeoutMs: number) => Promise<unknown>): ShellRunner {
  return async (script, timeoutMs) => {
    // bound the script inside the namespace too, so a stuck step cannot hang the suite
    const secs = Math.max(1, Math.ceil(timeoutMs / 1000));
    const wrapped = `timeout -k 2 ${secs} bash -c ${shq(script)}`;
    const r = (await exec(wrapped, timeoutMs + 5_000)) as Record<string, unknown> | string | undefined;
    if (typeof r === "string") return { code: 0, stdout: r, stderr: "" };
    const o = r ?? {};
    const code = (o.code ?? o.exitCode ?? o.status ?? 0) as number | null;
    return { code: code ?? 1, stdout: String(o.stdout ?? ""), stderr: String(o.stderr ?? "") };
  };
}

export { shq };

async function freePort(avoid: number[]): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once("error", reject);
      srv.listen(0, "127.0.0.1", () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    if (!avoid.includes(port)) return port;
  }
  throw new Error("startSlurm: no free TCP port found");
}

export function slurmConfText(o: {
  dir: string; node: string; ctldPort: number; slurmdPort: number; cpus: number; realMemoryMiB: number; extra?: string[];
}): string {
  const d = o.dir;
  return [
    "# single-node Slurm written by remote-gpu-trainer's lab harness (src/lab/slurm.ts)",
    "ClusterName=rgtlab",
    `SlurmctldHost=${o.node}(127.0.0.1)`,
    "SlurmUser=root",
    "SlurmdUser=root",
    `SlurmctldPort=${o.ctldPort}`,
    `SlurmdPort=${o.slurmdPort}`,
    "AuthType=auth/munge",
    "CredType=cred/munge",
    `AuthInfo=socket=${d}/munge/munge.sock`,
    `StateSaveLocation=${d}/state`,
    `SlurmdSpoolDir=${d}/spool`,
    `SlurmctldPidFile=${d}/run/slurmctld.pid`,
    `SlurmdPidFile=${d}/run/slurmd.pid`,
    `SlurmctldLogFile=${d}/log/slurmctld.log`,
    `SlurmdLogFile=${d}/log/slurmd.log`,
    "ProctrackType=proctrack/linuxproc",
    "TaskPlugin=task/none",
    "SelectType=select/cons_tres",
    "SelectTypeParameters=CR_Core",
    "SchedulerType=sched/backfill",
    "SchedulerParameters=sched_interval=2",
    "SlurmdParameters=config_overrides",
    "MpiDefault=none",
    "SwitchType=switch/none",
    "ReturnToService=2",
    "AccountingStorageType=accounting_storage/none",
    "JobAcctGatherType=jobacct_gather/none",
    "JobCompType=jobcomp/none",
    "MaxArraySize=1001",
    "MinJobAge=600",
    "KillWait=5",
    "InactiveLimit=0",
    "OverTimeLimit=0",
    `NodeName=${o.node} NodeAddr=127.0.0.1 CPUs=${o.cpus} RealMemory=${o.realMemoryMiB} State=UNKNOWN`,
    `PartitionName=debug Nodes=${o.node} Default=YES MaxTime=INFINITE State=UP`,
    ...(o.extra ?? []),
    "",
  ].join("\n");
}

/** Start munged + slurmctld + slurmd; resolves once `sinfo` shows the node idle. Throws (never skips) otherwise. */
export async function startSlurm(opts: SlurmOptions = {}): Promise<SlurmCluster> {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) {
    throw new Error("startSlurm: must run as root (slurmd and munged are started as root); run the suite as root");
  }
  const runner = opts.exec ? adaptExec(opts.exec) : localRunner();

  const check = await runner(
    `for b in ${BINARIES.join(" ")}; do command -v "$b" >/dev/null 2>&1 || echo "missing:$b"; done; hostname -s; readlink /proc/self/ns/mnt`,
    15_000,
  );
  const lines = check.stdout.trim().split("\n");
  const missing = lines.filter((l) => l.startsWith("missing:")).map((l) => l.slice(8));
  if (check.code !== 0 || missing.length) {
    throw new Error(`startSlurm: Slurm/munge binaries missing (${missing.join(", ") || check.stderr.trim()}); install slurm-wlm and munge (apt-get install slurm-wlm munge)`);
  }
  const [node, theirNs] = lines.filter((l) => !l.startsWith("missing:"));
  if (!node) throw new Error(`startSlurm: could not read the hostname: ${check.stderr}`);
  if (opts.installConf) {
    const ourNs = fs.readlinkSync("/proc/self/ns/mnt");
    if (!opts.exec || theirNs === ourNs) {
      throw new Error("startSlurm: installConf writes /etc/slurm/slurm.conf and is only allowed inside a private mount namespace (a lab box)");
    }
  }

  const dir = `/tmp/rgt-slurm-${randomBytes(5).toString("hex")}`;
  const conf = `${dir}/slurm.conf`;
  const ctld = await freePort([]);
  const slurmdPort = await freePort([ctld]);
  const realMemoryMiB = Math.max(512, Math.floor(os.totalmem() / 1048576 / 2));
  const confText = slurmConfText({ dir, node, ctldPort: ctld, slurmdPort, cpus: opts.cpus ?? 8, realMemoryMiB, extra: opts.extraConf });
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  const waitSecs = Math.ceil(startTimeoutMs / 1000);

  const start = `set -u
D=${shq(dir)}
export SLURM_CONF="$D/slurm.conf"
mkdir -m 755 "$D" && mkdir -m 700 "$D/key" && mkdir -m 755 "$D/munge" "$D/state" "$D/spool" "$D/run" "$D/log" || exit 3
dd if=/dev/urandom of="$D/key/munge.key" bs=1024 count=1 status=none && chmod 400 "$D/key/munge.key" || exit 3
cat > "$SLURM_CONF" <<'RGT_CONF_EOF'
${confText}RGT_CONF_EOF
${opts.installConf ? `mkdir -p /etc/slurm && cp "$SLURM_CONF" /etc/slurm/slurm.conf || exit 3` : ""}
fail() { echo "startSlurm: $1" >&2; for f in "$D"/log/*.log; do echo "== $f" >&2; tail -n 25 "$f" >&2; done; exit 1; }
munged --force --socket="$D/munge/munge.sock" --key-file="$D/key/munge.key" --pid-file="$D/run/munged.pid" \\
  --log-file="$D/log/munged.log" --seed-file="$D/key/munged.seed" || fail "munged did not start"
for i in $(seq 50); do [ -S "$D/munge/munge.sock" ] && break; sleep 0.1; done
munge -S "$D/munge/munge.sock" -n </dev/null | unmunge -S "$D/munge/munge.sock" >/dev/null || fail "munge round trip failed"
slurmctld -f "$SLURM_CONF" </dev/null || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" </dev/null || fail "slurmd did not start"
end=$(( $(date +%s) + ${waitSecs} ))
state=""
while [ "$(date +%s)" -lt "$end" ]; do
  state=$(sinfo -h -N -n ${shq(node)} -o '%T' 2>/dev/null | head -n1)
  case "$state" in idle|idle*) echo "ready:$state"; exit 0;; esac
  sleep 0.3
done
fail "node ${node} not idle after ${waitSecs}s (state: \${state:-none})"
`;
  const res = await runner(start, startTimeoutMs + 20_000);

  const run = (cmd: string, timeoutMs = 30_000): Promise<ShellResult> =>
    runner(`export SLURM_CONF=${shq(conf)}; ${cmd}`, timeoutMs);

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // cancel this cluster's own jobs (the cluster is ours alone), then end exactly our daemons by pid file
    const script = `set -u
D=${shq(dir)}
export SLURM_CONF="$D/slurm.conf"
if [ -f "$D/run/slurmctld.pid" ]; then
  scancel --full -u root >/dev/null 2>&1
  for i in $(seq 30); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.3; done
fi
for p in slurmd slurmctld munged; do
  f="$D/run/$p.pid"; [ -f "$f" ] || continue
  pid=$(cat "$f"); [ -n "$pid" ] || continue
  kill "$pid" 2>/dev/null
  for i in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
done
${opts.installConf ? `cmp -s "$D/slurm.conf" /etc/slurm/slurm.conf && rm -f /etc/slurm/slurm.conf` : ""}
rm -rf "$D"
exit 0
`;
    await runner(script, 30_000);
  };

  const logs = async (): Promise<string> => {
    const r = await runner(`for f in ${shq(dir)}/log/*.log; do echo "== $f"; tail -n 40 "$f"; done`, 10_000);
    return r.stdout + r.stderr;
  };

  if (res.code !== 0 || !res.stdout.includes("ready:")) {
    const msg = `startSlurm failed (exit ${res.code}): ${(res.stderr || res.stdout).trim().slice(-4000)}`;
    await stop().catch(() => {});
    throw new Error(msg);
  }

  return {
    conf,
    dir,
    node,
    partition: "debug",
    ports: { ctld, slurmd: slurmdPort },
    env: { SLURM_CONF: conf },
    run,
    logs,
    stop,
  };
}
