/**
 * Drive the real built server (`node dist/cli/main.js serve`) over stdio with the SDK's Client, the way
 * an agent would. Used by the integration tests, `rgt demo` and the evals.
 *
 *   const s = await connectServer(lab.env);
 *   const r = await s.call("probe_env", { host: "gpu1" });   // structuredContent; r.isError (non-enumerable)
 *   await s.close();
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ElicitRequestSchema, type ElicitRequest, type ElicitResult } from "@modelcontextprotocol/sdk/types.js";
import { packageRoot } from "../common/config.js";

export type ElicitationHandler = (params: ElicitRequest["params"]) => Promise<ElicitResult> | ElicitResult;

export interface ConnectOptions {
  /** declare the elicitation capability and answer the server's questions with this */
  elicitation?: ElicitationHandler;
  /** working directory of the server process */
  cwd?: string;
  /** default per-call timeout (ms), default 120 s */
  timeoutMs?: number;
  /** the server entry (default <packageRoot>/dist/cli/main.js) */
  entry?: string;
  /** extra argv after the entry (default ["serve"]) */
  args?: string[];
}

export interface CallOptions {
  timeoutMs?: number;
  /** progress notifications for this call */
  onProgress?: (p: { progress: number; total?: number; message?: string }) => void;
}

/** A tool result's structuredContent with `isError` attached as a non-enumerable property. */
export type CallResult = Record<string, any> & { readonly isError?: boolean };

export interface ServerConnection {
  client: Client;
  /** call a tool; returns its structuredContent (or the parsed text content when there is none) */
  call(name: string, args?: Record<string, unknown>, opts?: CallOptions): Promise<CallResult>;
  /** the raw CallToolResult */
  callRaw(name: string, args?: Record<string, unknown>, opts?: CallOptions): Promise<any>;
  /** everything the server wrote to stderr so far */
  stderr(): string;
  /** server process id */
  readonly pid: number | null;
  close(): Promise<void>;
}

const STDERR_CAP = 256 * 1024;

export async function connectServer(env: Record<string, string | undefined>, opts: ConnectOptions = {}): Promise<ServerConnection> {
  const entry = opts.entry ?? path.join(packageRoot(), "dist", "cli", "main.js");
  if (!fs.existsSync(entry)) {
    throw new Error(`lab: ${entry} does not exist; build first (npx tsc -p tsconfig.json)`);
  }
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (typeof v === "string") merged[k] = v;
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [entry, ...(opts.args ?? ["serve"])],
    env: merged,
    cwd: opts.cwd,
    stderr: "pipe",
  });
  let errText = "";
  transport.stderr?.on("data", (d: Buffer) => {
    errText += d.toString("utf8");
    if (errText.length > STDERR_CAP) errText = errText.slice(-STDERR_CAP);
  });

  const client = new Client(
    { name: "rgt-lab-client", version: "0.1.0" },
    { capabilities: opts.elicitation ? { elicitation: {} } : {} },
  );
  if (opts.elicitation) {
    const handler = opts.elicitation;
    client.setRequestHandler(ElicitRequestSchema, async (req) => handler(req.params));
  }
  try {
    await client.connect(transport);
  } catch (e) {
    await transport.close().catch(() => undefined);
    throw new Error(`lab: the server did not start: ${e instanceof Error ? e.message : String(e)}\n${errText.slice(-2000)}`);
  }
  // as every real client does: list the tools first, so the SDK client checks each result against its outputSchema
  await client.listTools();

  const defaultTimeout = opts.timeoutMs ?? 120_000;
  const callRaw = (name: string, args: Record<string, unknown> = {}, co: CallOptions = {}) =>
    client.callTool({ name, arguments: args }, undefined, {
      timeout: co.timeoutMs ?? defaultTimeout,
      resetTimeoutOnProgress: !!co.onProgress,
      onprogress: co.onProgress ? (p) => co.onProgress!(p as { progress: number; total?: number; message?: string }) : undefined,
    });

  return {
    client,
    get pid() { return transport.pid; },
    callRaw,
    async call(name, args = {}, co = {}) {
      const res: any = await callRaw(name, args, co);
      let sc: any = res.structuredContent;
      if (sc === undefined) {
        const text = Array.isArray(res.content) ? res.content.filter((c: any) => c?.type === "text").map((c: any) => c.text).join("\n") : "";
        try { sc = JSON.parse(text); } catch { sc = { text }; }
        if (sc === null || typeof sc !== "object") sc = { value: sc };
      }
      Object.defineProperty(sc, "isError", { value: res.isError === true, enumerable: false, configurable: true });
      return sc as CallResult;
    },
    stderr: () => errText,
    async close() {
      await client.close().catch(() => undefined);
      await transport.close().catch(() => undefined);
    },
  };
}
