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
import { startLab, type Lab } from "../lab/box.js";
import { startEmbeddedBox, type EmbeddedBox } from "./embedded.js";

export type BoxKind = "sshd" | "embedded";

export interface DemoBox {
  kind: BoxKind;
  host: string;
  /** one line saying what the box is */
  describe: string;
  env: Record<string, string>;
  localRoot: string;
  workdir: string;
  keyPath: string;
  keyEnv: string;
  keyValue: string;
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

function registry(home: string, instanceId: string): void {
  fs.mkdirSync(home, { recursive: true });
  fs.writeFileSync(path.join(home, "registry.yaml"), `hosts:\n  ${DEMO_HOST}: { profile: vastai, instance_id: '${instanceId}', price_per_hour: 0.35 }\n`);
}

function readLines(file: string): string[] {
  try { return fs.readFileSync(file, "utf8").split("\n").filter(Boolean); } catch { return []; }
}

export async function startDemoBox(kind: BoxKind, opts: { providerLog?: string } = {}): Promise<DemoBox> {
  const keyValue = `demo-${randomBytes(12).toString("hex")}`;
  if (kind === "sshd") {
    const lab: Lab = await startLab([{ name: DEMO_HOST, profile: "vastai", gpus: 3, gpuModel: "NVIDIA RTX 4090", gpuMemoryMiB: 24564, torch: true }]);
    const localRoot = path.join(lab.root, "demo-local");
    fs.mkdirSync(localRoot, { recursive: true });
    const log = opts.providerLog ?? path.join(lab.root, "provider-calls.log");
    stubProvider(lab.localBin, log);
    registry(lab.env.RGT_HOME!, "demo-4242");
    const box = lab.boxes[DEMO_HOST];
    return {
      kind,
      host: DEMO_HOST,
      describe: `OpenSSH sshd on 127.0.0.1:${box.port} in its own mount namespace, a vast.ai look-alike with ${box.gpus} stub GPUs`,
      env: { ...lab.env, [KEY_ENV]: keyValue },
      localRoot,
      workdir: "/workspace/demo",
      keyPath: "/root/.config/demo/wandb_key",
      keyEnv: KEY_ENV,
      keyValue,
      providerCalls: () => readLines(log),
      stop: () => lab.stop(),
    };
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
    registry(rgtHome, "demo-4242");
    const e = emb;
    return {
      kind,
      host: DEMO_HOST,
      describe: `embedded ssh2 server on 127.0.0.1:${e.port} running commands with this machine's bash (no root needed), a vast.ai look-alike`,
      env: { RGT_SSH_CONFIG: e.sshConfig, RGT_HOME: rgtHome, HOME: home, PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`, [KEY_ENV]: keyValue },
      localRoot: path.join(root, "local"),
      workdir: path.join(e.boxHome, "workspace", "demo"),
      keyPath: path.join(e.boxHome, ".config", "demo", "wandb_key"),
      keyEnv: KEY_ENV,
      keyValue,
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
