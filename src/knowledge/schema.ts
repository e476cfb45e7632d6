/**
 * The machine-readable frontmatter of profiles/<name>.md. Everything a tool acts on lives here;
 * nothing the tools need is parsed out of the prose below the frontmatter.
 * A profile that does not parse against this schema fails loading (and the test suite).
 */
import * as z from "zod";

/** "YYYY-MM" month stamp of when a fact was last verified. */
export const VerifiedStamp = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, "verified must be YYYY-MM");

export const MountRole = z.enum(["data", "durable", "system", "other"]);

export const MountSchema = z.object({
  path: z.string().min(1),
  role: MountRole,
  /** shared across instances (network FS): credentials must never be written here */
  shared: z.boolean().default(false),
  survives_stop: z.boolean(),
  survives_destroy: z.boolean(),
  /** e.g. "~200K inodes"; free text for the human, numbers in inode_cap */
  note: z.string().optional(),
  verified: VerifiedStamp.optional(),
});

export const MarkerSchema = z.object({
  /** an absolute path whose existence on the box identifies the platform */
  path: z.string().optional(),
  /** an environment variable whose presence identifies the platform */
  env: z.string().optional(),
  /** a regex the box's hostname matches */
  hostname_regex: z.string().optional(),
  /** a command that exists on PATH (e.g. sbatch) */
  command: z.string().optional(),
}).refine((m) => !!(m.path || m.env || m.hostname_regex || m.command), "a marker needs path, env, hostname_regex or command");

export const MeterStopSchema = z.object({
  /** the verb that ends billing on this platform, in its own words (关机, destroy, terminate…) */
  verb: z.string(),
  irreversible: z.boolean(),
  /** how it is performed */
  via: z.enum(["provider_cli", "api", "console", "on_box", "scheduler", "none"]),
  /** command template with {instance_id}, {job_id}, {namespace}, {name} placeholders, where documented */
  command: z.string().optional(),
  /** the environment variable holding the API key when via = api */
  api_key_env: z.string().optional(),
  /** what the stop keeps billing (e.g. storage while stopped) */
  still_bills: z.string().optional(),
  /** ordered manual steps when via = console (or as a fallback) */
  manual_steps: z.array(z.string()).default([]),
  verified: VerifiedStamp,
});

export const DangerClockSchema = z.object({
  id: z.string(),
  message: z.string(),
  /** the clock length in hours where the fact is a duration (e.g. 15 days = 360) */
  hours: z.number().optional(),
  verified: VerifiedStamp,
});

export const GotchaSchema = z.object({
  id: z.string().regex(/^[A-Z][A-Z0-9_-]*$/),
  title: z.string(),
  severity: z.enum(["info", "warn", "danger"]).default("warn"),
});

export const ProfileFrontmatterSchema = z.object({
  platform: z.string().regex(/^[a-z0-9-]+$/),
  title: z.string(),
  kind: z.enum(["ssh-rental", "cloud-api", "slurm", "kubernetes", "notebook", "generic"]),
  meter_stop: MeterStopSchema,
  mounts: z.array(MountSchema),
  /** convenience accessors: the main fast scratch and the one that outlives teardown ("" when none) */
  data_dir: z.string(),
  durable_dir: z.string(),
  /** mounts on which no credential file may be written (shared / classified FS) */
  no_credentials_on: z.array(z.string()).default([]),
  detach: z.enum(["tmux", "nohup", "slurm", "k8s", "notebook"]),
  spot: z.object({
    available: z.boolean(),
    /** seconds between the preemption signal and the kill; null when n/a or unknown */
    grace_s: z.number().nullable(),
    signal: z.string().optional(),
    verified: VerifiedStamp.optional(),
  }),
  /** inode cap of the tightest listed mount; null when none is known */
  inode_cap: z.number().int().nullable(),
  /** a command run before any network access (proxy/mirror), "" when none */
  proxy_hook: z.string().default(""),
  python_path: z.string().default("python3"),
  hf_home: z.string().default(""),
  /** where a credential file belongs on this platform (per-instance disk) */
  cred_file: z.string().default(""),
  china_mirror_needed: z.boolean().default(false),
  detect: z.object({
    /** all of `all` must match, or any of `any`; profiles are tried most specific first (priority high→low) */
    any: z.array(MarkerSchema).default([]),
    all: z.array(MarkerSchema).default([]),
    priority: z.number().int().default(0),
  }),
  danger_clocks: z.array(DangerClockSchema).default([]),
  surface_to_user: z.array(z.string()).default([]),
  gotchas: z.array(GotchaSchema).default([]),
});

export type ProfileFrontmatter = z.infer<typeof ProfileFrontmatterSchema>;
export type Mount = z.infer<typeof MountSchema>;
export type Marker = z.infer<typeof MarkerSchema>;

export interface Profile extends ProfileFrontmatter {
  /** file name without .md */
  name: string;
  /** the markdown body after the frontmatter */
  body: string;
  /** absolute path of the file */
  file: string;
}
