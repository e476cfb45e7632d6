/** checkpoint_cadence — NOT YET IMPLEMENTED (placeholder so the server builds; replaced by its owner). */
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { refuse } from "../common/result.js";

export const checkpointCadence = defineTool({
  name: "checkpoint_cadence",
  title: "checkpoint_cadence",
  description: "Not implemented yet.",
  input: { host: z.string().optional() },
  output: {},
  annotations: { readOnlyHint: true, openWorldHint: true },
  async handler() {
    return refuse("INTERNAL", "checkpoint_cadence is not implemented yet", "wait for a later version");
  },
});
