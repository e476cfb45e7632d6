/**
 * The test lab: fake rented GPU boxes that are real OpenSSH servers on loopback.
 *
 * How one box is built (all of it needs root):
 *  - `unshare --mount --uts --pid --fork --propagation private` starts a small holder process (pid 1 of
 *    the box, so `ps` on a box lists only that box's processes) in fresh mount and hostname namespaces. Inside it, an overlay filesystem whose lower
 * layer is the real `/` and
 *    whose upper layer is a tmpfs becomes the box's root (`<box.dir>/rootfs`, a mount point only inside
 *    that namespace). Whatever the box writes outside its bind mounts lands in the tmpfs and vanishes
 *    with the box; the real `/`, `/root` and `/etc` are never written.
 *  - On top of that root: `/proc`, `/sys`, `/dev` from the host, a fresh tmpfs on `/tmp` and on `/root`
 *    (the box's HOME), the lab's own temp directory bind-mounted at the same path (so `box.dir` is
 *    shared both ways), the profile's markers (AutoDL: `/root/autodl-tmp`, an inode-starved
 *    `/root/autodl-fs`, `/etc/network_turbo`; vast.ai: `/workspace` and `VAST_CONTAINERLABEL`), any
 *    extra tmpfs mounts asked for (size / inode caps, pre-filled), and programs hidden with overlay
 *    whiteouts (`without`), so `command -v rsync` fails on that box only.
 *  - `sshd -D` runs chrooted into that root, on 127.0.0.1:<ephemeral port>, with the box's own host
 *    key, the lab's authorized key, and `SetEnv PATH=<box.dir>/bin:…` so the stub `nvidia-smi` (and a
 *    `python3` pointing at Debian's `/usr/bin/python3`) come first.
 *
 * A test puts a file on a box with `box.writeFile(path, text)` or `box.exec("…")` (both run inside the
 * box's namespace as root); a file dropped under `box.dir` from outside is visible in the box at the
 * same absolute path. `lab.stop()` (also run from a process 'exit' handler, and by each holder when the
 * process that started it dies) kills every process inside each box's namespace, which releases all
 * of its mounts, then removes the lab's temp directory.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { packageRoot } from "../common/config.js";
import { stubNvidiaSmi } from "./nvidia-smi.js";
import { startCutProxy, type CutProxy } from "./proxy.js";
import { startFakePort, type FakePort, type FakePortSpec } from "./ports.js";
import { shq } from "../common/text.js";

export { stubNvidiaSmi } from "./nvidia-smi.js";
export type { GpuStubSpec } from "./nvidia-smi.js";

export interface MountSpec {
  /** absolute path on the box */
  path: string;
  /** tmpfs size: bytes or a tmpfs size string ("64m", "2g"); default "1g" */
  size?: number | string;
  /** tmpfs nr_inodes cap */
  inodes?: number;
  /** fill this share of the inodes with empty files right after mounting (0–100) */
  fillInodesPct?: number;
  /** fill this share of the bytes with one preallocated file (0–100; 100 = disk full) */
  fillBytesPct?: number;
}

export interface BoxSpec {
  /** ssh alias (Host block name); letters, digits, . _ - */
  name: string;
  /** number of stub GPUs; 0 = no nvidia-smi at all. Default 1. */
  gpus?: number;
  /** GPUs that report memory used and a compute app */
  busyGpus?: number[];
  /** GPU product name for the stub (default "NVIDIA A100-SXM4-80GB") */
  gpuModel?: string;
  /** per-GPU memory in MiB (default 81920) */
  gpuMemoryMiB?: number;
  /** platform look-alike; any profiles/<name>.md with a `detect` block works too. Default "generic". */
  profile?: "autodl" | "vastai" | "generic" | (string & {});
  /** extra tmpfs mounts (a spec for a path a profile also mounts replaces the profile's) */
  mounts?: MountSpec[];
  /** programs that must not exist on the box */
  without?: ("rsync" | "tmux" | "python3" | (string & {}))[];
  /** Debian's torch importable from python3 (default true); false hides it */
  torch?: boolean;
  /** box hostname (default: one that looks like the platform's) */
  hostname?: string;
  /** extra environment variables every ssh session on the box gets */
  env?: Record<string, string>;
  /** host paths bind-mounted into the box at the same path (shared read-write), e.g. a munge socket dir */
  share?: string[];
  /** size of the box's /root tmpfs (default "4g"; tmpfs takes memory only as it is used) */
  rootSize?: string;
}

export interface ExecOpts {
  stdin?: string | Buffer;
  timeoutMs?: number;
  env?: Record<string, string>;
}

export interface ExecOutput { code: number; stdout: string; stderr: string }

export interface Box {
  readonly name: string;
  /** the sshd port on 127.0.0.1 */
  readonly port: number;
  /** the box's directory on the real filesystem (also visible inside the box at the same path) */
  readonly dir: string;
  readonly hostname: string;
  readonly profile: string;
  readonly gpus: number;
  /** PATH every ssh session on the box starts with */
  readonly path: string;
  /** pid of the process holding the box's namespace */
  readonly holderPid: number;
  /** pid of the listening sshd (changes on restart) */
  readonly sshdPid: number;
  /** run a bash command line inside the box as root (HOME=/root, the box's PATH) */
  exec(cmd: string, opts?: ExecOpts): Promise<ExecOutput>;
  /** write a file on the box (parent directories created) */
  writeFile(boxPath: string, content: string | Buffer, mode?: number): Promise<void>;
  readFile(boxPath: string): Promise<string>;
  /** change which GPUs the stub reports busy: indices, or {index, pid, usedMiB} */
  setBusyGpus(busy: (number | { index: number; pid?: number; usedMiB?: number })[]): void;
  /** argv lines of every nvidia-smi call made on this box so far */
  nvidiaSmiCalls(): string[];
  /** the box's current host public key ("ssh-ed25519 AAAA…") */
  hostKey(): string;
  /** new host key, sshd restarted on the same port (the old known_hosts entry now mismatches) */
  rotateHostKey(): Promise<void>;
  /** stop only the listening sshd (the box looks down; sessions already open keep going) */
  stopSshd(): Promise<void>;
  /** start sshd again on the same port */
  startSshd(): Promise<void>;
  /**
   * SIGSTOP every sshd process of the box — the listener and each connection's own sshd — so the box hangs
   * as a frozen host does: TCP still connects (the kernel accepts), nothing answers. Returns the pids stopped.
   */
  freezeSshd(): number[];
  /** SIGCONT what freezeSshd stopped (and any sshd of the box still stopped) */
  thawSshd(): number[];
  /**
   * a "reboot": every process on the box dies (tmux servers, nohup'd jobs, open sessions), then sshd
   * comes back on the same port with the same host key; files survive (like a restart of a rental)
   */
  reboot(): Promise<void>;
  /** the sshd log text */
  sshdLog(): string;
  /** pids of every process inside the box's namespace (holder included) */
  pids(): number[];
  /** kill sshd and everything in the box; its mounts go with the namespace */
  stop(): Promise<void>;
  readonly stopped: boolean;
}

export interface LabOptions {
  /** write the boxes' host keys to known_hosts (default true); false leaves it empty */
  trustHostKeys?: boolean;
  /** write hashed `|1|salt|hash` known_hosts entries (default false) */
  hashKnownHosts?: boolean;
  /** StrictHostKeyChecking in the lab ssh config (default "yes") */
  strictHostKeyChecking?: "yes" | "accept-new" | "no";
  /**
   * also create a passphrase-protected key (true → passphrase "lab-passphrase", or the given string),
   * authorized on every box, and a `Host <name>-locked` alias per box that offers only that key
   */
  encryptedKey?: boolean | string;
  /** max time for one box to come up (default 15 s) */
  startTimeoutMs?: number;
}

export interface Lab {
  /** the lab's temp directory */
  readonly root: string;
  readonly sshConfig: string;
  readonly knownHosts: string;
  /** unencrypted ed25519 private key authorized on every box */
  readonly identity: string;
  /** passphrase-protected key (only with opts.encryptedKey) */
  readonly encryptedIdentity?: string;
  readonly encryptedPassphrase?: string;
  /** a directory on the server's PATH (first) for provider-CLI stubs */
  readonly localBin: string;
  /** environment for the server process: RGT_SSH_CONFIG, RGT_HOME (fresh), HOME (fresh), PATH */
  readonly env: Record<string, string>;
  readonly boxes: Record<string, Box>;
  addBox(spec: BoxSpec): Promise<Box>;
  /** rewrite known_hosts with the box's current key (after rotateHostKey, to test the remedy) */
  retrust(name: string): void;
  /** drop a box's known_hosts entry (next connect is an unknown host) */
  untrust(name: string): void;
  /**
   * a cut-after-N-bytes proxy in front of a box, reachable as ssh alias `alias` (default `<name>-cut`)
   * with the box's host key trusted for the proxy's port
   */
  cutProxy(name: string, opts: { cutAfterBytes: number; maxCuts?: number; alias?: string; delayMs?: number }): Promise<CutProxy & { alias: string }>;
  /**
   * a port on 127.0.0.1 that is not sshd (src/lab/ports.ts: closed, silent, banner, reply, hangup), reachable
   * as ssh alias `alias` with ConnectTimeout 3; closed with the lab (or earlier by the caller)
   */
  fakePort(alias: string, spec: FakePortSpec): Promise<FakePort & { alias: string }>;
  /** an ssh alias for `target` (a box name, or an alias this lab wrote) reached with `ProxyJump via` */
  jumpAlias(alias: string, via: string, target: string): void;
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";


function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function preflight(): void {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) {
    throw new Error("lab: startLab needs root (it mounts filesystems in private namespaces and runs sshd); run the suite as root");
  }
  for (const bin of ["/usr/sbin/sshd", "/usr/bin/ssh-keygen", "/usr/bin/unshare", "/usr/bin/nsenter", "/usr/sbin/chroot"]) {
    if (!fs.existsSync(bin)) {
      throw new Error(`lab: ${bin} is missing (install openssh-server, openssh-client, util-linux, coreutils: test/install-deps.sh)`);
    }
  }
}

function keygen(file: string, comment: string, passphrase = ""): void {
  const r = spawnSync("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", file], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`lab: ssh-keygen failed for ${file}: ${r.stderr}`);
}

function pubKeyOf(file: string): string {
  return fs.readFileSync(`${file}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves true when something on 127.0.0.1:port answers with an SSH banner. */
function sshBanner(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    let buf = "";
    const done = (ok: boolean) => { clearTimeout(t); sock.destroy(); resolve(ok); };
    const t = setTimeout(() => done(false), timeoutMs);
    sock.on("data", (d) => { buf += d.toString("latin1"); if (buf.includes("\n")) done(buf.startsWith("SSH-2.0-")); });
    sock.on("error", () => done(false));
    sock.on("close", () => done(buf.startsWith("SSH-2.0-")));
  });
}

function mntNs(pid: number): string | undefined {
  try { return fs.readlinkSync(`/proc/${pid}/ns/mnt`); } catch { return undefined; }
}

function pidNs(pid: number): string | undefined {
  try { return fs.readlinkSync(`/proc/${pid}/ns/pid`); } catch { return undefined; }
}

/**
 * Processes inside one box = members of its pid namespace. Only asked while the box's init (pid 1 in
 * there) is alive, so the namespace cannot have been freed and its inode number reused by another.
 */
function pidsInNs(ns: string, holder: number): number[] {
  if (!ns || !holder || !alive(holder) || pidNs(holder) !== ns) return [];
  const out: number[] = [];
  let entries: string[] = [];
  try { entries = fs.readdirSync("/proc"); } catch { return out; }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    if (pidNs(pid) === ns) out.push(pid);
  }
  return out;
}

/** direct children of a process (scan of /proc/<pid>/stat ppid fields) */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  let entries: string[] = [];
  try { entries = fs.readdirSync("/proc"); } catch { return out; }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = fs.readFileSync(`/proc/${e}/stat`, "utf8");
      const rest = st.slice(st.lastIndexOf(")") + 2).split(" ");
      if (Number(rest[1]) === ppid) out.push(Number(e));
    } catch { /* gone */ }
  }
  return out;
}

function killTree(pid: number): void {
  for (const c of childrenOf(pid)) killTree(c);
  try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); } catch { return false; }
  // a zombie still answers kill(0); treat it as gone
  try { return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8")); } catch { return false; }
}

function tmpfsSize(s: number | string | undefined, dflt: string): string {
  if (s === undefined) return dflt;
  if (typeof s === "number") return String(Math.max(4096, Math.floor(s)));
  if (!/^\d+[kmgKMG%]?$/.test(s)) throw new Error(`lab: bad tmpfs size ${JSON.stringify(s)} (use bytes or e.g. "64m")`);
  return s;
}

// ----- profile markers -------------------------------------------------------------------------

interface Markers {
  dirs: string[];
  files: { path: string; content: string }[];
  env: Record<string, string>;
  mounts: MountSpec[];
  commands: string[];
  hostname: string;
}

function randHex(n: number): string {
  return randomBytes(Math.ceil(n / 2)).toString("hex").slice(0, n);
}

function builtinMarkers(profile: string): Markers {
  const m: Markers = { dirs: [], files: [], env: {}, mounts: [], commands: [], hostname: "" };
  if (profile === "autodl") {
    m.hostname = `autodl-container-${randHex(10)}-${randHex(8)}`;
    m.mounts.push({ path: "/root/autodl-tmp", size: "8g" });
    // the shared file storage: plenty of bytes, almost no inodes left (the inode-cap trap)
    m.mounts.push({ path: "/root/autodl-fs", size: "2g", inodes: 2000, fillInodesPct: 96 });
    m.files.push({
      path: "/etc/network_turbo",
      content:
        "# test-lab stand-in for AutoDL's academic network accelerator: source it to route HTTP through the platform proxy\n" +
        "export http_proxy=http://127.0.0.1:1 && export https_proxy=http://127.0.0.1:1\n" +
        "export RGT_LAB_NETWORK_TURBO=1\n",
    });
  } else if (profile === "vastai") {
    m.hostname = randHex(12);
    m.dirs.push("/workspace");
    m.env.VAST_CONTAINERLABEL = `C.${10000000 + (randomBytes(3).readUIntBE(0, 3) % 9000000)}`;
  }
  return m;
}

function looksLikeFile(p: string): boolean {
  return p.startsWith("/etc/") || /\.[A-Za-z0-9]{1,5}$/.test(path.basename(p));
}

/** Hostname synthesised for a hostname_regex marker: its literal prefix plus hex, kept only if it matches. */
function hostnameFor(re: string, current: string): string {
  let rx: RegExp;
  try { rx = new RegExp(re); } catch { return current; }
  if (current && rx.test(current)) return current;
  const lit = re.replace(/^\^/, "").match(/^(?:[A-Za-z0-9_-]|\\[.-])*/)?.[0]?.replace(/\\/g, "") ?? "";
  for (const cand of [`${lit}${randHex(8)}`, `${lit}1`, lit]) if (cand && rx.test(cand)) return cand.slice(0, 63);
  return current;
}

/** Read profiles/<name>.md frontmatter (if present) and add its detect markers and data/durable mounts. */
function profileMarkers(profile: string, into: Markers): void {
  const file = path.join(packageRoot(), "profiles", `${profile}.md`);
  let text: string;
  try { text = fs.readFileSync(file, "utf8"); } catch { return; }
  const fm = text.match(/^---\r?\n([\s\S]*?)\r?\n---/);
  if (!fm) return;
  let data: any;
  try { data = parseYaml(fm[1]); } catch { return; }
  if (!data || typeof data !== "object") return;
  const haveMount = (p: string) => into.mounts.some((m) => m.path === p);
  const mountPaths = new Set<string>();
  for (const mt of Array.isArray(data.mounts) ? data.mounts : []) {
    if (!mt || typeof mt.path !== "string" || !mt.path.startsWith("/") || mt.path === "/") continue;
    if (mt.role !== "data" && mt.role !== "durable") continue;
    mountPaths.add(mt.path);
    if (!haveMount(mt.path) && !into.dirs.includes(mt.path)) into.dirs.push(mt.path);
  }
  const det = data.detect && typeof data.detect === "object" ? data.detect : {};
  const markers = [...(Array.isArray(det.any) ? det.any : []), ...(Array.isArray(det.all) ? det.all : [])];
  for (const mk of markers) {
    if (!mk || typeof mk !== "object") continue;
    if (typeof mk.path === "string" && mk.path.startsWith("/") && mk.path !== "/") {
      const p = mk.path.replace(/\/+$/, "");
      if (haveMount(p) || into.dirs.includes(p) || into.files.some((f) => f.path === p)) continue;
      if (!mountPaths.has(p) && looksLikeFile(p)) into.files.push({ path: p, content: `# test-lab marker for the ${profile} profile\n` });
      else into.dirs.push(p);
    }
    if (typeof mk.env === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(mk.env) && !(mk.env in into.env)) into.env[mk.env] = "lab";
    if (typeof mk.command === "string" && /^[A-Za-z0-9._-]+$/.test(mk.command) && !into.commands.includes(mk.command)) into.commands.push(mk.command);
    if (typeof mk.hostname_regex === "string") into.hostname = hostnameFor(mk.hostname_regex, into.hostname);
  }
}

// ----- the lab ---------------------------------------------------------------------------------

const liveLabs = new Set<LabImpl>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const lab of liveLabs) lab.stopSync();
  });
}

class BoxImpl implements Box {
  port = 0;
  hostname: string;
  profile: string;
  gpus: number;
  path: string;
  holderPid = 0;
  /** the unshare process (host side, parent of the holder) */
  unsharePid = 0;
  sshdPid = 0;
  stopped = false;
  ns = "";
  readonly rootfs: string;
  readonly hostKeyFile: string;
  readonly sshdConfig: string;
  readonly logFile: string;
  readonly stateFile: string;
  readonly smiLog: string;
  readonly sessionEnv: Record<string, string>;
  private sshd?: import("node:child_process").ChildProcess;

  constructor(readonly lab: LabImpl, readonly spec: BoxSpec, readonly dir: string) {
    this.profile = spec.profile ?? "generic";
    this.gpus = spec.gpus ?? 1;
    this.rootfs = path.join(dir, "rootfs");
    this.hostKeyFile = path.join(dir, "ssh_host_ed25519_key");
    this.sshdConfig = path.join(dir, "sshd_config");
    this.logFile = path.join(dir, "sshd.log");
    this.stateFile = path.join(dir, "gpu_state");
    this.smiLog = path.join(dir, "nvidia-smi.calls");
    this.path = `${path.join(dir, "bin")}:${STD_PATH}`;
    this.hostname = "";
    this.sessionEnv = {};
  }

  get name(): string { return this.spec.name; }

  /** Build the box's files and start its namespace + sshd. */
  async start(): Promise<void> {
    const spec = this.spec;
    const dir = this.dir;
    fs.mkdirSync(path.join(dir, "bin"), { recursive: true });
    fs.mkdirSync(this.rootfs, { recursive: true });
    fs.mkdirSync(path.join(dir, "upper"), { recursive: true });

    const markers = builtinMarkers(this.profile);
    if (this.profile !== "generic") profileMarkers(this.profile, markers);
    // explicit mounts replace the profile's for the same path
    const mounts: MountSpec[] = [...markers.mounts.filter((m) => !(spec.mounts ?? []).some((s) => s.path === m.path)), ...(spec.mounts ?? [])];
    for (const m of mounts) {
      if (!m.path.startsWith("/") || m.path === "/" || m.path.includes("..") || /[\n'"]/.test(m.path)) {
        throw new Error(`lab: box ${spec.name}: mount path must be absolute and plain, got ${JSON.stringify(m.path)}`);
      }
    }
    this.hostname = spec.hostname ?? (markers.hostname || spec.name.replace(/[^A-Za-z0-9-]/g, "-"));
    Object.assign(this.sessionEnv, markers.env, spec.env ?? {});

    // host key, authorized keys, stub programs
    keygen(this.hostKeyFile, `lab-host-${spec.name}`);
    fs.writeFileSync(path.join(dir, "authorized_keys"), this.lab.authorizedKeys(), { mode: 0o600 });
    const without = new Set(spec.without ?? []);
    if (this.gpus > 0) {
      fs.writeFileSync(path.join(dir, "bin", "nvidia-smi"), stubNvidiaSmi({
        gpus: this.gpus, busyGpus: spec.busyGpus, model: spec.gpuModel, memoryMiB: spec.gpuMemoryMiB,
        seed: spec.name, stateFile: this.stateFile, logFile: this.smiLog,
      }), { mode: 0o755 });
    }
    if (!without.has("python3")) {
      fs.symlinkSync("/usr/bin/python3", path.join(dir, "bin", "python3"));
      if (!without.has("python")) fs.symlinkSync("/usr/bin/python3", path.join(dir, "bin", "python"));
    }
    for (const c of markers.commands) {
      const p = path.join(dir, "bin", c);
      if (!fs.existsSync(p)) fs.writeFileSync(p, `#!/bin/bash\n# test-lab marker command for the ${this.profile} profile\necho "$0 $*" >> ${shq(path.join(dir, "marker-commands.calls"))}\n`, { mode: 0o755 });
    }

    fs.writeFileSync(path.join(dir, "init.sh"), this.initScript(markers, mounts, without), { mode: 0o700 });
    await this.startHolder();
    this.writeSshdConfig();
    await this.startSshd(true);
  }

  /** whiteouts (char device 0:0 in the overlay's upper layer) that make paths vanish on the box */
  private whiteouts(without: Set<string>): string[] {
    const out: string[] = [];
    const dirs = ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/bin", "/sbin"];
    const progs = new Set<string>();
    for (const w of without) {
      if (!/^[A-Za-z0-9._+-]+$/.test(w)) throw new Error(`lab: box ${this.spec.name}: bad program name in without: ${JSON.stringify(w)}`);
      progs.add(w);
      if (w === "python3") {
        progs.add("python");
        for (const d of dirs) {
          try { for (const f of fs.readdirSync(d)) if (/^python3(\.\d+)?$/.test(f)) progs.add(f); } catch { /* absent */ }
        }
      }
    }
    for (const d of dirs) {
      let st: fs.Stats;
      try { st = fs.lstatSync(d); } catch { continue; }
      if (st.isSymbolicLink()) continue; // merged /usr: /bin -> usr/bin is covered there
      for (const p of progs) if (fs.existsSync(path.join(d, p)) || fs.lstatSync(path.join(d, p), { throwIfNoEntry: false })) out.push(path.join(d, p));
    }
    if (this.spec.torch === false) {
      const dp = "/usr/lib/python3/dist-packages";
      try { for (const f of fs.readdirSync(dp)) if (/^(torch|functorch|torchgen)([-.].*)?$/.test(f)) out.push(path.join(dp, f)); } catch { /* no torch */ }
    }
    return out;
  }

  private initScript(markers: Markers, mounts: MountSpec[], without: Set<string>): string {
    const R = this.rootfs;
    const U = path.join(this.dir, "upper");
    const labRoot = this.lab.root;
    const L: string[] = [];
    L.push("#!/bin/bash", "# builds one test-lab box inside a private mount namespace (run by unshare; never outside it)", "set -eu");
    L.push(`R=${shq(R)}; U=${shq(U)}`);
    L.push(`[ "$(readlink /proc/$$/ns/mnt)" != ${shq(this.lab.hostNs)} ] || { echo "refusing: not in a private mount namespace" >&2; exit 90; }`);
    L.push("mount --make-rprivate /");
    L.push(`mount -t tmpfs -o size=2g,mode=755 rgt-lab-upper "$U"`);
    L.push(`mkdir -p "$U/up" "$U/work"`);
    for (const w of this.whiteouts(without)) {
      L.push(`mkdir -p "$U/up"${shq(path.dirname(w))} && mknod "$U/up"${shq(w)} c 0 0`);
    }
    L.push(`mount -t overlay rgt-lab-root -o lowerdir=/,upperdir="$U/up",workdir="$U/work" "$R"`);
    // the box's own /proc shows only the box's processes (its pid namespace)
    L.push(`mount -t proc rgt-lab-proc "$R/proc"`);
    L.push(`for m in /sys /dev; do mount --rbind "$m" "$R$m"; done`);
    L.push(`mount -t tmpfs -o mode=1777,size=2g rgt-lab-tmp "$R/tmp"`);
    L.push(`mkdir -p "$R"${shq(labRoot)} && mount --bind ${shq(labRoot)} "$R"${shq(labRoot)}`);
    L.push(`mount -t tmpfs -o mode=700,size=${tmpfsSize(this.spec.rootSize, "4g")} rgt-lab-home "$R/root"`);
    for (const s of this.spec.share ?? []) {
      if (!s.startsWith("/") || /[\n'"]/.test(s)) throw new Error(`lab: box ${this.spec.name}: share path must be absolute: ${JSON.stringify(s)}`);
      L.push(`if [ -d ${shq(s)} ]; then mkdir -p "$R"${shq(s)}; else mkdir -p "$R"${shq(path.dirname(s))}; touch "$R"${shq(s)}; fi; mount --bind ${shq(s)} "$R"${shq(s)}`);
    }
    L.push(`mkdir -p "$R/run/sshd" && chmod 755 "$R/run/sshd"`);
    L.push(`hostname ${shq(this.hostname)}; echo ${shq(this.hostname)} > "$R/etc/hostname"`);
    // login shells reset PATH in /etc/profile; put the box's bin first again afterwards
    L.push(`mkdir -p "$R/etc/profile.d" && printf '%s\\n' ${shq(`PATH=${path.join(this.dir, "bin")}:$PATH; export PATH`)} > "$R/etc/profile.d/00-rgt-lab.sh"`);
    // a locked root password blocks key logins when PAM is off; unlock it in the box's /etc only
    L.push(`sed -i 's/^root:![^:]*:/root:*:/' "$R/etc/shadow" 2>/dev/null || true`);
    for (const d of markers.dirs) L.push(`mkdir -p "$R"${shq(d)}`);
    for (const f of markers.files) {
      L.push(`mkdir -p "$R"${shq(path.dirname(f.path))} && printf '%s' ${shq(f.content)} > "$R"${shq(f.path)}`);
    }
    for (const m of mounts) {
      const opts = [`size=${tmpfsSize(m.size, "1g")}`, "mode=755"];
      if (m.inodes !== undefined) opts.push(`nr_inodes=${Math.max(16, Math.floor(m.inodes))}`);
      const P = `"$R"${shq(m.path)}`;
      L.push(`mkdir -p ${P} && mount -t tmpfs -o ${opts.join(",")} rgt-lab-mnt ${P}`);
      if (m.fillInodesPct) {
        const pct = Math.min(100, Math.max(0, m.fillInodesPct));
        L.push(`set -- $(stat -f -c '%c %d' ${P}); want=$(( ($1 * ${pct} + 99) / 100 )); n=$(( want - ($1 - $2) - 1 ))`);
        L.push(`mkdir ${P}/.lab-inode-fill; if [ "$n" -gt 0 ]; then (cd ${P}/.lab-inode-fill && seq -f 'f%.0f' 1 "$n" | xargs touch 2>/dev/null) || true; fi`);
      }
      if (m.fillBytesPct) {
        const pct = Math.min(100, Math.max(0, m.fillBytesPct));
        L.push(`set -- $(stat -f -c '%b %a %S' ${P}); want=$(( $1 * $3 / 100 * ${pct} )); have=$(( ($1 - $2) * $3 )); n=$(( want - have ))`);
        L.push(`if [ "$n" -gt 0 ]; then fallocate -l "$n" ${P}/.lab-bytes-fill 2>/dev/null || head -c "$n" /dev/zero > ${P}/.lab-bytes-fill 2>/dev/null || true; fi`);
        if (pct >= 100) L.push(`head -c 1048576 /dev/zero >> ${P}/.lab-bytes-fill 2>/dev/null || true`);
      }
    }
    // /proc here is still the host's, so /proc/self names this process as the host sees it
    L.push(`read -r HOST_PID _ < /proc/self/stat`);
    L.push(`echo "READY $HOST_PID"`);
    // the pipes to node are closed after READY; never write to them again (SIGPIPE would end the box)
    L.push("exec </dev/null >/dev/null 2>&1");
    // this shell is pid 1 of the box: it holds the namespaces and reaps orphans; when it exits the
    // kernel kills everything in the box. It exits when the process that built the lab is gone.
    L.push(`OWNER=${process.pid}`);
    L.push(`trap 'exit 0' TERM`);
    L.push(`while [ -d /proc/$OWNER ]; do sleep 1 & wait $! || true; done`);
    L.push("exit 0");
    return L.join("\n") + "\n";
  }

  private startHolder(): Promise<void> {
    const timeoutMs = this.lab.opts.startTimeoutMs ?? 15000;
    return new Promise((resolve, reject) => {
      const child = spawn("/usr/bin/unshare", ["--mount", "--uts", "--pid", "--fork", "--propagation", "private", "/bin/bash", path.join(this.dir, "init.sh")], {
        stdio: ["ignore", "pipe", "pipe"], detached: true, env: { PATH: STD_PATH, LANG: "C" },
      });
      let out = "", err = "", settled = false;
      const finish = (e?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        child.stdout?.destroy();
        child.stderr?.destroy();
        child.unref();
        if (e) { killTree(child.pid!); reject(e); } else resolve();
      };
      const timer = setTimeout(() => finish(new Error(`lab: box ${this.name}: namespace setup timed out after ${timeoutMs} ms: ${err.trim()}`)), timeoutMs);
      child.stdout!.on("data", (d) => {
        out += d.toString();
        const m = out.match(/READY (\d+)\n/);
        if (m) {
          this.unsharePid = child.pid!;
          this.holderPid = Number(m[1]);
          const mns = mntNs(this.holderPid);
          const pns = pidNs(this.holderPid);
          if (!mns || mns === this.lab.hostNs || !pns || pns === pidNs(process.pid)) {
            finish(new Error(`lab: box ${this.name}: holder is not in private namespaces`));
            return;
          }
          this.ns = pns;
          finish();
        }
      });
      child.stderr!.on("data", (d) => { err += d.toString(); });
      child.on("error", (e) => finish(new Error(`lab: box ${this.name}: cannot start unshare: ${e.message}`)));
      child.on("exit", (code) => finish(new Error(`lab: box ${this.name}: namespace setup failed (exit ${code}): ${err.trim().slice(-2000)}`)));
    });
  }

  private writeSshdConfig(): void {
    const env = { PATH: this.path, ...this.sessionEnv };
    const setenv = Object.entries(env).map(([k, v]) => `${k}=${/[\s"]/.test(v) ? JSON.stringify(v) : v}`).join(" ");
    const cfg = [
      "# sshd for one remote-gpu-trainer test-lab box",
      `Port ${this.port}`,
      "ListenAddress 127.0.0.1",
      "AddressFamily inet",
      `HostKey ${this.hostKeyFile}`,
      "PidFile none",
      `AuthorizedKeysFile ${path.join(this.dir, "authorized_keys")}`,
      "PermitRootLogin prohibit-password",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "UseDNS no",
      "PrintMotd no",
      "PrintLastLog no",
      "X11Forwarding no",
      "AllowTcpForwarding yes",
      "MaxSessions 10", // OpenSSH's default, as on a rented box: the pool must live with it
      "MaxStartups 64:30:128",
      "LoginGraceTime 30",
      "Subsystem sftp internal-sftp",
      `SetEnv ${setenv}`,
      "LogLevel INFO",
      "",
    ].join("\n");
    fs.writeFileSync(this.sshdConfig, cfg, { mode: 0o600 });
  }

  async startSshd(pickPort = false): Promise<void> {
    if (this.stopped) throw new Error(`lab: box ${this.name} is stopped`);
    if (this.sshd && this.sshdPid && alive(this.sshdPid)) return;
    const timeoutMs = this.lab.opts.startTimeoutMs ?? 15000;
    const deadline = Date.now() + timeoutMs;
    let lastErr = "";
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      if (pickPort && (attempt > 0 || !this.port)) { this.port = await freePort(); this.writeSshdConfig(); }
      const logStart = fs.existsSync(this.logFile) ? fs.statSync(this.logFile).size : 0;
      const child = spawn("/usr/bin/nsenter", ["-t", String(this.holderPid), "-m", "-u", "-p", "--", "/usr/sbin/chroot", this.rootfs,
        "/usr/sbin/sshd", "-D", "-E", this.logFile, "-f", this.sshdConfig], { stdio: "ignore", detached: true, env: { PATH: STD_PATH, LANG: "C" } });
      child.unref();
      let exited = false;
      child.on("exit", () => { exited = true; });
      child.on("error", () => { exited = true; });
      while (!exited && Date.now() < deadline) {
        if (await sshBanner(this.port, 500)) {
          // nsenter forks to enter the pid namespace; the daemon is its child
          const kids = childrenOf(child.pid!);
          this.sshd = child;
          this.sshdPid = kids[0] ?? child.pid!;
          return;
        }
        await sleep(15);
      }
      killTree(child.pid!);
      lastErr = fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, "utf8").slice(logStart).trim() : "";
      if (!pickPort) await sleep(100); // same port wanted: wait for it to free up
    }
    throw new Error(`lab: box ${this.name}: sshd did not come up on port ${this.port}: ${lastErr.slice(-1500)}`);
  }

  async stopSshd(): Promise<void> {
    const pid = this.sshdPid;
    if (!pid) return;
    try { process.kill(pid, "SIGTERM"); } catch { /* gone */ }
    for (let i = 0; i < 200 && alive(pid); i++) await sleep(10);
    if (alive(pid)) { try { process.kill(pid, "SIGKILL"); } catch { /* gone */ } }
    this.sshdPid = 0;
    this.sshd = undefined;
  }

  private sshdPids(): number[] {
    return pidsInNs(this.ns, this.holderPid).filter((p) => {
      try { return /^sshd/.test(fs.readFileSync(`/proc/${p}/comm`, "utf8").trim()); } catch { return false; }
    });
  }

  private frozen: number[] = [];

  freezeSshd(): number[] {
    const pids = this.sshdPids();
    for (const p of pids) { try { process.kill(p, "SIGSTOP"); } catch { /* gone */ } }
    this.frozen = [...new Set([...this.frozen, ...pids])];
    return pids;
  }

  thawSshd(): number[] {
    const pids = [...new Set([...this.frozen, ...this.sshdPids()])];
    for (const p of pids) { try { process.kill(p, "SIGCONT"); } catch { /* gone */ } }
    this.frozen = [];
    return pids;
  }

  async rotateHostKey(): Promise<void> {
    await this.stopSshd();
    fs.rmSync(this.hostKeyFile, { force: true });
    fs.rmSync(`${this.hostKeyFile}.pub`, { force: true });
    keygen(this.hostKeyFile, `lab-host-${this.name}-rotated`);
    await this.startSshd(false);
  }

  hostKey(): string {
    return pubKeyOf(this.hostKeyFile);
  }

  async reboot(): Promise<void> {
    if (this.stopped) throw new Error(`lab: box ${this.name} is stopped`);
    await this.stopSshd();
    for (let round = 0; round < 20; round++) {
      const victims = pidsInNs(this.ns, this.holderPid).filter((p) => p !== this.holderPid && alive(p));
      if (victims.length === 0) break;
      for (const p of victims) { try { process.kill(p, "SIGKILL"); } catch { /* gone */ } }
      await sleep(10);
    }
    this.moveBootTime();
    await this.startSshd(false);
  }

  /**
   * After a reboot the box says it booted just now: files with the kernel's own formats, built from the
   * real ones with `btime` set to now and an uptime of zero, are bind-mounted over the box's /proc/stat
   * and /proc/uptime (inside its mount namespace only; the box's processes are its own pid namespace's).
   */
  private moveBootTime(): void {
    const now = Math.floor(Date.now() / 1000);
    const stat = fs.readFileSync("/proc/stat", "utf8").replace(/^btime \d+$/m, `btime ${now}`);
    const statFile = path.join(this.dir, "boot-stat");
    const upFile = path.join(this.dir, "boot-uptime");
    fs.writeFileSync(statFile, stat);
    fs.writeFileSync(upFile, "0.50 0.90\n");
    const r = spawnSync("/usr/bin/nsenter", ["-t", String(this.holderPid), "-m", "--", "/bin/bash", "-c",
      `mount --bind ${shq(statFile)} ${shq(`${this.rootfs}/proc/stat`)} && mount --bind ${shq(upFile)} ${shq(`${this.rootfs}/proc/uptime`)}`], { encoding: "utf8", env: { PATH: STD_PATH } });
    if (r.status !== 0) throw new Error(`lab: box ${this.name}: cannot move its boot time: ${r.stderr}`);
  }

  exec(cmd: string, opts: ExecOpts = {}): Promise<ExecOutput> {
    if (this.stopped || !this.holderPid) return Promise.reject(new Error(`lab: box ${this.name} is not running`));
    const timeoutMs = opts.timeoutMs ?? 30000;
    return new Promise((resolve, reject) => {
      const child = spawn("/usr/bin/nsenter", ["-t", String(this.holderPid), "-m", "-u", "-p", "--", "/usr/sbin/chroot", this.rootfs, "/bin/bash", "-c", cmd], {
        stdio: ["pipe", "pipe", "pipe"],
        env: { PATH: this.path, HOME: "/root", USER: "root", LOGNAME: "root", SHELL: "/bin/bash", LANG: "C.UTF-8", ...this.sessionEnv, ...(opts.env ?? {}) },
      });
      const out: Buffer[] = [], err: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => { timedOut = true; killTree(child.pid!); }, timeoutMs);
      child.stdout.on("data", (d) => out.push(d));
      child.stderr.on("data", (d) => err.push(d));
      child.on("error", (e) => { clearTimeout(timer); reject(e); });
      child.on("close", (code, sig) => {
        clearTimeout(timer);
        if (timedOut) { reject(new Error(`lab: box ${this.name}: exec timed out after ${timeoutMs} ms: ${cmd.slice(0, 200)}`)); return; }
        resolve({ code: code ?? (sig ? 128 : 1), stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
      });
      child.stdin.on("error", () => { /* command did not read stdin */ });
      child.stdin.end(opts.stdin ?? "");
    });
  }

  async writeFile(boxPath: string, content: string | Buffer, mode?: number): Promise<void> {
    const m = mode !== undefined ? ` && chmod ${mode.toString(8)} "$F"` : "";
    const r = await this.exec(`F=${shq(boxPath)}; mkdir -p "$(dirname "$F")" && cat > "$F"${m}`, { stdin: content });
    if (r.code !== 0) throw new Error(`lab: box ${this.name}: cannot write ${boxPath}: ${r.stderr.trim()}`);
  }

  async readFile(boxPath: string): Promise<string> {
    const r = await this.exec(`cat ${shq(boxPath)}`);
    if (r.code !== 0) throw new Error(`lab: box ${this.name}: cannot read ${boxPath}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  setBusyGpus(busy: (number | { index: number; pid?: number; usedMiB?: number })[]): void {
    const lines = busy.map((b) => (typeof b === "number" ? `${b}` : `${b.index} ${b.pid ?? 31337 + b.index} ${b.usedMiB ?? 30250}`));
    fs.writeFileSync(this.stateFile, lines.join("\n") + (lines.length ? "\n" : ""));
  }

  nvidiaSmiCalls(): string[] {
    try { return fs.readFileSync(this.smiLog, "utf8").split("\n").filter((l) => l !== ""); } catch { return []; }
  }

  sshdLog(): string {
    try { return fs.readFileSync(this.logFile, "utf8"); } catch { return ""; }
  }

  pids(): number[] {
    return this.ns ? pidsInNs(this.ns, this.holderPid) : [];
  }

  /**
   * kill everything in the box: SIGKILL to its pid 1 makes the kernel kill every process in the pid
   * namespace; the mount namespace (and all the box's mounts) goes once the last of them is gone.
   * Synchronous so the exit hook can use it. Returns the pids that were inside.
   */
  killAllSync(): number[] {
    const members = pidsInNs(this.ns, this.holderPid);
    for (const p of members) { try { process.kill(p, "SIGKILL"); } catch { /* gone */ } }
    if (this.unsharePid) { try { process.kill(this.unsharePid, "SIGKILL"); } catch { /* gone */ } }
    // the nsenter that started sshd lives outside the namespace; when its child was frozen (freezeSshd) it
    // stopped itself too, and a stopped process never reaps its killed child and exits: kill it as well
    if (this.sshd?.pid) { try { process.kill(this.sshd.pid, "SIGKILL"); } catch { /* gone */ } }
    return members;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const members = this.killAllSync();
    const waitFor = [...members, this.unsharePid, this.sshd?.pid ?? 0].filter((p) => p > 0);
    for (let i = 0; i < 500 && waitFor.some(alive); i++) await sleep(10);
    this.sshdPid = 0;
  }

  stopSync(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.killAllSync();
  }
}

class LabImpl implements Lab {
  readonly root: string;
  readonly sshConfig: string;
  readonly knownHosts: string;
  readonly identity: string;
  readonly encryptedIdentity?: string;
  readonly encryptedPassphrase?: string;
  readonly localBin: string;
  readonly env: Record<string, string>;
  readonly boxes: Record<string, BoxImpl> = {};
  readonly hostNs: string;
  private trusted = new Map<string, { port: number; key: string }[]>();
  private aliases: { alias: string; port: number; box?: string; proxyJump?: string; connectTimeout?: number }[] = [];
  private proxies: (CutProxy | FakePort)[] = [];
  private stopped = false;

  constructor(readonly opts: LabOptions) {
    this.hostNs = mntNs(process.pid) ?? "";
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-lab-"));
    fs.chmodSync(this.root, 0o755);
    this.sshConfig = path.join(this.root, "ssh_config");
    this.knownHosts = path.join(this.root, "known_hosts");
    this.identity = path.join(this.root, "id_ed25519");
    this.localBin = path.join(this.root, "local-bin");
    for (const d of ["boxes", "rgt-home", "home", "local-bin"]) fs.mkdirSync(path.join(this.root, d), { recursive: true });
    fs.mkdirSync(path.join(this.root, "home", ".ssh"), { mode: 0o700 });
    fs.writeFileSync(path.join(this.root, "owner.pid"), `${process.pid}\n`);
    keygen(this.identity, "rgt-lab");
    if (opts.encryptedKey) {
      this.encryptedPassphrase = typeof opts.encryptedKey === "string" ? opts.encryptedKey : "lab-passphrase";
      this.encryptedIdentity = path.join(this.root, "id_ed25519_locked");
      keygen(this.encryptedIdentity, "rgt-lab-locked", this.encryptedPassphrase);
    }
    this.env = {
      RGT_SSH_CONFIG: this.sshConfig,
      RGT_HOME: path.join(this.root, "rgt-home"),
      HOME: path.join(this.root, "home"),
      PATH: `${this.localBin}:${process.env.PATH ?? STD_PATH}`,
    };
    this.writeFiles();
  }

  authorizedKeys(): string {
    const keys = [pubKeyOf(this.identity)];
    if (this.encryptedIdentity) keys.push(pubKeyOf(this.encryptedIdentity));
    return keys.join("\n") + "\n";
  }

  async addBox(spec: BoxSpec): Promise<Box> {
    if (this.stopped) throw new Error("lab: this lab is stopped");
    if (!spec || typeof spec.name !== "string" || !NAME_RE.test(spec.name)) throw new Error(`lab: bad box name ${JSON.stringify(spec?.name)} (letters, digits, . _ -)`);
    if (spec.name in this.boxes) throw new Error(`lab: box ${spec.name} already exists`);
    if (spec.gpus !== undefined && (!Number.isInteger(spec.gpus) || spec.gpus < 0 || spec.gpus > 16)) throw new Error(`lab: box ${spec.name}: gpus must be 0..16`);
    const dir = path.join(this.root, "boxes", spec.name);
    fs.mkdirSync(dir, { recursive: true });
    const box = new BoxImpl(this, spec, dir);
    this.boxes[spec.name] = box;
    try {
      await box.start();
    } catch (e) {
      await box.stop().catch(() => undefined);
      delete this.boxes[spec.name];
      throw e;
    }
    if (this.opts.trustHostKeys !== false) this.trusted.set(spec.name, [{ port: box.port, key: box.hostKey() }]);
    this.writeFiles();
    return box;
  }

  retrust(name: string): void {
    const box = this.mustBox(name);
    const entries = [{ port: box.port, key: box.hostKey() }];
    for (const a of this.aliases) if (a.box === name) entries.push({ port: a.port, key: box.hostKey() });
    this.trusted.set(name, entries);
    this.writeFiles();
  }

  untrust(name: string): void {
    this.mustBox(name);
    this.trusted.delete(name);
    this.writeFiles();
  }

  async cutProxy(name: string, opts: { cutAfterBytes: number; maxCuts?: number; alias?: string; delayMs?: number }): Promise<CutProxy & { alias: string }> {
    const box = this.mustBox(name);
    const alias = opts.alias ?? `${name}-cut`;
    if (!NAME_RE.test(alias)) throw new Error(`lab: bad alias ${JSON.stringify(alias)}`);
    const proxy = await startCutProxy(box.port, { cutAfterBytes: opts.cutAfterBytes, maxCuts: opts.maxCuts, delayMs: opts.delayMs });
    this.proxies.push(proxy);
    this.aliases.push({ alias, port: proxy.port, box: name });
    const t = this.trusted.get(name);
    if (t) t.push({ port: proxy.port, key: t[0].key });
    this.writeFiles();
    return Object.assign(proxy, { alias });
  }

  async fakePort(alias: string, spec: FakePortSpec): Promise<FakePort & { alias: string }> {
    if (this.stopped) throw new Error("lab: this lab is stopped");
    this.newAlias(alias);
    const fake = await startFakePort(spec);
    this.proxies.push(fake);
    this.aliases.push({ alias, port: fake.port, connectTimeout: 3 });
    this.writeFiles();
    return Object.assign(fake, { alias });
  }

  jumpAlias(alias: string, via: string, target: string): void {
    this.newAlias(alias);
    const hop = this.aliases.find((a) => a.alias === via);
    if (!hop && !this.boxes[via]) throw new Error(`lab: no box or alias named ${via}`);
    const to = this.boxes[target]?.port ?? this.aliases.find((a) => a.alias === target)?.port;
    if (!to) throw new Error(`lab: no box or alias named ${target}`);
    this.aliases.push({ alias, port: to, proxyJump: via, connectTimeout: 3 });
    this.writeFiles();
  }

  private newAlias(alias: string): void {
    if (!NAME_RE.test(alias)) throw new Error(`lab: bad alias ${JSON.stringify(alias)}`);
    if (alias in this.boxes || this.aliases.some((a) => a.alias === alias)) throw new Error(`lab: alias ${alias} already exists`);
  }

  private mustBox(name: string): BoxImpl {
    const b = this.boxes[name];
    if (!b) throw new Error(`lab: no box named ${name}`);
    return b;
  }

  private hostBlock(alias: string, port: number, identity: string, extra: { proxyJump?: string; connectTimeout?: number } = {}): string {
    return [
      `Host ${alias}`,
      "  HostName 127.0.0.1",
      `  Port ${port}`,
      "  User root",
      `  IdentityFile ${identity}`,
      "  IdentitiesOnly yes",
      `  UserKnownHostsFile ${this.knownHosts}`,
      "  GlobalKnownHostsFile /dev/null",
      `  StrictHostKeyChecking ${this.opts.strictHostKeyChecking ?? "yes"}`,
      "  BatchMode yes",
      `  ConnectTimeout ${extra.connectTimeout ?? 5}`,
      ...(extra.proxyJump ? [`  ProxyJump ${extra.proxyJump}`] : []),
      "  LogLevel ERROR",
      "",
    ].join("\n");
  }

  writeFiles(): void {
    const blocks: string[] = ["# ssh config for the remote-gpu-trainer test lab (one Host per box)\n"];
    for (const b of Object.values(this.boxes)) {
      if (!b.port) continue;
      blocks.push(this.hostBlock(b.name, b.port, this.identity));
      if (this.encryptedIdentity) blocks.push(this.hostBlock(`${b.name}-locked`, b.port, this.encryptedIdentity));
    }
    for (const a of this.aliases) blocks.push(this.hostBlock(a.alias, a.port, this.identity, a));
    writeAtomic(this.sshConfig, blocks.join("\n"), 0o600);

    const lines: string[] = [];
    for (const entries of this.trusted.values()) {
      for (const e of entries) {
        const host = `[127.0.0.1]:${e.port}`;
        lines.push(`${this.opts.hashKnownHosts ? hashHost(host) : host} ${e.key}`);
      }
    }
    writeAtomic(this.knownHosts, lines.join("\n") + (lines.length ? "\n" : ""), 0o600);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.proxies.map((p) => p.close().catch(() => undefined)));
    await Promise.all(Object.values(this.boxes).map((b) => b.stop()));
    this.removeRoot();
    liveLabs.delete(this);
  }

  stopSync(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const b of Object.values(this.boxes)) b.stopSync();
    for (const p of this.proxies) void p.close().catch(() => undefined);
    this.removeRoot();
    liveLabs.delete(this);
  }

  /** remove the temp dir, but never while anything is mounted below it in our namespace */
  private removeRoot(): void {
    let mounted = false;
    try {
      const mi = fs.readFileSync("/proc/self/mountinfo", "utf8");
      mounted = mi.split("\n").some((l) => { const mp = l.split(" ")[4]; return !!mp && (mp === this.root || mp.startsWith(this.root + "/")); });
    } catch { mounted = true; }
    if (mounted) return;
    // a dead box's namespace may take a moment to release its mounts; the dirs are plain here
    try { fs.rmSync(this.root, { recursive: true, force: true, maxRetries: 3 }); } catch { /* leave it */ }
  }
}

function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text, { mode });
  fs.renameSync(tmp, file);
}

/** OpenSSH HashKnownHosts form: |1|base64(salt)|base64(HMAC-SHA1(salt, host)) */
export function hashHost(host: string, salt: Buffer = randomBytes(20)): string {
  const mac = createHmac("sha1", salt).update(host).digest("base64");
  return `|1|${salt.toString("base64")}|${mac}`;
}

/** Remove lab temp dirs left by processes that died without cleaning up (their holders exit on their own). */
function sweepStale(): void {
  let entries: string[] = [];
  try { entries = fs.readdirSync(os.tmpdir()); } catch { return; }
  for (const e of entries) {
    if (!e.startsWith("rgt-lab-")) continue;
    const dir = path.join(os.tmpdir(), e);
    let owner = 0;
    try { owner = Number(fs.readFileSync(path.join(dir, "owner.pid"), "utf8").trim()); } catch { continue; }
    if (!owner || alive(owner)) continue;
    try {
      const st = fs.statSync(dir);
      if (Date.now() - st.mtimeMs < 60_000) continue;
      const mi = fs.readFileSync("/proc/self/mountinfo", "utf8");
      if (mi.includes(dir)) continue;
      fs.rmSync(dir, { recursive: true, force: true });
    } catch { /* leave it */ }
  }
}

/**
 * Start a lab of boxes (in parallel). Throws a clear Error when not root or sshd is missing.
 * Always `await lab.stop()` (afterAll); a process 'exit' hook and the holders' owner watch are backups.
 */
export async function startLab(specs: BoxSpec[], opts: LabOptions = {}): Promise<Lab> {
  preflight();
  sweepStale();
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(s.name)) throw new Error(`lab: duplicate box name ${s.name}`);
    names.add(s.name);
  }
  installExitHook();
  const lab = new LabImpl(opts);
  liveLabs.add(lab);
  try {
    await Promise.all(specs.map((s) => lab.addBox(s)));
  } catch (e) {
    await lab.stop();
    throw e;
  }
  return lab;
}
