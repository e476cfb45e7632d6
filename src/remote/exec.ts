/**
 * Bounded command execution on an open connection. The command runs as the leader of its own process
 * group (setsid), which it reports on stderr before anything else; on timeout that whole group is
 * killed on the box over a second channel — never merely abandoned.
 */
import { Readable } from "node:stream";
import type { Client } from "ssh2";
import { quote } from "shell-quote";
import type { ExecOptions, ExecResult } from "./types.js";

const MARK = "__RGT_PGID__";
// Anywhere in the first lines of stderr: a login shell's rc files (Debian's bash reads ~/.bashrc for ssh
// commands) may print before our wrapper runs.
const MARK_RE = new RegExp(`(?:^|\\n)${MARK} (\\d+)\\n`);
const MARK_SCAN_BYTES = 16 * 1024;

/** Wrap a command line so it runs in a fresh session/process group and reports that group first. */
export function wrapCommand(command: string): string {
  const inner = `printf '${MARK} %s\\n' "$$" >&2; __rgt_cmd=$1; set --; eval "$__rgt_cmd"`;
  // `setsid -w` forks only if needed and waits, so the exit status is the command's own. The command is
  // evaluated by the group leader itself (one bash fewer per call than `exec bash -c`), with no positional
  // arguments, as `bash -c` would run it. --norc: our own shells never read ~/.bashrc (bash would, seeing
  // SSH_CLIENT); only the login shell's own start-up is not ours.
  return `if command -v setsid >/dev/null 2>&1; then exec setsid -w bash --norc -c ${quote([inner])} rgt ${quote([command])}; else exec bash --norc -c ${quote([inner])} rgt ${quote([command])}; fi`;
}

/** The connection died after the command had started: it may have run in part, so it is never retried. */
export class ConnectionLostError extends Error {
  /** `started` is false when the wrapper never reported its process group: the command itself never ran. */
  constructor(readonly elapsedMs: number, readonly partialStdout: string, readonly started: boolean) {
    super(started ? "connection lost while the command was running" : "the session closed before the command started");
    this.name = "ConnectionLostError";
  }
}

/** Keeps the first and the last `cap/2` bytes of a stream. */
export class CappedBuffer {
  private head: Buffer[] = [];
  private headLen = 0;
  private tail: Buffer[] = [];
  private tailLen = 0;
  truncated = false;
  constructor(private readonly cap: number) {}
  push(b: Buffer): void {
    const half = Math.floor(this.cap / 2);
    if (this.headLen < half) {
      const take = b.subarray(0, half - this.headLen);
      this.head.push(take);
      this.headLen += take.length;
      b = b.subarray(take.length);
      if (!b.length) return;
    }
    this.tail.push(b);
    this.tailLen += b.length;
    while (this.tailLen > this.cap - half && this.tail.length) {
      const over = this.tailLen - (this.cap - half);
      const first = this.tail[0];
      this.truncated = true;
      if (first.length <= over) { this.tail.shift(); this.tailLen -= first.length; }
      else { this.tail[0] = first.subarray(over); this.tailLen -= over; }
    }
  }
  toString(): string {
    let h = Buffer.concat(this.head).toString("utf8");
    let t = Buffer.concat(this.tail).toString("utf8");
    if (!this.truncated) return h + t;
    const hl = h.lastIndexOf("\n");
    if (hl >= 0 && h.length - hl < 64 * 1024) h = h.slice(0, hl);
    else { const ws = Math.max(h.lastIndexOf(" "), h.lastIndexOf("\t")); h = ws >= 0 ? h.slice(0, ws) : ""; }
    // the kept tail starts mid-stream: drop its partial first line (or word), so no credential that
    // straddles the dropped middle comes back in part before redaction sees it
    const nl = t.indexOf("\n");
    const sp = t.search(/\s/);
    t = nl >= 0 && nl < 64 * 1024 ? t.slice(nl + 1) : sp >= 0 ? t.slice(sp + 1) : "";
    return `${h}\n…[output truncated]…\n${t}`;
  }
}

/**
 * A channel (session, exec, sftp) that the box did not open within its bound. ssh2 has no timeout of its own
 * for a channel open: on a box whose sshd froze it waits for as long as the TCP connection lives.
 */
export class ChannelTimeoutError extends Error {
  constructor(readonly what: string, readonly ms: number) {
    super(`${what} got no answer within ${ms} ms`);
    this.name = "ChannelTimeoutError";
  }
}

/** the longest one channel open may take: one round trip on a healthy link, however far */
export const CHANNEL_OPEN_MS = 10_000;
/** after a timed-out command: how long the kill's channel open, the whole kill and the channel's close may take */
const KILL_OPEN_MS = 1500;
const KILL_BOUND_MS = 3500;
const CLOSE_GRACE_MS = 1500;

/** Kill a process group on the box over a second channel; resolves true once the box confirmed it, false when it did not answer in time. */
export function killGroup(client: Client, pgid: number, boundMs = 8000, openMs = boundMs): Promise<boolean> {
  const cmd = `kill -TERM -- -${pgid} 2>/dev/null; for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 -- -${pgid} 2>/dev/null || exit 0; sleep 0.2; done; kill -KILL -- -${pgid} 2>/dev/null; exit 0`;
  return new Promise<boolean>((resolve) => {
    let over = false;
    const t = setTimeout(() => { over = true; resolve(false); }, boundMs);
    const o = setTimeout(() => { over = true; clearTimeout(t); resolve(false); }, openMs);
    try {
      client.exec(cmd, (err, ch) => {
        clearTimeout(o);
        if (err) { clearTimeout(t); return resolve(false); }
        if (over) { ch.close(); return; }
        ch.on("close", () => { clearTimeout(t); resolve(true); });
        ch.resume();
        ch.stderr.resume();
      });
    } catch { clearTimeout(t); resolve(false); }
  });
}

/**
 * Run `command` on `client`, bounded as a whole: the channel open, the command and its kill all end by
 * opts.deadline (or timeoutMs from now). A channel the box does not open in time rejects with
 * ChannelTimeoutError; a command past its bound is killed on the box with its process group.
 */
export function execOn(client: Client, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
  const t0 = Date.now();
  const deadline = opts.deadline ?? t0 + (opts.timeoutMs ?? 60_000);
  const cap = opts.maxOutputBytes ?? 1 << 20;
  return new Promise<ExecResult>((resolve, reject) => {
    const openMs = Math.max(1, Math.min(CHANNEL_OPEN_MS, deadline - Date.now()));
    let late = false;
    const openTimer = setTimeout(() => { late = true; reject(new ChannelTimeoutError("a session channel open", openMs)); }, openMs);
    // Every listener is attached inside the exec callback, synchronously: ssh2 parses a whole TCP read at once,
    // so a fast command's data, exit-status and close can all be emitted before an awaiting caller resumes.
    const onOpen = (openErr: Error | undefined, ch: import("ssh2").ClientChannel) => {
      clearTimeout(openTimer);
      if (late) { ch?.close(); return; }
      if (openErr) return reject(openErr);
      const out = new CappedBuffer(cap);
      const err = new CappedBuffer(cap);
      let pgid: number | undefined;
      let errHead = Buffer.alloc(0);
      let timedOut = false;
      let exitCode: number | null = null;
      let signal: string | undefined;
      let exited = false;
      let killing: Promise<boolean> | undefined;
      let finished = false;
      let closed = false;
      let graceTimer: NodeJS.Timeout | undefined;
      const cleanup = () => { clearTimeout(timer); clearTimeout(graceTimer); opts.signal?.removeEventListener("abort", onAbort); };
      const finish = async () => {
        if (finished) return;
        finished = true;
        cleanup();
        const confirmed = killing ? await killing.catch(() => false) : true;
        // the box stopped answering after the bound: say so rather than pretend the kill happened
        const unconfirmed = timedOut && (!closed || (!!pgid && !confirmed));
        if (unconfirmed) err.push(Buffer.from(`\n[rgt: the box stopped answering; the kill of the command${pgid ? ` (process group ${pgid})` : ""} is unconfirmed]\n`));
        resolve({ exitCode: timedOut ? null : exitCode, signal, stdout: out.toString(), stderr: err.toString(), truncated: out.truncated
          || err.truncated, timedOut, elapsedMs: Date.now() - t0, ...(unconfirmed ? { unresponsive: true } : {}) });
      };
      const stop = () => {
        if (killing) return;
        timedOut = true;
        killing = (pgid ? killGroup(client, pgid, KILL_BOUND_MS, KILL_OPEN_MS) : Promise.resolve(true)).finally(() => {
          try { ch.close(); } catch { /* socket gone */ }
          // a frozen box never confirms the close: answer anyway, shortly
          graceTimer = setTimeout(() => void finish(), CLOSE_GRACE_MS);
        });
      };
      const onAbort = () => stop();
      const timer = setTimeout(stop, Math.max(0, deadline - Date.now()));
      opts.signal?.addEventListener("abort", onAbort);

      ch.on("data", (b: Buffer) => { out.push(b); opts.onStdout?.(b); });
      ch.stderr.on("data", (b: Buffer) => {
        if (pgid === undefined) {
          errHead = Buffer.concat([errHead, b]);
          const s = errHead.toString("latin1");
          const m = MARK_RE.exec(s);
          if (m) {
            pgid = Number(m[1]);
            // keep what the rc files printed before the marker, drop the marker line itself
            const before = errHead.subarray(0, m.index + (m[0].startsWith("\n") ? 1 : 0));
            const rest = errHead.subarray(m.index + m[0].length);
            if (before.length) err.push(before);
            if (rest.length) err.push(rest);
            if (timedOut && !killing) stop();
          } else if (errHead.length > MARK_SCAN_BYTES) {
            pgid = 0; // no marker: no group to kill by id
            err.push(errHead);
          }
          return;
        }
        err.push(b);
      });
      ch.on("exit", (code: number | null, sig?: string) => { exited = true; exitCode = code; if (sig) signal = sig; });
      // ssh2 repeats the exit status on 'close' (code, signal…) when the box sent one.
      ch.on("close", (code?: number | null, sig?: string) => {
        closed = true;
        if (pgid === undefined && errHead.length) { err.push(errHead); errHead = Buffer.alloc(0); }
        if (!exited && (typeof code === "number" || typeof sig === "string")) { exited = true; exitCode = code ?? null; if (sig) signal = sig; }
        if (!exited && !timedOut) {
          cleanup();
          reject(new ConnectionLostError(Date.now() - t0, out.toString(), pgid !== undefined));
          return;
        }
        void finish();
      });
      ch.on("error", (e: Error) => { cleanup(); reject(e); });

      const stdin = opts.stdin;
      if (stdin === undefined) ch.end();
      else if (typeof stdin === "string" || Buffer.isBuffer(stdin)) ch.end(stdin);
      else (stdin as Readable).pipe(ch);
    };
    try { client.exec(wrapCommand(command), onOpen); } catch (e) { clearTimeout(openTimer); reject(e); }
  });
}
