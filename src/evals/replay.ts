/**
 * The replay half of the evals: tool calls through the real built server (stdio, SDK client) against
 * lab boxes. Cases that declare the same box spec share one box; every box of a run lives in one lab
 * and is reached by one server process, so a full replay starts few sshds.
 *
 * The lab modules (src/lab/) are loaded at run time so the knowledge half works without them.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { EvalBoxSpec, EvalCase, Replay, Step } from "./cases.js";
import { checkOutcome, evalField, parseFieldExpr, substituteArgs, type ToolOutcome } from "./expect.js";

/** The parts of src/lab/box.ts and src/lab/client.ts the harness uses. */
interface LabLike {
  env: Record<string, string>;
  /** a directory first on the server's PATH (src/lab/box.ts) */
  localBin?: string;
  /** a port that is not sshd, as an ssh alias (src/lab/ports.ts via Lab.fakePort) */
  fakePort?(alias: string, spec: { kind: string; text?: string }): Promise<{ alias: string; close(): Promise<void> }>;
  /** an ssh alias reaching `target` with ProxyJump `via` */
  jumpAlias?(alias: string, via: string, target: string): void;
  stop(): Promise<void>;
}

/**
 * The case's fake listener and its jump route, as ssh aliases in the lab's config (unique per case, so the
 * server's resolve cache never serves an old one). Returns the aliases and what closes the ports.
 */
export interface Route { listener?: string; jump?: string; close(): Promise<void> }

export async function routeFor(lab: LabLike, replay: Replay, n: number, box: string | undefined): Promise<Route> {
  const opened: { close(): Promise<void> }[] = [];
  const close = async () => { await Promise.all(opened.map((p) => p.close().catch(() => {}))); };
  if (!replay.listener) return { close };
  if (!lab.fakePort || !lab.jumpAlias) throw new Error("this lab cannot start fake listeners");
  try {
    const listener = await lab.fakePort(`rgt-eval-port-${n}`, replay.listener);
    opened.push(listener);
    if (!replay.jump) return { listener: listener.alias, close };
    let target = box;
    if (replay.jump.target === "closed") {
      const dest = await lab.fakePort(`rgt-eval-dest-${n}`, { kind: "closed" });
      opened.push(dest);
      target = dest.alias;
    }
    const jump = `rgt-eval-jump-${n}`;
    lab.jumpAlias(jump, listener.alias, target!);
    return { listener: listener.alias, jump, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Provider CLIs a meter stop would run on this machine. Evals never approve, so none may ever run. */
export const TRIPWIRE_CLIS = ["vastai", "runpodctl", "kubectl"];

/**
 * Put recording stand-ins for the provider CLIs first on the server's PATH: each call appends its argv
 * to the returned log and fails. A replay that makes the log grow fails.
 */
export function plantTripwire(binDir: string): string {
  const log = path.join(binDir, "provider-cli-calls.log");
  fs.mkdirSync(binDir, { recursive: true });
  for (const cli of TRIPWIRE_CLIS) {
    const body = `#!/bin/sh\nprintf '%s\\n' "${cli} $*" >> '${log.replace(/'/g, "'\\''")}'\necho "${cli}: evals must never reach a provider CLI" >&2\nexit 97\n`;
    fs.writeFileSync(path.join(binDir, cli), body, { mode: 0o755 });
  }
  return log;
}

/**
 * A provider CLI that answers like an eventually consistent provider: `destroy` succeeds, and the
 * listing (`show instances -q`) keeps naming the destroyed id for `lag` more looks. Returns its call log.
 */
export function plantEventualProvider(binDir: string, cli: "vastai", lag: number, dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  const body = [
    "#!/bin/bash",
    `d=${q(dir)}`,
    'printf \'%s\\n\' "$*" >> "$d/calls"',
    'case "$1" in',
    '  destroy) printf \'%s\\n\' "$3" > "$d/destroyed"; echo "destroying instance $3."; exit 0 ;;',
    '  show)',
    '    if [ -f "$d/destroyed" ]; then',
    '      n=$(cat "$d/looks" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$d/looks"',
    `      [ "$n" -le ${lag} ] && cat "$d/destroyed"`,
    "    fi",
    "    echo 1; exit 0 ;;",
    "esac",
    "exit 0",
    "",
  ].join("\n");
  fs.writeFileSync(path.join(binDir, cli), body, { mode: 0o755 });
  return path.join(dir, "calls");
}

function tripwireCalls(log: string | undefined): string[] {
  if (!log) return [];
  try {
    return fs.readFileSync(log, "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
}
interface ServerLike {
  callRaw?(name: string, args: Record<string, unknown>): Promise<unknown>;
  call(name: string, args: Record<string, unknown>): Promise<unknown>;
  close(): Promise<void>;
}
type StartLab = (specs: (EvalBoxSpec & { name: string })[], opts?: unknown) => Promise<LabLike>;
type ConnectServer = (env: Record<string, string>, opts?: unknown) => Promise<ServerLike>;

export interface ReplayCaseResult {
  id: string;
  failures: string[];
}

/** Stable key for a box spec (key order independent) so equal specs share a box. */
export function specKey(spec: EvalBoxSpec): string {
  const norm = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(norm);
    if (v && typeof v === "object") {
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>)
          .filter(([, x]) => x !== undefined)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, x]) => [k, norm(x)]),
      );
    }
    return v;
  };
  return JSON.stringify(norm(spec));
}

/** Group replay cases by box spec; returns alias per spec key (rgt-eval-0, rgt-eval-1, …). */
export function planBoxes(cases: EvalCase[]): { specs: (EvalBoxSpec & { name: string })[]; aliasOf: Map<string, string> } {
  const aliasOf = new Map<string, string>();
  const specs: (EvalBoxSpec & { name: string })[] = [];
  for (const c of cases) {
    const box = c.replay?.box;
    if (!box) continue;
    const key = specKey(box);
    if (aliasOf.has(key)) continue;
    const name = `rgt-eval-${specs.length}`;
    aliasOf.set(key, name);
    specs.push({ ...box, name });
  }
  return { specs, aliasOf };
}

/**
 * The one environment the shared server starts with: every case's server_env, merged. The same name
 * with two different values is a case-file error (one server serves them all).
 */
export function mergeServerEnv(cases: EvalCase[]): Record<string, string> {
  const env: Record<string, string> = {};
  const from: Record<string, string> = {};
  for (const c of cases) {
    for (const [k, v] of Object.entries(c.replay?.server_env ?? {})) {
      if (k in env) {
        if (env[k] !== v) throw new Error(`server_env ${k} differs between cases ${from[k]} and ${c.id}`);
        continue;
      }
      env[k] = v;
      from[k] = c.id;
    }
  }
  return env;
}

const sleep = (ms: number) => new Promise<void>((res) => setTimeout(res, ms));

/**
 * One step: call the tool; with `until`, call it again every interval_ms until every until-field holds
 * or timeout_s has passed (then the step fails, naming what was last seen). Returns the last outcome and
 * the failures of its expectation.
 */
export async function runStep(
  call: (args: Record<string, unknown>) => Promise<ToolOutcome>,
  step: Step,
  args: Record<string, unknown>,
  now: () => number = Date.now,
): Promise<{ outcome: ToolOutcome; failures: string[]; calls: number }> {
  let outcome = await call(args);
  let calls = 1;
  if (step.until) {
    const exprs = step.until.fields.map(parseFieldExpr);
    const deadline = now() + step.until.timeout_s * 1000;
    const unmet = () => exprs.filter((e) => !evalField(outcome.structured, e).ok);
    let left = unmet();
    while (left.length && now() < deadline) {
      await sleep(Math.min(step.until.interval_ms, Math.max(0, deadline - now())));
      outcome = await call(args);
      calls++;
      left = unmet();
    }
    if (left.length) {
      const seen = left.map((e) => `${e.path}=${JSON.stringify(evalField(outcome.structured, e).actual) ?? "undefined"}`).join(", ");
      return { outcome, calls, failures: [`until not reached within ${step.until.timeout_s} s after ${calls} call(s): ${seen}`.slice(0, 400)] };
    }
  }
  return { outcome, calls, failures: checkOutcome(outcome, step.expect) };
}

async function importLab(): Promise<{ startLab: StartLab; connectServer: ConnectServer }> {
  const boxUrl = new URL("../lab/box.js", import.meta.url).href;
  const clientUrl = new URL("../lab/client.js", import.meta.url).href;
  const box = (await import(boxUrl)) as { startLab?: StartLab };
  const client = (await import(clientUrl)) as { connectServer?: ConnectServer };
  if (typeof box.startLab !== "function" || typeof client.connectServer !== "function") {
    throw new Error("src/lab is missing startLab/connectServer");
  }
  return { startLab: box.startLab, connectServer: client.connectServer };
}

function toOutcome(raw: unknown): ToolOutcome {
  const r = (raw ?? {}) as { structuredContent?: Record<string, unknown>; isError?: boolean; content?: { type: string; text?: string }[] };
  const text = (r.content ?? []).map((c) => c.text ?? "").join("");
  let structured = r.structuredContent;
  if (!structured && text) {
    try {
      structured = JSON.parse(text) as Record<string, unknown>;
    } catch {
      /* leave undefined */
    }
  }
  return { structured, isError: r.isError === true, text };
}

async function callTool(server: ServerLike, tool: string, args: Record<string, unknown>, timeoutMs: number): Promise<ToolOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`${tool} took longer than ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    if (server.callRaw) return toOutcome(await Promise.race([server.callRaw(tool, args), timeout]));
    // `call` returns structuredContent only: the refusal flag is then read from ok:false
    const sc = (await Promise.race([server.call(tool, args), timeout])) as Record<string, unknown> | undefined;
    return { structured: sc, isError: sc?.ok === false, text: JSON.stringify(sc ?? null) };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

export interface ReplayOptions {
  /** per tool call limit (ms) */
  stepTimeoutMs?: number;
  log?: (line: string) => void;
  /** substituted for "{root}" in step args (fixtures under evals/) */
  root?: string;
  /** substituted for "{tmp}" (default: a fresh temp directory removed afterwards) */
  tmp?: string;
  /** injected for tests; defaults to src/lab */
  lab?: { startLab: StartLab; connectServer: ConnectServer };
}

/** Run every replay of the given cases. A failure to start the lab or the server fails every case. */
export async function runReplays(cases: EvalCase[], opts: ReplayOptions = {}): Promise<ReplayCaseResult[]> {
  const withReplay = cases.filter((c) => c.replay);
  if (withReplay.length === 0) return [];
  const stepTimeoutMs = opts.stepTimeoutMs ?? 60_000;
  const log = opts.log ?? (() => {});
  const { specs, aliasOf } = planBoxes(withReplay);

  let lab: LabLike | undefined;
  let server: ServerLike | undefined;
  const ownTmp = opts.tmp === undefined;
  let tmp = opts.tmp;
  let tripLog: string | undefined;
  const human: { answer?: "approve" | "decline"; alias?: string } = {};
  try {
    const serverEnv = mergeServerEnv(withReplay);
    const mods = opts.lab ?? (await importLab());
    const t0 = Date.now();
    lab = await mods.startLab(specs);
    log(`lab: ${specs.length} box(es) up in ${Date.now() - t0} ms`);
    if (tmp === undefined) tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-evals-tmp-"));
    if (lab.localBin) tripLog = plantTripwire(lab.localBin);
    // the human, for cases that say how they answer; everyone else's question goes unanswered
    server = await mods.connectServer({ ...lab.env, ...serverEnv }, {
      elicitation: () => (human.answer === "approve" ? { action: "accept", content: { confirm_host: human.alias } } : { action: human.answer === "decline" ? "decline" : "cancel" }),
    });
  } catch (e) {
    const msg = `replay setup failed: ${e instanceof Error ? e.message : String(e)}`;
    await server?.close().catch(() => {});
    await lab?.stop().catch(() => {});
    return withReplay.map((c) => ({ id: c.id, failures: [msg] }));
  }

  const results: ReplayCaseResult[] = [];
  try {
    for (const [n, c] of withReplay.entries()) {
      const replay = c.replay!;
      const alias = replay.box ? aliasOf.get(specKey(replay.box)) : undefined;
      const failures: string[] = [];
      let route: Route;
      try {
        route = await routeFor(lab, replay, n, alias);
      } catch (e) {
        results.push({ id: c.id, failures: [`listener setup failed: ${e instanceof Error ? e.message : String(e)}`] });
        continue;
      }
      const done: (Record<string, unknown> | undefined)[] = [];
      const t0 = Date.now();
      const cliCallsBefore = tripwireCalls(tripLog).length;
      human.answer = replay.human;
      human.alias = alias;
      if (replay.provider_stub && lab.localBin && tmp) {
        plantEventualProvider(lab.localBin, replay.provider_stub.cli, replay.provider_stub.lists_after_destroy, path.join(tmp, `provider-${c.id}`));
      }
      for (const [i, step] of replay.steps.entries()) {
        const where = `step ${i + 1} ${step.tool}`;
        try {
          const vars = { alias, root: opts.root, tmp, steps: done, listener: route.listener, jump: route.jump };
          const args = substituteArgs(step.args, vars);
          // placeholders in expectations refer to the steps before this one, like the args do
          const resolved: Step = { ...step, expect: substituteArgs(step.expect, vars), ...(step.until ? { until: substituteArgs(step.until, vars) } : {}) };
          const r = await runStep((a) => callTool(server, step.tool, a, stepTimeoutMs), resolved, args);
          done.push(r.outcome.structured);
          for (const f of r.failures) failures.push(`${where}: ${f}`);
        } catch (e) {
          failures.push(`${where}: ${e instanceof Error ? e.message : String(e)}`);
        }
        if (failures.length) break; // later steps usually build on earlier ones
      }
      human.answer = undefined;
      await route.close();
      if (replay.provider_stub && lab.localBin) plantTripwire(lab.localBin);
      const called = tripwireCalls(tripLog).slice(cliCallsBefore);
      if (called.length) failures.push(`a provider CLI was run (no eval may stop a meter): ${called.slice(0, 3).join("; ").slice(0, 300)}`);
      const took = Date.now() - t0;
      if (took >= 2000) log(`${c.id}: ${replay.steps.length} step(s) in ${took} ms`);
      results.push({ id: c.id, failures });
    }
  } finally {
    await server.close().catch(() => {});
    await lab.stop().catch(() => {});
    if (ownTmp && tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
  return results;
}
