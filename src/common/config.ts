/** Process-wide configuration read from the environment (never from argv of a tool call). */
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

/** Local state directory: $RGT_HOME, else $XDG_STATE_HOME/remote-gpu-trainer, else ~/.local/state/remote-gpu-trainer. */
export function rgtHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RGT_HOME) return path.resolve(env.RGT_HOME);
  const xdg = env.XDG_STATE_HOME || path.join(os.homedir(), ".local", "state");
  return path.join(xdg, "remote-gpu-trainer");
}

/** An ssh config file to use instead of ~/.ssh/config (passed to `ssh -G -F`). */
export function sshConfigFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.RGT_SSH_CONFIG ? path.resolve(env.RGT_SSH_CONFIG) : undefined;
}

/** Root of the installed package (holds profiles/, references/, scripts/, skill/). Works from src/ and dist/. */
export function packageRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // src/common or dist/common -> root
  return path.resolve(here, "..", "..");
}

export const VERSION = "0.1.0";
