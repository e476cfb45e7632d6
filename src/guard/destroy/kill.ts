/**
 * Stopping processes and jobs that are not provably this server's own: pattern kills (pkill, killall,
 * `kill $(pgrep …)`, `pgrep … | xargs kill`, `fuser -k`), the detach servers (`tmux kill-server`,
 * `tmux kill-session`, `screen -X quit`), `kill -1` / `kill 1`, and scheduler cancels of foreign jobs.
 * The remedy is stop_run, which kills exactly the process groups recorded for a run.
 */
import { UNKNOWN, type Word } from "../shell.js";
import { positionals, push, words, type At, type State } from "./state.js";

export function checkKill(name: string, rest: Word[], at: At, st: State): boolean {
  const texts = words(rest);
  switch (name) {
    case "pkill": case "killall": case "killall5": case "skill": case "slay": case "pgrep-kill":
      if (texts.some((t) => /^-(0|SIG0)$/.test(t) || t === "--signal=0")) return true; // a probe, nothing is signalled
      if (!texts.some((t) => t === "--help" || t === "-l" || t === "--list" || t === "-V")) push(st, "kill", name, "kills processes by name pattern: it can hit another run or the detach server itself");
      return true;
    case "fuser":
      if (texts.some((t) => /^-[a-zA-Z]*k/.test(t))) push(st, "kill", "fuser -k", "kills every process using a file or port");
      return true;
    case "kill": {
      if (texts.some((t) => t === "-l" || t === "-L" || t === "--list")) return true;
      // signal 0 only probes whether a process exists
      if (texts.some((t, j) => /^-(0|SIG0)$/.test(t) || ((t === "-s" || t === "-n") && texts[j + 1] === "0"))) return true;
      const pids = killTargets(texts);
      if (pids.includes("0")) push(st, "kill", "kill 0", "signals the whole process group of the caller: it can end a run or the detach server");
      else if (pids.includes("-1")) push(st, "power", "kill -1", "signals every process of the user (ends every run on the box)");
      else if (pids.includes("1")) push(st, "power", "kill 1", "signals PID 1 (the box/container init)");
      else if (pids.some((p) => p.includes(UNKNOWN)) && st.subs.some((b) => /\bsshd?\b[\w.-]*\.pid|\/run\/sshd|tmux|\.rgt\//.test(b))) push(st, "kill", "kill (sshd/tmux pid)", "kills the ssh daemon or the detach server by its pid file: every way back in, or every run, ends");
      else if (pids.some((p) => p.includes(UNKNOWN)) && (st.subs.some(isPatternLookup) || listsProcesses(at))) push(st, "kill", "kill (from a process listing)", "kills whatever a name pattern or process listing matched (pgrep, ps, lsof, nvidia-smi …): it can hit another run or the detach server");
      return true;
    }
    case "tmux": {
      const sub = positionals(texts, new Set(["-L", "-S", "-f", "-c"]))[0];
      if (sub === "kill-server") push(st, "kill", "tmux kill-server", "ends every tmux session on the box, every detached run with them");
      else if (sub === "kill-session" || sub === "kill-window" || sub === "kill-pane") {
        // a session of a run this server launched (rgt-…), or one we cannot name, is stopped with stop_run
        const ti = texts.findIndex((x) => x === "-t" || /^-t./.test(x));
        const t = ti < 0 ? undefined : texts[ti] === "-t" ? texts[ti + 1] : texts[ti]!.slice(2);
        if (texts.includes("-a") || t === undefined || /^=?rgt/.test(t) || t.includes(UNKNOWN)) push(st, "kill", `tmux ${sub}`, "ends a run's tmux session (or all others); a run is stopped with stop_run");
      }
      return false; // tmux new-session … still carries a command to judge
    }
    case "screen":
      if (texts.some((t) => t === "quit" || t === "kill") && texts.includes("-X")) { push(st, "kill", "screen -X quit", "ends a screen session by name"); return true; }
      return false;
    case "scancel": case "qdel": case "bkill": case "canceljob":
      checkScancel(name, texts, st);
      return true;
  }
  return false;
}

/** after the signal option, what kill is aimed at */
function killTargets(texts: string[]): string[] {
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
  return pids;
}

const LISTERS = /(^|[\s|;&({,\/])(pgrep|pidof|killall|pkill|ps|lsof|fuser|nvidia-smi|pstree|ss|netstat|top|htop|pgrep-kill)([\s|;&)},]|$)/;

/** a `$(pgrep …)`/`$(ps …)`/`$(nvidia-smi --query-compute-apps=pid …)` body: kill of its output is a pattern kill */
export function isPatternLookup(body: string): boolean {
  return LISTERS.test(body);
}

/** an earlier stage of the pipeline lists processes (`pgrep x | xargs kill`, `nvidia-smi … | xargs kill -9`) */
export function listsProcesses(at: At): boolean {
  return at.pipeline.slice(0, at.k).some((c) => c.argv.some((w) => LISTERS.test(w.text.slice(w.text.lastIndexOf("/") + 1)) && !/\s/.test(w.text)));
}

function checkScancel(name: string, texts: string[], st: State): void {
  const own = new Set((st.ctx.ownJobIds ?? []).map((x) => String(x).split("_")[0]!.split(".")[0]!));
  const filterOpts = /^(-u|--user|-A|--account|-n|--name|--jobname|-p|--partition|-w|--nodelist|-q|--qos|-t|--state|-R|--reservation|-M|--clusters|--me|--wckey)(=.*)?$/;
  const ids: string[] = [];
  let filtered = false;
  for (let j = 0; j < texts.length; j++) {
    const t = texts[j]!;
    if (t.startsWith("-")) {
      if (filterOpts.test(t)) { filtered = true; if (!t.includes("=") && t !== "--me") j++; }
      else if (t === "-s" || t === "--signal") j++;
      continue;
    }
    ids.push(...t.split(/[,\s]+/).filter(Boolean));
  }
  if ((name === "qdel" || name === "bkill") && (ids.includes("all") || ids.includes("0"))) filtered = true;
  if (filtered && ids.length === 0) { push(st, "scancel", name, "cancels jobs by filter (user/name/partition), not by the ids of our runs"); return; }
  const foreign = ids.filter((id) => !own.has(id.split("_")[0]!.split(".")[0]!));
  if (foreign.length === 0) return;
  const unknown = foreign.some((x) => x.includes(UNKNOWN));
  push(st, "scancel", name, unknown ? "cancels a job id that cannot be resolved here (not provably one of our runs)" : `cancels job ${foreign.slice(0, 4).join(", ")}, which is not one of this server's runs`);
}
