/**
 * The narrated transcript `rgt demo` prints, and the meter that counts what an agent would have read:
 * every tool call, and the bytes of the JSON text each tool result carries.
 */
import type { ServerConnection } from "../lab/client.js";

export interface CallRecord {
  tool: string;
  bytes: number;
  ms: number;
  ok: boolean;
  code?: string;
}

export type Sink = (line: string) => void;

export class Transcript {
  readonly calls: CallRecord[] = [];
  private readonly t0 = Date.now();

  constructor(private readonly sink: Sink = (l) => process.stdout.write(`${l}\n`)) {}

  /** a plain narrated line */
  say(text = ""): void {
    this.sink(text);
  }

  /** a detail line under a step */
  detail(text: string): void {
    this.sink(`      ${text}`);
  }

  /** elapsed seconds since the transcript started, one decimal */
  elapsedS(): string {
    return ((Date.now() - this.t0) / 1000).toFixed(1);
  }

  get totalBytes(): number {
    return this.calls.reduce((n, c) => n + c.bytes, 0);
  }

  /** "N tool calls, X KB of tool output" */
  economyLine(): string {
    return `${this.calls.length} tool calls, ${(this.totalBytes / 1024).toFixed(1)} KB of tool output`;
  }

  /**
   * Call one tool through the MCP client, count it, and print its heading line. Returns the parsed
   * structured result (isError attached as a non-enumerable property, like ServerConnection.call).
   */
  async call(conn: ServerConnection, tool: string, args: Record<string, unknown>, label: string, timeoutMs = 120_000): Promise<Record<string, any>> {
    const t = Date.now();
    const raw: any = await conn.callRaw(tool, args, { timeoutMs });
    const ms = Date.now() - t;
    const text = Array.isArray(raw?.content)
      ? raw.content.filter((c: any) => c?.type === "text" && typeof c.text === "string").map((c: any) => c.text).join("\n")
      : "";
    const bytes = Buffer.byteLength(text, "utf8");
    let sc: any = raw?.structuredContent;
    if (sc === undefined || sc === null || typeof sc !== "object") {
      try { sc = JSON.parse(text); } catch { sc = { text }; }
      if (sc === null || typeof sc !== "object") sc = { value: sc };
    }
    Object.defineProperty(sc, "isError", { value: raw?.isError === true, enumerable: false, configurable: true });
    const code: string | undefined = sc?.refused?.code;
    this.calls.push({ tool, bytes, ms, ok: sc?.ok === true, ...(code ? { code } : {}) });
    const n = String(this.calls.length).padStart(2);
    const size = bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KB` : `${bytes} B`;
    this.sink(`[${n}] ${tool} ${label}`.padEnd(62) + ` ${(ms / 1000).toFixed(1)} s · ${size}${code ? ` · refused ${code}` : ""}`);
    return sc;
  }
}
