/**
 * The JSON Schemas a client sees, derived from each tool's zod shapes (draft-07, what the SDK's client
 * validator speaks). The output schema is the result contract: ok, summary, warnings required; refused and
 * every tool field optional (a refusal or a partial result omits them); objects left open, so a field added
 * tomorrow never turns a result into a client-side error. `closed: true` gives the same schema with every
 * object closed — the tests validate results against it to catch an undeclared field.
 */
import * as z from "zod";
import { baseResultShape } from "../common/result.js";
import type { ToolDef } from "./tool.js";

type Json = Record<string, unknown>;

function open(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(open);
  if (!node || typeof node !== "object") return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node as Json)) {
    if (k === "additionalProperties" && v === false) continue;
    out[k] = open(v);
  }
  return out;
}

/**
 * A model reads these every turn: bounds that carry no news — `minLength: 1`, `minimum: 0`, the safe-integer
 * maximum — are enforced by the pipeline (BAD_INPUT naming the field) but left out of what is published.
 */
const NOISE: [string, unknown][] = [["minLength", 1], ["minimum", 0], ["maximum", Number.MAX_SAFE_INTEGER]];
function lean(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(lean);
  if (!node || typeof node !== "object") return node;
  return Object.fromEntries(Object.entries(node as Json).filter(([k, v]) => !NOISE.some(([nk, nv]) => k === nk && v === nv)).map(([k, v]) => [k, lean(v)]));
}

export function inputJsonSchema(def: Pick<ToolDef, "input">, opts: { full?: boolean } = {}): Json {
  const { $schema: _s, ...schema } = z.toJSONSchema(z.object(def.input), { target: "draft-7", io: "input" }) as Json;
  return opts.full ? schema : (lean(schema) as Json);
}

/** The zod object every result of this tool satisfies. */
export function outputZod(def: Pick<ToolDef, "output">): z.ZodObject {
  const own = Object.fromEntries(Object.entries(def.output).map(([k, v]) => [k, (v as z.ZodType).optional()]));
  return z.object({ ...own, ...baseResultShape });
}

export function outputJsonSchema(def: Pick<ToolDef, "output">, opts: { closed?: boolean } = {}): Json {
  const { $schema: _s, ...schema } = z.toJSONSchema(outputZod(def), { target: "draft-7", io: "output" }) as Json;
  return opts.closed ? schema : (open(schema) as Json);
}
