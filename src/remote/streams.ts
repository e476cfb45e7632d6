/**
 * Several SFTP streams to one box, for transfers one ssh channel cannot carry fast enough: a channel
 * moves at most its window per round trip, and ssh2 grants 2 MiB, topped up only once half is used
 * (~15 MiB/s at 100 ms RTT). Each stream here gets a connection of its own (its own TCP window, and
 * the box's MaxSessions, which counts channels per connection, never comes into it) and keeps a wider
 * receive window (a plain SSH window adjust, as any receiver may send). The streams are closed by
 * whoever opened them. Hosts reached through ProxyJump or ProxyCommand get SFTP sessions on the pooled
 * connection instead (default window; the pool's channel cap bounds them).
 * Nothing of ssh2 leaves this file: a stream is a project SftpSession plus what a transfer needs to know.
 */
import type { Client, SFTPWrapper } from "ssh2";
import { openConnection } from "./connect.js";
import { wrapSftp } from "./sftp.js";
import type { Remote, SftpFile, SftpSession } from "./types.js";

/** ssh2's own channel window */
export const SSH2_WINDOW = 2 * 1024 * 1024;

export interface SftpStream {
  readonly id: number;
  /** false once its channel or connection is gone */
  readonly alive: boolean;
  /** whether this stream rides a connection of its own */
  readonly dedicated: boolean;
  /** the receive window its channel keeps (bytes): what one round trip can carry */
  readonly windowBytes: number;
  readonly sftp: SftpSession;
  /** median of a few stat round trips, in ms */
  measureRtt(p: string, samples?: number): Promise<number>;
  end(): void;
}

interface ChannelInternals {
  incoming?: { window: number };
  outgoing?: { id: number; state: string };
  _protocol?: { channelWindowAdjust(id: number, amt: number): void };
}

/**
 * Top the channel's receive window up to `target` (before ssh2's own refill at 1 MiB left would).
 * Returns false when ssh2's internals are not as expected: the default window then stays.
 */
function widen(w: SFTPWrapper, target: number): boolean {
  const ch = w as unknown as ChannelInternals;
  if (!ch.incoming || !ch.outgoing || !ch._protocol || typeof ch.incoming.window !== "number") return false;
  if (ch.outgoing.state !== "open") return true;
  const amt = target - ch.incoming.window;
  if (amt >= 256 * 1024) { ch.incoming.window += amt; ch._protocol.channelWindowAdjust(ch.outgoing.id, amt); }
  return true;
}

function stream(id: number, session: SftpSession, onEnd: () => void, windowBytes: number, dedicated: boolean, isAlive: () => boolean): SftpStream {
  let ended = false;
  return {
    id,
    get alive() { return !ended && isAlive(); },
    dedicated,
    windowBytes,
    sftp: session,
    async measureRtt(p, samples = 3) {
      const t: number[] = [];
      for (let k = 0; k < samples; k++) {
        const t0 = performance.now();
        await session.stat(p);
        t.push(performance.now() - t0);
      }
      return t.sort((a, b) => a - b)[Math.floor(t.length / 2)];
    },
    end() {
      if (ended) return;
      ended = true;
      try { session.end(); } catch { /* gone */ }
      onEnd();
    },
  };
}

/** A raw ssh2 SFTP client on its own connection, as a stream with a widened window. */
function dedicatedStream(id: number, client: Client, w: SFTPWrapper, windowBytes: number): SftpStream {
  let alive = true;
  const dead = () => { alive = false; };
  w.once("close", dead);
  w.once("end", dead);
  w.on("error", dead);
  client.once("close", dead);
  client.on("error", dead);
  const wide = windowBytes > SSH2_WINDOW && widen(w, windowBytes);
  const base = wrapSftp(w);
  const session: SftpSession = wide ? {
    ...base,
    async open(p, flags, mode): Promise<SftpFile> {
      const f = await base.open(p, flags, mode);
      return { ...f, read: (buf, off, len, pos) => f.read(buf, off, len, pos).finally(() => widen(w, windowBytes)) };
    },
  } : base;
  return stream(id, session, () => client.end(), wide ? windowBytes : SSH2_WINDOW, true, () => alive);
}

const sftpOn = (c: Client): Promise<SFTPWrapper> => new Promise((resolve, reject) => c.sftp((e, w) => (e ? reject(e) : resolve(w))));

/**
 * `count` streams, opened in parallel, numbered from `firstId`; those that fail to open are left out
 * (the transfer goes on with fewer). `shared` tells whether they are sessions on the pooled connection.
 */
export async function openStreams(
  remote: Remote, host: string, count: number, o: { firstId?: number; windowBytes?: number } = {},
): Promise<{ streams: SftpStream[]; shared: boolean }> {
  const h = await remote.resolve(host);
  const shared = !!(h.proxyJump || h.proxyCommand);
  const firstId = o.firstId ?? 0;
  const tries = Array.from({ length: Math.max(0, count) }, async (_, k): Promise<SftpStream | null> => {
    try {
      if (shared) {
        let alive = true;
        const s = await remote.sftp(host);
        return stream(firstId + k, s, () => { alive = false; }, SSH2_WINDOW, false, () => alive);
      }
      const { client } = await openConnection(h);
      try { return dedicatedStream(firstId + k, client, await sftpOn(client), o.windowBytes ?? SSH2_WINDOW); } catch (e) { client.end(); throw e; }
    } catch { return null; }
  });
  const streams = (await Promise.all(tries)).filter((s): s is SftpStream => s !== null);
  return { streams, shared };
}
