/**
 * Platform facts a connection diagnosis can use (the remote layer knows no profiles: the server passes these
 * in). Where a platform moves a box's ssh port, a refused or silent port most often means the port in the
 * ssh config is stale. Facts from profiles/autodl.md, vastai.md and runpod.md.
 */
const PORT_MOVES: Record<string, string> = {
  autodl: "AutoDL gives a re-created instance a new ssh port: copy the current one from the console into your ssh config",
  vastai: "vast.ai maps ssh to a random external port per instance: read the current one from `vastai show instance`",
  runpod: "RunPod changes the external ssh port at every pod reset: re-read the pod's connection details",
};

/** The line for a platform (a profile name), or undefined where ports stay put. */
export function portMoveHint(platform: string | undefined): string | undefined {
  return platform ? PORT_MOVES[platform] : undefined;
}
