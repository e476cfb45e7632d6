/**
 * The seatbelt on the box: a content-hashed shim (scripts/rgt_shim.sh) linked under each provider-CLI
 * and power-verb name in ~/.rgt/shims/<shim>/, put first on PATH for remote_exec commands and every
 * launch_queue cell. What no static reading can see (a script written on the box, a generated command)
 * still meets it: destroy verbs are refused there with a `rgt-seatbelt:` line and a marker, and the
 * tools report DESTROY_BLOCKED_ON_BOX.
 */
import type { Remote } from "../remote/types.js";
import { hashedScript, installAndRun, tsv } from "./scripts.js";

export const SHIM_SCRIPT = "rgt_shim.sh";
export const SEATBELT_SCRIPTS = [SHIM_SCRIPT, "seatbelt.sh"];
/** the line every refusal by a shim starts with */
export const BLOCK_MARK = "rgt-seatbelt: refused";

/** ~/… path (relative to the remote home) of the shim dir for the current shim content */
export function shimDirRel(): string {
  return `.rgt/shims/${hashedScript(SHIM_SCRIPT).hashed.replace(/\.sh$/, "")}`;
}

/** A command line that sees the shim dir first on PATH (a missing dir is a harmless PATH entry). */
export function withSeatbelt(command: string): string {
  return `PATH="$HOME/${shimDirRel()}:$PATH"; export PATH\n${command}`;
}

const installed = new WeakMap<Remote, Map<string, Promise<boolean>>>();

/** Install the shim and its links on a host once per server process; false when it could not be done. */
export function ensureSeatbelt(remote: Remote, host: string, timeoutMs = 30_000): Promise<boolean> {
  let m = installed.get(remote);
  if (!m) { m = new Map(); installed.set(remote, m); }
  const hit = m.get(host);
  if (hit) return hit;
  const p = (async () => {
    const { res } = await installAndRun(remote, host, SEATBELT_SCRIPTS, { script: "seatbelt.sh", args: [hashedScript(SHIM_SCRIPT).hashed] }, timeoutMs);
    return res.exitCode === 0 && tsv(res.stdout).some((r) => r[0] === "SHIMS");
  })().catch(() => false);
  m.set(host, p);
  p.then((ok) => { if (!ok) m!.delete(host); }).catch(() => undefined);
  return p;
}

/** The shim's refusal lines in some output (stderr of remote_exec, a cell's log or marker). */
export function blockedLines(text: string): string[] {
  if (!text.includes(BLOCK_MARK)) return [];
  return text.split("\n").filter((l) => l.includes(BLOCK_MARK)).map((l) => l.slice(l.indexOf(BLOCK_MARK)).slice(0, 300)).slice(0, 5);
}
