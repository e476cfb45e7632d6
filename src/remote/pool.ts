/**
 * SshRemote: one pooled ssh2 connection per endpoint, channels multiplexed over it, idle connections
 * reaped, a dropped connection transparently re-opened on the next call (and a call that found its
 * connection dead is retried once on a fresh one).
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { Duplex } from "node:stream";
import * as os from "node:os";
import * as path from "node:path";
import type { Client, SFTPWrapper } from "ssh2";
import { quote } from "shell-quote";
import { packageRoot, sshConfigFile } from "../common/config.js";
import { RefusalError, refuse } from "../common/result.js";
import { forwardThrough, openConnection } from "./connect.js";
import { ConnectionLostError, execOn } from "./exec.js";
import { parseHostSpec, resolveHost } from "./resolve.js";
import type { ExecOptions, ExecResult, Remote, ResolvedHost, SftpSession } from "./types.js";
import { wrapSftp } from "./sftp.js";

interface PoolEntry {
  host: ResolvedHost;
  client?: Client;
  connecting?: Promise<Client>;
  lastUsed: number;
  busy: number;
  /** calls waiting for a free channel (see MAX_CHANNELS) */
  waiters: (() => void)[];
  /** connections this one rides on (ProxyJump), released with it */
  via?: string;
}

export interface SshRemoteOptions {
  sshConfig?: string;
  /** close a connection unused for this long (default 120 s) */
  idleMs?: number;
  /** directory holding scripts/ (default: the package's own) */
  scriptsDir?: string;
}

/** channels in flight per connection: below OpenSSH's default MaxSessions (10), leaving room for a kill */
const MAX_CHANNELS = 8;

/** Whether ssh2's socket under a client is still open (ssh2 has no public flag for it). */
function isAlive(c: Client): boolean {
  const sock = (c as unknown as { _sock?: { destroyed?: boolean; writable?: boolean } })._sock;
  return !!sock && !sock.destroyed && sock.writable !== false;
}

const SCRIPT_NAME = /^[A-Za-z0-9_.-]+\.(sh|py)$/;

/** a whole line `# rgt: include lib/<name>.sh` in a script: replaced by scripts/lib/<name>.sh before it leaves */
const INCLUDE_LINE = /^# rgt: include (lib\/[A-Za-z0-9_.-]+\.sh)[ \t]*$/gm;

/**
 * Shared on-box shell code. A script cannot `source` a file on the box (it is streamed over stdin, or
 * installed alone under a content-hashed name), so each `# rgt: include lib/x.sh` line is replaced by the
 * text of scripts/lib/x.sh here, once, before the script is sent or hashed: the box always receives one
 * self-contained file. Included files are not expanded again (no nesting).
 */
export function inlineIncludes(body: string, scriptsDir: string): string {
  if (!body.includes("# rgt: include ")) return body;
  return body.replace(INCLUDE_LINE, (_line, rel: string) => {
    const lib = fs.readFileSync(path.join(scriptsDir, rel), "utf8").replace(/\n+$/, "");
    return `# --- ${rel} (inlined) ---\n${lib}\n# --- end ${rel} ---`;
  });
}

/** scripts/<name> as it goes to a box: includes inlined. */
export function readScript(scriptsDir: string, name: string): string {
  return inlineIncludes(fs.readFileSync(path.join(scriptsDir, name), "utf8"), scriptsDir);
}

export class SshRemote implements Remote {
  private readonly pool = new Map<string, PoolEntry>();
  private readonly resolved = new Map<string, { at: number; host: Promise<ResolvedHost> }>();
  private readonly sshConfig?: string;
  private readonly idleMs: number;
  private readonly scriptsDir: string;
  private reaper?: NodeJS.Timeout;
  private scriptCache = new Map<string, string>();

  constructor(opts: SshRemoteOptions = {}) {
    this.sshConfig = opts.sshConfig ?? sshConfigFile();
    this.idleMs = opts.idleMs ?? 120_000;
    this.scriptsDir = opts.scriptsDir ?? path.join(packageRoot(), "scripts");
  }

  resolve(host: string): Promise<ResolvedHost> {
    const hit = this.resolved.get(host);
    if (hit && Date.now() - hit.at < 30_000) return hit.host;
    const p = resolveHost(host, { sshConfig: this.sshConfig });
    p.catch(() => this.resolved.delete(host));
    this.resolved.set(host, { at: Date.now(), host: p });
    return p;
  }

  /** The pooled, ready connection for a host spec (connecting if needed). */
  async connection(spec: string): Promise<{ client: Client; entry: PoolEntry }> {
    const h = await this.resolve(spec);
    let entry = this.pool.get(h.key);
    if (!entry) {
      entry = { host: h, lastUsed: Date.now(), busy: 0, waiters: [] };
      this.pool.set(h.key, entry);
    }
    if (entry.client) return { client: entry.client, entry };
    if (!entry.connecting) {
      const e = entry;
      e.connecting = this.dial(h, e).then(
        (c) => {
          e.client = c;
          e.connecting = undefined;
          const drop = () => { if (e.client === c) e.client = undefined; };
          c.on("close", drop);
          c.on("end", drop);
          c.on("error", drop);
          return c;
        },
        (err) => {
          e.connecting = undefined;
          this.pool.delete(h.key);
          throw err;
        },
      );
    }
    const client = entry.client ?? (await entry.connecting!);
    this.startReaper();
    return { client, entry };
  }

  private async dial(h: ResolvedHost, entry: PoolEntry): Promise<Client> {
    if (h.proxyCommand) return this.dialViaCommand(h);
    if (!h.proxyJump) return (await openConnection(h)).client;
    // ProxyJump a,b,c: a is dialled (pooled, with its own config), each later hop rides on the previous one.
    const hops = h.proxyJump.split(",").map((s) => s.trim()).filter(Boolean);
    entry.via = hops[0];
    let via = (await this.connection(hops[0])).client;
    const intermediates: Client[] = [];
    for (const hop of hops.slice(1)) {
      const hh = await this.resolve(hop);
      const sock = await forwardThrough(via, hh.hostname, hh.port, hh.connectTimeoutMs);
      via = (await openConnection({ ...hh, proxyJump: undefined }, sock)).client;
      intermediates.push(via);
    }
    const sock = await forwardThrough(via, h.hostname, h.port, h.connectTimeoutMs);
    const client = (await openConnection(h, sock)).client;
    client.on("close", () => intermediates.forEach((c) => c.end()));
    return client;
  }

  /** ProxyCommand: the command's stdin/stdout carry the ssh stream (cloud IAP tunnels, `ssh -W`, nc via a proxy). */
  private async dialViaCommand(h: ResolvedHost): Promise<Client> {
    const child = spawn("/bin/sh", ["-c", h.proxyCommand!], { stdio: ["pipe", "pipe", "pipe"] });
    let errText = "";
    child.stderr.on("data", (b: Buffer) => { errText = (errText + b.toString()).slice(-400); });
    const sock = Duplex.from({ readable: child.stdout, writable: child.stdin });
    const exited = new Promise<never>((_, reject) => child.once("exit", (code) => reject(new RefusalError("UNREACHABLE", `ProxyCommand for ${h.spec} exited (${code}) before the ssh handshake: ${errText.trim().slice(-200) || "no output"}`, "Run the ProxyCommand from your ssh config by hand to see why it fails."))));
    exited.catch(() => {});
    try {
      const { client } = await Promise.race([openConnection(h, sock), exited]);
      client.on("close", () => { if (child.exitCode === null) child.kill("SIGTERM"); });
      return client;
    } catch (e) {
      // ssh2 often notices the closed pipe before the command's exit is reported: give the command's own
      // words (its stderr) the chance to be the reason, they say more than "connection lost".
      const code = child.exitCode ?? (await Promise.race([new Promise<number | null>((r) => child.once("exit", (c) => r(c))), new Promise<null>((r) => setTimeout(() => r(null), 500))]));
      if (child.exitCode === null) child.kill("SIGTERM");
      if (code !== null && code !== 0) throw new RefusalError("UNREACHABLE", `ProxyCommand for ${h.spec} exited (${code}) before the ssh handshake: ${errText.trim().slice(-200) || "no output"}`, "Run the ProxyCommand from your ssh config by hand to see why it fails.");
      throw e;
    }
  }

  private startReaper(): void {
    if (this.reaper) return;
    this.reaper = setInterval(() => {
      const now = Date.now();
      for (const [k, e] of this.pool) {
        if (e.busy === 0 && e.client && now - e.lastUsed > this.idleMs) {
          e.client.end();
          this.pool.delete(k);
        }
      }
      if (this.pool.size === 0 && this.reaper) { clearInterval(this.reaper); this.reaper = undefined; }
    }, Math.min(this.idleMs, 10_000));
    this.reaper.unref();
  }

  /** Run fn on a pooled connection; if the connection turns out dead, reconnect once and retry. */
  /**
   * OpenSSH refuses more than MaxSessions (default 10) channels on one connection, and a refused channel
   * must not be mistaken for a dead box: calls beyond MAX_CHANNELS wait for a free channel instead.
   */
  private async acquire(entry: PoolEntry): Promise<void> {
    while (entry.busy >= MAX_CHANNELS) await new Promise<void>((res) => entry.waiters.push(res));
    entry.busy++;
  }

  private release(entry: PoolEntry): void {
    entry.busy--;
    entry.lastUsed = Date.now();
    entry.waiters.shift()?.();
  }

  /** Run fn on a pooled connection; a connection found dead is replaced and the call retried once. */
  private async withClient<T>(host: string, fn: (c: Client) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const { client, entry } = await this.connection(host);
      await this.acquire(entry);
      entry.lastUsed = Date.now();
      try {
        return await fn(client);
      } catch (e) {
        if (e instanceof RefusalError) throw e;
        const msg = (e as Error).message ?? "";
        // The box said no to one more channel (MaxSessions, a busy sshd): the connection itself is fine and
        // its other channels keep running. Back off and ask again.
        if (/channel open failure|open failed/i.test(msg) && isAlive(client)) {
          if (attempt < 4) { await new Promise((res) => setTimeout(res, 150 * (attempt + 1))); continue; }
          throw new RefusalError("UNREACHABLE", `${host} refused another ssh channel: ${msg.slice(0, 200)}`, "The box's sshd limits sessions per connection (MaxSessions); retry shortly.");
        }
        if (entry.client === client && !isAlive(client)) { entry.client = undefined; client.end(); }
        // Never started (no process-group marker came back): safe to try once more on a fresh connection.
        if (e instanceof ConnectionLostError && !e.started && attempt === 0) continue;
        if (e instanceof ConnectionLostError) {
          throw new RefusalError("UNREACHABLE", `the connection to ${host} dropped ${Math.round(e.elapsedMs / 1000)} s into the command`, "The command may have run in part (it was not retried). Check its effect (run_status, or a read-only remote_exec) before repeating it.");
        }
        const dead = !isAlive(client) || /not connected|no response|connection lost|ECONNRESET|EPIPE/i.test(msg);
        if (dead && entry.client === client) { entry.client = undefined; client.end(); }
        if (dead && attempt === 0) continue;
        throw new RefusalError("UNREACHABLE", `connection to ${host} failed: ${msg.slice(0, 300)}`, "Retry; if it persists, check the box is up (probe_env).");
      } finally {
        this.release(entry);
      }
    }
  }


  async exec(host: string, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (typeof command !== "string" || !command.trim()) refuse("BAD_INPUT", "command is empty", "Pass a shell command line.");
    return this.withClient(host, (c) => execOn(c, command, opts));
  }

  private script(name: string): string {
    if (!SCRIPT_NAME.test(name)) refuse("BAD_INPUT", `script name ${name} is not allowed`, "Scripts are plain file names under scripts/.");
    let body = this.scriptCache.get(name);
    if (body === undefined) {
      body = readScript(this.scriptsDir, name);
      this.scriptCache.set(name, body);
    }
    return body;
  }

  async runScript(host: string, script: string, args: string[] = [], opts: ExecOptions & { env?: Record<string, string> } = {}): Promise<ExecResult> {
    const body = this.script(script);
    const env = opts.env ?? {};
    for (const k of Object.keys(env)) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) refuse("BAD_INPUT", `env name ${k} is not a shell identifier`, "Use letters, digits and _.");
    // Values travel inside stdin (never argv, never the command line the box's process table shows).
    const prelude = Object.entries(env).map(([k, v]) => `export ${k}=${quote([v])}\n`).join("");
    const interp = script.endsWith(".py") ? "python3 -" : "bash -s --";
    const cmd = `${interp} ${args.map((a) => quote([a])).join(" ")}`.trim();
    if (opts.stdin !== undefined) refuse("BAD_INPUT", "runScript streams the script itself over stdin", "Pass data through env or args.");
    return this.exec(host, cmd, { ...opts, stdin: script.endsWith(".py") ? body : prelude + body });
  }

  async sftp(host: string): Promise<SftpSession> {
    const s = await this.withClient(host, (c) => new Promise<SFTPWrapper>((resolve, reject) => c.sftp((err, x) => (err ? reject(err) : resolve(x)))));
    // An SFTP session holds its channel until the caller ends it: count it against the connection's
    // channel budget for that long, so parallel execs beside it never ask sshd for one too many.
    const entry = [...this.pool.values()].find((e) => e.client && (s as unknown as { _client?: unknown })._client === e.client);
    if (entry) {
      entry.busy++;
      let released = false;
      const done = () => { if (!released) { released = true; this.release(entry); } };
      s.once("close", done);
      s.once("end", done);
    }
    return wrapSftp(s);
  }

  async sshTransport(host: string): Promise<{ argv: string[]; destination: string }> {
    const h = await this.resolve(host);
    const parsed = parseHostSpec(host);
    const argv = ["ssh"];
    if (this.sshConfig) argv.push("-F", this.sshConfig);
    const cm = path.join(os.tmpdir(), `rgt-cm-${process.getuid?.() ?? "u"}`);
    fs.mkdirSync(cm, { recursive: true, mode: 0o700 });
    argv.push(
      "-o", "BatchMode=yes",
      "-o", `ConnectTimeout=${Math.ceil(h.connectTimeoutMs / 1000)}`,
      "-o", "ServerAliveInterval=15",
      "-o", "ServerAliveCountMax=3",
      "-o", "ControlMaster=auto",
      "-o", `ControlPath=${cm}/%C`,
      "-o", "ControlPersist=60",
      // a RemoteCommand, a forced tty or a LocalForward meant for interactive use would break the transfer
      "-o", "RemoteCommand=none",
      "-o", "RequestTTY=no",
      "-o", "ClearAllForwardings=yes",
    );
    if (parsed.port) argv.push("-p", String(parsed.port));
    const destination = parsed.user ? `${parsed.user}@${parsed.host}` : parsed.host;
    return { argv, destination };
  }

  async close(): Promise<void> {
    if (this.reaper) { clearInterval(this.reaper); this.reaper = undefined; }
    for (const e of this.pool.values()) e.client?.end();
    this.pool.clear();
  }
}
