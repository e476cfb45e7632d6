/**
 * The machine-readable frontmatter of profiles/<name>.md. Everything a tool acts on lives here;
 * nothing the tools need is parsed out of the prose below the frontmatter.
 * A profile that does not parse against this schema fails loading (and the test suite).
 *
 * Paths may begin with `~`, `$HOME`, `$USER` or `$TMPDIR`; the box expands them (see expandBoxPath).
 */
import * as z from "zod";

/** "YYYY-MM" month stamp of when a fact was last verified. */
export const VerifiedStamp = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, "verified must be YYYY-MM");

export const MountRole = z.enum(["data", "durable", "system", "other"]);

const BoxPath = z
  .string()
  .min(1)
  .regex(/^(\/|~|\$HOME\b|\$USER\b|\$TMPDIR\b)/, "path must be absolute or start with ~, $HOME, $USER or $TMPDIR");

export const MountSchema = z.strictObject({
  path: BoxPath,
  role: MountRole,
  /** shared across instances (network FS): credentials must never be written here */
  shared: z.boolean().default(false),
  survives_stop: z.boolean(),
  survives_destroy: z.boolean(),
  /** e.g. "~200K inodes"; free text for the human, numbers in inode_cap */
  note: z.string().optional(),
  /** the profile gotcha id probe_env raises (beside INODE_HIGH) when this mount's inodes run high, e.g. AD4 */
  inode_gotcha: z.string().regex(/^[A-Z][A-Z0-9_-]*$/).optional(),
  verified: VerifiedStamp.optional(),
});

/** Evidence scripts/probe.sh gathers beyond markers (true / false / null = could not tell). */
export const Evidence = z.enum(["slurm_controller"]);
export type EvidenceName = z.infer<typeof Evidence>;

export const MarkerSchema = z
  .strictObject({
    /** an absolute path whose existence on the box identifies the platform */
    path: z.string().regex(/^\//, "marker path must be absolute").optional(),
    /** an environment variable whose presence identifies the platform */
    env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "marker env must be a variable name").optional(),
    /** a regex the box's hostname matches */
    hostname_regex: z.string().optional(),
    /** a command that exists on PATH (e.g. sbatch) */
    command: z.string().regex(/^[A-Za-z0-9._-]+$/, "marker command must be a bare command name").optional(),
    /**
     * Evidence the box must also show before this marker counts, because a package can bring the
     * marker alone (the Slurm client puts sbatch on PATH on any box): slurm_controller = a bounded
     * `scontrol ping` / `sinfo` got an answer from a controller (scripts/probe.sh gathers it).
     */
    needs: Evidence.optional(),
    /** where the marker comes from, when it is not stated by the profile's cited sources */
    note: z.string().optional(),
  })
  .refine((m) => [m.path, m.env, m.hostname_regex, m.command].filter((x) => x !== undefined).length === 1, "a marker needs exactly one of path, env, hostname_regex or command")
  .refine((m) => {
    if (m.hostname_regex === undefined) return true;
    try { new RegExp(m.hostname_regex); return true; } catch { return false; }
  }, "hostname_regex does not compile");

export const MeterStopSchema = z.strictObject({
  /** the verb that ends billing on this platform, in its own words (关机, destroy, terminate…) */
  verb: z.string().min(1),
  irreversible: z.boolean(),
  /** how it is performed */
  via: z.enum(["provider_cli", "api", "console", "on_box", "scheduler", "none"]),
  /** command template with {instance_id}, {job_id}, {namespace}, {name} placeholders, where documented */
  command: z.string().optional(),
  /** the environment variable holding the API key when via = api / provider_cli */
  api_key_env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).optional(),
  /** what the stop keeps billing (e.g. storage while stopped); "" when nothing */
  still_bills: z.string().default(""),
  /** ordered manual steps when via = console (or as a fallback) */
  manual_steps: z.array(z.string()).default([]),
  verified: VerifiedStamp,
}).refine((m) => !(m.via === "provider_cli" || m.via === "scheduler") || !!m.command, "meter_stop.command is required when via is provider_cli or scheduler")
  .refine((m) => m.via !== "api" || (!!m.command && !!m.api_key_env), "meter_stop.command and api_key_env are required when via is api")
  .refine((m) => m.via !== "console" || m.manual_steps.length > 0, "meter_stop.manual_steps must list the steps when via is console");

/** Other lifecycle actions the platform offers (stop vs release vs destroy), with what each keeps. */
export const ActionSchema = z.strictObject({
  verb: z.string().min(1),
  stops_compute: z.boolean(),
  stops_storage: z.boolean(),
  irreversible: z.boolean(),
  keeps: z.string(),
  verified: VerifiedStamp,
});

export const DangerClockSchema = z.strictObject({
  id: z.string().regex(/^[A-Z][A-Z0-9_-]*$/),
  message: z.string().min(1),
  /** the clock length in hours where the fact is a duration (e.g. 15 days = 360) */
  hours: z.number().positive().optional(),
  verified: VerifiedStamp,
});

export const GotchaSchema = z.strictObject({
  id: z.string().regex(/^[A-Z][A-Z0-9_-]*$/, "gotcha id must be upper-case letters/digits"),
  title: z.string().min(1),
  severity: z.enum(["info", "warn", "danger"]).default("warn"),
  /** earlier ids of the same gotcha in the source material */
  aliases: z.array(z.string()).default([]),
});

export const DetectSchema = z.strictObject({
  /** any one of `any` matching is enough (when `any` is non-empty) */
  any: z.array(MarkerSchema).default([]),
  /** every one of `all` must match (when `all` is non-empty) */
  all: z.array(MarkerSchema).default([]),
  /** profiles are tried most specific first (priority high→low) */
  priority: z.number().int().default(0),
  /** the profile used when nothing else matches; exactly one profile sets this */
  fallback: z.boolean().default(false),
  /**
   * Never detected from markers: the profile applies only when the user names it (registry.yaml or
   * probe_env's `profile`). For `local`, the user's own machine: no marker tells a workstation from a
   * rental, and mistaking a rental for it would hide its meter.
   */
  declared_only: z.boolean().default(false),
}).refine((d) => d.any.every((m) => m.command === undefined || m.needs !== undefined),
  "a command marker in detect.any needs `needs` (evidence beyond the command): any package can put a command on PATH")
  .refine((d) => !d.declared_only || (d.any.length === 0 && d.all.length === 0 && !d.fallback), "a declared_only profile has no markers and is not the fallback");

const SpotSchema = z.strictObject({
  available: z.boolean(),
  /** seconds between the preemption signal and the kill; null when n/a or unknown */
  grace_s: z.number().nonnegative().nullable(),
  signal: z.string().optional(),
  verified: VerifiedStamp.optional(),
});

/**
 * The reversible meter-stop a finished sweep may take on its own (launch_queue on_done: "park"): which
 * mounts it keeps, what keeps billing, and the on-box way to perform it where one is documented. A
 * platform whose stop loses data or binds the box to one GPU says `safe: false` with the reason.
 */
export const ParkSchema = z.strictObject({
  /** the action's verb as the platform names it (one of `actions`, e.g. 关机 (shutdown)) */
  verb: z.string().min(1),
  safe: z.boolean(),
  /** why park is refused here (required when safe is false) */
  why_not: z.string().optional(),
  /** the gotcha id that explains why_not, e.g. VAST3 */
  gotcha: z.string().regex(/^[A-Z][A-Z0-9_-]*$/).optional(),
  /** mount paths (from `mounts`) whose contents the park keeps */
  keeps_mounts: z.array(BoxPath).default([]),
  /** what keeps ticking while parked (storage billing, a release clock…) */
  still_ticking: z.array(z.string()).default([]),
  /** a command run on the box itself that performs the park; absent when none is documented */
  on_box: z.strictObject({ command: z.string().min(1), verified: VerifiedStamp }).optional(),
  verified: VerifiedStamp,
}).refine((p) => p.safe || !!p.why_not, "park.why_not is required when park.safe is false");

/** Disk budget a cell needs free before it starts (launch_queue min_free_gb / min_free_inodes default here). */
export const DiskBudgetSchema = z.strictObject({
  min_free_gb: z.number().nonnegative().optional(),
  min_free_inodes: z.number().int().nonnegative().optional(),
  /** why these numbers (they are policy defaults, not platform facts) */
  note: z.string().optional(),
});

/** Mirrors a cell gets on profiles with china_mirror_needed (env before Python starts; no_proxy for them). */
export const ChinaMirrorsSchema = z.strictObject({
  hf_endpoint: z.string().url().optional(),
  pip_index_url: z.string().url().optional(),
  /** conda channel URLs, written to ~/.condarc by scripts/china_mirrors.sh and set as CONDA_CHANNELS */
  conda_channels: z.array(z.string().url()).default([]),
  /** hosts the proxy must not swallow (leading-dot domains) */
  no_proxy: z.array(z.string().regex(/^[A-Za-z0-9.:-]+$/)).default([]),
  /** further variables every cell gets (e.g. HF_HUB_ENABLE_HF_TRANSFER=0) */
  env: z.record(z.string().regex(/^[A-Z_][A-Z0-9_]*$/), z.string()).default({}),
  verified: VerifiedStamp,
});

/** The fields a sub-platform (china: gpushare, matpool …; colab-kaggle: colab, kaggle) may override. */
export const VariantSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9-]+$/),
  title: z.string(),
  detect: DetectSchema.optional(),
  meter_stop: MeterStopSchema.optional(),
  actions: z.array(ActionSchema).optional(),
  mounts: z.array(MountSchema).optional(),
  data_dir: z.string().optional(),
  durable_dir: z.string().optional(),
  no_credentials_on: z.array(z.string()).optional(),
  proxy_hook: z.string().optional(),
  python_path: z.string().optional(),
  hf_home: z.string().optional(),
  cred_file: z.string().optional(),
  inode_cap: z.number().int().positive().nullable().optional(),
  danger_clocks: z.array(DangerClockSchema).optional(),
  surface_to_user: z.array(z.string()).optional(),
  park: ParkSchema.optional(),
  disk_budget: DiskBudgetSchema.optional(),
  china_mirrors: ChinaMirrorsSchema.optional(),
});

export const ProfileFrontmatterSchema = z.strictObject({
  platform: z.string().regex(/^[a-z0-9-]+$/),
  title: z.string(),
  /** workstation = the user's own machine (profiles/local.md): no meter, teardown never applies */
  kind: z.enum(["ssh-rental", "cloud-api", "slurm", "kubernetes", "notebook", "generic", "workstation"]),
  meter_stop: MeterStopSchema,
  actions: z.array(ActionSchema).default([]),
  mounts: z.array(MountSchema).min(1),
  /** convenience accessors: the main fast scratch and the one that outlives teardown ("" when none) */
  data_dir: z.string(),
  durable_dir: z.string(),
  /** mounts on which no credential file may be written (shared / classified FS) */
  no_credentials_on: z.array(z.string()).default([]),
  detach: z.enum(["tmux", "nohup", "slurm", "k8s", "notebook"]),
  /** a command the platform re-runs on every container start (vast.ai onstart), "" when none */
  boot_hook: z.string().default(""),
  spot: SpotSchema,
  /** inode cap of the tightest listed mount; null when none is known */
  inode_cap: z.number().int().positive().nullable(),
  /** a command run before any network access (proxy/mirror), "" when none */
  proxy_hook: z.string().default(""),
  /** a command that prepares the toolchain (e.g. `module load cuda`), "" when none */
  env_hook: z.string().default(""),
  python_path: z.string().default("python3"),
  hf_home: z.string().default(""),
  /** where a credential file belongs on this platform (per-instance disk); "" when creds arrive as env vars */
  cred_file: z.string().default(""),
  /** the login user the platform hands out, "" when it varies */
  ssh_user: z.string().default(""),
  china_mirror_needed: z.boolean().default(false),
  detect: DetectSchema,
  danger_clocks: z.array(DangerClockSchema).default([]),
  surface_to_user: z.array(z.string()).default([]),
  gotchas: z.array(GotchaSchema).min(1),
  variants: z.array(VariantSchema).default([]),
  /** the reversible meter-stop a finished sweep may take by itself; absent = park is refused here */
  park: ParkSchema.optional(),
  disk_budget: DiskBudgetSchema.optional(),
  china_mirrors: ChinaMirrorsSchema.optional(),
  /** how the verified stamps were chosen when the source gave none for a fact */
  stamp_note: z.string().optional(),
}).superRefine((p, ctx) => {
  const ids = new Set<string>();
  for (const [i, g] of p.gotchas.entries()) {
    if (ids.has(g.id)) ctx.addIssue({ code: "custom", path: ["gotchas", i, "id"], message: `duplicate gotcha id ${g.id}` });
    ids.add(g.id);
  }
  const hasMarkers = p.detect.any.length + p.detect.all.length > 0;
  if (!hasMarkers && !p.detect.fallback && !p.detect.declared_only) {
    ctx.addIssue({ code: "custom", path: ["detect"], message: "detect needs at least one marker unless it is the fallback" });
  }
  if (p.park) {
    for (const [i, m] of p.park.keeps_mounts.entries()) {
      if (!p.mounts.some((x) => x.path === m)) ctx.addIssue({ code: "custom", path: ["park", "keeps_mounts", i], message: `${m} is not one of the listed mounts` });
    }
    if (p.park.safe && !p.actions.some((a) => a.verb === p.park!.verb && a.stops_compute && !a.irreversible)) {
      ctx.addIssue({ code: "custom", path: ["park", "verb"], message: "a safe park must name a listed action that stops compute and is reversible" });
    }
  }
  if (p.durable_dir && !p.mounts.some((m) => m.path === p.durable_dir || p.durable_dir.startsWith(m.path.endsWith("/") ? m.path : m.path + "/"))) {
    ctx.addIssue({ code: "custom", path: ["durable_dir"], message: "durable_dir must lie on a listed mount" });
  }
});

export type ProfileFrontmatter = z.infer<typeof ProfileFrontmatterSchema>;
export type Mount = z.infer<typeof MountSchema>;
export type Marker = z.infer<typeof MarkerSchema>;
export type MeterStop = z.infer<typeof MeterStopSchema>;
export type DangerClock = z.infer<typeof DangerClockSchema>;
export type Gotcha = z.infer<typeof GotchaSchema>;
export type Variant = z.infer<typeof VariantSchema>;
export type Detect = z.infer<typeof DetectSchema>;
export type Park = z.infer<typeof ParkSchema>;
export type DiskBudget = z.infer<typeof DiskBudgetSchema>;
export type ChinaMirrors = z.infer<typeof ChinaMirrorsSchema>;

export interface Profile extends ProfileFrontmatter {
  /** file name without .md */
  name: string;
  /** the markdown body after the frontmatter */
  body: string;
  /** absolute path of the file */
  file: string;
  /** set when this object is a variant merged onto its family profile */
  variant?: string;
}

/** The 8 section headings every profile body carries, in this order (number + topic). */
const SECTION_TOPICS: { key: string; n: number; heading: string }[] = [
  { key: "launch", n: 1, heading: "Launch" },
  { key: "storage", n: 2, heading: "Storage survival matrix" },
  { key: "network", n: 3, heading: "Network" },
  { key: "spot", n: 4, heading: "Spot / interruption + resume" },
  { key: "teardown", n: 5, heading: "Teardown / billing" },
  { key: "daemon", n: 6, heading: "Daemon tool" },
  { key: "gotchas", n: 7, heading: "Platform gotchas" },
  { key: "overrides", n: 8, heading: "Script overrides" },
];
export const PROFILE_SECTIONS: readonly string[] = SECTION_TOPICS.map((x) => `${x.n}. ${x.heading}`);

/** Expand the placeholders profile paths may use, given the box's own values. */
export function expandBoxPath(p: string, env: { HOME?: string; USER?: string; TMPDIR?: string }): string {
  let out = p;
  if (out === "~" || out.startsWith("~/")) out = (env.HOME ?? "~") + out.slice(1);
  return out
    .replace(/\$HOME\b/g, env.HOME ?? "$HOME")
    .replace(/\$USER\b/g, env.USER ?? "$USER")
    .replace(/\$TMPDIR\b/g, env.TMPDIR ?? "$TMPDIR");
}
