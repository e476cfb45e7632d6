/**
 * Commands that only run another command: privilege and environment wrappers (sudo, env, nohup, nice,
 * timeout, flock, chroot …), package runners (pipx run, uvx, uv run, poetry run, conda run, npx), and
 * those that carry a command as text or argv (xargs, watch, su -c, ssh, tmux, screen, docker/kubectl
 * exec, systemd-run). `unwrap` returns the argv from the real command word on, or null when the inner
 * command was judged here already.
 */
import { UNKNOWN, type Word } from "../shell.js";
import { baseName } from "./opaque.js";
import { listsProcesses } from "./kill.js";
import { checkCarried } from "./carried.js";
import { push, quoteWord, words, type At, type State } from "./state.js";

/** Skip leading options of a wrapper. `withArg` lists options that take a separate value. */
function skipOpts(argv: Word[], i: number, withArg: Set<string>): number {
  while (i < argv.length) {
    const t = argv[i]!.text;
    if (t === "--") return i + 1;
    if (!t.startsWith("-") || t === "-") return i;
    // a cluster of short options whose last one takes a value: `sudo -iu root`, `sudo -nEu root`
    const clusterTakesArg = /^-[A-Za-z]{2,}$/.test(t) && withArg.has(`-${t[t.length - 1]}`);
    i += withArg.has(t) || clusterTakesArg ? 2 : 1;
  }
  return i;
}

const S = (...xs: string[]): Set<string> => new Set(xs);
/** plain prefix wrappers: options (those with a value listed) then the command */
const PREFIX: Record<string, Set<string>> = {
  sudo: S("-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "-R", "--user", "--group", "--chdir", "--close-from", "--prompt"),
  doas: S("-u", "-C"), nohup: S(), setsid: S(), command: S(), builtin: S(), exec: S("-a"), time: S("-f", "-o", "--format", "--output"),
  stdbuf: S("-i", "-o", "-e"), unbuffer: S(), nocache: S(), catchsegv: S(), strace: S("-e", "-o", "-p", "-s", "-u"), ltrace: S("-e", "-o", "-p"),
  chronic: S(), caffeinate: S(), "systemd-run": S("-u", "--unit", "-p", "--property", "--uid", "--gid", "-E", "--setenv", "--on-active", "--on-calendar", "--on-boot", "--description", "-M", "--machine", "--slice"),
  srun: S("-p", "-n", "-N", "-c", "-t", "-J", "-A", "-q", "-w", "-o", "-e", "-G", "--gres", "--partition", "--time", "--job-name"),
  salloc: S("-p", "-n", "-N", "-c", "-t", "-J", "-A", "-q", "-w", "-G"), mpirun: S("-n", "-np", "-N", "-H", "--host", "--hostfile", "-x"),
  mpiexec: S("-n", "-np", "-N", "-H", "--host", "-x"), nice: S("-n", "--adjustment"), ionice: S("-c", "-n", "-p", "--class", "--classdata"),
  chrt: S(), taskset: S("-c", "--cpu-list"), numactl: S("-C", "-N", "-m", "-i", "-p", "--physcpubind", "--cpunodebind", "--membind", "--interleave", "--preferred"),
  cgexec: S("-g"), prlimit: S(), firejail: S(), proxychains: S("-f"), proxychains4: S("-f"), tsocks: S(), torsocks: S(), faketime: S(), fakeroot: S(),
  unshare: S("--mount-proc", "-S", "-G", "--setuid", "--setgid"), nsenter: S("-t", "--target", "-S", "-G"), sg: S(), script: S(), "run-one": S(), retry: S("-t", "--tries", "-d", "--delay"),
  pv: S(), "ts": S(), "dbus-launch": S(), xvfb_run: S(), "xvfb-run": S("-s", "-n", "-e", "-f"), parallel: S("-j", "--jobs", "-S", "--sshlogin"),
  busybox: S(), toybox: S(), "ip-netns-exec": S(),
};
/** package runners: `pipx run X`, `uv run X`, `poetry run X`, `conda run -n env X` */
const RUNNER: Record<string, { sub: string | null; withArg: Set<string> }> = {
  pipx: { sub: "run", withArg: S("--spec", "--python") }, uvx: { sub: null, withArg: S("--from", "--with", "--python", "-p") },
  uv: { sub: "run", withArg: S("--with", "--python", "-p", "--from", "--project", "--directory", "--package") },
  poetry: { sub: "run", withArg: S("-C", "--directory") }, pdm: { sub: "run", withArg: S() }, hatch: { sub: "run", withArg: S() }, pipenv: { sub: "run", withArg: S() },
  conda: { sub: "run", withArg: S("-n", "--name", "-p", "--prefix", "--cwd") }, mamba: { sub: "run", withArg: S("-n", "--name", "-p", "--prefix") },
  micromamba: { sub: "run", withArg: S("-n", "--name", "-p", "--prefix") }, npx: { sub: null, withArg: S("-p", "--package") },
  pnpm: { sub: "exec", withArg: S() }, yarn: { sub: "exec", withArg: S() }, bunx: { sub: null, withArg: S() }, rye: { sub: "run", withArg: S() }, pixi: { sub: "run", withArg: S("-e", "--environment") },
};

export function unwrap(argv0: Word[], at: At, st: State): Word[] | null {
  let argv = argv0;
  let i = 0;
  for (let guard = 0; guard < 64 && i < argv.length; guard++) {
    const w = argv[i]!;
    if (/^[A-Za-z_][A-Za-z0-9_]*\+?=/.test(w.text)) { i++; continue; }
    const name = baseName(w.text);
    if (name === "command" && argv.slice(i + 1).some((x) => x.text === "-v" || x.text === "-V")) return null; // `command -v rm` only looks up
    if (PREFIX[name]) {
      i = skipOpts(argv, i + 1, PREFIX[name]!);
      if ((name === "chrt" || name === "taskset") && i < argv.length && /^[0-9a-fx,-]+$/i.test(argv[i]!.text) && !argv.slice(0, i).some((x) => x.text === "-c" || x.text === "--cpu-list")) i++;
      if (name === "script") {
        const c = argv.findIndex((x) => /^-[a-zA-Z]*c$/.test(x.text) || x.text === "--command");
        if (c >= 0) { st.text(argv[c + 1]?.text ?? "", at.depth + 1); return null; }
        const eq = argv.find((x) => x.text.startsWith("--command="));
        if (eq) { st.text(eq.text.slice(10), at.depth + 1); return null; }
      }
      if (name === "parallel") { st.text(words(argv.slice(i).filter((x) => x.text !== ":::")).join(" "), at.depth + 1); return null; }
      continue;
    }
    const run = RUNNER[name];
    if (run) {
      let j = skipOpts(argv, i + 1, run.withArg);
      if (run.sub !== null) { if (argv[j]?.text !== run.sub) return argv.slice(i); j = skipOpts(argv, j + 1, run.withArg); }
      i = j;
      continue;
    }
    switch (name) {
      case "env": {
        let j = i + 1;
        while (j < argv.length) {
          const a = argv[j]!.text;
          if (a === "-S" || a === "--split-string") { st.text([argv[j + 1]?.text ?? "", ...argv.slice(j + 2).map(quoteWord)].join(" "), at.depth + 1); return null; }
          if (a.startsWith("-S")) { st.text(a.slice(2), at.depth + 1); return null; }
          if (a === "-u" || a === "--unset" || a === "-C" || a === "--chdir") { j += 2; continue; }
          if (a.startsWith("-") || /^[A-Za-z_][A-Za-z0-9_]*=/.test(a)) { j++; continue; }
          // `env $(cat .env | xargs) python app.py`: a dotenv file's NAME=VALUE lines, then the command
          if (a === UNKNOWN && j + 1 < argv.length && !argv[j + 1]!.text.includes(UNKNOWN) && st.subs.some((b) => /^\s*(cat|grep\b[^|]*)\s+[\w./-]*\.env\b[^|]*(\|\s*xargs\s*)?$|^\s*xargs\s*<\s*[\w./-]*\.env\s*$/.test(b))) { j++; continue; }
          break;
        }
        i = j;
        continue;
      }
      case "timeout": i = skipOpts(argv, i + 1, S("-s", "--signal", "-k", "--kill-after")) + 1; continue;
      case "chroot": i = skipOpts(argv, i + 1, S("--userspec", "--groups")) + 1; continue;
      case "ip": if (argv[i + 1]?.text === "netns" && argv[i + 2]?.text === "exec") { i += 4; continue; } return argv.slice(i);
      case "flock": {
        i = skipOpts(argv, i + 1, S("-w", "--timeout", "-E", "--conflict-exit-code")) + 1;
        const c = argv[i]?.text;
        if (c === "-c" || c === "--command") { st.text(argv[i + 1]?.text ?? "", at.depth + 1); return null; }
        continue;
      }
      case "watch": st.text(words(argv.slice(skipOpts(argv, i + 1, S("-n", "--interval", "-d", "-q", "--equexit")))).join(" "), at.depth + 1); return null;
      case "xargs": xargs(argv, i, at, st); return null;
      case "su": case "runuser": {
        const j = argv.findIndex((x, idx) => idx > i && (/^-[a-zA-Z]*c$/.test(x.text) || x.text === "--command"));
        if (j > 0) { st.text(argv[j + 1]?.text ?? "", at.depth + 1); return null; }
        const eq = argv.find((x, idx) => idx > i && x.text.startsWith("--command="));
        if (eq) { st.text(eq.text.slice(10), at.depth + 1); return null; }
        // `runuser -u USER [--] CMD …` runs CMD itself
        if (name === "runuser" && argv.slice(i + 1).some((x) => x.text === "-u" || x.text === "--user" || /^--user=/.test(x.text))) {
          i = skipOpts(argv, i + 1, S("-u", "--user", "-g", "--group", "-G", "--supp-group", "-s", "--shell", "-w", "--whitelist-environment"));
          continue;
        }
        return null;
      }
      case "ssh": case "mosh": case "dbclient": {
        checkCarried(name, argv.slice(i + 1), at, st);
        const j = skipOpts(argv, i + 1, S("-p", "-i", "-l", "-o", "-F", "-J", "-L", "-R", "-D", "-b", "-c", "-E", "-e", "-m", "-O", "-Q", "-S", "-w", "-W", "-B", "-I")) + 1;
        if (j < argv.length) st.text(words(argv.slice(j)).join(" "), at.depth + 1);
        return null;
      }
      case "tmux": tmuxCommand(argv, i, at, st); return argv.slice(i);
      case "screen": {
        let j = i + 1;
        while (j < argv.length && argv[j]!.text.startsWith("-")) j += /S$/.test(argv[j]!.text) || argv[j]!.text === "-c" ? 2 : 1;
        if (argv.slice(i).some((x) => x.text === "-X")) return argv.slice(i);
        argv = argv.slice(j);
        i = 0;
        continue;
      }
      case "kubectl": case "docker": case "podman": case "oc": case "nerdctl": {
        const ex = argv.findIndex((x, idx) => idx > i && (x.text === "exec" || x.text === "run"));
        if (ex < 0) return argv.slice(i);
        const dd = argv.findIndex((x, idx) => idx > ex && x.text === "--");
        if (dd > 0) { argv = argv.slice(dd + 1); i = 0; continue; }
        if (name === "kubectl" || name === "oc") return argv.slice(i);
        // docker exec CONTAINER CMD / docker run IMAGE CMD
        const j = skipOpts(argv, ex + 1, S("-u", "--user", "-w", "--workdir", "-e", "--env", "-v", "--volume", "--name", "-p", "--publish", "--gpus", "--network", "--entrypoint", "--shm-size", "--ipc", "-m", "--memory", "--env-file", "--mount", "--platform")) + 1;
        if (j >= argv.length) return null;
        // host directories mounted into the container: the inner command's paths under a mount point are the host's
        const mounts = dockerMounts(argv.slice(ex + 1, j - 1).map((x) => x.text));
        argv = argv.slice(j).map((x) => hostPath(x, mounts));
        i = 0;
        continue;
      }
    }
    break;
  }
  return argv.slice(i);
}

/** tmux new-session / new-window / split-window / respawn-* / run-shell / send-keys carry a shell command */
function tmuxCommand(argv: Word[], i: number, at: At, st: State): void {
  const sub = argv.findIndex((x, idx) => idx > i && /^(new-session|new|new-window|neww|split-window|splitw|respawn-pane|respawnp|respawn-window|respawnw|run-shell|run|send-keys|send)$/.test(x.text));
  if (sub < 0) return;
  const withArg = S("-s", "-t", "-n", "-c", "-x", "-y", "-F", "-e", "-l", "-f", "-N");
  const pos: string[] = [];
  for (let j = sub + 1; j < argv.length; j++) {
    const a = argv[j]!.text;
    if (withArg.has(a)) { j++; continue; }
    if (a.startsWith("-") && a.length > 1) continue;
    if (a === "Enter" || a === "C-m" || a === "KPEnter") continue;
    pos.push(a);
  }
  st.text(pos.join(" "), at.depth + 1);
}

function xargs(argv: Word[], i: number, at: At, st: State): void {
  let j = i + 1;
  let repl: string | null = null;
  const withArg = S("-n", "-L", "-P", "-I", "-i", "-d", "-s", "-a", "-E", "-e", "--max-args", "--max-procs", "--delimiter", "--arg-file", "--replace", "--max-lines");
  while (j < argv.length && argv[j]!.text.startsWith("-")) {
    const a = argv[j]!.text;
    if (a === "-I" || a === "--replace") { repl = argv[j + 1]?.text ?? "{}"; j += 2; continue; }
    if (a.startsWith("-I") && a.length > 2) { repl = a.slice(2); j++; continue; }
    if (a.startsWith("--replace=")) { repl = a.slice(10); j++; continue; }
    j += withArg.has(a) ? 2 : 1;
  }
  const inner = argv.slice(j);
  if (inner.length === 0) return;
  // `nvidia-smi --query-compute-apps=pid … | xargs kill -9`: pids a process listing produced (a pid file is the caller's own)
  const innerName = baseName(inner[0]!.text);
  if (innerName === "kill" && listsProcesses(at) && !inner.slice(1).some((x) => /^-(0|SIG0|l|L)$/.test(x.text) || x.text === "--list")) {
    push(st, "kill", "xargs kill", "kills whatever a process listing produced (ps, pgrep, lsof, nvidia-smi …): it can hit another run or the detach server");
    return;
  }
  // upstream paths stand for "files under them" (`find DIR … | xargs rm` deletes inside DIR)
  const upstream = at.pipeline
    .slice(0, at.k)
    .flatMap((c) => c.argv.slice(1))
    .filter((x) => !x.text.startsWith("-"))
    .slice(0, 16)
    .map((x) => (x.text.includes("/") || x.text === "." ? { ...x, text: x.text.replace(/\/+$/, "") + "/*", glob: true } : x));
  const unknownW: Word = { text: UNKNOWN, glob: false, brace: false };
  const r = repl;
  const newArgv = r ? inner.map((x) => (x.text.includes(r) ? { ...x, text: x.text.split(r).join(UNKNOWN) } : x)) : [...inner, unknownW];
  st.argv([...newArgv, ...upstream], at);
}

/** `-v SRC:DST[:mode]`, `--volume=SRC:DST`, `--mount type=bind,source=SRC,target=DST`: [container dir, host dir] pairs */
function dockerMounts(opts: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let k = 0; k < opts.length; k++) {
    const t = opts[k]!;
    const v = t === "-v" || t === "--volume" ? opts[k + 1] : t.startsWith("--volume=") ? t.slice(9) : t.startsWith("-v") && t.length > 2 ? t.slice(2) : null;
    if (v) { const [src, dst] = v.split(":"); if (src && dst && /^[/~$]/.test(src)) out.push([dst!.replace(/\/+$/, "") || "/", src!]); }
    const m = t === "--mount" ? opts[k + 1] : t.startsWith("--mount=") ? t.slice(8) : null;
    if (m) {
      const kv = Object.fromEntries(m.split(",").map((x) => { const e = x.indexOf("="); return e < 0 ? [x, ""] : [x.slice(0, e), x.slice(e + 1)]; }));
      const src = kv.source ?? kv.src;
      const dst = kv.target ?? kv.destination ?? kv.dst;
      if (src && dst) out.push([dst.replace(/\/+$/, "") || "/", src]);
    }
  }
  return out.sort((a, b) => b[0].length - a[0].length);
}

function hostPath(w: Word, mounts: [string, string][]): Word {
  for (const [dst, src] of mounts) {
    if (w.text === dst || w.text.startsWith(dst === "/" ? "/" : dst + "/")) return { ...w, text: src.replace(/\/+$/, "") + (dst === "/" ? w.text : w.text.slice(dst.length)) };
  }
  return w;
}
