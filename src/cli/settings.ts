/** `rgt doctor`'s settings listing: every RGT_* setting from the one config schema, its value, and whether it was set. */
import { settingsReport } from "../common/config.js";

export function settingsListing(env: NodeJS.ProcessEnv = process.env): string {
  const rows = settingsReport(env);
  const w = Math.max(...rows.map((r) => r.name.length));
  const lines = rows.map((r) => {
    const v = r.value === undefined ? "(unset)" : String(r.value);
    const mark = !r.valid ? "  INVALID, default used" : r.set ? "" : "  (default)";
    return `  ${r.name.padEnd(w)}  ${v}${mark}`;
  });
  return `\nsettings (environment of the server; meanings in the README):\n${lines.join("\n")}\n`;
}
