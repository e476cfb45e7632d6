/**
 * The eval case format (evals/cases.jsonl, one JSON object per line).
 *
 * A case is a user's situation plus up to two kinds of expectation:
 *  - knowledge: where this project's own knowledge base answers it (files, heading ids, key terms);
 *  - replay: tool calls through the real server against a lab box, with the expected outcome.
 * A case passes only when every expectation it declares holds.
 */
import * as fs from "node:fs";
import * as z from "zod";

/** A lab box as the replay needs it (a subset of src/lab/box.ts BoxSpec, minus the alias). */
export const BoxSpecSchema = z.strictObject({
  gpus: z.number().int().min(0).max(16).optional(),
  busyGpus: z.array(z.number().int().min(0)).optional(),
  gpuModel: z.string().optional(),
  gpuMemoryMiB: z.number().int().positive().optional(),
  /** which platform markers the lab plants (autodl, vastai, generic) */
  profile: z.enum(["autodl", "vastai", "generic"]).optional(),
  hostname: z.string().optional(),
  env: z.record(z.string(), z.string()).optional(),
  rootSize: z.string().optional(),
  mounts: z
    .array(
      z.strictObject({
        path: z.string().min(1),
        size: z.string().optional(),
        inodes: z.number().int().positive().optional(),
        fillInodesPct: z.number().min(0).max(100).optional(),
        fillBytesPct: z.number().min(0).max(100).optional(),
      }),
    )
    .optional(),
  /** programs hidden on the box (sbatch: a box the host's own Slurm would otherwise make look like a Slurm login node) */
  without: z.array(z.enum(["rsync", "tmux", "python3", "sbatch", "kubectl"])).optional(),
  torch: z.boolean().optional(),
});
export type EvalBoxSpec = z.infer<typeof BoxSpecSchema>;

export const StepExpectSchema = z.strictObject({
  /** the result's ok flag */
  ok: z.boolean().optional(),
  /** a refusal with exactly this code (implies ok:false) */
  code: z.string().optional(),
  /** warning codes that must be present */
  warnings: z.array(z.string()).optional(),
  /** warning codes that must be absent */
  no_warnings: z.array(z.string()).optional(),
  /** field assertions: `<dotted.path> <op> <json value>`, e.g. `profile.name == "autodl"`, `gpus.length == 8` */
  fields: z.array(z.string()).optional(),
  /** the whole JSON result must stay under this many bytes (agent-sized output) */
  max_bytes: z.number().int().positive().optional(),
  /** strings that must appear nowhere in the result (e.g. a credential's value: proof it did not leak) */
  absent_text: z.array(z.string().min(4)).optional(),
});
export type StepExpect = z.infer<typeof StepExpectSchema>;

/** Longest a step may poll: keeps a whole eval run bounded. */
export const MAX_UNTIL_S = 60;

/**
 * Repeat the same call until every field assertion holds (e.g. `state == "done"`), bounded in time;
 * `expect` is then checked against the last answer. Not reaching it within timeout_s fails the step.
 */
export const UntilSchema = z.strictObject({
  fields: z.array(z.string().min(1)).min(1),
  timeout_s: z.number().positive().max(MAX_UNTIL_S).default(30),
  interval_ms: z.number().int().min(100).max(10_000).default(1000),
});
export type Until = z.infer<typeof UntilSchema>;

export const StepSchema = z.strictObject({
  tool: z.string().min(1),
  /**
   * tool arguments; in any string "{box}" becomes the case's box alias, "{root}" the package root,
   * "{tmp}" a local scratch directory of this eval run, "{listener}" / "{jump}" the case's fake port and
   * its jump route (Replay.listener, Replay.jump), "{prev.<path>}" a field of the previous step's
   * result and "{stepN.<path>}" one of step N's (1-based). A string that is only one placeholder takes
   * the field's value with its type. The same placeholders work in `until` and `expect` strings.
   */
  args: z.record(z.string(), z.unknown()).default({}),
  until: UntilSchema.optional(),
  expect: StepExpectSchema,
});
export type Step = z.infer<typeof StepSchema>;

export const KnowledgeSchema = z.strictObject({
  /** files (relative to the package root) that must exist */
  files: z.array(z.string().min(1)).default([]),
  /** file -> heading ids that must appear as `### <ID>` (or `### <ID> — title`) in that file */
  ids: z.record(z.string(), z.array(z.string().min(1))).default({}),
  /** key terms (case-insensitive) each found in at least one of the case's files */
  terms: z.array(z.string().min(1)).default([]),
});
export type Knowledge = z.infer<typeof KnowledgeSchema>;

export const ReplaySchema = z
  .strictObject({
  /** the box the steps run against; absent for host-less tools (check_staleness, checkpoint_cadence) */
  box: BoxSpecSchema.optional(),
  /**
   * variables the server process is started with (one server serves every case, so the same name must
   * carry the same value in every case that sets it); for push_secret's {env: NAME} source
   */
  server_env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "server_env names are variable names"), z.string()).optional(),
  /**
   * A stand-in for one provider CLI on the server's PATH, for this case only (the tripwire is back
   * afterwards): its destroy succeeds, and its listing keeps naming the destroyed instance for
   * `lists_after_destroy` more looks — an eventually consistent provider.
   */
  provider_stub: z.strictObject({ cli: z.enum(["vastai"]), lists_after_destroy: z.number().int().min(0).max(20) }).optional(),
  /**
   * A port on 127.0.0.1 that is not sshd, started for this case only (src/lab/ports.ts) and reached as the
   * ssh alias "{listener}" (ConnectTimeout 3): closed (nothing listens), silent (accepts, never speaks),
   * banner (sends `text` on accept and waits), reply (sends `text` once the client spoke, then hangs up:
   * an HTTP server), hangup (accepts and closes at once), reset (answers the client's first bytes with a
   * TCP RST). Closed again when the case ends.
   */
  listener: z
    .strictObject({ kind: z.enum(["closed", "silent", "banner", "reply", "hangup", "reset"]), text: z.string().min(1).max(200).optional() })
    .refine((l) => (l.kind === "banner" || l.kind === "reply") === !!l.text, "banner and reply listeners need text; the others take none")
    .optional(),
  /**
   * A route through a jump host: the ssh alias "{jump}" reaches `target` (the case's box, or a closed port)
   * with `ProxyJump {listener}`, so the case's listener is the failing hop.
   */
  jump: z.strictObject({ target: z.enum(["box", "closed"]).default("box") }).optional(),
  /**
   * How the human answers the server's elicitation during this case: "approve" types the box alias,
   * "decline" declines. Absent: the question goes unanswered (cancel), as with a client that cannot ask.
   */
  human: z.enum(["approve", "decline"]).optional(),
  steps: z.array(StepSchema).min(1),
})
  .refine((r) => !r.jump || r.listener, "a jump goes through the case's listener: declare one")
  .refine((r) => r.jump?.target !== "box" || r.box, "jump target box needs the case's box");
export type Replay = z.infer<typeof ReplaySchema>;

export const CaseSchema = z
  .strictObject({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, "id must be kebab-case"),
    prompt: z.string().min(10),
    /** the profile(s) the case is about, for coverage accounting */
    platforms: z.array(z.string()).default([]),
    /** what a correct answer must say, for a human or agentic grader */
    must_cover: z.string().optional(),
    knowledge: KnowledgeSchema.optional(),
    replay: ReplaySchema.optional(),
  })
  .refine((c) => c.knowledge || c.replay, "a case needs knowledge, replay, or both");
export type EvalCase = z.infer<typeof CaseSchema>;

export interface LoadedCases {
  cases: EvalCase[];
  /** lines that did not parse: they count as failed cases */
  errors: { line: number; id?: string; message: string }[];
}

export function parseCases(text: string): LoadedCases {
  const cases: EvalCase[] = [];
  const errors: LoadedCases["errors"] = [];
  const seen = new Set<string>();
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("//")) return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (e) {
      errors.push({ line: i + 1, message: `not JSON: ${(e as Error).message}` });
      return;
    }
    const parsed = CaseSchema.safeParse(json);
    const id = typeof (json as { id?: unknown })?.id === "string" ? (json as { id: string }).id : undefined;
    if (!parsed.success) {
      const msg = parsed.error.issues.map((is) => `${is.path.join(".") || "(case)"}: ${is.message}`).join("; ");
      errors.push({ line: i + 1, id, message: msg });
      return;
    }
    if (seen.has(parsed.data.id)) {
      errors.push({ line: i + 1, id, message: `duplicate case id ${parsed.data.id}` });
      return;
    }
    seen.add(parsed.data.id);
    cases.push(parsed.data);
  });
  return { cases, errors };
}

export function loadCases(file: string): LoadedCases {
  return parseCases(fs.readFileSync(file, "utf8"));
}
