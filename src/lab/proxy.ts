/**
 * A TCP relay in front of a box's sshd that drops connections mid-stream: once a connection has
 * carried `cutAfterBytes` bytes (both directions counted), the bytes up to the limit are delivered and
 * both sockets are destroyed, like a flaky link dying mid-transfer. `maxCuts` limits how many
 * connections get cut (later ones pass untouched, so a retry can succeed); `setCutAfter` re-arms it
 * (and resets the cut budget) for connections opened afterwards; `null` disarms.
 * `delayMs` holds every chunk back that long in each direction (a round trip gains twice that), in order:
 * a WAN link's latency for boxes that otherwise sit on loopback.
 */
import * as net from "node:net";

export interface CutProxyOptions {
  /** bytes per connection before the cut; null/Infinity = never cut */
  cutAfterBytes: number | null;
  /** cut at most this many connections (default unlimited) */
  maxCuts?: number;
  /** which bytes count: both directions (default), client→server ("up") or server→client ("down") */
  count?: "both" | "up" | "down";
  /** one-way latency added to every chunk, both directions (default 0) */
  delayMs?: number;
  /** target host (default 127.0.0.1) */
  targetHost?: string;
}

export interface CutProxy {
  /** the proxy's port on 127.0.0.1 */
  readonly port: number;
  /** connections cut so far */
  readonly cuts: number;
  /** connections accepted so far */
  readonly connections: number;
  /** re-arm (or disarm with null) for new connections; resets the cut budget to `maxCuts` */
  setCutAfter(n: number | null, maxCuts?: number): void;
  close(): Promise<void>;
}

export async function startCutProxy(targetPort: number, opts: CutProxyOptions): Promise<CutProxy> {
  if (!Number.isInteger(targetPort) || targetPort <= 0 || targetPort > 65535) throw new Error(`proxy: bad target port ${targetPort}`);
  let limit: number | null = opts.cutAfterBytes ?? null;
  let budget = opts.maxCuts ?? Infinity;
  let cuts = 0;
  let connections = 0;
  const count = opts.count ?? "both";
  const sockets = new Set<net.Socket>();

  const server = net.createServer((client) => {
    connections++;
    const connLimit = limit !== null && Number.isFinite(limit) && budget > 0 ? limit : null;
    let seen = 0;
    let cut = false;
    const upstream = net.connect({ host: opts.targetHost ?? "127.0.0.1", port: targetPort });
    // the relay itself must add no latency of its own (Nagle holding back small writes)
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", () => { sockets.delete(client); upstream.destroy(); });
    upstream.on("close", () => { sockets.delete(upstream); client.destroy(); });
    client.on("error", drop);
    upstream.on("error", drop);

    const delay = Math.max(0, opts.delayMs ?? 0);
    // chunks of one direction share one delay, and Node fires equal-delay timers in the order they were
    // set, so a delayed stream keeps its byte order. One drain listener per direction at most: a burst
    // of delayed writes into a full socket pauses the source once and resumes it once.
    const sender = (from: net.Socket, to: net.Socket) => {
      let waiting = false;
      const write = (chunk: Buffer) => {
        if (to.destroyed || to.write(chunk) || waiting) return;
        waiting = true;
        from.pause();
        to.once("drain", () => { waiting = false; from.resume(); });
      };
      return (chunk: Buffer) => { if (delay > 0) setTimeout(write, delay, chunk); else write(chunk); };
    };
    const relay = (from: net.Socket, to: net.Socket, counted: boolean) => {
      const send = sender(from, to);
      from.on("data", (chunk: Buffer) => {
        if (cut) return;
        if (connLimit === null || !counted) {
          send(chunk);
          return;
        }
        const room = connLimit - seen;
        if (chunk.length < room) {
          seen += chunk.length;
          send(chunk);
          return;
        }
        cut = true;
        if (budget > 0) budget--;
        cuts++;
        const head = chunk.subarray(0, Math.max(0, room));
        if (head.length > 0) to.write(head, () => drop());
        else drop();
        setTimeout(drop, 50).unref();
      });
    };
    relay(client, upstream, count !== "down");
    relay(upstream, client, count !== "up");
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  server.unref();
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;

  return {
    port,
    get cuts() { return cuts; },
    get connections() { return connections; },
    setCutAfter(n: number | null, maxCuts?: number) {
      limit = n;
      budget = maxCuts ?? opts.maxCuts ?? Infinity;
    },
    close() {
      return new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
    },
  };
}
