/**
 * Registers the knowledge as MCP resources — rgt://profiles/{name}, rgt://references/{name},
 * rgt://skill — and the `lifecycle` prompt that walks an agent through one host end to end.
 */
import * as fs from "node:fs";
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import { completable } from "@modelcontextprotocol/sdk/server/completable.js";
import * as z from "zod";
import { loadProfiles, getProfile } from "../knowledge/profiles.js";
import { listReferences, getReference, getSkill } from "../knowledge/references.js";

const MD = "text/markdown";

function profileNamesSafe(): string[] {
  try { return loadProfiles().map((p) => p.name); } catch { return []; }
}

function prefixFilter(values: string[], typed: string): string[] {
  const t = (typed ?? "").toLowerCase();
  return values.filter((v) => v.toLowerCase().startsWith(t)).slice(0, 100);
}

export function registerKnowledge(server: McpServer): void {
  server.registerResource(
    "profile",
    new ResourceTemplate("rgt://profiles/{name}", {
      list: async () => ({
        resources: loadProfiles().map((p) => ({
          uri: `rgt://profiles/${p.name}`,
          name: p.name,
          title: p.title,
          mimeType: MD,
          description: `${p.title}: meter stop "${p.meter_stop.verb}"${p.meter_stop.irreversible ? " (irreversible)" : ""}, data ${p.data_dir || "n/a"}, durable ${p.durable_dir || "off-box only"}`,
        })),
      }),
      complete: { name: (value) => prefixFilter(profileNamesSafe(), value) },
    }),
    { title: "Platform profile", description: "One platform's facts: frontmatter the tools act on, then launch, storage survival, network, spot, teardown/billing, daemon, gotchas, script overrides.", mimeType: MD },
    async (uri, vars) => {
      const name = String(Array.isArray(vars.name) ? vars.name[0] : vars.name);
      const p = getProfile(name);
      if (!p) throw new Error(`unknown profile "${name}"; known: ${profileNamesSafe().join(", ")}`);
      return { contents: [{ uri: uri.href, mimeType: MD, text: fs.readFileSync(p.file, "utf8") }] };
    },
  );

  server.registerResource(
    "reference",
    new ResourceTemplate("rgt://references/{+name}", {
      list: async () => ({
        resources: listReferences().map((r) => ({ uri: `rgt://references/${r.name}`, name: r.name, title: r.title, mimeType: MD })),
      }),
      complete: { name: (value) => prefixFilter(listReferences().map((r) => r.name), value) },
    }),
    { title: "Reference", description: "Cross-platform reference notes (transport, spot resilience, monitoring, gotchas…).", mimeType: MD },
    async (uri, vars) => {
      const name = decodeURIComponent(String(Array.isArray(vars.name) ? vars.name[0] : vars.name));
      const text = getReference(name);
      if (text === undefined) throw new Error(`unknown reference "${name}"`);
      return { contents: [{ uri: uri.href, mimeType: MD, text }] };
    },
  );

  server.registerResource(
    "skill",
    "rgt://skill",
    { title: "remote-gpu-trainer playbook", description: "The skill hub: when to use which tool, in which order.", mimeType: MD },
    async (uri) => ({ contents: [{ uri: uri.href, mimeType: MD, text: getSkill() ?? "# remote-gpu-trainer\n\nThe playbook (skill/SKILL.md) is not installed with this build.\n" }] }),
  );

  server.registerPrompt(
    "lifecycle",
    {
      title: "Run a GPU job on a rented host, start to teardown",
      description: "Walks through probe_env → push_code/push_secret → launch_queue → run_status → pull_verify → request_teardown for one host.",
      argsSchema: {
        host: z.string().min(1).describe("ssh alias or user@host[:port] of the box"),
        profile: completable(z.string().optional().describe("platform profile name; detected from the box when omitted"), (v) => prefixFilter(profileNamesSafe(), v ?? "")),
      },
    },
    ({ host, profile }) => ({
      description: `Lifecycle for ${host}`,
      messages: [{ role: "user", content: { type: "text", text: lifecycleText(host, profile) } }],
    }),
  );
}

/** The prompt text, kept compact; it names this server's tools and the profile's own verbs. */
export function lifecycleText(host: string, profileName?: string): string {
  const p = profileName ? getProfile(profileName) : undefined;
  const pArg = p ? `, profile: "${p.name}"` : "";
  const lines: string[] = [
    `Goal: run a long GPU job on \`${host}\` and get its results home before the meter or a preemption eats them.`,
    profileName && !p ? `(No profile named "${profileName}"; let probe_env detect one.)` : "",
    p ? `Platform: ${p.title} — read rgt://profiles/${p.name} first. Meter stop is "${p.meter_stop.verb}"${p.meter_stop.irreversible ? " and it is IRREVERSIBLE" : " (reversible)"}; data dir ${p.data_dir || "(choose one)"}; durable dir ${p.durable_dir || "none on the box — the local pull is the only durable copy"}.` : "",
    "",
    `1. probe_env { host: "${host}"${pArg} } — confirm GPUs, disks (bytes AND inodes), python, tmux/rsync. Tell the user every line in surface_to_user and every danger warning before going on.`,
    `2. push_code { host: "${host}", local_dir, remote_dir } — code only; credential files are refused. For a key use push_secret { host: "${host}", source: { env: "WANDB_API_KEY" }, remote_path } onto per-instance disk, never a shared mount${p && p.no_credentials_on.length ? ` (${p.no_credentials_on.join(", ")})` : ""}. Never paste a secret into a command.`,
    `3. launch_queue { host: "${host}", run_name, workdir, cells: [{ name, command }], expect: ["best.pth"] } — detached and resumable; the same run_name again resumes and never double-starts. Checkpoints go under $RGT_OUTPUT_DIR; checkpoint_cadence gives the interval when preemption is possible.`,
    `4. run_status { run_id } — one round trip per check; act on next_action. A "vanished" run names its cause; "stalled" means alive but silent.`,
    `5. pull_verify { host: "${host}", run_id, local_dir, expect: ["best.pth"] } — pulls, hashes both ends, load-checks checkpoints. Only ok:true with complete:true counts; a log line saying "saved" does not.`,
    `6. request_teardown { host: "${host}" } — refuses while a run is live or artifacts are unverified, warns on stale billing facts (check_staleness), then asks the human. Never stop, release or destroy the box any other way.`,
    "",
    "Use remote_exec only for small ad-hoc checks; it refuses secrets and destructive commands.",
  ];
  return lines.filter((l, i) => l !== "" || (i > 0 && lines[i - 1] !== "")).join("\n");
}
