/**
 * Ports on 127.0.0.1 that are not sshd, for the connection-diagnosis tests and eval replays: one nothing
 * listens on (closed), one that accepts and never says a word (silent), one that greets with another
 * protocol's line and waits (banner, e.g. an SMTP greeting), one that speaks only when spoken to and then
 * hangs up (reply, e.g. an HTTP server's 400), one that accepts and hangs up at once (hangup), and one that
 * answers the client's first bytes with a TCP reset (reset: a firewall or a proxy refusing mid-handshake).
 * Every socket a port accepted is destroyed by close().
 */
import * as net from "node:net";

export type FakePortKind = "closed" | "silent" | "banner" | "reply" | "hangup" | "reset";

export interface FakePortSpec {
  kind: FakePortKind;
  /** what a banner port sends on accept, or a reply port sends after the client's first bytes */
  text?: string;
}

export interface FakePort {
  readonly port: number;
  readonly kind: FakePortKind;
  /** connections accepted so far (0 for a closed port) */
  readonly connections: number;
  close(): Promise<void>;
}

/** A loopback port nothing listens on: bound to an ephemeral port, then released. */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

export async function startFakePort(spec: FakePortSpec): Promise<FakePort> {
  if ((spec.kind === "banner" || spec.kind === "reply") && !spec.text) throw new Error(`lab: a ${spec.kind} port needs text`);
  if (spec.kind === "closed") {
    const port = await closedPort();
    return { port, kind: "closed", connections: 0, close: async () => {} };
  }
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const srv = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    if (spec.kind === "banner") s.write(spec.text!);
    else if (spec.kind === "reply") s.once("data", () => s.end(spec.text!));
    else if (spec.kind === "hangup") s.destroy();
    else if (spec.kind === "reset") s.once("data", () => s.resetAndDestroy());
    // silent: accepts, never writes
  });
  const port = await new Promise<number>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => resolve((srv.address() as net.AddressInfo).port));
  });
  return {
    port,
    kind: spec.kind,
    get connections() { return connections; },
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      srv.close(() => resolve());
    }),
  };
}
