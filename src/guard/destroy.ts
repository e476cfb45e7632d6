/**
 * Destructive-command detection for remote_exec, launch_queue cells and anything else that ships a
 * shell line to a box. Pure: the command is read with our own shell reader (shell.ts), never run.
 *
 * POLICY — what is refused (DESTROY_UNAPPROVED) and what is not:
 *
 *  instance   provider verbs that end a machine or its storage: `vastai destroy …`, `runpodctl remove|rm|
 *             terminate|delete …`, Paperspace `pspace|paperspace|gradient … destroy|delete`, `pspace
 *             public-ip release`, cloud CLIs (aws terminate-instances/delete-*, gcloud|az|doctl|hcloud …
 *             delete, sky down, terraform/pulumi destroy), an HTTP call to a provider API that
 *             terminates/destroys/releases or uses DELETE (Lambda `instance-operations/terminate`, RunPod
 *             `podTerminate`), and any non-printing command carrying 释放 / 销毁 (AutoDL "release").
 *             Stops that keep the disk (`vastai stop`, `runpodctl stop`) are allowed.
 *  power      shutdown / poweroff / halt / reboot / `init 0|6` / `systemctl poweroff|reboot|halt|kexec`,
 *             writes to /proc/sysrq-trigger, `kill … -1` and `kill 1`, 关机. (`shutdown -c` cancels: allowed.)
 *  k8s        `kubectl delete …`, `helm uninstall|delete`.
 *  scancel    `scancel`/`qdel`/`bkill` of any job id not in ctx.ownJobIds (array tasks `123_4` count as
 *             job 123), of a job id we cannot resolve, or by filter (`-u`, `--name`, `-p` …).
 *  delete     `rm -r` (any spelling) whose target is: `/`, a top-level directory other than /tmp, the
 *             home directory (`~`, `$HOME`, /root, /home/<u>) itself or `~/*`, a ctx.protectedPaths
 *             entry or anything inside it or above it, or a path with a component named like
 *             checkpoints/ckpt/outputs. A plain `rm` (no -r) only when a target is a checkpoint-like
 *             file (`*.pt`, `*.pth`, `*.ckpt`, `*.safetensors`, `*.bin`, … or a ckpt/checkpoint name)
 *             or a bare `*` glob in such a directory. `find … -delete|-exec rm …` under a protected or
 *             unresolvable root, with a checkpoint-like name filter, or with no name filter at all.
 *             `rsync --delete…` into a protected destination. `xargs rm` is judged on its upstream words.
 *  truncate   `truncate -s 0` (or a shrink) and `>` / `>|` / `&>` redirections onto checkpoint-like files
 *             (truncate also inside protected paths).
 *  disk       `dd of=/dev/<device>`, `mkfs*`, `mke2fs`, `mkswap /dev/…`, `wipefs`, `shred`,
 *             `blkdiscard`, `sgdisk -Z|--zap-all`, writes redirected onto /dev/sd*|nvme*|vd*…
 *
 *  UNRESOLVABLE TARGETS: a variable or command substitution we cannot resolve from the line itself
 *  (assignments earlier on the same line ARE followed: `D=/root/autodl-tmp; rm -rf $D` is caught) makes a
 *  delete dangerous only when it is BOTH recursive AND forced (`rm -rf "$X"`, `rm -rf $(cat list)`,
 *  `xargs rm -rf`): those are the ones that wipe a tree when the variable is empty or wrong. A known
 *  prefix is still judged (`rm -rf /root/$X` is a delete in /root; `rm -rf /tmp/$X` is fine). `rm "$F"`
 *  of one unknown file is allowed. Relative paths are resolved against ctx.cwd or a `cd` earlier on
 *  the line; `.`/`..`/`*` with no known cwd count as unresolvable.
 *
 *  Hiding does not help: quotes (`'r''m'`), backslashes (`r\m`, `\rm`), `$'\x72\x6d'`, absolute paths
 *  (/usr/bin/rm), `;` `&&` `||` `|` `&` newlines, `$(…)`, backticks, `<(…)`, here-docs fed to a shell,
 *  `echo … | [base64 -d |] sh`, `eval`, `bash|sh|zsh|dash|ksh -c` (recursively, depth-limited),
 *  `sudo`, `doas`, `env [-S] VAR=x`, `nohup`, `setsid`, `nice`, `ionice`, `timeout`, `stdbuf`, `time`,
 *  `command`, `builtin`, `exec`, `busybox`, `xargs`, `watch`, `flock`, `su -c`, `ssh host cmd`,
 *  `tmux`/`screen` command strings, `kubectl|docker exec … cmd`, `find -exec`, and `os.system(…)` /
 *  `shutil.rmtree(…)` / `system(…)` inside `python|perl|ruby|node|awk -c/-e` one-liners.
 *  Text that is only printed or searched (`echo shutdown`, `grep destroy log.txt`) is not a command.
 *  A line nested deeper than MAX_DEPTH is refused as obfuscated.
 */
import { RefusalCode, RefusalError } from "../common/result.js";
import { UNKNOWN, braceExpand, parseLine, type SimpleCommand, type Word } from "./shell.js";

export type DestroyKind = "instance" | "power" | "k8s" | "scancel" | "delete" | "truncate" | "disk" | "obfuscated";

export interface DestroyFinding {
  kind: DestroyKind;
  /** the verb as written after unwrapping, e.g. "rm -rf", "vastai destroy", "scancel" */
  verb: string;
  /** one short line: what it would hit and why that is protected */
  detail: string;
}

export interface DestroyContext {
  /** data/durable dirs of the host's profile and any run's output dirs (absolute) */
  protectedPaths: string[];
  /** Slurm (or other scheduler) job ids of runs this server started */
  ownJobIds?: string[];
  /** working directory the command will run in, when known */
  cwd?: string;
  /** the remote user's home; default /root (rental boxes log in as root) */
  home?: string;
}

const MAX_DEPTH = 8;

interface State {
  env: Map<string, string>;
  cwd: string | null;
  home: string;
  ctx: DestroyContext;
  protectedNorm: string[];
  out: DestroyFinding[];
}

export function findDestroys(command: string, ctx: DestroyContext): DestroyFinding[] {
  if (typeof command !== "string" || command.trim() === "") return [];
  const home = normAbs(ctx.home && ctx.home.startsWith("/") ? ctx.home : "/root") ?? "/root";
  const env = new Map<string, string>([["HOME", home]]);
  const cwd = ctx.cwd && ctx.cwd.startsWith("/") ? normAbs(ctx.cwd) : null;
  if (cwd) env.set("PWD", cwd);
  const st: State = {
    env,
    cwd,
    home,
    ctx,
    protectedNorm: (ctx.protectedPaths ?? []).map((p) => normAbs(expandTildeText(p, home))).filter((p): p is string => !!p),
    out: [],
  };
  analyzeText(command, st, 0);
  const seen = new Set<string>();
  return st.out.filter((f) => {
    const k = `${f.kind}|${f.verb}|${f.detail}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function assertNotDestructive(command: string, ctx: DestroyContext): void {
  const found = findDestroys(command, ctx);
  if (found.length === 0) return;
  const machine = found.some((f) => f.kind === "instance" || f.kind === "power" || f.kind === "k8s" || f.kind === "scancel" || f.kind === "obfuscated");
  const data = found.some((f) => f.kind === "delete" || f.kind === "truncate" || f.kind === "disk");
  const list = found.slice(0, 3).map((f) => `${f.verb}: ${f.detail}`).join("; ");
  const more = found.length > 3 ? ` (+${found.length - 3} more)` : "";
  const remedies: string[] = [];
  if (machine) {
    remedies.push(
      "Destroying, releasing or powering off a machine (or deleting cluster objects / others' jobs) only goes through request_teardown, which checks for live runs, a verified pull receipt and a human approval. To stop a run this server started, use stop_run.",
    );
  }
  if (data) {
    remedies.push(
      "Data, checkpoints and outputs on the box are never deleted or overwritten through this tool: pull them with pull_verify first, then, if you still want them gone, delete them by hand from your own terminal. Scratch paths such as /tmp/... or ./build are fine.",
    );
  }
  throw new RefusalError(
    RefusalCode.DESTROY_UNAPPROVED,
    `The command would do something destructive: ${list}${more}. Nothing was run.`,
    remedies.join(" "),
    { destroys: found.slice(0, 10) },
  );
}

// ---------------------------------------------------------------------------------------------

function push(st: State, kind: DestroyKind, verb: string, detail: string): void {
  if (st.out.length < 50) st.out.push({ kind, verb, detail: detail.replaceAll(UNKNOWN, "<?>").slice(0, 200) });
}

function analyzeText(text: string, st: State, depth: number): void {
  if (depth > MAX_DEPTH) {
    push(st, "obfuscated", "nesting", `command nested more than ${MAX_DEPTH} levels deep; refusing to guess what it runs`);
    return;
  }
  const parsed = parseLine(text, st.env);
  for (const sub of parsed.substitutions) analyzeText(sub, st, depth + 1);
  for (const pipeline of parsed.pipelines) {
    for (let k = 0; k < pipeline.length; k++) analyzeCommand(pipeline[k]!, pipeline, k, st, depth);
  }
}

const RESERVED = new Set(["if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "time", "coproc", "esac", "in"]);
const INERT = new Set([
  "echo", "printf", "grep", "egrep", "fgrep", "rg", "ag", "ack", "cat", "less", "more", "head", "tail", "man", "info",
  "which", "type", "whatis", "apropos", "help", "whereis", "ls", "history", "wc", "test", "[", "[[", "true", "false",
  ":", "jq", "yq", "diff", "stat", "file", "du", "df", "tee", "logger", "wall", "notify-send", "git", "sort", "uniq",
]);
const SHELLS = new Set(["bash", "sh", "zsh", "dash", "ksh", "ash", "mksh", "fish"]);
const INTERPRETERS = new Set(["python", "python2", "python3", "perl", "ruby", "node", "nodejs", "awk", "gawk", "mawk", "php"]);
const HTTP_CLIENTS = new Set(["curl", "wget", "http", "https", "httpie", "xh", "invoke-webrequest"]);
const PROVIDER_HOSTS = /(lambdalabs\.com|lambda\.ai|runpod\.io|vast\.ai|paperspace\.com|autodl\.com|autodl\.art|datacrunch\.io|coreweave\.com|tensordock\.com|jarvislabs\.ai)/i;

function cmdName(w: Word): string {
  const t = w.text;
  const base = t.includes("/") ? t.slice(t.lastIndexOf("/") + 1) : t;
  return base;
}

function words(ws: Word[]): string[] {
  return ws.map((w) => w.text);
}

/** Skip leading options of a wrapper. `withArg` lists options that take a separate value. */
function skipOpts(argv: Word[], i: number, withArg: Set<string>, stopAtFirstPositional = true): number {
  while (i < argv.length) {
    const t = argv[i]!.text;
    if (t === "--") return i + 1;
    if (!t.startsWith("-") || t === "-") return i;
    if (withArg.has(t)) i += 2;
    else i += 1;
    if (!stopAtFirstPositional) continue;
  }
  return i;
}

function analyzeCommand(cmd: SimpleCommand, pipeline: SimpleCommand[], k: number, st: State, depth: number): void {
  // redirections apply whatever the command is (`: > best.pt`, `echo o > /proc/sysrq-trigger`)
  for (const r of cmd.redirects) checkRedirect(r.op, r.target, st);
  analyzeArgv(cmd.argv, cmd, pipeline, k, st, depth);
}

function analyzeArgv(argv0: Word[], cmd: SimpleCommand, pipeline: SimpleCommand[], k: number, st: State, depth: number): void {
  let argv = argv0;
  let i = 0;
  // unwrap reserved words, prefix assignments and wrappers until the real command is at argv[i]
  for (let guard = 0; guard < 64 && i < argv.length; guard++) {
    const w = argv[i]!;
    const t = w.text;
    if (RESERVED.has(t)) { i++; continue; }
    if (t === "function") { i += 2; continue; }
    if (t === "for" || t === "select" || t === "case") return;
    if (/^[A-Za-z_][A-Za-z0-9_]*\+?=/.test(t)) { i++; continue; }
    const name = cmdName(w);
    switch (name) {
      case "sudo":
      case "doas":
        i = skipOpts(argv, i + 1, new Set(["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "-R", "--user", "--group", "--chdir"]));
        continue;
      case "env": {
        let j = i + 1;
        while (j < argv.length) {
          const a = argv[j]!.text;
          if (a === "-S" || a === "--split-string") {
            // env -S "rm -rf /" : the string is split into a command line
            analyzeText([argv[j + 1]?.text ?? "", ...argv.slice(j + 2).map(quoteWord)].join(" "), st, depth + 1);
            return;
          }
          if (a.startsWith("-S")) { analyzeText(a.slice(2), st, depth + 1); return; }
          if (a === "-u" || a === "--unset" || a === "-C" || a === "--chdir") { j += 2; continue; }
          if (a.startsWith("-") || /^[A-Za-z_][A-Za-z0-9_]*=/.test(a)) { j++; continue; }
          break;
        }
        i = j;
        continue;
      }
      case "nohup": case "setsid": case "command": case "builtin": case "exec": case "time": case "stdbuf": case "unbuffer": case "nocache": case "catchsegv": case "strace": case "ltrace": case "chronic": case "caffeinate": case "systemd-run": case "srun": case "salloc": case "mpirun": case "mpiexec": case "torchrun": case "accelerate": {
        if (name === "command" && argv.slice(i + 1).some((x) => x.text === "-v" || x.text === "-V")) return; // `command -v rm` only looks up
        const withArg: Record<string, string[]> = {
          stdbuf: ["-i", "-o", "-e"], exec: ["-a"], time: ["-f", "-o"], strace: ["-e", "-o", "-p", "-s"], ltrace: ["-e", "-o"],
          "systemd-run": ["-u", "--unit", "-p", "--property", "--uid", "--gid", "-E", "--setenv"],
          srun: ["-p", "-n", "-N", "-c", "-t", "-J", "-A", "-q", "-w", "-o", "-e", "-G", "--gres", "--partition", "--time", "--job-name"],
          salloc: ["-p", "-n", "-N", "-c", "-t", "-J", "-A", "-q", "-w", "-G"],
          mpirun: ["-n", "-np", "-N", "-H", "--host", "--hostfile", "-x"], mpiexec: ["-n", "-np", "-N", "-H", "--host", "-x"],
          torchrun: [], accelerate: [],
        };
        if (name === "torchrun" || name === "accelerate") return; // runs a python script, not a shell command
        i = skipOpts(argv, i + 1, new Set(withArg[name] ?? []));
        continue;
      }
      case "nice": case "ionice": case "chrt": case "taskset": case "numactl": case "cgexec": case "prlimit": {
        const withArg: Record<string, string[]> = {
          nice: ["-n", "--adjustment"], ionice: ["-c", "-n", "-p", "--class", "--classdata"], chrt: [], taskset: ["-c", "--cpu-list"],
          numactl: ["-C", "-N", "-m", "-i", "-p", "--physcpubind", "--cpunodebind", "--membind", "--interleave", "--preferred"], cgexec: ["-g"], prlimit: [],
        };
        i = skipOpts(argv, i + 1, new Set(withArg[name] ?? []));
        // chrt PRIO cmd, taskset MASK cmd
        if ((name === "chrt" || (name === "taskset" && !argv.slice(0, i).some((x) => x.text === "-c" || x.text === "--cpu-list"))) && i < argv.length && /^[0-9a-fx,-]+$/i.test(argv[i]!.text)) i++;
        continue;
      }
      case "timeout": {
        i = skipOpts(argv, i + 1, new Set(["-s", "--signal", "-k", "--kill-after"]));
        i++; // DURATION
        continue;
      }
      case "flock": {
        i = skipOpts(argv, i + 1, new Set(["-w", "--timeout", "-E", "--conflict-exit-code"]));
        i++; // lock file
        const c = argv[i]?.text;
        if (c === "-c" || c === "--command") { analyzeText(argv[i + 1]?.text ?? "", st, depth + 1); return; }
        continue;
      }
      case "busybox": case "toybox":
        i++;
        continue;
      case "watch": {
        i = skipOpts(argv, i + 1, new Set(["-n", "--interval", "-d", "-q", "--equexit"]));
        analyzeText(words(argv.slice(i)).join(" "), st, depth + 1);
        return;
      }
      case "xargs": {
        let j = i + 1;
        let repl: string | null = null;
        const withArg = new Set(["-n", "-L", "-P", "-I", "-i", "-d", "-s", "-a", "-E", "-e", "--max-args", "--max-procs", "--delimiter", "--arg-file", "--replace", "--max-lines"]);
        while (j < argv.length && argv[j]!.text.startsWith("-")) {
          const a = argv[j]!.text;
          if (a === "-I" || a === "--replace") { repl = argv[j + 1]?.text ?? "{}"; j += 2; continue; }
          if (a.startsWith("-I") && a.length > 2) { repl = a.slice(2); j++; continue; }
          if (a.startsWith("--replace=")) { repl = a.slice(10); j++; continue; }
          if (withArg.has(a)) { j += 2; continue; }
          j++;
        }
        const inner = argv.slice(j);
        if (inner.length === 0) return;
        // upstream paths stand for "files under them" (`find DIR … | xargs rm` deletes inside DIR)
        const upstream = pipeline
          .slice(0, k)
          .flatMap((c) => c.argv.slice(1))
          .filter((x) => !x.text.startsWith("-"))
          .slice(0, 16)
          .map((x) => (x.text.includes("/") || x.text === "." ? { ...x, text: x.text.replace(/\/+$/, "") + "/*", glob: true } : x));
        const unknownW: Word = { text: UNKNOWN, glob: false, brace: false };
        let newArgv: Word[];
        if (repl) newArgv = inner.map((x) => (x.text.includes(repl!) ? { ...x, text: x.text.split(repl!).join(UNKNOWN) } : x));
        else newArgv = [...inner, unknownW];
        // what flows in from upstream is judged as if it were the target list
        analyzeArgv([...newArgv, ...upstream], cmd, pipeline, k, st, depth);
        return;
      }
      case "su": case "runuser": {
        const j = argv.findIndex((x, idx) => idx > i && (x.text === "-c" || x.text === "--command"));
        if (j > 0) analyzeText(argv[j + 1]?.text ?? "", st, depth + 1);
        return;
      }
      case "ssh": {
        let j = skipOpts(argv, i + 1, new Set(["-p", "-i", "-l", "-o", "-F", "-J", "-L", "-R", "-D", "-b", "-c", "-E", "-e", "-m", "-O", "-Q", "-S", "-w", "-W", "-B", "-I"]));
        j++; // destination
        if (j < argv.length) analyzeText(words(argv.slice(j)).join(" "), st, depth + 1);
        return;
      }
      case "tmux": {
        // the shell command of new-session / new-window / split-window / respawn-* / run-shell / send-keys
        const sub = argv.findIndex((x, idx) => idx > i && /^(new-session|new|new-window|neww|split-window|splitw|respawn-pane|respawnp|respawn-window|respawnw|run-shell|run|send-keys|send)$/.test(x.text));
        if (sub < 0) return;
        const withArg = new Set(["-s", "-t", "-n", "-c", "-x", "-y", "-F", "-e", "-l", "-f", "-N"]);
        const pos: string[] = [];
        for (let j = sub + 1; j < argv.length; j++) {
          const a = argv[j]!.text;
          if (withArg.has(a)) { j++; continue; }
          if (a.startsWith("-") && a.length > 1) continue;
          if (a === "Enter" || a === "C-m" || a === "KPEnter") continue;
          pos.push(a);
        }
        analyzeText(pos.join(" "), st, depth + 1);
        return;
      }
      case "screen": {
        let j = i + 1;
        while (j < argv.length && argv[j]!.text.startsWith("-")) {
          const a = argv[j]!.text;
          j += /S$/.test(a) || a === "-c" ? 2 : 1;
        }
        analyzeArgv(argv.slice(j), cmd, pipeline, k, st, depth);
        return;
      }
      case "kubectl": case "docker": case "podman": case "oc": {
        const ex = argv.findIndex((x, idx) => idx > i && x.text === "exec");
        if (ex > 0) {
          const dd = argv.findIndex((x, idx) => idx > ex && x.text === "--");
          if (dd > 0) { analyzeArgv(argv.slice(dd + 1), cmd, pipeline, k, st, depth); return; }
          if (name !== "kubectl" && name !== "oc") {
            const j = skipOpts(argv, ex + 1, new Set(["-u", "--user", "-w", "--workdir", "-e", "--env"])) + 1;
            analyzeArgv(argv.slice(j), cmd, pipeline, k, st, depth);
            return;
          }
        }
        break;
      }
    }
    break;
  }
  argv = argv.slice(i);
  if (argv.length === 0) {
    // a bare here-doc / here-string into nothing is harmless
    return;
  }
  const head = argv[0]!;
  const name = cmdName(head);
  const rest = argv.slice(1);
  const texts = words(rest);

  if (head.text.includes(UNKNOWN)) {
    // `$CMD -rf /root` : the command name is not known; judge it as the worst likely case, rm
    if (texts.some((t) => /^-[a-zA-Z]*[rR]/.test(t))) checkRm(rest, st, `${head.text} (unknown command)`);
    return;
  }

  if (SHELLS.has(name) || name === "eval") {
    if (name === "eval") { analyzeText(texts.join(" "), st, depth + 1); return; }
    const ci = rest.findIndex((x) => /^-[a-zA-Z]*c[a-zA-Z]*$/.test(x.text) && !x.text.startsWith("--"));
    if (ci >= 0) { analyzeText(rest[ci + 1]?.text ?? "", st, depth + 1); return; }
    const script = rest.find((x) => !x.text.startsWith("-"));
    if (script && !(script.text === "-s")) return; // runs a script file we cannot see
    if (cmd.stdinText !== undefined) { analyzeText(cmd.stdinText, st, depth + 1); return; }
    if (k > 0) {
      const fed = literalFeed(pipeline.slice(0, k));
      if (fed === OPAQUE) push(st, "obfuscated", `… | ${name}`, "pipes transformed text into a shell; what it runs cannot be read here");
      else if (fed !== null) analyzeText(fed, st, depth + 1);
    }
    return;
  }
  if (INTERPRETERS.has(name)) { checkInterpreter(name, rest, cmd, st, depth); return; }
  if (INERT.has(name)) return;

  // AutoDL and other Chinese consoles: 释放 (release) / 销毁 (destroy) / 关机 (power off) as verbs
  if (texts.some((t) => t.includes("释放") || t.includes("销毁"))) push(st, "instance", name, `${name} … 释放/销毁 releases the instance and deletes its disks`);
  else if (texts.some((t) => t.includes("关机"))) push(st, "power", name, `${name} … 关机 powers the instance off`);

  switch (name) {
    case "cd": case "pushd": {
      const to = texts.find((t) => !t.startsWith("-") || t === "-");
      if (to === undefined) st.cwd = st.home;
      else {
        const t = expandTildeText(to, st.home);
        st.cwd = t.includes(UNKNOWN) || t === "-" ? null : t.startsWith("/") ? normAbs(t) : st.cwd ? normAbs(st.cwd + "/" + t) : null;
      }
      return;
    }
    case "rm": case "unlink": case "rmdir":
      if (name === "rm") checkRm(rest, st, "rm");
      else checkRm(rest, st, name, false);
      return;
    case "find": checkFind(rest, cmd, pipeline, k, st, depth); return;
    case "truncate": checkTruncate(rest, st); return;
    case "shred": push(st, "disk", "shred", `overwrites ${texts.filter((t) => !t.startsWith("-")).join(" ") || "files"} beyond recovery`); return;
    case "wipefs": case "blkdiscard":
      push(st, "disk", name, `erases ${texts.filter((t) => !t.startsWith("-")).join(" ") || "a device"}`);
      return;
    case "mkswap":
      if (texts.some((t) => t.startsWith("/dev/"))) push(st, "disk", name, `formats ${texts.find((t) => t.startsWith("/dev/"))}`);
      return;
    case "sgdisk": case "sfdisk": case "fdisk": case "parted":
      if (texts.some((t) => /^(-Z|--zap-all|-o|--clear|--delete|mklabel|rm)$/.test(t) || /^-[a-zA-Z]*Z/.test(t))) push(st, "disk", name, `rewrites the partition table of ${texts.find((t) => t.startsWith("/dev/")) ?? "a disk"}`);
      return;
    case "dd": {
      const of = texts.find((t) => t.startsWith("of="));
      if (of && isDevice(of.slice(3))) push(st, "disk", "dd", `writes raw onto ${of.slice(3)}`);
      else if (of && isCheckpointLike(of.slice(3))) push(st, "truncate", "dd", `overwrites checkpoint ${of.slice(3)}`);
      return;
    }
    case "shutdown": {
      if (texts.some((t) => t === "-c" || t === "--help" || t === "-k" || t === "--show")) return;
      push(st, "power", "shutdown", "powers the machine off");
      return;
    }
    case "poweroff": case "halt": case "reboot":
      if (texts.some((t) => t === "--help")) return;
      push(st, "power", name, name === "reboot" ? "reboots the machine (every detached job and tmpfs dies)" : "powers the machine off");
      return;
    case "init": case "telinit":
      if (texts.some((t) => t === "0" || t === "6")) push(st, "power", `${name} ${texts.find((t) => t === "0" || t === "6")}`, "changes runlevel to power off / reboot");
      return;
    case "systemctl": {
      const verb = texts.find((t) => !t.startsWith("-"));
      if (verb && /^(poweroff|halt|reboot|kexec|soft-reboot|emergency|rescue)$/.test(verb)) push(st, "power", `systemctl ${verb}`, "powers off / reboots the machine");
      if (verb === "isolate" && texts.some((t) => /^(poweroff|reboot|halt|kexec)\.target$/.test(t))) push(st, "power", "systemctl isolate", "switches to a power-off/reboot target");
      return;
    }
    case "kill": {
      // kill [-SIG | -s SIG | -n N] pid… : after the signal, `-1` means every process, `1` is init
      if (texts.some((t) => t === "-l" || t === "-L" || t === "--list")) return;
      const pids: string[] = [];
      let sigSeen = false;
      for (let j = 0; j < texts.length; j++) {
        const t = texts[j]!;
        if (t === "--") { sigSeen = true; continue; }
        if (!sigSeen && (t === "-s" || t === "-n")) { j++; sigSeen = true; continue; }
        if (!sigSeen && t.startsWith("-")) { sigSeen = true; continue; }
        sigSeen = true;
        pids.push(t);
      }
      if (pids.includes("-1")) push(st, "power", "kill -1", "signals every process of the user (ends every run on the box)");
      else if (pids.includes("1")) push(st, "power", "kill 1", "signals PID 1 (the box/container init)");
      return;
    }
    case "tee": {
      if (texts.includes("-a") || texts.includes("--append")) return;
      for (const t of texts) if (!t.startsWith("-") && CKPT_EXT.test(t)) push(st, "truncate", "tee", `overwrites checkpoint ${t}`);
      return;
    }
    case "scancel": case "qdel": case "bkill": checkScancel(name, rest, st); return;
    case "kubectl": case "oc": {
      const withArg = new Set(["-n", "--namespace", "--context", "--cluster", "--kubeconfig", "--user", "-s", "--server", "--as", "--token", "--request-timeout"]);
      const verb = texts.find((t, idx) => !t.startsWith("-") && !withArg.has(texts[idx - 1] ?? ""));
      if (verb === "delete") push(st, "k8s", `${name} delete`, `deletes ${texts.filter((t) => !t.startsWith("-")).slice(1, 4).join(" ") || "cluster objects"}`);
      if (verb === "drain") push(st, "k8s", `${name} drain`, "evicts every pod on a node");
      return;
    }
    case "helm": {
      const verb = texts.find((t) => !t.startsWith("-"));
      if (verb && /^(uninstall|delete|del|un)$/.test(verb)) push(st, "k8s", `helm ${verb}`, `uninstalls release ${texts.filter((t) => !t.startsWith("-"))[1] ?? ""}`);
      return;
    }
    case "vastai": {
      const pos = texts.filter((t) => !t.startsWith("-"));
      if (pos[0] === "destroy" || (pos[0] === "delete" && /^(volumes?|instances?)$/.test(pos[1] ?? ""))) push(st, "instance", `vastai ${pos[0]} ${pos[1] ?? ""}`.trim(), `${pos[0]}s ${pos.slice(1).join(" ")} on vast.ai (container disk is lost)`);
      return;
    }
    case "runpodctl": case "runpod": {
      const pos = texts.filter((t) => !t.startsWith("-"));
      const v = pos.find((t) => /^(remove|rm|terminate|delete|destroy)$/.test(t));
      if (v) push(st, "instance", `${name} ${v}`, `terminates ${pos.filter((t) => t !== v).join(" ")} on RunPod (pod disk is lost)`);
      return;
    }
    case "pspace": case "paperspace": case "gradient": {
      const pos = texts.filter((t) => !t.startsWith("-")).slice(0, 4);
      const v = pos.find((t) => /^(destroy|delete|remove|release|terminate)$/.test(t));
      if (v) push(st, "instance", `${name} ${v}`, `${v}s ${pos.filter((t) => t !== v).join(" ")} on Paperspace`);
      return;
    }
    case "aws": {
      const pos = texts.filter((t) => !t.startsWith("-"));
      const v = pos.find((t) => /^(terminate-instances|delete-volume|delete-snapshot|delete-bucket|rb|delete-file-system|delete-cluster)$/.test(t));
      if (v) push(st, "instance", `aws ${v}`, `${v} on AWS`);
      else if (pos[0] === "s3" && pos[1] === "rm") push(st, "delete", "aws s3 rm", `deletes ${pos[2] ?? "objects"} from S3${texts.includes("--recursive") ? " recursively" : ""}`);
      return;
    }
    case "gcloud": case "az": case "doctl": case "hcloud": case "linode-cli": case "vultr-cli": case "oci": case "ibmcloud": case "exo": case "scw": {
      const pos = texts.filter((t) => !t.startsWith("-")).slice(0, 5);
      const v = pos.find((t) => /^(delete|destroy|terminate|remove|rm)$/.test(t));
      if (v) push(st, "instance", `${name} … ${v}`, `${pos.join(" ")} on ${name}`);
      return;
    }
    case "sky": {
      const v = texts.find((t) => !t.startsWith("-"));
      if (v === "down" || v === "autostop" && texts.includes("--down")) push(st, "instance", `sky ${v}`, "tears down a SkyPilot cluster");
      return;
    }
    case "terraform": case "tofu": case "pulumi": {
      const v = texts.find((t) => !t.startsWith("-"));
      if (v === "destroy" || (v === "apply" && texts.includes("-destroy"))) push(st, "instance", `${name} destroy`, "destroys managed infrastructure");
      return;
    }
    case "rsync": {
      if (texts.some((t) => t.startsWith("--delete") || t === "--remove-source-files")) {
        const pos = rest.filter((x) => !x.text.startsWith("-"));
        const dest = pos[pos.length - 1];
        if (dest && !/^[^/]*:/.test(dest.text)) {
          const j = judge(dest, st);
          // syncing INTO a subdirectory of a data dir is how code is pushed; mirroring over the dir itself is not
          const why = j.protectedReason && !j.protectedReason.startsWith("inside") ? j.protectedReason : j.checkpointReason;
          if (why) push(st, "delete", "rsync --delete", `mirrors over ${show(dest)} (${why}), deleting what the source lacks`);
        }
      }
      return;
    }
    case "mv": {
      const pos = rest.filter((x) => !x.text.startsWith("-"));
      if (pos.length >= 2 && pos[pos.length - 1]!.text === "/dev/null") push(st, "delete", "mv … /dev/null", `throws away ${words(pos.slice(0, -1)).join(" ")}`);
      return;
    }
    case "cp": {
      const pos = rest.filter((x) => !x.text.startsWith("-"));
      if (pos.length === 2 && pos[0]!.text === "/dev/null" && isCheckpointLike(pos[1]!.text)) push(st, "truncate", "cp /dev/null", `empties checkpoint ${show(pos[1]!)}`);
      return;
    }
  }
  if (name.startsWith("mkfs") || name === "mke2fs" || name === "mkdosfs") {
    push(st, "disk", name, `formats ${texts.find((t) => t.startsWith("/dev/")) ?? texts.filter((t) => !t.startsWith("-")).pop() ?? "a filesystem"}`);
    return;
  }
  if (HTTP_CLIENTS.has(name)) checkHttp(name, texts, st);
}

// ---------------------------------------------------------------------------------------------
// paths

const TOP_LEVEL_OK = new Set(["/tmp", "/var/tmp", "/dev/shm"]);
const CKPT_DIR = /^(checkpoints?|ckpts?|outputs?)$/i;
const CKPT_NAME = /ckpt|checkpoint/i;
const CKPT_EXT = /\.(pt|pth|ckpt|safetensors|bin|h5|hdf5|pdparams|msgpack|gguf|npz|onnx|engine|distcp)$/i;

function expandTildeText(t: string, home: string): string {
  if (t === "~") return home;
  if (t.startsWith("~/")) return home + t.slice(1);
  return t;
}

/** Normalize an absolute path: collapse //, /./ and /../ . Returns null for non-absolute input. */
function normAbs(p: string): string | null {
  if (!p.startsWith("/")) return null;
  const parts: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") { parts.pop(); continue; }
    parts.push(seg);
  }
  return "/" + parts.join("/");
}

function isDevice(p: string): boolean {
  return /^\/dev\//.test(p) && !/^\/dev\/(null|zero|stdout|stderr|stdin|tty|full|random|urandom|shm(\/.*)?|fd\/.*|pts\/.*)$/.test(p);
}

function isCheckpointLike(p: string): boolean {
  const segs = p.split("/").filter(Boolean);
  return segs.some((s) => CKPT_DIR.test(s) || CKPT_NAME.test(s)) || CKPT_EXT.test(p);
}

interface Judgement {
  /** normalized absolute path (glob/unknown tail cut off), if resolvable */
  abs: string | null;
  unresolved: boolean;
  protectedReason: string | null;
  checkpointReason: string | null;
  /** for a single-file delete: a checkpoint extension, or a file inside a checkpoint-named directory */
  checkpointFile: string | null;
  /** a glob that takes a whole directory's contents (`dir/*`) */
  wholeDir: boolean;
}

function show(w: Word): string {
  return w.text.replaceAll(UNKNOWN, "<?>");
}

function judge(w: Word, st: State): Judgement {
  let t = expandTildeText(w.text, st.home);
  const res: Judgement = { abs: null, unresolved: false, protectedReason: null, checkpointReason: null, checkpointFile: null, wholeDir: false };
  if (t === "") return res;
  // names alone (even half-unknown ones) can say "checkpoint"
  const visible = t.replaceAll(UNKNOWN, "");
  if (isCheckpointLike(visible)) {
    const seg = visible.split("/").filter(Boolean).find((x) => CKPT_DIR.test(x) || CKPT_NAME.test(x));
    res.checkpointReason = seg ? `"${seg}" names checkpoints/outputs` : "a checkpoint-like file";
    const dirs = visible.split("/").filter(Boolean).slice(0, -1);
    const dir = dirs.find((x) => CKPT_DIR.test(x) || CKPT_NAME.test(x));
    if (CKPT_EXT.test(visible)) res.checkpointFile = "a checkpoint file";
    else if (dir) res.checkpointFile = `a file in "${dir}"`;
  }
  if (!t.startsWith("/")) {
    if (st.cwd) t = st.cwd + "/" + t;
    else {
      // relative, directory unknown: only `.`, `..`, `*` and unknown heads are unresolvable
      if (/^(\.{1,2}\/?|\.\/\*|\*|\.\.\/.*)$/.test(t) || t.startsWith(UNKNOWN)) res.unresolved = true;
      return res;
    }
  }
  const u = t.indexOf(UNKNOWN);
  if (u >= 0) {
    // `/root/$X`: what the known prefix already reaches; `/data_$X` could be any top-level name
    const prefix = t.slice(0, u);
    t = prefix.slice(0, prefix.lastIndexOf("/") + 1) || "/";
    res.wholeDir = true;
    if (t === "/") res.unresolved = true;
  }
  let abs = normAbs(t);
  if (abs === null) return res;
  const gi = w.glob ? abs.search(/[*?[]/) : -1;
  if (gi >= 0) {
    // a glob: what it can reach is the directory it sits in
    const cut = abs.lastIndexOf("/", gi);
    const tail = abs.slice(cut + 1);
    abs = abs.slice(0, cut) || "/";
    res.wholeDir = res.wholeDir || /^[*?[]/.test(tail);
  }
  res.abs = abs;
  res.protectedReason = protectedReason(abs, st, res.wholeDir);
  return res;
}

/** Why deleting `abs` (or, with contents=true, everything in it) hits something we protect; null if nothing. */
function protectedReason(abs: string, st: State, contents: boolean): string | null {
  if (abs === "/") return "the filesystem root";
  if (abs === st.home || abs === "/root" || /^\/home\/[^/]+$/.test(abs)) return `the home directory ${abs}`;
  if (/^\/[^/]+$/.test(abs) && !TOP_LEVEL_OK.has(abs)) return `top-level directory ${abs}`;
  if (/^\/home$/.test(abs)) return "all home directories";
  for (const p of st.protectedNorm) {
    if (abs === p) return contents ? `everything in protected ${p}` : `protected ${p}`;
    if (abs.startsWith(p + "/")) return `inside protected ${p}`;
    if (p.startsWith(abs + "/")) return `contains protected ${p}`;
  }
  return null;
}

function checkRm(args: Word[], st: State, verb: string, allowRecursive = true): void {
  let recursive = false;
  let force = false;
  const targets: Word[] = [];
  let opts = true;
  for (const a of args) {
    const t = a.text;
    if (opts && t === "--") { opts = false; continue; }
    if (opts && t.startsWith("--")) {
      if (t === "--recursive") recursive = true;
      if (t === "--force") force = true;
      continue;
    }
    if (opts && t.startsWith("-") && t.length > 1 && !t.includes(UNKNOWN)) {
      if (/[rR]/.test(t)) recursive = true;
      if (/f/.test(t)) force = true;
      continue;
    }
    targets.push(a);
  }
  if (!allowRecursive) recursive = false;
  const flags = recursive || force ? `${verb} -${recursive ? "r" : ""}${force ? "f" : ""}` : verb;
  for (const tw of targets) {
    for (const text of tw.brace ? braceExpand(tw.text) : [tw.text]) {
      const w = { ...tw, text };
      const j = judge(w, st);
      if (recursive) {
        if (j.protectedReason) push(st, "delete", flags, `recursive delete of ${show(w)}: ${j.protectedReason}`);
        else if (j.checkpointReason) push(st, "delete", flags, `recursive delete of ${show(w)}: ${j.checkpointReason}`);
        else if (j.unresolved && force) push(st, "delete", flags, `recursive forced delete of ${show(w)}, a target that cannot be resolved here (an empty or wrong value wipes a tree)`);
      } else {
        if (j.checkpointFile) push(st, "delete", flags, `deletes ${show(w)}: ${j.checkpointFile}`);
        else if (j.wholeDir && w.glob && j.protectedReason) push(st, "delete", flags, `deletes every file matched by ${show(w)}: ${j.protectedReason}`);
      }
    }
  }
}

function checkFind(args: Word[], cmd: SimpleCommand, pipeline: SimpleCommand[], k: number, st: State, depth: number): void {
  let i = 0;
  while (i < args.length && /^-[HLP]$|^-O\d$|^-D$/.test(args[i]!.text)) i += args[i]!.text === "-D" ? 2 : 1;
  const roots: Word[] = [];
  while (i < args.length && !/^[-(!]/.test(args[i]!.text)) roots.push(args[i++]!);
  if (roots.length === 0) roots.push({ text: ".", glob: false, brace: false });
  const expr = args.slice(i);
  const names: string[] = [];
  for (let j = 0; j < expr.length; j++) {
    if (/^-(i?name|i?path|i?wholename|i?regex)$/.test(expr[j]!.text) && expr[j + 1]) names.push(expr[j + 1]!.text);
  }
  const deletes = expr.some((x) => x.text === "-delete");
  // -exec / -execdir / -ok CMD … ; : analyze CMD with {} standing for root/<name pattern>
  for (let j = 0; j < expr.length; j++) {
    if (!/^-(exec|execdir|ok|okdir)$/.test(expr[j]!.text)) continue;
    let e = j + 1;
    while (e < expr.length && expr[e]!.text !== ";" && expr[e]!.text !== "+") e++;
    const inner = expr.slice(j + 1, e);
    const pattern = names[0] ?? UNKNOWN;
    for (const r of roots) {
      const stand: Word = { text: `${r.text.replace(/\/$/, "")}/${pattern}`, glob: true, brace: false };
      const innerArgv = inner.map((x) => (x.text.includes("{}") ? { ...stand, text: x.text.split("{}").join(stand.text) } : x));
      analyzeArgv(innerArgv, cmd, pipeline, k, st, depth + 1);
    }
    j = e;
  }
  if (!deletes) return;
  for (const r of roots) {
    const jr = judge(r, st);
    if (jr.protectedReason) push(st, "delete", "find -delete", `deletes under ${show(r)}: ${jr.protectedReason}`);
    else if (jr.checkpointReason) push(st, "delete", "find -delete", `deletes under ${show(r)}: ${jr.checkpointReason}`);
    else if (r.text.includes(UNKNOWN)) push(st, "delete", "find -delete", `deletes under ${show(r)}, a root that cannot be resolved here`);
  }
  const ck = names.find((n) => isCheckpointLike(n.replace(/[*?]/g, "x")));
  if (ck) push(st, "delete", "find -delete", `deletes files matching ${ck} (checkpoint-like)`);
  const otherFilter = expr.some((x) => /^-(newer\w*|mtime|mmin|atime|amin|ctime|cmin|size|empty|user|group|perm|links|inum|samefile)$/.test(x.text));
  if (names.length === 0 && !otherFilter) {
    const loose = roots.filter((r) => judge(r, st).unresolved);
    if (loose.length > 0) push(st, "delete", "find -delete", `deletes everything under ${loose.map(show).join(" ")} (no name filter, directory not known here)`);
  }
}

function checkTruncate(args: Word[], st: State): void {
  let size: string | null = null;
  const targets: Word[] = [];
  for (let j = 0; j < args.length; j++) {
    const t = args[j]!.text;
    if (t === "-s" || t === "--size") { size = args[++j]?.text ?? null; continue; }
    if (t.startsWith("--size=")) { size = t.slice(7); continue; }
    if (t.startsWith("-s") && t.length > 2) { size = t.slice(2); continue; }
    if (t === "-r" || t === "--reference") { size = "ref"; j++; continue; }
    if (t.startsWith("-")) continue;
    targets.push(args[j]!);
  }
  if (size === null) return;
  const shrinks = /^(0+[KMGTPEZY]?B?|-.*|<.*|\/.*|%.*|ref)$/i.test(size) || size.includes(UNKNOWN);
  if (!shrinks) return;
  for (const w of targets) {
    const j = judge(w, st);
    const p = j.checkpointReason ?? (j.protectedReason && !/home|root|top-level/.test(j.protectedReason) ? j.protectedReason : null);
    if (p) push(st, "truncate", `truncate -s ${size.replaceAll(UNKNOWN, "<?>")}`, `cuts ${show(w)} short: ${p}`);
    else if (j.unresolved || w.text.includes(UNKNOWN)) push(st, "truncate", `truncate -s ${size}`, `cuts ${show(w)} short, a file that cannot be resolved here`);
  }
}

function checkRedirect(op: string, target: Word, st: State): void {
  if (op !== ">" && op !== ">|" && op !== "&>" && op !== "<>") return;
  const t = expandTildeText(target.text, st.home);
  if (t === "/proc/sysrq-trigger") { push(st, "power", "> /proc/sysrq-trigger", "a magic-sysrq write can reboot or power off the machine at once"); return; }
  if (isDevice(t)) { push(st, "disk", `${op} ${t}`, `writes raw onto device ${t}`); return; }
  if (op === "<>") return;
  const base = t.slice(t.lastIndexOf("/") + 1);
  if (CKPT_EXT.test(base) || (CKPT_NAME.test(base) && /\.[a-z0-9]+$/i.test(base))) push(st, "truncate", `${op} file`, `empties checkpoint ${show(target)}`);
}

function checkScancel(name: string, args: Word[], st: State): void {
  const own = new Set((st.ctx.ownJobIds ?? []).map((x) => String(x).split("_")[0]!.split(".")[0]!));
  const filterOpts = /^(-u|--user|-A|--account|-n|--name|--jobname|-p|--partition|-w|--nodelist|-q|--qos|-t|--state|-R|--reservation|-M|--clusters|--me|--wckey)(=.*)?$/;
  const ids: string[] = [];
  let filtered = false;
  for (let j = 0; j < args.length; j++) {
    const t = args[j]!.text;
    if (t.startsWith("-")) {
      if (filterOpts.test(t)) { filtered = true; if (!t.includes("=") && t !== "--me") j++; }
      else if (t === "-s" || t === "--signal") j++;
      continue;
    }
    ids.push(...t.split(/[,\s]+/).filter(Boolean));
  }
  if (name === "qdel" || name === "bkill") {
    if (ids.includes("all") || ids.includes("0")) filtered = true;
  }
  if (filtered && ids.length === 0) { push(st, "scancel", name, "cancels jobs by filter (user/name/partition), not by the ids of our runs"); return; }
  const foreign = ids.filter((id) => !own.has(id.split("_")[0]!.split(".")[0]!));
  if (foreign.length > 0) {
    const unknown = foreign.some((x) => x.includes(UNKNOWN));
    push(st, "scancel", name, unknown ? "cancels a job id that cannot be resolved here (not provably one of our runs)" : `cancels job ${foreign.slice(0, 4).join(", ")}, which is not one of this server's runs`);
  }
}

function checkHttp(name: string, texts: string[], st: State): void {
  const urls = texts.filter((t) => /^https?:\/\//i.test(t) || /\.(com|io|ai|art)\//.test(t));
  const method = (() => {
    for (let j = 0; j < texts.length; j++) {
      const t = texts[j]!;
      if (t === "-X" || t === "--request" || t === "--method") return (texts[j + 1] ?? "").toUpperCase();
      if (t.startsWith("-X") && t.length > 2) return t.slice(2).toUpperCase();
      if (t.startsWith("--request=") || t.startsWith("--method=")) return t.slice(t.indexOf("=") + 1).toUpperCase();
    }
    return name === "http" || name === "https" || name === "xh" ? (texts.find((t) => /^(DELETE|POST|GET|PUT|PATCH)$/i.test(t)) ?? "").toUpperCase() : "";
  })();
  const body = texts.join(" ");
  for (const u of urls) {
    if (/instance-operations\/terminate|\/instances?\/[^/\s]+\/(terminate|destroy|release)|\/(terminate|destroy|release)(\b|_)|podTerminate|instance\/release/i.test(u)) {
      push(st, "instance", `${name} ${u.replace(/^https?:\/\//, "").split("/")[0]} terminate`, `calls a provider API that ends the instance (${u.replaceAll(UNKNOWN, "<?>").slice(0, 80)})`);
      return;
    }
    if (method === "DELETE" && PROVIDER_HOSTS.test(u)) {
      push(st, "instance", `${name} DELETE`, `deletes a provider resource (${u.replaceAll(UNKNOWN, "<?>").slice(0, 80)})`);
      return;
    }
  }
  if (/podTerminate|podRemove|instanceTerminate|destroyInstance|terminateInstance/.test(body)) push(st, "instance", `${name} (GraphQL)`, "sends a provider API mutation that terminates an instance");
}

function checkInterpreter(name: string, rest: Word[], cmd: SimpleCommand, st: State, depth: number): void {
  const flag = rest.findIndex((x) => /^-[a-zA-Z]*[ceE]$/.test(x.text) || x.text === "--eval");
  let code = flag >= 0 ? rest[flag + 1]?.text ?? "" : "";
  if (/awk$/.test(name)) code = rest.find((x) => !x.text.startsWith("-"))?.text ?? "";
  if (!code && cmd.stdinText !== undefined && (rest.length === 0 || rest.some((x) => x.text === "-"))) code = cmd.stdinText;
  if (!code) return;
  const lit = `(?:"((?:[^"\\\\]|\\\\.)*)"|'((?:[^'\\\\]|\\\\.)*)')`;
  const sysRe = new RegExp(`\\b(?:os\\.system|os\\.popen|system|popen|exec|execSync|spawnSync|qx|subprocess\\.(?:run|call|check_call|check_output|Popen|getoutput|getstatusoutput))\\s*\\(\\s*(?:\\[([^\\]]*)\\]|${lit})`, "g");
  let m: RegExpExecArray | null;
  while ((m = sysRe.exec(code)) !== null) {
    if (m[1] !== undefined) {
      const parts = [...m[1].matchAll(new RegExp(lit, "g"))].map((x) => x[1] ?? x[2] ?? "");
      analyzeText(parts.map((p) => `'${p.replace(/'/g, "'\\''")}'`).join(" "), st, depth + 1);
    } else analyzeText(m[2] ?? m[3] ?? "", st, depth + 1);
  }
  const bt = /`([^`]+)`/g; // perl/ruby backticks
  if (name === "perl" || name === "ruby") while ((m = bt.exec(code)) !== null) analyzeText(m[1]!, st, depth + 1);
  const rmtree = new RegExp(`\\b(rmtree|rmdir|remove|unlink|removedirs|rm_rf|rm_r|rmSync|rmdirSync|unlinkSync)\\s*\\(\\s*${lit}`, "g");
  while ((m = rmtree.exec(code)) !== null) {
    const fn = m[1]!;
    const target: Word = { text: m[2] ?? m[3] ?? "", glob: false, brace: false };
    const recursive = /rmtree|rm_rf|rm_r|removedirs/.test(fn) || (/rmSync|rmdirSync/.test(fn) && /recursive\s*:\s*true/.test(code));
    checkRm(recursive ? [{ text: "-rf", glob: false, brace: false }, target] : [target], st, `${name} ${fn}`);
  }
  const pathUnlink = new RegExp(`Path\\(\\s*${lit}\\s*\\)\\.unlink`, "g");
  while ((m = pathUnlink.exec(code)) !== null) checkRm([{ text: m[1] ?? m[2] ?? "", glob: false, brace: false }], st, `${name} Path.unlink`);
}

/** the literal text an `echo …`/`printf …` (optionally through base64 -d) pipes into a shell, or null */
function literalFeed(up: SimpleCommand[]): string | null {
  const first = up[0];
  if (!first || first.argv.length === 0) return null;
  const n0 = cmdName(first.argv[0]!);
  let text: string;
  if (n0 === "echo") text = words(first.argv.slice(1).filter((x, idx) => !(idx === 0 && /^-[neE]+$/.test(x.text)))).join(" ");
  else if (n0 === "printf") text = first.argv[1]?.text.replace(/\\n/g, "\n") ?? "";
  else if (n0 === "cat" && first.stdinText !== undefined) text = first.stdinText;
  else return null;
  for (const stage of up.slice(1)) {
    const n = cmdName(stage.argv[0] ?? { text: "", glob: false, brace: false });
    const args = words(stage.argv.slice(1));
    if (n === "base64" && args.some((a) => a === "-d" || a === "--decode" || a === "-D")) {
      try {
        text = Buffer.from(text.replace(/\s+/g, ""), "base64").toString("utf8");
      } catch {
        return null;
      }
    }
    else if (/^(tr|sed|xxd|rev|openssl|gunzip|zcat|xz|base32|perl|awk)$/.test(n)) return OPAQUE;
    else if (n !== "cat") return null;
  }
  return text;
}
const OPAQUE = "\u0002opaque";

function quoteWord(w: Word): string {
  return `'${w.text.replace(/'/g, "'\\''")}'`;
}
