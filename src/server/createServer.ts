/** Builds the MCP server: tools, resources, prompts, logging. No business logic lives here. */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import * as z from "zod";
import { VERSION } from "../common/config.js";
import { baseResultShape } from "../common/result.js";
import { Ledger } from "../ledger/store.js";
import { SshRemote } from "../remote/pool.js";
import type { Remote } from "../remote/types.js";
import { allTools } from "../tools/index.js";
import { registerKnowledge } from "./resources.js";
import { runTool, toMcpResult, type ToolContext, type ToolDef } from "./tool.js";
import { installMeterHook } from "../providers/meter_hook.js";
import { portMoveHint } from "../knowledge/connectHints.js";
import { hostInfo } from "../ledger/hostinfo.js";

export interface ServerDeps {
  remote?: Remote;
  ledger?: Ledger;
  /** default timeout for elicitation requests (ms) */
  elicitTimeoutMs?: number;
}

export interface CreatedServer {
  server: McpServer;
  remote: Remote;
  ledger: Ledger;
  close(): Promise<void>;
}

const INPUT_ERROR = /^(?:MCP error -?\d+: )?Input validation error: Invalid arguments for tool (\S+): ([\s\S]*)$/;

export function createServer(deps: ServerDeps = {}): CreatedServer {
  const ledger = deps.ledger ?? new Ledger();
  // a refused connection's diagnosis may name what the host's platform does to ports (knowledge, passed in)
  const remote = deps.remote ?? new SshRemote({ connectionHint: (host) => portMoveHint(hostInfo(ledger, host).platform) });
  const server = new McpServer(
    { name: "remote-gpu-trainer", version: VERSION },
    {
      capabilities: { logging: {}, tools: {}, resources: {}, prompts: {} },
      instructions:
        "Runs long GPU jobs on rented boxes. Lifecycle: probe_env -> push_code/push_secret -> launch_queue -> run_status -> pull_verify -> request_teardown. Read rgt://skill for the playbook.",
    },
  );

  for (const def of allTools) register(server, def as ToolDef, remote, ledger, deps);
  registerKnowledge(server);
  installMeterHook();
  structureInputErrors(server);

  return {
    server,
    remote,
    ledger,
    async close() {
      await server.close().catch(() => {});
      await remote.close();
    },
  };
}

function register(server: McpServer, def: ToolDef, remote: Remote, ledger: Ledger, deps: ServerDeps): void {
  const outputShape = { ...def.output, ...baseResultShape };
  server.registerTool(
    def.name,
    {
      title: def.title,
      description: def.description,
      inputSchema: def.input,
      outputSchema: z.looseObject(outputShape).shape,
      annotations: def.annotations,
    },
    async (args: Record<string, unknown>, extra) => {
      const token = extra._meta?.progressToken;
      const ctx: ToolContext = {
        remote,
        ledger,
        signal: extra.signal,
        async progress(progress, total, message) {
          if (token === undefined) return;
          await extra
            .sendNotification({ method: "notifications/progress", params: { progressToken: token, progress, total, message } })
            .catch(() => {});
        },
        async log(level, data) {
          await server.sendLoggingMessage({ level, logger: def.name, data }).catch(() => {});
        },
        elicit: async (message, requestedSchema, timeoutMs) => {
          const caps = server.server.getClientCapabilities();
          if (!caps?.elicitation) return undefined;
          const r = await server.server.elicitInput(
            { message, requestedSchema: requestedSchema as never },
            { timeout: timeoutMs ?? deps.elicitTimeoutMs ?? 120_000 },
          );
          return { action: r.action, content: r.content as Record<string, unknown> | undefined };
        },
      };
      return runTool(def, args as never, ctx);
    },
  );
}

/**
 * The SDK answers schema violations with a bare text error. Agents need the same structured refusal
 * every other failure gets, so wrap the tools/call handler and restate those as BAD_INPUT.
 */
function structureInputErrors(server: McpServer): void {
  const handlers = (server.server as unknown as { _requestHandlers: Map<string, (req: unknown, extra: unknown) => Promise<unknown>> })._requestHandlers;
  const original = handlers.get("tools/call");
  if (!original) return;
  handlers.set("tools/call", async (req, extra) => {
    const res = (await original(req, extra)) as { isError?: boolean; content?: { type: string; text?: string }[]; structuredContent?: unknown };
    const text = res?.isError && !res.structuredContent ? res.content?.[0]?.text ?? "" : "";
    const m = INPUT_ERROR.exec(text);
    if (!m) return res;
    return toMcpResult({
      ok: false,
      warnings: [],
      refused: {
        code: "BAD_INPUT",
        reason: `${m[1]}: ${m[2].trim()}`.slice(0, 1500),
        remedy: "Fix the named field(s) and call again; nothing was sent to any host.",
      },
    });
  });
}
