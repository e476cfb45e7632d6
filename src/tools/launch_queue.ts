/** launch_queue — NOT YET IMPLEMENTED (placeholder so the server builds; replaced by its owner). */
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { refuse } from "../common/result.js";

export const launchQueue = defineTool({
  name: "launch_queue",
  title: "launch_queue",
  description: "Not implemented yet.",
  input: { host: z.string().optional() },
  output: {},
  annotations: { readOnlyHint: true, openWorldHint: true },
  async handler() {
    return refuse("INTERNAL", "launch_queue is not implemented yet", "wait for a later version");
  },
});
