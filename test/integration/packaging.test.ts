/**
 * The package as a user gets it: the tarball `npm pack` makes installs into an empty directory, its `rgt`
 * answers --version, and the installed server answers a stdio tools/list handshake. Also: the README's
 * client snippets (Claude Code, OpenCode) parse and start a server that answers tools/list.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, describe, expect, it } from "vitest";

const root = path.resolve(__dirname, "..", "..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-pack-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function toolsList(command: string, args: string[], env: Record<string, string> = {}): Promise<string[]> {
  const client = new Client({ name: "pack-test", version: "1" });
  const transport = new StdioClientTransport({ command, args, env: { ...process.env, RGT_HOME: path.join(tmp, "home"), ...env } as Record<string, string>, stderr: "pipe" });
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    return tools.map((t) => t.name).sort();
  } finally {
    await client.close();
  }
}

const CONTRACT = ["check_staleness", "launch_queue", "probe_env", "pull_verify", "push_code", "push_secret", "remote_exec", "request_teardown", "run_status", "stop_run"];

describe("packaging", () => {
  it("packs a tarball with dist, profiles, references, scripts and skill, which installs and serves", async () => {
    const out = execFileSync("npm", ["pack", "--json", "--pack-destination", tmp], { cwd: root, encoding: "utf8" });
    const info = JSON.parse(out)[0] as { filename: string; files: { path: string }[] };
    const files = info.files.map((f) => f.path);
    for (const dir of ["dist/cli/main.js", "profiles/autodl.md", "scripts/probe.sh", "skill/SKILL.md"]) expect(files).toContain(dir);
    expect(files.some((f) => f.startsWith("references/"))).toBe(true);
    expect(files.some((f) => f.startsWith("test/") || f.startsWith("src/"))).toBe(false);

    const app = path.join(tmp, "app");
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true }));
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", path.join(tmp, info.filename)], { cwd: app, stdio: "pipe", timeout: 240_000 });
    const bin = path.join(app, "node_modules", ".bin", "rgt");
    expect(execFileSync(bin, ["--version"], { encoding: "utf8" }).trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const names = await toolsList(bin, ["serve"]);
    for (const n of CONTRACT) expect(names).toContain(n);
  }, 300_000);

  it("the README's Claude Code and OpenCode snippets start a server that answers tools/list", async () => {
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
    const claude = /claude mcp add (\S+) -- (.+)/.exec(readme);
    expect(claude).not.toBeNull();
    const argv = claude![2].trim().replace("/path/to/remote-gpu-trainer", root).split(/\s+/);
    expect(claude![1]).toBe("remote-gpu-trainer");
    expect(await toolsList(argv[0], argv.slice(1))).toEqual(expect.arrayContaining(CONTRACT));

    const json = /```json\n([\s\S]*?)```/.exec(readme);
    expect(json).not.toBeNull();
    const cfg = JSON.parse(json![1]);
    const entry = cfg.mcp["remote-gpu-trainer"];
    expect(entry.type).toBe("local");
    const cmd = (entry.command as string[]).map((s) => s.replace("/path/to/remote-gpu-trainer", root));
    expect(await toolsList(cmd[0], cmd.slice(1))).toEqual(expect.arrayContaining(CONTRACT));
  }, 60_000);
});
