/** Registers profiles, references and the skill hub as MCP resources, and the lifecycle prompt. (Owned by the knowledge layer work.) */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";

export function registerKnowledge(_server: McpServer): void {
  // filled in by the knowledge-base work (issue 3)
}
