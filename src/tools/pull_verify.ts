/** pull_verify — NOT YET IMPLEMENTED (placeholder so the server builds; replaced by its owner). */
import * as z from "zod";
import { defineTool } from "../server/tool.js";
import { refuse } from "../common/result.js";

export const pullVerify = defineTool({
  name: "pull_verify",
  title: "pull_verify",
  description: "Not implemented yet.",
  input: { host: z.string().optional() },
  output: {},
  annotations: { readOnlyHint: true, openWorldHint: true },
  async handler() {
    return refuse("INTERNAL", "pull_verify is not implemented yet", "wait for a later version");
  },
});
