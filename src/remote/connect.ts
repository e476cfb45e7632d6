/**
 * Opening one authenticated, host-key-checked ssh2 connection to a resolved host, optionally through a
 * ProxyJump chain (each hop is itself a pooled connection; the next hop rides on forwardOut).
 */
import * as fs from "node:fs";
import * as net from "node:net";
import type { Duplex } from "node:stream";
import ssh2, { type Client as SshClient, type ConnectConfig, type ParsedKey } from "ssh2";
import { refuse, RefusalError } from "../common/result.js";
import { appendKnownKey, knownHostsName, loadKnownKeys, preferredAlgorithms, verifyKey, blobType } from "./knownHosts.js";
import { diagnosisLine, localFacts, type ConnectFacts } from "./diagnose.js";
import type { ResolvedHost } from "./types.js";

/** ssh2 keepalives on a pooled connection: a peer that stops answering is declared dead after about 30 s */
export const KEEPALIVE_MS = 10_000;
export const KEEPALIVE_COUNT = 3;

interface AuthCandidate { kind: "agent"; sock: string } 
// ssh2 is CommonJS: under Node ESM only its default export is reliable.
const { Client, utils } = ssh2;
type Client = SshClient;
type KeyCandidate = { kind: "key"; file: string; key: ParsedKey };

function agentSocket(h: ResolvedHost): string | undefined {
  if (h.identityAgent === "none") return undefined;
  // Windows OpenSSH's agent listens on a named pipe and sets no SSH_AUTH_SOCK
  const s = h.identityAgent && h.identityAgent !== "SSH_AUTH_SOCK" ? h.identityAgent : process.env.SSH_AUTH_SOCK ?? (process.platform === "win32" ? "\\\\.\\pipe\\openssh-ssh-agent" : undefined);
  return s && fs.existsSync(s) ? s : undefined;
}

function hostKeyRemedy(h: ResolvedHost, name: string): string {
  return `If the box was re-created (rentals re-issue host keys), remove the old key with: ssh-keygen -R '${name}'${
    h.userKnownHostsFiles[0] ? ` -f '${h.userKnownHostsFiles[0]}'` : ""
  } — then connect once with plain ssh to check and accept the new fingerprint.`;
}

/** Every known_hosts file OpenSSH would consult for this host: the user's, then the global ones. */
export function knownHostsFiles(h: ResolvedHost): string[] {
  return [...h.userKnownHostsFiles, ...(h.globalKnownHostsFiles ?? [])];
}

export interface OpenedConnection { client: Client; host: ResolvedHost; address?: string }

/** The stages of a dial, in order; a refusal for a dial that hung names the one it was in. */
export type DialStage = "DNS lookup" | "TCP connect" | "SSH banner" | "key exchange" | "authentication";

export interface DialOptions {
  /** a pre-opened stream (ProxyJump hop, ProxyCommand): the dial starts at the banner */
  sock?: Duplex;
  /** epoch ms where the caller's own bound ends: the dial gives up there even if ConnectTimeout is longer */
  deadline?: number;
  /** told each stage as it begins (the pool keeps it, so a caller that joined the dial can name it) */
  onStage?: (stage: DialStage) => void;
  /** a line of platform knowledge for the diagnosis (e.g. "ports move on restart"), passed in from above */
  hint?: string;
  /** given a reader of what the dial has seen so far (address, first bytes): a caller that stops waiting can diagnose */
  onFacts?: (facts: () => ConnectFacts) => void;
}

/** The bound of one dial: the config's ConnectTimeout, cut to what is left of the caller's bound. */
export function dialBoundMs(h: ResolvedHost, deadline?: number): number {
  return Math.max(1, Math.min(h.connectTimeoutMs, deadline === undefined ? Infinity : deadline - Date.now()));
}

/** Attach a one-line diagnosis (what this machine can see) to a connection refusal. */
export function withDiagnosis(e: RefusalError, facts: ConnectFacts): RefusalError {
  const line = diagnosisLine({ ...localFacts(), ...facts });
  if (line) (e.refusal as { diagnosis?: string }).diagnosis = line;
  return e;
}

/**
 * Connect and authenticate, every stage (DNS, TCP, banner, key exchange, auth) inside one bound. Throws
 * RefusalError with UNREACHABLE / TIMEOUT (naming the stage that hung) / AUTH_FAILED / HOST_KEY_UNKNOWN /
 * HOST_KEY_CHANGED; connection refusals carry a `diagnosis` line.
 */
export async function openConnection(h: ResolvedHost, sockOrOpts?: Duplex | DialOptions): Promise<OpenedConnection> {
  const o: DialOptions = sockOrOpts && typeof (sockOrOpts as Duplex).pipe === "function" ? { sock: sockOrOpts as Duplex } : (sockOrOpts as DialOptions) ?? {};
  const boundMs = dialBoundMs(h, o.deadline);
  const t0 = Date.now();
  const facts: ConnectFacts = { hostname: h.hostname, port: h.port, ...(o.hint ? { hint: o.hint } : {}) };
  const bound = () => (o.deadline !== undefined && o.deadline - t0 < h.connectTimeoutMs ? `the call's bound (${fmtS(boundMs)})` : `ConnectTimeout (${fmtS(boundMs)})`);
  let stage: DialStage = o.sock ? "SSH banner" : "DNS lookup";
  const enter = (s: DialStage) => { stage = s; o.onStage?.(s); };
  enter(stage);
  let sock = o.sock;
  if (!sock) {
    // net resolves the name and races IPv6/IPv4 (autoSelectFamily); its events mark the stages
    const ns = net.connect({ host: h.hostname, port: h.port, autoSelectFamily: true });
    ns.once("lookup", (err, address) => { if (!err && typeof address === "string") { facts.address = address; enter("TCP connect"); } });
    ns.once("connect", () => { if (ns.remoteAddress) facts.address = ns.remoteAddress; enter("SSH banner"); });
    if (net.isIP(h.hostname)) { facts.address = h.hostname; enter("TCP connect"); }
    sock = ns;
  }
  // the first bytes the port sends say what is behind it (an SSH banner, HTTP, TLS, nothing)
  const first: Buffer[] = [];
  let firstLen = 0;
  const grab = (b: Buffer) => { if (firstLen < 256) { first.push(b); firstLen += b.length; } else sock!.off("data", grab); };
  sock.on("data", grab);
  const left = Math.max(1, boundMs - (Date.now() - t0));
  const seen = (): ConnectFacts => ({ ...facts, stage, ...(firstLen ? { firstBytes: Buffer.concat(first) } : {}) });
  o.onFacts?.(seen);
  return dial(h, sock, left, { stage: () => stage, enter, facts: seen, bound });
}

function fmtS(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}

interface DialTrack { stage(): DialStage; enter(s: DialStage): void; facts(): ConnectFacts; bound(): string }

function dial(h: ResolvedHost, sock: Duplex, boundMs: number, track: DialTrack): Promise<OpenedConnection> {
  const name = knownHostsName(h.hostKeyAlias ?? h.hostname, h.hostKeyAlias ? 22 : h.port);
  const known = loadKnownKeys(knownHostsFiles(h), name);
  const where = `${h.hostname}:${h.port}`;
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
      clearTimeout(timer);
      if (err) { client.destroy(); sock.destroy(); reject(err); } else resolve({ client, host: h,
        ...(track.facts().address ? { address: track.facts().address } : {}) });
    };
    // One timer for the whole dial: ssh2's readyTimeout is only a back-stop behind it.
    const timer = setTimeout(() => {
      const s = track.stage();
      const what = s === "DNS lookup" ? `the DNS lookup of ${h.hostname} got no answer` : s === "TCP connect" ? "the TCP connection got no answer" : s === "SSH banner" ? "the port accepted TCP but sent no SSH banner" : s === "key exchange" ? "the SSH key exchange stalled" : "authentication got no answer";
      done(withDiagnosis(new RefusalError("TIMEOUT", `${where}: ${what} within ${track.bound()} (stage: ${s})`, s === "DNS lookup"
        ? "Check this machine's DNS (a proxy tool's DNS may hang), or put the box's IP address in HostName."
        : s === "TCP connect"
        ? "Check that the box is running and the port is current (rentals change ports on restart); a firewall may drop the packets."
        : "The box's sshd is not answering (frozen or overloaded box), or something between is capturing the connection; retry later, check the box in its console, run `rgt doctor <host>`."), { ...track.facts(), outcome: "timeout" }));
    }, boundMs);
    const cfg: ConnectConfig = {
      sock,
      username: h.user,
      readyTimeout: boundMs + 2000,
      keepaliveInterval: KEEPALIVE_MS,
      keepaliveCountMax: KEEPALIVE_COUNT,
      debug: (msg: string) => {
        if (msg.startsWith("Remote ident")) track.enter("key exchange");
        else if (msg.startsWith("Handshake completed")) track.enter("authentication");
      },
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
            `no known_hosts entry for ${name} (looked in ${knownHostsFiles(h).join(", ")}); refusing to trust an unseen ${blobType(key)} key`,
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
        return done(withDiagnosis(new RefusalError("AUTH_FAILED", `${h.user}@${h.hostname}:${h.port} rejected every key offered (${tried.join(", ") || "none available"})`, remedy), { ...track.facts(), outcome: "auth" }));
      }
      if (err.level === "client-timeout" && /keepalive/i.test(msg)) return; // only after ready; the pool sees it
      const code = err.code ? ` (${err.code})` : "";
      const f = track.facts();
      if (err.code === "ENOTFOUND" || err.code === "EAI_AGAIN" || err.code === "EAI_NONAME") {
        return done(withDiagnosis(new RefusalError("UNREACHABLE", `cannot resolve ${h.hostname} (${err.code})`, "Check the HostName in your ssh config (ssh -G <alias>) and this machine's DNS."), { ...f, outcome: "dns" }));
      }
      if (err.code === "ECONNREFUSED") {
        return done(withDiagnosis(new RefusalError("UNREACHABLE", `${where} refused the connection: nothing listens on that port`, "Check that the box is running and the port in your ssh config is current (rentals often change the port after a restart)."), { ...f, outcome: "refused" }));
      }
      // a reset before any byte came back is a hang-up too (the peer closed with our banner unread)
      const resetAtBanner = err.code === "ECONNRESET" && track.stage() === "SSH banner" && !f.firstBytes;
      if (/before handshake/i.test(msg) || resetAtBanner || (err.level === "protocol" && f.firstBytes && !/^SSH-/m.test(f.firstBytes.toString("latin1")))) {
        return done(withDiagnosis(new RefusalError("UNREACHABLE", `${where} closed the connection during the ${track.stage()} stage without an SSH handshake`, "The port is not an ssh server (a moved port, another service, a proxy): check the host/port in your ssh config; run `rgt doctor <host>`."), { ...f, outcome: "closed" }));
      }
      return done(withDiagnosis(new RefusalError("UNREACHABLE", `cannot reach ${where} (stage: ${track.stage()}): ${msg.slice(0, 200)}${code}`, "Check that the box is running and the host/port in your ssh config are current (rentals often change the port after a restart)."), f));
    });
    client.on("error", () => { /* after settling: the pool's own listeners decide */ });
    try {
      client.connect(cfg);
    } catch (e) {
      done(e instanceof RefusalError ? e : new RefusalError("UNREACHABLE", (e as Error).message, "Check the host settings."));
    }
  });
}

/**
 * Open a TCP stream to (host, port) through an established connection (ProxyJump hop). The channel open has no
 * timeout of its own in ssh2: bounded here; a hop that does not answer is a TIMEOUT naming it.
 */
export function forwardThrough(via: Client, host: string, port: number, timeoutMs: number, hop = "the jump host"): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    let late = false;
    const t = setTimeout(() => {
      late = true;
      reject(new RefusalError("TIMEOUT", `${hop} did not open a channel to ${host}:${port} within ${fmtS(timeoutMs)} (stage: jump channel open)`, `Check that ${hop} is up and can reach the target (ssh ${hop} nc -zv ${host} ${port}).`));
    }, timeoutMs);
    via.forwardOut("127.0.0.1", 0, host, port, (err, stream) => {
      clearTimeout(t);
      if (late) { stream?.destroy(); return; }
      if (err) reject(new RefusalError("UNREACHABLE", `${hop} could not reach ${host}:${port}: ${err.message}`, "Check the ProxyJump chain and the target's address as seen from the jump host."));
      else resolve(stream);
    });
  });
}

export { refuse };
