/**
 * launch_queue's input checks that need the whole call, before anything reaches a box: unique cell names,
 * CRLF commands, env names rgt sets itself, the roster, the workdir (credentials and destroys are the input
 * guard's, src/guard/inputs.ts). Pure: throws refusals (BAD_INPUT with the field, CRLF_SCRIPT).
 */
import { refuse } from "../common/result.js";

const RESERVED_ENV = new Set(["RGT_RUN_ID", "RGT_CELL", "RGT_OUTPUT_DIR", "RGT_STATE_DIR", "RGT_WORKDIR", "RGT_DURABLE_ROOT", "CUDA_VISIBLE_DEVICES"]);

export interface LaunchInput {
  workdir: string;
  cells: { name: string; command: string; env?: Record<string, string> }[];
  expect?: string[];
}

/** Names, env names and NULs are the input schema's (src/tools/fields.ts); these need the whole call. */
export function checkLaunchInput(args: LaunchInput): void {
  const seen = new Set<string>();
  args.cells.forEach((c, i) => {
    if (seen.has(c.name)) refuse("BAD_INPUT", `cells[${i}].name: "${c.name}" appears twice`, "Cell names must be unique within a run.");
    seen.add(c.name);
    if (c.command.includes("\r")) refuse("CRLF_SCRIPT", `cells[${i}].command contains a carriage return (CRLF text)`, "Send the command with LF line endings only.");
    for (const k of Object.keys(c.env ?? {})) {
      if (RESERVED_ENV.has(k)) refuse("BAD_INPUT", `cells[${i}].env.${k} is set by rgt for every cell`, "Drop it; rgt sets it (CUDA_VISIBLE_DEVICES comes from placement).");
    }
  });
  (args.expect ?? []).forEach((e, i) => {
    if (e.startsWith("/") || e.split("/").includes("..") || /[\n\r\0]/.test(e)) refuse("BAD_INPUT", `expect[${i}]: "${e.slice(0, 60)}" must be a path relative to the cell's output dir`, "Use e.g. \"best.pth\" or \"ckpt/last.pt\".");
  });
  if (!/^(\/|~)/.test(args.workdir) || /[\n\r\0]/.test(args.workdir)) refuse("BAD_INPUT", `workdir: "${args.workdir.slice(0, 80)}" must be an absolute path (or start with ~/)`, "Pass the directory push_code wrote to.");
}
