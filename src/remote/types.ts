/** The contract of the remote layer. Tools and backends talk to boxes only through these. */
import type { Readable } from "node:stream";

export interface ResolvedHost {
  /** what the caller passed (alias or user@host[:port]) */
  spec: string;
  hostname: string;
  port: number;
  user: string;
  identityFiles: string[];
  identityAgent?: string;
  proxyJump?: string;
  /** OpenSSH ProxyCommand with its %-tokens already expanded: run locally, its stdio is the connection */
  proxyCommand?: string;
  userKnownHostsFiles: string[];
  /** GlobalKnownHostsFile (/etc/ssh/ssh_known_hosts; C:\ProgramData\ssh\ssh_known_hosts on Windows): read, never written */
  globalKnownHostsFiles?: string[];
  strictHostKeyChecking: "yes" | "no" | "accept-new" | "ask";
  connectTimeoutMs: number;
  /** OpenSSH HostKeyAlias: the name looked up in known_hosts instead of hostname/port */
  hostKeyAlias?: string;
  /** the ciphers OpenSSH would offer, in its order (`ssh -G`); absent when it did not say */
  ciphers?: string[];
  /** stable identity of the endpoint: user@hostname:port, plus the route (ProxyJump / ProxyCommand) when there is one */
  key: string;
}

export interface ExecOptions {
  /** wall-clock limit for the command; on expiry its process group on the box is killed. Default 60 s. */
  timeoutMs?: number;
  /** bytes fed to the command's stdin (then EOF) */
  stdin?: string | Buffer | Readable;
  /** cap on captured stdout and stderr each; the excess is dropped, the head and tail kept. Default 1 MiB. */
  maxOutputBytes?: number;
  /** called with each stdout chunk as it arrives */
  onStdout?: (chunk: Buffer) => void;
  signal?: AbortSignal;
  /**
   * epoch ms where the whole call must have answered (connect, channel open, command, kill); when set it wins
   * over timeoutMs. Lets a caller share one bound across attempts.
   */
  deadline?: number;
}

export interface ExecResult {
  exitCode: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  /** true when output exceeded maxOutputBytes */
  truncated: boolean;
  /** true when the command was killed on the box for running past timeoutMs */
  timedOut: boolean;
  elapsedMs: number;
  /** true when the box stopped answering after the bound: the kill was not confirmed (the pool drops that connection) */
  unresponsive?: boolean;
}

/**
 * Errors from this layer are RefusalError (src/common/result.ts) with codes
 * UNREACHABLE | AUTH_FAILED | TIMEOUT | HOST_KEY_UNKNOWN | HOST_KEY_CHANGED | BAD_INPUT.
 */
export interface Remote {
  resolve(host: string): Promise<ResolvedHost>;
  /** run one shell command line on the box (through the user's login shell, no rc files of ours) */
  exec(host: string, command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** stream scripts/<name> over stdin as `bash -s -- args` (never uploaded, never sourced rc files) */
  runScript(host: string, script: string, args?: string[], opts?: ExecOptions & { env?: Record<string, string> }): Promise<ExecResult>;
  /** an SFTP session over the pooled connection (end() it when done: it holds a channel) */
  sftp(host: string): Promise<SftpSession>;
  /**
   * How an external OpenSSH-based transport (rsync -e) reaches the same host with the same config and
   * host-key policy: `argv` is the ssh command with options but no destination; `destination` goes
   * before `:path` (e.g. rsync -e "<argv joined, shell-quoted>" src "<destination>:<path>").
   */
  sshTransport(host: string): Promise<{ argv: string[]; destination: string }>;
  /** start connecting ahead of need (the pooled connection; with `transport`, also the OpenSSH master sshTransport reuses); never throws */
  warm?(host: string, o?: { transport?: boolean }): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// SFTP, as this project uses it (src/remote/sftp.ts wraps ssh2's client behind it)

export interface SftpAttrs {
  size: number;
  /** whole seconds (SFTP v3 carries no finer times) */
  mtime: number;
  mode: number;
  isFile: boolean;
  isDirectory: boolean;
  isSymlink: boolean;
}

export interface SftpFile {
  read(buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  write(buf: Buffer, offset: number, length: number, position: number): Promise<void>;
  close(): Promise<void>;
}

export interface SftpSession {
  /** null when the path does not exist (or cannot be stat'ed) */
  stat(path: string): Promise<SftpAttrs | null>;
  lstat(path: string): Promise<SftpAttrs | null>;
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** replace `to` atomically where the server supports posix-rename, else unlink + rename */
  rename(from: string, to: string): Promise<void>;
  utimes(path: string, atimeS: number, mtimeS: number): Promise<void>;
  readlink(path: string): Promise<string>;
  /** create `linkPath` pointing at `target` (argument order as in symlink(2)) */
  symlink(target: string, linkPath: string): Promise<void>;
  /** "a": every write appends (O_APPEND), whatever its position */
  open(path: string, flags: "r" | "w" | "r+" | "a", mode?: number): Promise<SftpFile>;
  end(): void;
}
