/**
 * Every RGT_* setting, declared once: name, zod type, default and meaning. The code reads settings only
 * through `setting()`; the README's settings table and `rgt doctor`'s listing are generated from SETTINGS.
 * Settings come from the server's environment (the MCP client's "env"), never from a tool call.
 */
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as z from "zod";

const seconds = (dflt: number) => z.coerce.number().finite().min(0).default(dflt);
const positiveSeconds = (dflt: number) => z.coerce.number().finite().positive().default(dflt);
/** a number pulled into [min, max] rather than refused */
const clamped = (dflt: number, min: number, max: number) => z.coerce.number().finite().transform((n) => Math.min(max, Math.max(min, n))).default(dflt);
const text = () => z.string().min(1).optional();

/** group: "server" (what users set), "providers" (cloud adapters), "lab" (tests and the demo only) */
interface Setting<S extends z.ZodType = z.ZodType> { schema: S; meaning: string; group: "server" | "providers" | "lab"; secret?: boolean }
const def = <S extends z.ZodType>(schema: S, meaning: string, group: Setting["group"] = "server"): Setting<S> => ({ schema, meaning, group });

export const SETTINGS = {
  RGT_HOME: def(text(), "local state directory (ledger, receipts, approvals, exec logs); default $XDG_STATE_HOME/remote-gpu-trainer or ~/.local/state/remote-gpu-trainer"),
  RGT_SSH_CONFIG: def(text(), "ssh config file to resolve hosts with instead of ~/.ssh/config (ssh -G -F)"),
  RGT_TOOLS: def(z.string().default("all"), "which tools are served: all, read-only (only tools that change nothing on a box and spend nothing), or a comma list of tool names"),
  RGT_DEBUG: def(z.string().optional(), "when set, diagnostics also go to stderr (normally only through MCP logging)"),
  RGT_IDLE_METER_S: def(seconds(1800), "seconds a host may sit with no live run before results carry an IDLE_METER warning with the cost so far"),
  RGT_ELICIT_TIMEOUT_S: def(positiveSeconds(120), "seconds request_teardown waits for the human to answer an approval prompt"),
  RGT_APPROVAL_TTL_S: def(positiveSeconds(900), "seconds an approval id stays valid"),
  RGT_TEARDOWN_POLL_S: def(clamped(120, 0, 600), "seconds request_teardown keeps polling the provider after a stop until the instance is seen gone (0-600)", "providers"),
  RGT_TEARDOWN_POLL_BASE_MS: def(clamped(2000, 10, 60_000), "first wait between those polls, in ms; it doubles up to 20 s", "providers"),
  RGT_WATCH_TICK_S: def(seconds(15), "seconds between the checks of a run's watcher on the box (max_hours, park); sent to the box at launch"),
  RGT_PROFILES_DIR: def(text(), "a directory of platform profiles used instead of the package's profiles/ (a site's own copies; the lab's stand-ins)"),
  RGT_PYTHON: def(text(), "local python used to load-check pulled checkpoints (default /usr/bin/python3, then python3)"),
  RGT_SLURM_FORWARD_SIGNAL: def(text(), "signal the Slurm backend forwards to a cell before its walltime ends (e.g. USR1)"),
  RGT_K8S_IMAGE: def(text(), "container image for Kubernetes cells when launch_queue's scheduler.image is absent"),
  RGT_K8S_NAMESPACE: def(z.string().default("default"), "Kubernetes namespace when scheduler.namespace is absent"),
  RGT_FANOUT: def(z.coerce.number().int().min(1).max(256).default(16), "hosts asked at once when a tool fans out over many boxes (run_status, launch_queue, stop_run)"),
  RGT_PARALLEL_STREAMS: def(z.coerce.number().int().min(1).max(8).default(8), "most SFTP streams (each its own connection) a pull or push of big files over a long link may use; 1 = always one stream"),
  RGT_PARALLEL_GC_MB: def(z.coerce.number().int().min(1).max(1024).default(2), "MiB a parallel pull moves between young-generation collections (bounds the packet garbage in the server's memory)", "lab"),
  RGT_PARALLEL_LOG: def(text(), "file that gets a line per parallel-stream decision and per stream (development aid)", "lab"),
  RGT_LAMBDA_API_BASE: def(z.string().default("https://cloud.lambdalabs.com/api/v1"), "Lambda Cloud API base URL", "providers"),
  RGT_BENCH_PULL_MB: def(z.coerce.number().int().min(1).max(65536).default(1024), "size in MB of the bench's big-pull data sets (smaller while developing)", "lab"),
  RGT_DEMO_PROVIDER_LOG: def(text(), "file where the demo's stub provider CLIs record their argv", "lab"),
} satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;
export type SettingValue<K extends SettingName> = z.output<(typeof SETTINGS)[K]["schema"]>;

/** One setting, parsed; an empty or malformed value falls back to the default (doctor lists the problem). */
export function setting<K extends SettingName>(name: K, env: NodeJS.ProcessEnv = process.env): SettingValue<K> {
  const raw = env[name];
  const schema = SETTINGS[name].schema as z.ZodType;
  const parsed = schema.safeParse(raw === "" ? undefined : raw);
  if (parsed.success) return parsed.data as SettingValue<K>;
  return schema.parse(undefined) as SettingValue<K>;
}

/** Every setting with its current value and whether that value was usable (for `rgt doctor`). */
export function settingsReport(env: NodeJS.ProcessEnv = process.env): { name: SettingName; value: unknown; set: boolean; valid: boolean; meaning: string }[] {
  return (Object.keys(SETTINGS) as SettingName[]).map((name) => {
    const raw = env[name];
    const set = raw !== undefined && raw !== "";
    const valid = !set || (SETTINGS[name].schema as z.ZodType).safeParse(raw).success;
    return { name, value: setting(name, env), set, valid, meaning: SETTINGS[name].meaning };
  });
}

/** The README's settings table (markdown), generated from SETTINGS. */
export function settingsTable(): string {
  const rows = (Object.keys(SETTINGS) as SettingName[]).map((name) => {
    const d = setting(name, {});
    return `| \`${name}\` | ${d === undefined ? "—" : `\`${String(d)}\``} | ${SETTINGS[name].meaning} |`;
  });
  return ["| setting | default | meaning |", "|---|---|---|", ...rows].join("\n");
}

/** Local state directory: $RGT_HOME, else $XDG_STATE_HOME/remote-gpu-trainer, else ~/.local/state/remote-gpu-trainer. */
export function rgtHome(env: NodeJS.ProcessEnv = process.env): string {
  const home = setting("RGT_HOME", env);
  if (home) return path.resolve(home);
  const xdg = env.XDG_STATE_HOME || path.join(os.homedir(), ".local", "state");
  return path.join(xdg, "remote-gpu-trainer");
}

/** An ssh config file to use instead of ~/.ssh/config (passed to `ssh -G -F`). */
export function sshConfigFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const f = setting("RGT_SSH_CONFIG", env);
  return f ? path.resolve(f) : undefined;
}

/** Root of the installed package (holds profiles/, references/, scripts/, skill/). Works from src/ and dist/. */
export function packageRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // src/common or dist/common -> root
  return path.resolve(here, "..", "..");
}

export const VERSION = "0.1.0";
