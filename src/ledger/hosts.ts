/** Hosts this server has seen: first/last probe, detected profile, instance ids the probe found. */
import type { Ledger } from "./store.js";

export interface HostRecord {
  host: string;
  /** user@hostname:port the alias resolved to when last seen */
  endpoint?: string;
  profile?: string;
  variant?: string;
  detected_by?: string;
  first_seen: string;
  last_probe?: string;
  gpu_count?: number;
  gpu_name?: string;
  /** instance identifiers found on the box (env var name → value), e.g. CONTAINER_ID */
  instance_ids?: Record<string, string>;
}

type HostMap = Record<string, HostRecord>;
const DOC = "hosts";

export function getHost(ledger: Ledger, host: string): HostRecord | undefined {
  return ledger.read<HostMap>(DOC, {})[host];
}

export function listHosts(ledger: Ledger): HostRecord[] {
  return Object.values(ledger.read<HostMap>(DOC, {}));
}

/** Merge a probe's findings into the record; returns whether this is the first time the host was seen. */
export async function recordProbe(ledger: Ledger, host: string, patch: Omit<Partial<HostRecord>, "host" | "first_seen">): Promise<{ first: boolean; record: HostRecord }> {
  let first = false;
  let record!: HostRecord;
  await ledger.update<HostMap>(DOC, {}, (all) => {
    const now = new Date().toISOString();
    const cur = all[host];
    first = !cur;
    record = { ...(cur ?? { host, first_seen: now }), ...patch, host, last_probe: now };
    all[host] = record;
    return all;
  });
  return { first, record };
}
