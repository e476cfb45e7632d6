/**
 * launch_queue's input checks, before anything reaches a box: cell names, commands, env names, the roster,
 * the workdir (credentials and destroys are the input guard's, src/guard/inputs.ts). Pure: throws refusals
 * (BAD_INPUT with the field, CRLF_SCRIPT).
 */
import { refuse } from "../common/result.js";

const CELL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const RESERVED_ENV = new Set(["RGT_RUN_ID", "RGT_CELL", "RGT_OUTPUT_DIR", "RGT_STATE_DIR", "RGT_WORKDIR", "RGT_DURABLE_ROOT", "CUDA_VISIBLE_DEVICES"]);

export interface LaunchInput {
  run_name: string;
  workdir: string;
  cells: { name: string; command: string; env?: Record<string, string> }[];
  expect?: string[];
}

export function checkLaunchInput(args: LaunchInput): void {
  const seen = new Set<string>();
  args.cells.forEach((c, i) => {
    if (!CELL_NAME.test(c.name)) refuse("BAD_INPUT", `cells[${i}].name: "${c.name.slice(0, 40)}" must be 1-64 of letters, digits, . _ - (starting with a letter or digit)`, "Rename the cell.");
    if (seen.has(c.name)) refuse("BAD_INPUT", `cells[${i}].name: "${c.name}" appears twice`, "Cell names must be unique within a run.");
    seen.add(c.name);
    if (c.command.includes("\r")) refuse("CRLF_SCRIPT", `cells[${i}].command contains a carriage return (CRLF text)`, "Send the command with LF line endings only.");
    if (c.command.includes("\0")) refuse("BAD_INPUT", `cells[${i}].command contains a NUL byte`, "Remove it.");
    for (const [k, v] of Object.entries(c.env ?? {})) {
      if (!ENV_NAME.test(k)) refuse("BAD_INPUT", `cells[${i}].env: "${k.slice(0, 40)}" is not a valid variable name`, "Use letters, digits and _, not starting with a digit.");
      if (RESERVED_ENV.has(k)) refuse("BAD_INPUT", `cells[${i}].env.${k} is set by rgt for every cell`, "Drop it; rgt sets it (CUDA_VISIBLE_DEVICES comes from placement).");
      if (v.includes("\0")) refuse("BAD_INPUT", `cells[${i}].env.${k} contains a NUL byte`, "Remove it.");
    }
  });
  (args.expect ?? []).forEach((e, i) => {
    if (e.startsWith("/") || e.split("/").includes("..") || /[\n\r\0]/.test(e)) refuse("BAD_INPUT", `expect[${i}]: "${e.slice(0, 60)}" must be a path relative to the cell's output dir`, "Use e.g. \"best.pth\" or \"ckpt/last.pt\".");
  });
  if (!/^(\/|~)/.test(args.workdir) || /[\n\r\0]/.test(args.workdir)) refuse("BAD_INPUT", `workdir: "${args.workdir.slice(0, 80)}" must be an absolute path (or start with ~/)`, "Pass the directory push_code wrote to.");
}
