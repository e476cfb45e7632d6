/**
 * The user's optional host registry: `registry.yaml` (or `hosts.yaml`) in RGT_HOME, written by the
 * human, read-only for us. It tells the server what it cannot learn from the box: the price per hour,
 * the provider's instance id, the platform profile, and for Kubernetes the Job to delete.
 *
 *   hosts:                 # the `hosts:` wrapper is optional
 *     my-4090:
 *       price_per_hour: 0.42
 *       currency: USD      # default USD
 *       instance_id: "1234567"
 *       profile: vastai
 *     cluster:
 *       profile: kubernetes
 *       namespace: ml
 *       job_name: sweep-a
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as z from "zod";
import YAML from "yaml";
import { RefusalError } from "../common/result.js";
import type { Ledger } from "./store.js";

export const RegistryEntrySchema = z.object({
  price_per_hour: z.number().nonnegative().optional(),
  currency: z.string().max(8).default("USD"),
  instance_id: z.union([z.string(), z.number()]).transform(String).optional(),
  profile: z.string().regex(/^[a-z0-9-]+$/).optional(),
  namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/).optional(),
  job_name: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/).optional(),
}).loose();
export type RegistryEntry = z.infer<typeof RegistryEntrySchema>;

const FILES = ["registry.yaml", "registry.yml", "hosts.yaml", "hosts.yml"];

export function registryFile(dir: string): string | undefined {
  for (const f of FILES) {
    const p = path.join(dir, f);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

let cache: { file: string; mtimeMs: number; value: Record<string, RegistryEntry> } | undefined;

/** Parse the registry; a malformed file throws a BAD_INPUT RefusalError naming the file and field. */
export function loadRegistry(ledger: Ledger): Record<string, RegistryEntry> {
  const file = registryFile(ledger.dir);
  if (!file) return {};
  const st = fs.statSync(file);
  if (cache && cache.file === file && cache.mtimeMs === st.mtimeMs) return cache.value;
  let raw: unknown;
  try {
    raw = YAML.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new RefusalError("BAD_INPUT", `${file}: not valid YAML (${(e as Error).message.split("\n")[0]})`, `Fix ${file}; its format is described in src/ledger/registry.ts.`);
  }
  const root = raw && typeof raw === "object" && "hosts" in (raw as object) ? (raw as { hosts: unknown }).hosts : raw;
  const out: Record<string, RegistryEntry> = {};
  if (root == null) return out;
  if (typeof root !== "object" || Array.isArray(root)) {
    throw new RefusalError("BAD_INPUT", `${file}: expected a mapping of host alias → settings`, `Fix ${file}.`);
  }
  for (const [alias, v] of Object.entries(root as Record<string, unknown>)) {
    const r = RegistryEntrySchema.safeParse(v ?? {});
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new RefusalError("BAD_INPUT", `${file}: hosts.${alias}.${issue.path.join(".")}: ${issue.message}`, `Fix that field in ${file}.`);
    }
    out[alias] = r.data;
  }
  cache = { file, mtimeMs: st.mtimeMs, value: out };
  return out;
}

export function registryEntry(ledger: Ledger, host: string): RegistryEntry | undefined {
  return loadRegistry(ledger)[host];
}

/** Same as registryEntry but never throws (for hooks and status views). */
export function registryEntrySafe(ledger: Ledger, host: string): RegistryEntry | undefined {
  try { return registryEntry(ledger, host); } catch { return undefined; }
}
