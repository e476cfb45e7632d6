#!/usr/bin/env node
/** The `rgt` / `remote-gpu-trainer` command. `serve` (stdio MCP) is the default. */
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { VERSION, setting } from "../common/config.js";
import { killChildren } from "../common/children.js";

/**
 * stdio MCP. Ends quietly and at once when the client closes stdin or sends SIGTERM/SIGINT: the pool's
 * connections and any rsync child are ended, and the exit code is 0. Nothing goes to stderr unless RGT_DEBUG.
 */
async function serve(): Promise<void> {
  const debug = !!setting("RGT_DEBUG");
  // signals are answered from the first moment: before the server exists there is nothing to clean up
  let stop: (why: string) => void = () => process.exit(0);
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
  (await import("../common/memory.js")).tuneHeapForServer();
  const { createServer } = await import("../server/createServer.js");
  const created = createServer();
  const transport = new StdioServerTransport();
  let done = false;
  const shutdown = async (why: string): Promise<void> => {
    if (done) return;
    done = true;
    if (debug) process.stderr.write(`remote-gpu-trainer: shutting down (${why})\n`);
    // a close that hangs (a half-open TCP connection) must not hold the exit
    const hard = setTimeout(() => process.exit(0), 500);
    hard.unref();
    killChildren();
    await created.close().catch(() => {});
    process.exit(0);
  };
  stop = (why) => void shutdown(why);
  process.stdin.once("end", () => void shutdown("stdin closed"));
  process.stdin.once("close", () => void shutdown("stdin closed"));
  transport.onclose = () => { void shutdown("transport closed"); };
  await created.server.connect(transport);
  // what every first tool call would otherwise load on its way in (the profiles: ~0.2–0.4 s of YAML; which
  // rsync is here), loaded while the client is still getting ready; a failure here is simply met again later
  setTimeout(() => {
    void Promise.all([import("../knowledge/profiles.js"), import("../remote/rsync.js")])
      .then(([p, r]) => { p.loadProfiles(); r.localRsyncFlavour(); }).catch(() => { /* the call that needs it reports it */ });
  }, 20).unref();
  if (debug) process.stderr.write(`remote-gpu-trainer ${VERSION} serving MCP on stdio\n`);
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
