/**
 * Destructive-command detection for every shell line this server sends to a box (remote_exec commands,
 * launch_queue cells, scripts of the pushed tree they run). Pure: the line is read with our own shell
 * reader (shell.ts), never run. The classes live in destroy/: providers (machines and cluster objects),
 * power (now or scheduled), fs (deleting/overwriting protected data at any depth), kill (pattern kills,
 * foreign jobs), interp (interpreter code), opaque (what cannot be read is refused, not guessed);
 * destroy/core.ts unwraps wrappers and dispatches, destroy/paths.ts says what a path reaches.
 *
 * Hiding does not help: quotes, backslashes, `$'\x72\x6d'`, absolute paths and other names of the same
 * CLI, options before the verb, `;` `&&` `|` newlines, `$(…)`, backticks, brace lists, variables set on
 * the line, field splitting, here-docs, `echo … | sh`, eval, `bash -c`, sudo/env/nohup/timeout/xargs/
 * ssh/tmux/docker exec/pipx run/uv run …, python -c / -m, cron and at. Text that is only printed or
 * searched (`echo shutdown`, `grep destroy log.txt`) is not a command.
 */
import { RefusalCode, RefusalError, type Refusal } from "../common/result.js";
import { analyzeArgv, analyzeText } from "./destroy/core.js";
import { expandTildeText, normAbs } from "./destroy/paths.js";
import type { DestroyContext, DestroyFinding, State } from "./destroy/state.js";

export type { DestroyContext, DestroyFinding, DestroyKind } from "./destroy/state.js";

function newState(ctx: DestroyContext): State {
  const home = normAbs(ctx.home && ctx.home.startsWith("/") ? ctx.home : "/root") ?? "/root";
  // the box's interpreter variable is set by rgt, not by the agent: it names python
  const env = new Map<string, string>([["HOME", home], ["RGT_PYTHON", "python3"]]);
  for (const [k, v] of Object.entries(ctx.env ?? {})) env.set(k, v);
  const cwd = ctx.cwd && ctx.cwd.startsWith("/") ? normAbs(expandTildeText(ctx.cwd, home)) : ctx.cwd?.startsWith("~") ? normAbs(expandTildeText(ctx.cwd, home)) : null;
  if (cwd) env.set("PWD", cwd);
  const st: State = {
    env,
    cwd,
    home,
    ctx,
    // the home dir (and what holds it) is protected by the home rule — itself and ~/* — not at any depth:
    // caches and builds under it may go. Data/durable dirs under home stay protected at any depth.
    // ~/.ssh holds the keys this server logs in with: protected at any depth (known_hosts excepted)
    protectedNorm: [...(ctx.protectedPaths ?? []).map((p) => normAbs(expandTildeText(p, home))).filter((p): p is string => !!p && p !== "/" && p !== home && !home.startsWith(p + "/")), `${home === "/" ? "" : home}/.ssh`, "/etc/ssh", "/etc/passwd", "/etc/shadow", "/etc/sudoers"],
    out: [],
    readScripts: new Set(),
    subs: [],
    text: (src, depth) => analyzeText(src, st, depth),
    argv: (argv, at) => analyzeArgv(argv, at, st),
    written: new Map(),
    aliases: new Map(),
    line: "",
    resolvePath: (p) => {
      const t = expandTildeText(p, home);
      if (t.includes("\u0001")) return null;
      return t.startsWith("/") ? normAbs(t) : st.cwd ? normAbs(`${st.cwd}/${t}`) : normAbs(`/\u0002cwd/${t}`);
    },
    readPushed: (p) => {
      const abs = st.resolvePath(p);
      if (!abs || st.readScripts.has(abs)) return undefined;
      if (st.written.has(abs)) {
        st.readScripts.add(abs);
        const w = st.written.get(abs);
        // a script this line wrote with text we cannot read, then runs: what it runs cannot be read either
        return w === null ? "\u0001" : w;
      }
      if (!ctx.pushedFile || abs.startsWith("/\u0002cwd/")) return undefined;
      const body = ctx.pushedFile(abs);
      if (body !== undefined) st.readScripts.add(abs);
      return body;
    },
  };
  return st;
}

export function findDestroys(command: string, ctx: DestroyContext): DestroyFinding[] {
  if (typeof command !== "string" || command.trim() === "") return [];
  const st = newState(ctx);
  analyzeText(command, st, 0);
  const seen = new Set<string>();
  return st.out.filter((f) => {
    const k = `${f.kind}|${f.verb}|${f.detail}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const REMEDY = {
  machine:
    "Destroying, releasing or powering off a machine (or deleting cluster objects / others' jobs) only goes through request_teardown, which checks for live runs, a verified pull receipt and a human approval.",
  kill: "To stop a run this server started, use stop_run: it kills exactly the process groups recorded for that run, never by a name pattern.",
  data:
    "Data, checkpoints and outputs on the box are never deleted or overwritten through this server: pull them with pull_verify first, then, if you still want them gone, delete them by hand from your own terminal. Scratch paths such as /tmp/..., ~/.cache/... or ./build are fine.",
  opaque:
    "Write the command out literally: no command substitution or variable in command position, no decoded text piped into a shell or eval. If it must be generated, put it in a script file of the project and push it with push_code, so the guard can read it. A script fetched at run time (curl … | sh, wget … && bash it): download it to your machine, read it, add it to the project, push_code it and run it by path — or install the tool with pip, conda or apt instead.",
  lockout:
    "Changing how the box is reached (sshd, the firewall, account locks, ~/.ssh, /etc/ssh) can cut this server and you off from the box and its data; it is never done through this server. Do it by hand from your own terminal if you must.",
};

/** The refusal for a set of findings (null when there are none). */
export function destroyRefusal(found: DestroyFinding[], field = "command"): { refusal: Refusal; destroys: DestroyFinding[] } | null {
  if (found.length === 0) return null;
  const kinds = new Set(found.map((f) => f.kind));
  const list = found.slice(0, 3).map((f) => `${f.verb}: ${f.detail}`).join("; ");
  const more = found.length > 3 ? ` (+${found.length - 3} more)` : "";
  const remedies: string[] = [];
  if (["instance", "power", "k8s", "scancel"].some((k) => kinds.has(k as never))) remedies.push(REMEDY.machine);
  if (kinds.has("kill") || kinds.has("scancel")) remedies.push(REMEDY.kill);
  if (kinds.has("delete") || kinds.has("truncate") || kinds.has("disk")) remedies.push(REMEDY.data);
  if (kinds.has("lockout")) remedies.push(REMEDY.lockout);
  if (kinds.has("obfuscated")) remedies.push(REMEDY.opaque);
  return {
    refusal: { code: RefusalCode.DESTROY_UNAPPROVED, reason: `${field}: would do something destructive: ${list}${more}. Nothing was run.`.slice(0, 600), remedy: remedies.join(" ") },
    destroys: found.slice(0, 10),
  };
}

export function assertNotDestructive(command: string, ctx: DestroyContext): void {
  const r = destroyRefusal(findDestroys(command, ctx));
  if (r) throw new RefusalError(r.refusal.code, r.refusal.reason, r.refusal.remedy, { destroys: r.destroys });
}
