/** run_status — NOT YET IMPLEMENTED (placeholder so the server builds; replaced by its owner). */
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { refuse } from "../common/result.js";

export const runStatus = defineTool({
  name: "run_status",
  title: "run_status",
  description: "Not implemented yet.",
  input: { host: z.string().optional() },
  output: {},
  annotations: { readOnlyHint: true, openWorldHint: true },
  async handler() {
    return refuse("INTERNAL", "run_status is not implemented yet", "wait for a later version");
  },
});
