/** Every tool the server exposes, one file each. */
import type { ToolDef } from "../server/tool.js";
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

export const allTools = [probeEnv, pushCode, pushSecret, launchQueue, runStatus, stopRun, pullVerify, requestTeardown, remoteExec, checkStaleness, checkpointCadence, ] as unknown as ToolDef[];
