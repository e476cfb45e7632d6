/** Pooled ssh2 connections (skeleton; the real implementation lands next). */
import type { Remote, ResolvedHost, ExecOptions, ExecResult } from "./types.js";

export class SshRemote implements Remote {
  async resolve(_host: string): Promise<ResolvedHost> { throw new Error("not yet"); }
  async exec(_host: string, _command: string, _opts?: ExecOptions): Promise<ExecResult> { throw new Error("not yet"); }
  async runScript(_host: string, _script: string, _args?: string[], _opts?: ExecOptions): Promise<ExecResult> { throw new Error("not yet"); }
  async sftp(_host: string): Promise<import("ssh2").SFTPWrapper> { throw new Error("not yet"); }
  async sshTransport(_host: string): Promise<{ argv: string[]; destination: string }> { throw new Error("not yet"); }
  async close(): Promise<void> {}
}
