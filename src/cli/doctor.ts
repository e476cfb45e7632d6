/**
 * rgt doctor — checks the local side (the part of the setup that lives on your machine) and says what to fix:
 * ssh and rsync present, an agent holding keys, known_hosts entries for every host this server has seen,
 * the state directory private, profiles loading, a local torch for checkpoint load checks. With a host
 * argument it walks the connection ladder to that host instead (src/cli/ladder.ts).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { rgtHome, sshConfigFile } from "../common/config.js";
import { loadProfiles } from "../knowledge/profiles.js";
import { listHosts } from "../ledger/hosts.js";
import { Ledger } from "../ledger/store.js";
import { knownHostsName, loadKnownKeys } from "../remote/knownHosts.js";
import { knownHostsFiles } from "../remote/connect.js";
import { resolveHost, sshBinary } from "../remote/resolve.js";
import { settingsListing } from "./settings.js";

export interface Check { name: string; status: "ok" | "warn" | "fail"; detail: string; fix?: string }

function tryRun(cmd: string, args: string[], env?: NodeJS.ProcessEnv): { ok: boolean; out: string } {
  try {
    const out = execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 10_000, env: env ?? process.env });
    return { ok: true, out: out.trim() };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    return { ok: false, out: `${err.stdout ?? ""}${err.stderr ?? ""}`.trim() || err.message };
  }
}

export async function runChecks(env: NodeJS.ProcessEnv = process.env): Promise<Check[]> {
  const checks: Check[] = [];
  const major = Number(process.versions.node.split(".")[0]);
  checks.push(major >= 20 ? { name: "node", status: "ok", detail: `v${process.versions.node}` } : { name: "node", status: "fail", detail: `v${process.versions.node}`, fix: "Install Node.js 20 or newer." });

  const ssh = tryRun(sshBinary(), ["-V"]);
  checks.push(ssh.ok ? { name: "ssh", status: "ok", detail: ssh.out.split("\n")[0] } : { name: "ssh", status: "fail", detail: "OpenSSH client not found", fix: process.platform === "win32" ? "Add Windows' OpenSSH Client (Settings → Optional features; ssh.exe on PATH): host resolution uses `ssh -G`." : "Install openssh-client: host resolution uses `ssh -G`." });
  const rsync = tryRun("rsync", ["--version"]);
  checks.push(rsync.ok ? { name: "rsync", status: "ok", detail: rsync.out.split("\n")[0] } : { name: "rsync", status: "warn", detail: "rsync not found locally", fix: "Install rsync: without it push_code and pull_verify use SFTP (slower)." });

  const sock = env.SSH_AUTH_SOCK;
  if (!sock) {
    checks.push({ name: "ssh-agent", status: "warn", detail: "SSH_AUTH_SOCK is not set for this process", fix: "Only unencrypted identity files will work. For a passphrase-protected key: eval \"$(ssh-agent)\"; ssh-add ~/.ssh/id_ed25519, and start the MCP client from that shell." });
  } else {
    const l = tryRun("ssh-add", ["-l"], env);
    checks.push(l.ok ? { name: "ssh-agent", status: "ok", detail: `${l.out.split("\n").length} key(s) loaded` } : { name: "ssh-agent", status: "warn", detail: l.out.split("\n")[0], fix: "ssh-add <your key>" });
  }

  const cfg = sshConfigFile(env);
  if (cfg) checks.push(fs.existsSync(cfg) ? { name: "RGT_SSH_CONFIG", status: "ok", detail: cfg } : { name: "RGT_SSH_CONFIG", status: "fail", detail: `${cfg} does not exist`, fix: "Point RGT_SSH_CONFIG at an ssh config file or unset it." });

  const home = rgtHome(env);
  try {
    const ledger = new Ledger(home);
    const st = fs.statSync(home);
    const loose = (st.mode & 0o077) !== 0;
    const looseFiles = fs.readdirSync(home).filter((f) => { try { return (fs.statSync(path.join(home, f)).mode & 0o077) !== 0 && f.endsWith(".json"); } catch { return false; } });
    checks.push(loose || looseFiles.length
      ? { name: "state dir", status: "fail", detail: `${home} is readable by others${looseFiles.length ? ` (${looseFiles.join(", ")})` : ""}`, fix: `chmod 700 ${home} && chmod 600 ${home}/*.json` }
      : { name: "state dir", status: "ok", detail: `${home} (private)` });
    for (const h of listHosts(ledger)) {
      try {
        const r = await resolveHost(h.host, { sshConfig: cfg });
        const name = knownHostsName(r.hostKeyAlias ?? r.hostname, r.hostKeyAlias ? 22 : r.port);
        const keys = loadKnownKeys(knownHostsFiles(r), name);
        checks.push(keys.length
          ? { name: `known_hosts ${h.host}`, status: "ok", detail: `${keys.length} key(s) for ${name}` }
          : { name: `known_hosts ${h.host}`, status: r.strictHostKeyChecking === "accept-new" ? "warn" : "fail", detail: `no key recorded for ${name}`, fix: `ssh ${h.host} true  (check the fingerprint, then accept)` });
      } catch (e) {
        checks.push({ name: `host ${h.host}`, status: "fail", detail: (e as Error).message.slice(0, 160), fix: "Fix the alias in your ssh config." });
      }
    }
  } catch (e) {
    checks.push({ name: "state dir", status: "fail", detail: `${home}: ${(e as Error).message}`, fix: "Set RGT_HOME to a writable directory." });
  }

  try {
    const n = loadProfiles().length;
    checks.push({ name: "profiles", status: n ? "ok" : "fail", detail: `${n} platform profiles load` });
  } catch (e) {
    checks.push({ name: "profiles", status: "fail", detail: (e as Error).message.slice(0, 200), fix: "Reinstall the package; a profile file is broken." });
  }

  const torch = tryRun("python3", ["-c", "import torch; print(torch.__version__)"]);
  const sysTorch = torch.ok ? torch : tryRun("/usr/bin/python3", ["-c", "import torch; print(torch.__version__)"]);
  checks.push(sysTorch.ok ? { name: "local torch", status: "ok", detail: `torch ${sysTorch.out} (pull_verify load-checks checkpoints with it)` } : { name: "local torch", status: "warn", detail: "no python3 with torch locally", fix: "Optional: pull_verify then checks checkpoint structure (zip, safetensors header) but not torch.load." });
  return checks;
}

/** Print checks as aligned lines with a fix under each failed one; returns the number of failures. */
export function printChecks(checks: Check[], out: NodeJS.WritableStream = process.stdout): number {
  const w = Math.max(...checks.map((c) => c.name.length));
  for (const c of checks) {
    const mark = c.status === "ok" ? "ok  " : c.status === "warn" ? "WARN" : "FAIL";
    out.write(`${mark}  ${c.name.padEnd(w)}  ${c.detail}\n`);
    if (c.fix && c.status !== "ok") out.write(`      ${" ".repeat(w)}  fix: ${c.fix}\n`);
  }
  return checks.filter((c) => c.status === "fail").length;
}

/** `rgt doctor` checks the local side; `rgt doctor <host>` walks the connection ladder to that host. */
export async function run(argv: string[]): Promise<number> {
  const host = argv.find((a) => !a.startsWith("-"));
  if (host) {
    const { connectionLadder } = await import("./ladder.js");
    const fails = printChecks(await connectionLadder(host, { sshConfig: sshConfigFile() }));
    process.stdout.write(fails ? `\n${host}: ${fails} rung(s) failed; fix the first one first.\n` : `\n${host}: the whole path works.\n`);
    return fails ? 1 : 0;
  }
  const fails = printChecks(await runChecks());
  process.stdout.write(settingsListing(process.env));
  process.stdout.write(fails ? `\n${fails} problem(s) to fix.\n` : "\nlocal side looks fine.\n");
  return fails ? 1 : 0;
}
