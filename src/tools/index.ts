/** Every tool the server exposes, one file each, and the toolsets derived from their declared effects. */
import type { Tool } from "../server/tool.js";
import { probeEnv } from "./probe_env.js";
import { pushCode } from "./push_code.js";
import { pushSecret } from "./push_secret.js";
import { launchQueue } from "./launch_queue.js";
import { runStatus } from "./run_status.js";
import { stopRun } from "./stop_run.js";
import { pullVerify } from "./pull_verify.js";
import { requestTeardown } from "./request_teardown.js";
import { remoteExec } from "./remote_exec.js";
import { checkStaleness } from "./check_staleness.js";
import { checkpointCadence } from "./checkpoint_cadence.js";

export const allTools = [
  probeEnv, pushCode, pushSecret, launchQueue, runStatus, stopRun, pullVerify, requestTeardown, remoteExec, checkStaleness, checkpointCadence,
] as unknown as Tool[];

/**
 * The tools RGT_TOOLS selects: "all" (default); "read-only" — only tools whose effect is "read" (they change
 * nothing on a box and spend nothing: a watcher agent that cannot do harm); or a comma list of tool names
 * and/or "read-only".
 */
export function selectTools(spec: string | undefined, tools: Tool[] = allTools): Tool[] {
  const s = (spec ?? "").trim();
  if (!s || s === "all") return tools;
  const parts = new Set(s.split(",").map((x) => x.trim()).filter(Boolean));
  return tools.filter((t) => parts.has(t.name) || (parts.has("read-only") && t.effect === "read"));
}
