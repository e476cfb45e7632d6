/**
 * Builds the MCP server: tools, resources, prompts, logging. No business logic lives here.
 *
 * Tools are served by this file's own tools/list and tools/call handlers rather than McpServer.registerTool:
 * the SDK would validate arguments before any handler runs and answer a bad one with bare text (-32602/-32603),
 * and it would publish closed output schemas. Here every call goes through the pipeline (src/server/tool.ts),
 * so malformed arguments come back as a BAD_INPUT result naming the field, and the output schemas are open.
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { Protocol } from "@modelcontextprotocol/sdk/shared/protocol.js";
import { ErrorCode, ListToolsRequestSchema, McpError, type Tool as McpTool } from "@modelcontextprotocol/sdk/types.js";
import * as z from "zod";
import { VERSION, setting } from "../common/config.js";
import { Ledger } from "../ledger/store.js";
import { SshRemote } from "../remote/pool.js";
import type { Remote } from "../remote/types.js";
import { selectTools } from "../tools/index.js";
import { registerKnowledge } from "./resources.js";
import { runTool, type Tool, type ToolContext } from "./tool.js";
import { inputJsonSchema, outputJsonSchema } from "./schemas.js";
import { portMoveHint } from "../knowledge/connectHints.js";
import { hostInfo } from "../ledger/hostinfo.js";

export interface ServerDeps {
  remote?: Remote;
  ledger?: Ledger;
  /** default timeout for elicitation requests (ms) */
  elicitTimeoutMs?: number;
  /** which tools to serve (default: RGT_TOOLS) */
  tools?: string;
}

export interface CreatedServer {
  server: McpServer;
  remote: Remote;
  ledger: Ledger;
  tools: Tool[];
  close(): Promise<void>;
}

/** tools/call as the protocol has it, but with `arguments` left unchecked: the pipeline checks them. */
const CallToolRequest = z.object({
  method: z.literal("tools/call"),
  params: z.looseObject({
    name: z.string(),
    arguments: z.unknown().optional(),
    _meta: z.looseObject({ progressToken: z.union([z.string(), z.number()]).optional() }).optional(),
  }),
});

export function listing(tools: Tool[]): McpTool[] {
  return tools.map((t) => ({
    name: t.name,
    title: t.title,
    description: t.description,
    inputSchema: inputJsonSchema(t) as McpTool["inputSchema"],
    outputSchema: outputJsonSchema(t) as McpTool["outputSchema"],
    annotations: t.annotations,
  }));
}

export function createServer(deps: ServerDeps = {}): CreatedServer {
  const ledger = deps.ledger ?? new Ledger();
  // a refused connection's diagnosis may name what the host's platform does to ports (knowledge, passed in)
  const remote = deps.remote ?? new SshRemote({ connectionHint: (host) => portMoveHint(hostInfo(ledger, host).platform) });
  const tools = selectTools(deps.tools ?? setting("RGT_TOOLS"));
  const server = new McpServer(
    { name: "remote-gpu-trainer", version: VERSION },
    {
      capabilities: { logging: {}, resources: {}, prompts: {} },
      instructions:
        "Runs long GPU jobs on rented boxes. Lifecycle: probe_env -> push_code/push_secret -> launch_queue -> run_status -> pull_verify -> request_teardown. " +
        "Read rgt://skill for the playbook. Every result has ok and a one-line summary; a refusal names its code and remedy.",
    },
  );
  const low = server.server;
  low.registerCapabilities({ tools: {} });
  const listed = listing(tools);
  const byName = new Map(tools.map((t) => [t.name, t]));

  low.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: listed }));
  // Protocol's own setRequestHandler, not Server's: Server wraps tools/call in a check that answers
  // non-object `arguments` with a protocol error; here they reach the pipeline and become BAD_INPUT.
  const setHandler = Protocol.prototype.setRequestHandler as unknown as typeof low.setRequestHandler;
  setHandler.call(low, CallToolRequest, async (req, extra) => {
    const def = byName.get(req.params.name);
    if (!def) throw new McpError(ErrorCode.InvalidParams, `Tool ${req.params.name.slice(0, 64)} not found`);
    const token = req.params._meta?.progressToken;
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
        const caps = low.getClientCapabilities();
        if (!caps?.elicitation) return undefined;
        const r = await low.elicitInput(
          { message, requestedSchema: requestedSchema as never },
          { timeout: timeoutMs ?? deps.elicitTimeoutMs ?? 120_000 },
        );
        return { action: r.action, content: r.content as Record<string, unknown> | undefined };
      },
    };
    return runTool(def, req.params.arguments, ctx);
  });
  registerKnowledge(server);

  let closing: Promise<void> | undefined;
  return {
    server,
    remote,
    ledger,
    tools,
    close() {
      // once: server.close() fires transport.onclose, which may call close() again
      closing ??= (async () => {
        await server.close().catch(() => {});
        await remote.close().catch(() => {});
      })();
      return closing;
    },
  };
}
