/**
 * Several SFTP streams to one box, for transfers that one ssh channel cannot carry fast enough (a
 * channel moves at most its window, ~2 MiB, per round trip). The first stream is a channel on the pooled
 * connection; each extra one gets a connection of its own (its own TCP window, and the box's
 * MaxSessions, which counts channels per connection, never comes into it), closed when the transfer
 * ends. Hosts reached through ProxyJump or ProxyCommand get extra channels on the pooled connection
 * instead (the pool's channel cap then bounds them).
 * The streams speak in plain types: nothing of ssh2 leaves this file.
 */
import type { Client, SFTPWrapper, Stats } from "ssh2";
import { openConnection } from "./connect.js";
import type { Remote } from "./types.js";

/** an open remote file */
export type RemoteHandle = Buffer;

export interface RemoteStat { size: number; mtime: number }

export interface SftpStream {
  readonly id: number;
  /** false once its channel or connection is gone */
  readonly alive: boolean;
  /** whether this stream rides a connection of its own */
  readonly dedicated: boolean;
  /** the receive window this stream's channel keeps (bytes) */
  readonly windowBytes: number;
  stat(p: string): Promise<RemoteStat | null>;
  open(p: string, flags: "r" | "r+" | "w"): Promise<RemoteHandle>;
  read(h: RemoteHandle, buf: Buffer, len: number, pos: number): Promise<number>;
  write(h: RemoteHandle, buf: Buffer, len: number, pos: number): Promise<void>;
  close(h: RemoteHandle): Promise<void>;
  /** median of a few stat round trips, in ms */
  measureRtt(p: string, samples?: number): Promise<number>;
  end(): void;
}

/** ssh2 grants a channel 2 MiB and tops it up only once half is used: at 100 ms RTT that caps a stream near 15 MiB/s */
export const SSH2_WINDOW = 2 * 1024 * 1024;

interface ChannelInternals {
  incoming?: { window: number };
  outgoing?: { id: number; state: string };
  _protocol?: { channelWindowAdjust(id: number, amt: number): void };
}

/**
 * Keep the channel's receive window at `target` bytes (a plain SSH window adjust, as any receiver may
 * send): called after each reply, it tops the window up before ssh2's own refill (at 1 MiB left) would.
 * Returns false when ssh2's internals are not as expected (then the default window stays).
 */
function widen(sftp: SFTPWrapper, target: number): boolean {
  const ch = sftp as unknown as ChannelInternals;
  if (!ch.incoming || !ch.outgoing || !ch._protocol || typeof ch.incoming.window !== "number") return false;
  if (ch.outgoing.state !== "open") return true;
  const amt = target - ch.incoming.window;
  if (amt >= 256 * 1024) { ch.incoming.window += amt; ch._protocol.channelWindowAdjust(ch.outgoing.id, amt); }
  return true;
}

const cb = <T>(fn: (done: (err: Error | null | undefined, v: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));

function wrap(id: number, sftp: SFTPWrapper, client: Client | undefined, windowBytes = SSH2_WINDOW): SftpStream {
  let alive = true;
  const wide = windowBytes > SSH2_WINDOW && widen(sftp, windowBytes);
  const dead = () => { alive = false; };
  sftp.once("close", dead);
  sftp.once("end", dead);
  sftp.on("error", dead);
  client?.once("close", dead);
  client?.on("error", dead);
  const s: SftpStream = {
    id,
    get alive() { return alive; },
    dedicated: !!client,
    windowBytes: wide ? windowBytes : SSH2_WINDOW,
    async stat(p) {
      try { const st = await cb<Stats>((d) => sftp.stat(p, d)); return { size: st.size, mtime: st.mtime }; } catch { return null; }
    },
    open: (p, flags) => cb<Buffer>((d) => sftp.open(p, flags, 0o644, d)),
    read: (h, buf, len, pos) => cb<number>((d) => sftp.read(h, buf, 0, len, pos, (e, n) => { if (wide) widen(sftp, windowBytes); d(e, n); })),
    write: (h, buf, len, pos) => cb<void>((d) => sftp.write(h, buf, 0, len, pos, (e) => d(e, undefined))),
    close: (h) => cb<void>((d) => sftp.close(h, (e) => d(e, undefined))),
    async measureRtt(p, samples = 3) {
      const t: number[] = [];
      for (let k = 0; k < samples; k++) {
        const t0 = performance.now();
        await cb<Stats>((d) => sftp.stat(p, d)).catch(() => undefined);
        t.push(performance.now() - t0);
      }
      return t.sort((a, b) => a - b)[Math.floor(t.length / 2)];
    },
    end() {
      alive = false;
      try { sftp.end(); } catch { /* gone */ }
      client?.end();
    },
  };
  return s;
}

const sftpOn = (c: Client): Promise<SFTPWrapper> => cb<SFTPWrapper>((d) => c.sftp(d));

/** The first stream: a channel on the pooled connection (already open for the manifest round trip). */
export async function openFirstStream(remote: Remote, host: string, windowBytes?: number): Promise<SftpStream> {
  return wrap(0, await remote.sftp(host), undefined, windowBytes);
}

/**
 * `count` more streams, opened in parallel; those that fail to open are left out (the transfer goes on
 * with fewer). `firstId` numbers them. `shared` tells whether they are channels on the pooled connection.
 */
export async function openMoreStreams(remote: Remote, host: string, count: number, firstId = 1, windowBytes?: number): Promise<{ streams: SftpStream[]; shared: boolean }> {
  const h = await remote.resolve(host);
  const shared = !!(h.proxyJump || h.proxyCommand);
  const tries = Array.from({ length: Math.max(0, count) }, async (_, k): Promise<SftpStream | null> => {
    try {
      if (shared) return wrap(firstId + k, await remote.sftp(host), undefined, windowBytes);
      const { client } = await openConnection(h);
      try { return wrap(firstId + k, await sftpOn(client), client, windowBytes); } catch (e) { client.end(); throw e; }
    } catch { return null; }
  });
  const streams = (await Promise.all(tries)).filter((s): s is SftpStream => s !== null);
  return { streams, shared };
}
