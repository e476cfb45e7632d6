/** Running a provider's own CLI on this machine: argv only (no shell), bounded, output kept short. */
import { execa } from "execa";

export interface CliResult { code: number | null; out: string; timedOut: boolean; notFound: boolean }

export function tail(s: string, n = 400): string {
  const t = s.trim();
  return t.length <= n ? t : `…${t.slice(-n)}`;
}

export async function runCli(argv: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<CliResult> {
  const [cmd, ...args] = argv;
  const r = await execa(cmd, args, { env, extendEnv: false, timeout: timeoutMs, reject: false, stdin: "ignore", all: true, killSignal: "SIGKILL" });
  const notFound = (r as { code?: string }).code === "ENOENT";
  return { code: r.exitCode ?? null, out: tail(String(r.all ?? "")), timedOut: !!r.timedOut, notFound };
}

/** Instance ids go into argv: allow only what provider ids look like. */
export function safeId(id: string | undefined): id is string {
  return !!id && /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/.test(id);
}
