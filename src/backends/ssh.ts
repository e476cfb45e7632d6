/**
 * The SSH detach backends (tmux, setsid+nohup): launch.ts starts lanes, status.ts reads them, stop.ts
 * ends them; all three reach the box through scripts.ts.
 */
import type { Backend } from "./types.js";
import { sshLaunch } from "./launch.js";
import { sshStatus } from "./status.js";
import { sshStop } from "./stop.js";

export function sshBackend(mode: "tmux" | "nohup"): Backend {
  return {
    name: mode,
    launch: (ctx, req) => sshLaunch(mode, ctx, req),
    status: (ctx, run, opts) => sshStatus(ctx, run, opts),
    stop: (ctx, run, cells) => sshStop(ctx, run, cells),
  };
}
