/** Running a provider's own CLI on this machine: argv only (no shell), bounded, output kept short. */
import { execa } from "execa";

export interface CliResult { code: number | null; out: string; timedOut: boolean; notFound: boolean }

export function tail(s: string, n = 400): string {
  const t = s.trim();
  return t.length <= n ? t : `…${t.slice(-n)}`;
}

export async function runCli(argv: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<CliResult> {
  const [cmd, ...args] = argv;
  // own process group, so a timeout kills the CLI and anything it spawned (a child holding the pipes
  // open would otherwise keep us waiting past the bound)
  const child = execa(cmd, args, { env, extendEnv: false, reject: false, stdin: "ignore", all: true, detached: true, cleanup: true });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try { if (child.pid) process.kill(-child.pid, "SIGKILL"); } catch { /* already gone */ }
  }, timeoutMs);
  try {
    const r = await child;
    const notFound = (r as { code?: string }).code === "ENOENT";
    return { code: timedOut ? null : r.exitCode ?? null, out: tail(String(r.all ?? "")), timedOut, notFound };
  } finally {
    clearTimeout(timer);
  }
}

/** Instance ids go into argv: allow only what provider ids look like. */
export function safeId(id: string | undefined): id is string {
  return !!id && /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/.test(id);
}
