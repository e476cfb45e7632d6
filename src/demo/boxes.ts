/**
 * The local box `rgt demo` (and the economy bench) runs against, with everything the server needs in
 * a temp dir of its own: ssh config, known_hosts, key, RGT_HOME, HOME, and a stub `vastai` first on the
 * server's PATH that only records its argv. The user's ~/.ssh is never read or written.
 *
 *  - "sshd": the system OpenSSH sshd on loopback via the test lab (needs root), a vast.ai look-alike
 *    with three stub GPUs.
 *  - "embedded": a small ssh2 server in this process that runs commands with local bash (no root).
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startLab, type Box, type Lab } from "../lab/box.js";
import { startEmbeddedBox, type EmbeddedBox } from "./embedded.js";
import type { DemoTarget } from "./lifecycle.js";

export type BoxKind = "sshd" | "embedded";

/** A started demo box: what the lifecycle needs (DemoTarget) plus how to inspect and stop it. */
export interface DemoBox extends DemoTarget {
  kind: BoxKind;
  /** the temp dir holding everything the demo made (removed by stop) */
  stateDir: string;
  /** the box's ssh port on 127.0.0.1 */
  port: number;
  /** one line saying what the box is */
  describe: string;
  /** argv lines the stub provider CLI recorded */
  providerCalls(): string[];
  stop(): Promise<void>;
}

export const DEMO_HOST = "demo-box";
const KEY_ENV = "DEMO_WANDB_API_KEY";

/** Which box this machine can run: sshd when root with OpenSSH's sshd installed, else the embedded one. */
export function defaultBoxKind(): BoxKind {
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  const tools = ["/usr/sbin/sshd", "/usr/bin/ssh-keygen", "/usr/bin/unshare", "/usr/bin/nsenter"].every((f) => fs.existsSync(f));
  return root && tools ? "sshd" : "embedded";
}

function stubProvider(binDir: string, log: string): void {
  fs.mkdirSync(binDir, { recursive: true });
  fs.writeFileSync(
    path.join(binDir, "vastai"),
    "#!/bin/bash\n" +
      "# stand-in for the vast.ai CLI: records how it was called and does nothing else\n" +
      `printf '%s\\n' "vastai $*" >> '${log.replace(/'/g, `'\\''`)}'\n` +
      "echo 'demo stub: no real instance was touched'\n",
    { mode: 0o755 },
  );
}

function registry(home: string, host: string, instanceId: string): void {
  fs.mkdirSync(home, { recursive: true });
  fs.writeFileSync(path.join(home, "registry.yaml"), `hosts:\n  ${host}: { profile: vastai, instance_id: '${instanceId}', price_per_hour: 0.35 }\n`);
}

function readLines(file: string): string[] {
  try { return fs.readFileSync(file, "utf8").split("\n").filter(Boolean); } catch { return []; }
}

/** The demo's box as a lab box spec: a vast.ai look-alike with three stub GPUs and Debian's torch. */
export const LAB_BOX = { name: DEMO_HOST, profile: "vastai", gpus: 3, gpuModel: "NVIDIA RTX 4090", gpuMemoryMiB: 24564, torch: true } as const;

/**
 * Set a lab box up for the demo: the stub provider CLI in the lab's localBin, and a fresh RGT_HOME
 * (with the box in the instance registry) under the lab root so the demo's ledger is its own.
 * `stop` is what the returned DemoBox.stop() runs (the whole lab for `rgt demo`, one box for the bench).
 */
export function demoBoxInLab(lab: Lab, box: Box, o: { providerLog?: string; keyValue?: string; stop: () => Promise<void> }): DemoBox {
  const keyValue = o.keyValue ?? `demo-${randomBytes(12).toString("hex")}`;
  const mine = fs.mkdtempSync(path.join(lab.root, `demo-${box.name}-`));
  const localRoot = path.join(mine, "local");
  const rgtHome = path.join(mine, "rgt-home");
  fs.mkdirSync(localRoot, { recursive: true });
  const log = o.providerLog ?? path.join(mine, "provider-calls.log");
  stubProvider(lab.localBin, log);
  registry(rgtHome, box.name, "demo-4242");
  return {
    kind: "sshd",
    host: box.name,
    stateDir: lab.root,
    port: box.port,
    describe: `OpenSSH sshd on 127.0.0.1:${box.port} in its own mount namespace, a vast.ai look-alike with ${box.gpus} stub GPUs`,
    env: { ...lab.env, RGT_HOME: rgtHome, [KEY_ENV]: keyValue },
    localRoot,
    workdir: "/workspace/demo",
    keyPath: "/root/.config/demo/wandb_key",
    keyEnv: KEY_ENV,
    keyValue,
    torch: true,
    providerCalls: () => readLines(log),
    stop: async () => {
      await o.stop();
      fs.rmSync(mine, { recursive: true, force: true });
    },
  };
}

export async function startDemoBox(kind: BoxKind, opts: { providerLog?: string } = {}): Promise<DemoBox> {
  const keyValue = `demo-${randomBytes(12).toString("hex")}`;
  if (kind === "sshd") {
    const lab: Lab = await startLab([LAB_BOX]);
    return demoBoxInLab(lab, lab.boxes[DEMO_HOST], { providerLog: opts.providerLog, keyValue, stop: () => lab.stop() });
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-demo-"));
  let emb: EmbeddedBox | undefined;
  try {
    emb = await startEmbeddedBox({ root, alias: DEMO_HOST, env: { VAST_CONTAINERLABEL: `C.${1000000 + (randomBytes(3).readUIntBE(0, 3) % 8000000)}` } });
    const home = path.join(root, "server-home");
    const rgtHome = path.join(root, "rgt-home");
    const bin = path.join(root, "local-bin");
    fs.mkdirSync(home, { recursive: true });
    const log = opts.providerLog ?? path.join(root, "provider-calls.log");
    stubProvider(bin, log);
    registry(rgtHome, DEMO_HOST, "demo-4242");
    const e = emb;
    return {
      kind,
      host: DEMO_HOST,
      stateDir: root,
      port: e.port,
      describe: `embedded ssh2 server on 127.0.0.1:${e.port} running commands with this machine's bash (no root needed; no rsync there, so files go over SFTP), a vast.ai look-alike, python3 = ${e.python ?? "none"}`,
      env: { RGT_SSH_CONFIG: e.sshConfig, RGT_HOME: rgtHome, HOME: home, PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`, [KEY_ENV]: keyValue },
      localRoot: path.join(root, "local"),
      workdir: path.join(e.boxHome, "workspace", "demo"),
      // The embedded box runs commands on this very machine: the run takes the generic profile's paths (all
      // under the box's own temp HOME) rather than vast.ai's /workspace, which would land on the real filesystem.
      launchProfile: "generic-ssh",
      keyPath: path.join(e.boxHome, ".config", "demo", "wandb_key"),
      keyEnv: KEY_ENV,
      keyValue,
      torch: e.torch,
      providerCalls: () => readLines(log),
      stop: async () => {
        await e.stop();
        fs.rmSync(root, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await emb?.stop().catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
    throw err;
  }
}
