/** remote_exec — NOT YET IMPLEMENTED (placeholder so the server builds; replaced by its owner). */
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { refuse } from "../common/result.js";

export const remoteExec = defineTool({
  name: "remote_exec",
  title: "remote_exec",
  description: "Not implemented yet.",
  input: { host: z.string().optional() },
  output: {},
  annotations: { readOnlyHint: true, openWorldHint: true },
  async handler() {
    return refuse("INTERNAL", "remote_exec is not implemented yet", "wait for a later version");
  },
});
