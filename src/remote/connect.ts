/**
 * Opening one authenticated, host-key-checked ssh2 connection to a resolved host, optionally through a
 * ProxyJump chain (each hop is itself a pooled connection; the next hop rides on forwardOut).
 */
import * as fs from "node:fs";
import type { Duplex } from "node:stream";
import ssh2, { type Client as SshClient, type ConnectConfig, type ParsedKey } from "ssh2";
import { refuse, RefusalError } from "../common/result.js";
import { appendKnownKey, knownHostsName, loadKnownKeys, preferredAlgorithms, verifyKey, blobType } from "./knownHosts.js";
import type { ResolvedHost } from "./types.js";

interface AuthCandidate { kind: "agent"; sock: string } 
// ssh2 is CommonJS: under Node ESM only its default export is reliable.
const { Client, utils } = ssh2;
type Client = SshClient;
type KeyCandidate = { kind: "key"; file: string; key: ParsedKey };

function agentSocket(h: ResolvedHost): string | undefined {
  if (h.identityAgent === "none") return undefined;
  const s = h.identityAgent && h.identityAgent !== "SSH_AUTH_SOCK" ? h.identityAgent : process.env.SSH_AUTH_SOCK;
  return s && fs.existsSync(s) ? s : undefined;
}

function hostKeyRemedy(h: ResolvedHost, name: string): string {
  return `If the box was re-created (rentals re-issue host keys), remove the old key with: ssh-keygen -R '${name}'${
    h.userKnownHostsFiles[0] ? ` -f '${h.userKnownHostsFiles[0]}'` : ""
  } — then connect once with plain ssh to check and accept the new fingerprint.`;
}

export interface OpenedConnection { client: Client; host: ResolvedHost }

/**
 * Connect and authenticate. `sock` is a pre-opened stream (ProxyJump). Throws RefusalError with
 * UNREACHABLE / AUTH_FAILED / HOST_KEY_UNKNOWN / HOST_KEY_CHANGED.
 */
export function openConnection(h: ResolvedHost, sock?: Duplex): Promise<OpenedConnection> {
  const name = knownHostsName(h.hostKeyAlias ?? h.hostname, h.hostKeyAlias ? 22 : h.port);
  const known = loadKnownKeys(h.userKnownHostsFiles, name);
  let hostKeyFailure: RefusalError | undefined;

  const keyCandidates: KeyCandidate[] = [];
  const encrypted: string[] = [];
  for (const file of h.identityFiles) {
    let parsed: ParsedKey | ParsedKey[] | Error;
    try { parsed = utils.parseKey(fs.readFileSync(file)); } catch { continue; }
    if (parsed instanceof Error) {
      if (/encrypted|passphrase/i.test(parsed.message)) encrypted.push(file);
      continue;
    }
    keyCandidates.push({ kind: "key", file, key: Array.isArray(parsed) ? parsed[0] : parsed });
  }
  const agent = agentSocket(h);
  const queue: (AuthCandidate | KeyCandidate)[] = [...(agent ? [{ kind: "agent", sock: agent } as AuthCandidate] : []), ...keyCandidates];

  return new Promise((resolve, reject) => {
    const client = new Client();
    let settled = false;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      if (err) { client.end(); reject(err); } else resolve({ client, host: h });
    };
    const cfg: ConnectConfig = {
      host: h.hostname,
      port: h.port,
      username: h.user,
      readyTimeout: h.connectTimeoutMs,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 3,
      ...(sock ? { sock } : {}),
      ...(known.length ? { algorithms: { serverHostKey: preferredAlgorithms(known) as never } } : {}),
      hostVerifier: (key: Buffer) => {
        const v = verifyKey(key, known);
        if (v.kind === "match") return true;
        if (v.kind === "revoked") {
          hostKeyFailure = new RefusalError("HOST_KEY_CHANGED", `the host key ${blobType(key)} presented by ${name} is marked @revoked in ${v.key.file}:${v.key.line}`, hostKeyRemedy(h, name));
          return false;
        }
        if (v.kind === "unknown") {
          if (h.strictHostKeyChecking === "accept-new" || h.strictHostKeyChecking === "no") {
            try { appendKnownKey(h.userKnownHostsFiles[0], name, key); } catch { /* read-only known_hosts: still accept per config */ }
            return true;
          }
          hostKeyFailure = new RefusalError(
            "HOST_KEY_UNKNOWN",
            `no known_hosts entry for ${name} (looked in ${h.userKnownHostsFiles.join(", ")}); refusing to trust an unseen ${blobType(key)} key`,
            `Verify the fingerprint once with plain ssh (ssh -p ${h.port} ${h.user}@${h.hostname}) and accept it, or set 'StrictHostKeyChecking accept-new' for this host in your ssh config if you accept trust-on-first-use.`,
          );
          return false;
        }
        hostKeyFailure = new RefusalError(
          "HOST_KEY_CHANGED",
          `the host key for ${name} differs from the one recorded in ${v.known[0].file}:${v.known[0].line} — either the box was re-created or someone is intercepting`,
          hostKeyRemedy(h, name),
        );
        return false;
      },
      authHandler: (_methodsLeft, _partial, next) => {
        const c = queue.shift();
        if (!c) return next(false as never);
        if (c.kind === "agent") return next({ type: "agent", username: h.user, agent: c.sock } as never);
        return next({ type: "publickey", username: h.user, key: c.key } as never);
      },
    };
    client.on("ready", () => {
      // Nagle's algorithm against the box's delayed ACKs costs ~40 ms on every small request/reply
      // exchange (a channel open, an exec, an exit status); OpenSSH disables it too
      client.setNoDelay(true);
      done();
    });
    client.on("error", (err: Error & { level?: string; code?: string }) => {
      if (hostKeyFailure) return done(hostKeyFailure);
      const msg = err.message || String(err);
      if (err.level === "client-authentication" || /authentication methods failed/i.test(msg)) {
        const tried = [agent ? "ssh-agent" : "", ...keyCandidates.map((k) => k.file)].filter(Boolean);
        const remedy = encrypted.length && !agent
          ? `The key ${encrypted.join(", ")} is passphrase-protected and no ssh-agent is running for this server. Start an agent and load it (eval "$(ssh-agent)"; ssh-add ${encrypted[0]}), and make SSH_AUTH_SOCK visible to the MCP server.`
          : encrypted.length
            ? `The agent offered no key the box accepts, and ${encrypted.join(", ")} is passphrase-protected: ssh-add ${encrypted[0]}.`
            : `Check that the box's authorized_keys holds one of: ${tried.join(", ") || "(no identity found — set IdentityFile in your ssh config)"}. ` +
              `If the platform handed you a password, install your key once yourself (ssh-copy-id -p ${h.port} ${h.user}@${h.hostname}, or the console's key page); this server never takes passwords.`;
        return done(new RefusalError("AUTH_FAILED", `${h.user}@${h.hostname}:${h.port} rejected every key offered (${tried.join(", ") || "none available"})`, remedy));
      }
      if (/timed out/i.test(msg)) {
        return done(new RefusalError("UNREACHABLE", `no ssh handshake with ${h.hostname}:${h.port} within ${Math.round(h.connectTimeoutMs / 1000)} s`, "Check that the box is running (rentals change ports on restart) and that the port is right; raise ConnectTimeout in your ssh config for slow links."));
      }
      const code = err.code ? ` (${err.code})` : "";
      return done(new RefusalError("UNREACHABLE", `cannot reach ${h.hostname}:${h.port}: ${msg}${code}`, "Check that the box is running and the host/port in your ssh config are current (rentals often change the port after a restart)."));
    });
    try {
      client.connect(cfg);
    } catch (e) {
      done(e instanceof RefusalError ? e : new RefusalError("UNREACHABLE", (e as Error).message, "Check the host settings."));
    }
  });
}

/** Open a TCP stream to (host, port) through an established connection (ProxyJump hop). */
export function forwardThrough(via: Client, host: string, port: number, timeoutMs: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new RefusalError("UNREACHABLE", `jump host did not open a channel to ${host}:${port} within ${timeoutMs} ms`, "Check that the jump host can reach the target.")), timeoutMs);
    via.forwardOut("127.0.0.1", 0, host, port, (err, stream) => {
      clearTimeout(t);
      if (err) reject(new RefusalError("UNREACHABLE", `jump host could not reach ${host}:${port}: ${err.message}`, "Check the ProxyJump chain and the target's address as seen from the jump host."));
      else resolve(stream);
    });
  });
}

export { refuse };
