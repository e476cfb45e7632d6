/**
 * SshRemote: one pooled ssh2 connection per endpoint, channels multiplexed over it, idle connections
 * reaped, a dropped connection transparently re-opened on the next call (and a call that found its
 * connection dead is retried once on a fresh one).
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { Duplex, PassThrough, Readable } from "node:stream";
import * as os from "node:os";
import * as path from "node:path";
import type { Client, SFTPWrapper } from "ssh2";
import { quote } from "shell-quote";
import { packageRoot, sshConfigFile } from "../common/config.js";
import { RefusalError, refuse } from "../common/result.js";
import { forwardThrough, openConnection, withDiagnosis, type DialOptions } from "./connect.js";
import type { ConnectFacts } from "./diagnose.js";
import { CHANNEL_OPEN_MS, ChannelTimeoutError, ConnectionLostError, execOn } from "./exec.js";
import { cpuHasAes, parseHostSpec, resolveHost, sshBinary, transportCiphers } from "./resolve.js";
import type { ExecOptions, ExecResult, Remote, ResolvedHost, SftpSession } from "./types.js";
import { wrapSftp } from "./sftp.js";
import { trackChild } from "../common/children.js";

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
  /** the stage the dial in progress is in (named when a caller's bound ends during it) */
  stage?: string;
  /** what the dial in progress has seen (address, first bytes), for the diagnosis of a caller that stops waiting */
  dialFacts?: () => ConnectFacts;
  /** the host stopped answering on an open connection (a channel open or a kill that hung): when and how */
  stalled?: { at: number; what: string };
}

export interface SshRemoteOptions {
  sshConfig?: string;
  /** close a connection unused for this long (default 120 s) */
  idleMs?: number;
  /** directory holding scripts/ (default: the package's own) */
  scriptsDir?: string;
  /**
   * platform knowledge about a host, for the diagnosis of a refused connection (e.g. "AutoDL assigns a new
   * port when an instance is re-created"); the remote layer knows no profiles, so it is passed in
   */
  connectionHint?: (host: string) => string | undefined;
}

/** default bound of a call that names none (an SFTP session open, a connection asked for directly) */
const DEFAULT_CALL_MS = 30_000;

/** Resolve p, or reject with late() once the deadline passes (p keeps running; its outcome is dropped). */
function byDeadline<T>(p: Promise<T>, deadline: number, late: () => Error): Promise<T> {
  const left = deadline - Date.now();
  if (left <= 0) return Promise.reject(late());
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(late()), left);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
  });
}

function secs(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
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
  /** bumped by close(): a dial that finishes afterwards ends its connection instead of pooling it */
  private generation = 0;
  private readonly hint?: (host: string) => string | undefined;

  constructor(opts: SshRemoteOptions = {}) {
    this.hint = opts.connectionHint;
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

  private hintFor(spec: string): string | undefined {
    try { return this.hint?.(spec); } catch { return undefined; }
  }

  /**
   * The pooled, ready connection for a host spec (connecting if needed), within the caller's deadline. A dial
   * runs under its own ConnectTimeout; a caller whose bound ends first gets TIMEOUT naming the stage the dial
   * is in, and a later caller joins the same dial with its own bound (never a queue behind a dead host).
   */
  async connection(spec: string, deadline = Date.now() + DEFAULT_CALL_MS): Promise<{ client: Client; entry: PoolEntry }> {
    const t0 = Date.now();
    const h = await byDeadline(this.resolve(spec), deadline, () => new RefusalError("TIMEOUT", `${spec}: ssh -G did not answer within the call's bound`, "Check the ssh config (an Include or Match exec that hangs?)."));
    let entry = this.pool.get(h.key);
    if (!entry) {
      entry = { host: h, lastUsed: Date.now(), busy: 0, waiters: [] };
      this.pool.set(h.key, entry);
    }
    if (entry.client && !isAlive(entry.client)) entry.client = undefined;
    if (entry.client) return { client: entry.client, entry };
    if (!entry.connecting) {
      const e = entry;
      e.stage = undefined;
      e.dialFacts = undefined;
      const gen = this.generation;
      e.connecting = this.dial(h, e).then(
        (c) => {
          e.connecting = undefined;
          // close() ran while this dial was in flight: the pool it belonged to is gone
          if (gen !== this.generation) { c.end(); throw new RefusalError("UNREACHABLE", `${spec}: the connection pool was closed during the dial`, "Retry."); }
          e.client = c;
          e.stalled = undefined;
          const drop = () => { if (e.client === c) e.client = undefined; };
          c.on("close", drop);
          c.on("end", drop);
          c.on("error", drop);
          return c;
        },
        (err) => {
          e.connecting = undefined;
          if (this.pool.get(h.key) === e && !e.client) this.pool.delete(h.key);
          throw err;
        },
      );
      e.connecting.catch(() => { /* a caller whose bound ended stopped listening */ });
    }
    const e = entry;
    const client = await byDeadline(entry.connecting!, deadline, () => {
      const stage = e.stage ?? "connect";
      const stalled = e.stalled ? ` (it stopped answering ${secs(Date.now() - e.stalled.at)} ago: ${e.stalled.what})` : "";
      return withDiagnosis(new RefusalError("TIMEOUT", `${spec}: no answer within the call's bound (${secs(deadline - t0)}); the connection was still in the ${stage} stage${stalled}`,
        "The box's sshd is not answering (frozen or overloaded box, or something on the path holds the connection). Retry later; check the box in its console; `rgt doctor <host>` walks the path."),
      { ...(e.dialFacts?.() ?? { hostname: h.hostname, port: h.port }), stage, outcome: "timeout", ...(this.hintFor(spec) ? { hint: this.hintFor(spec) } : {}) });
    });
    this.startReaper();
    return { client, entry };
  }

  private async dial(h: ResolvedHost, entry: PoolEntry): Promise<Client> {
    const onStage = (s: string) => { entry.stage = s; };
    const onFacts = (f: () => ConnectFacts) => { entry.dialFacts = f; };
    const hint = this.hintFor(h.spec);
    const opts = { onStage, onFacts, ...(hint ? { hint } : {}) };
    if (h.proxyCommand) return this.dialViaCommand(h, opts);
    if (!h.proxyJump) return (await openConnection(h, opts)).client;
    // ProxyJump a,b,c: a is dialled (pooled, with its own config), each later hop rides on the previous one.
    // A failure before the target is the route's, and says which hop.
    const hops = h.proxyJump.split(",").map((s) => s.trim()).filter(Boolean);
    entry.via = hops[0];
    const deadline = Date.now() + h.connectTimeoutMs * (hops.length + 1);
    const hopFailed = (hop: string, e: unknown): never => {
      if (!(e instanceof RefusalError)) throw e;
      const r = e.refusal as { code: string; reason: string; remedy: string; diagnosis?: string };
      const err = new RefusalError(r.code, `jump host ${hop} (ProxyJump for ${h.spec}): ${r.reason}`, `The jump host fails, not the target: ${r.remedy}`);
      (err.refusal as { diagnosis?: string }).diagnosis = `the route failed at jump host ${hop}, before the target ${h.hostname}:${h.port} was reached${r.diagnosis ? `; ${r.diagnosis}` : ""}`.slice(0, 400);
      throw err;
    };
    onStage(`jump host ${hops[0]}`);
    let via = await this.connection(hops[0], deadline).then((x) => x.client, (e) => hopFailed(hops[0], e));
    const intermediates: Client[] = [];
    let prev = hops[0];
    for (const hop of hops.slice(1)) {
      onStage(`jump host ${hop}`);
      const hh = await this.resolve(hop);
      const sock = await forwardThrough(via, hh.hostname, hh.port, hh.connectTimeoutMs, `jump host ${prev}`).catch((e) => hopFailed(prev, e));
      via = (await openConnection({ ...hh, proxyJump: undefined }, { sock }).catch((e) => hopFailed(hop, e))).client;
      intermediates.push(via);
      prev = hop;
    }
    onStage(`jump channel via ${prev}`);
    const sock = await forwardThrough(via, h.hostname, h.port, h.connectTimeoutMs, `jump host ${prev}`).catch((e) => hopFailed(prev, e));
    const client = (await openConnection(h, { ...opts, sock })).client;
    client.on("close", () => intermediates.forEach((c) => c.end()));
    return client;
  }

  /** ProxyCommand: the command's stdin/stdout carry the ssh stream (cloud IAP tunnels, `ssh -W`, nc via a proxy). */
  private async dialViaCommand(h: ResolvedHost, opts: DialOptions): Promise<Client> {
    const child = trackChild(spawn("/bin/sh", ["-c", h.proxyCommand!], { stdio: ["pipe", "pipe", "pipe"] }));
    let errText = "";
    child.stderr.on("data", (b: Buffer) => { errText = (errText + b.toString()).slice(-400); });
    const sock = Duplex.from({ readable: child.stdout, writable: child.stdin });
    const failed = (code: number | null) => {
      const e = new RefusalError("UNREACHABLE", `ProxyCommand for ${h.spec} exited (${code}) before the ssh handshake: ${errText.trim().slice(-200) || "no output"}`, "Run the ProxyCommand from your ssh config by hand to see why it fails.");
      (e.refusal as { diagnosis?: string }).diagnosis = `the route failed at the ProxyCommand, before the target ${h.hostname}:${h.port} was reached`;
      return e;
    };
    const exited = new Promise<never>((_, reject) => child.once("exit", (code) => reject(failed(code))));
    exited.catch(() => {});
    try {
      const { client } = await Promise.race([openConnection(h, { ...opts, sock }), exited]);
      client.on("close", () => { if (child.exitCode === null) child.kill("SIGTERM"); });
      return client;
    } catch (e) {
      // ssh2 often notices the closed pipe before the command's exit is reported: give the command's own
      // words (its stderr) the chance to be the reason, they say more than "connection lost".
      const code = child.exitCode ?? (await Promise.race([new Promise<number | null>((r) => child.once("exit", (c) => r(c))), new Promise<null>((r) => setTimeout(() => r(null), 500))]));
      if (child.exitCode === null) child.kill("SIGTERM");
      if (code !== null && code !== 0) throw failed(code);
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

  /**
   * OpenSSH refuses more than MaxSessions (default 10) channels on one connection, and a refused channel
   * must not be mistaken for a dead box: calls beyond MAX_CHANNELS wait for a free channel instead — within
   * their own bound, and only while that connection lives (a connection dropped as dead wakes them all).
   * Returns false when the connection was dropped meanwhile.
   */
  private async acquire(entry: PoolEntry, client: Client, deadline: number): Promise<boolean> {
    while (entry.busy >= MAX_CHANNELS && entry.client === client) {
      const left = deadline - Date.now();
      if (left <= 0) throw new RefusalError("TIMEOUT", `${entry.host.spec}: all ${MAX_CHANNELS} channels of the connection stayed busy for the call's whole bound`, "Too many calls at once on one box; retry, or give the call a longer timeout.");
      await new Promise<void>((res) => {
        const t = setTimeout(() => { entry.waiters.splice(entry.waiters.indexOf(wake), 1); res(); }, left);
        const wake = () => { clearTimeout(t); res(); };
        entry.waiters.push(wake);
      });
    }
    if (entry.client !== client) return false;
    entry.busy++;
    return true;
  }

  private release(entry: PoolEntry): void {
    entry.busy--;
    entry.lastUsed = Date.now();
    entry.waiters.shift()?.();
  }

  /**
   * The box stopped answering on this connection (a channel open or a kill got no reply): drop the connection
   * now — keepalives would take ~30 s more — and wake every call waiting on it, so none queues behind it.
   */
  private markStalled(entry: PoolEntry, client: Client, what: string): void {
    entry.stalled = { at: Date.now(), what };
    if (entry.client === client) entry.client = undefined;
    client.destroy();
    for (const w of entry.waiters.splice(0)) w();
  }

  /** Run fn on a pooled connection within deadline; a connection found dead is replaced and the call retried once. */
  private async withClient<T>(host: string, deadline: number, fn: (c: Client) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const { client, entry } = await this.connection(host, deadline);
      if (!(await this.acquire(entry, client, deadline))) { attempt--; continue; }
      entry.lastUsed = Date.now();
      try {
        return await fn(client);
      } catch (e) {
        if (e instanceof RefusalError) throw e;
        if (e instanceof ChannelTimeoutError) {
          // Not retried inside this call: a box that is merely slow may still start the command late, and a
          // second try could run it twice. The connection is dropped, so the next call dials afresh.
          this.markStalled(entry, client, `${e.what} hung`);
          throw withDiagnosis(new RefusalError("TIMEOUT", `the pooled connection to ${host} stopped answering: ${e.what} got no reply within ${secs(e.ms)} (stage: channel open); the connection is dropped, the next call dials afresh`,
            "The box's sshd froze or the box is overloaded; the box never confirmed the session, so the command most likely did not start. Retry later, or check the box in its console."),
          { hostname: entry.host.hostname, port: entry.host.port, stage: "channel open", outcome: "timeout", ...(this.hintFor(host) ? { hint: this.hintFor(host) } : {}) });
        }
        const msg = (e as Error).message ?? "";
        // The box said no to one more channel (MaxSessions, a busy sshd): the connection itself is fine and
        // its other channels keep running. Back off and ask again.
        if (/channel open failure|open failed/i.test(msg) && isAlive(client)) {
          if (attempt < 4 && deadline - Date.now() > 1000) { await new Promise((res) => setTimeout(res, 150 * (attempt + 1))); continue; }
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
    // the bound counts from here: resolve, connect, channel open, command and kill all fit inside it
    const deadline = opts.deadline ?? Date.now() + (opts.timeoutMs ?? 60_000);
    return this.withClient(host, deadline, async (c) => {
      const r = await execOn(c, command, { ...opts, deadline });
      if (r.unresponsive) {
        const e = [...this.pool.values()].find((x) => x.client === c);
        if (e) this.markStalled(e, c, "a command's kill got no reply");
      }
      return r;
    });
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
    // a stream given as stdin follows the script (bash reads its script from a pipe line by line, so what the
    // script reads from stdin is that stream: box_lock.sh holds its lock until it ends)
    if (opts.stdin !== undefined && !(opts.stdin instanceof Readable)) refuse("BAD_INPUT", "runScript streams the script itself over stdin", "Pass data through env or args.");
    const head = script.endsWith(".py") ? body : prelude + body;
    let stdin: string | Readable = head;
    if (opts.stdin instanceof Readable) {
      const joined = new PassThrough();
      joined.write(head.endsWith("\n") ? head : `${head}\n`);
      opts.stdin.pipe(joined);
      stdin = joined;
    }
    return this.exec(host, cmd, { ...opts, stdin });
  }

  async sftp(host: string): Promise<SftpSession> {
    const deadline = Date.now() + DEFAULT_CALL_MS;
    const s = await this.withClient(host, deadline, (c) => new Promise<SFTPWrapper>((resolve, reject) => {
      const ms = Math.max(1, Math.min(CHANNEL_OPEN_MS, deadline - Date.now()));
      let late = false;
      const t = setTimeout(() => { late = true; reject(new ChannelTimeoutError("an SFTP session open", ms)); }, ms);
      c.sftp((err, x) => {
        clearTimeout(t);
        if (late) { x?.end(); return; }
        if (err) reject(err); else resolve(x);
      });
    }));
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
    const argv = [sshBinary()];
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
    const ciphers = transportCiphers(h.ciphers, cpuHasAes());
    if (ciphers) argv.push("-o", `Ciphers=${ciphers}`);
    if (parsed.port) argv.push("-p", String(parsed.port));
    const destination = parsed.user ? `${parsed.user}@${parsed.host}` : parsed.host;
    return { argv, destination };
  }

  warm(host: string, o: { transport?: boolean } = {}): void {
    void this.connection(host).catch(() => { /* the call itself reports it */ });
    if (!o.transport) return;
    // `ssh … true` under ControlMaster=auto leaves the master behind (ControlPersist) for the rsync that follows;
    // its exit, not its pipes, ends the wait (the persisting master inherits them)
    void this.sshTransport(host).then((t) => {
      const c = trackChild(spawn(t.argv[0], [...t.argv.slice(1), t.destination, "true"], { stdio: "ignore" }));
      const timer = setTimeout(() => c.kill("SIGKILL"), 30_000);
      c.on("exit", () => clearTimeout(timer));
      c.on("error", () => clearTimeout(timer));
    }, () => { /* the call itself reports it */ });
  }

  async close(): Promise<void> {
    this.generation++;
    if (this.reaper) { clearInterval(this.reaper); this.reaper = undefined; }
    for (const e of this.pool.values()) e.client?.end();
    this.pool.clear();
  }
}
