#!/usr/bin/env node
/** The `rgt` / `remote-gpu-trainer` command. `serve` (stdio MCP) is the default. */
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { VERSION } from "../common/config.js";
import { createServer } from "../server/createServer.js";

async function serve(): Promise<void> {
  const created = createServer();
  const transport = new StdioServerTransport();
  const shutdown = async () => { await created.close(); process.exit(0); };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
  transport.onclose = () => { void shutdown(); };
  await created.server.connect(transport);
  process.stderr.write(`remote-gpu-trainer ${VERSION} serving MCP on stdio\n`);
}

type Command = (argv: string[]) => Promise<number | void>;
/** Subcommands register here (status, approve, doctor, evals, demo live in their own files). */
export const commands: Record<string, Command> = {
  serve: async () => { await serve(); },
  // Loaded on demand: `serve` (what MCP clients start) never pays for, or depends on, the human commands.
  status: async (a) => (await import("./status.js")).run(a),
  approve: async (a) => (await import("./approve.js")).run(a),
  doctor: async (a) => (await import("./doctor.js")).run(a),
  evals: async (a) => (await import("./evals.js")).run(a),
  demo: async (a) => (await import("./demo.js")).run(a),
};

async function main(argv: string[]): Promise<void> {
  const [cmd = "serve", ...rest] = argv;
  if (cmd === "--version" || cmd === "-V" || cmd === "version") { process.stdout.write(`${VERSION}\n`); return; }
  if (cmd === "--help" || cmd === "-h" || cmd === "help") {
    process.stdout.write(`rgt ${VERSION}\nusage: rgt [serve|${Object.keys(commands).filter((c) => c !== "serve").join("|")}|--version]\n`);
    return;
  }
  const fn = commands[cmd];
  if (!fn) { process.stderr.write(`rgt: unknown command '${cmd}' (try rgt --help)\n`); process.exit(2); }
  const code = await fn(rest);
  if (typeof code === "number" && code !== 0) process.exitCode = code;
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`rgt: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
