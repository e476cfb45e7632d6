/**
 * Boxes whose sweep is safe to park but which nobody parked (PARK_READY): the profile documents no on-box
 * way to perform its reversible meter-stop, so the box idles and bills until a human does it. Recorded when
 * run_status reads the box's park decision; every later result naming the host carries the idle cost
 * (src/providers/meter_hook.ts) and `rgt status` lists it, until a launch puts the host to work again or
 * request_teardown acts on it.
 */
import { warning, type Warning } from "../common/result.js";
import type { Ledger } from "./store.js";

const DOC = "parks";

export interface ParkReady {
  run_id: string;
  /** the platform's park verb (e.g. 关机 (shutdown)) */
  verb: string;
  /** epoch ms when the box recorded it */
  since: number;
  /** what keeps billing even once parked (from the profile) */
  still_ticking: string[];
}
interface ParksDoc { hosts: Record<string, ParkReady> }

export function parkReadyHosts(ledger: Ledger): Record<string, ParkReady> {
  return ledger.read<ParksDoc>(DOC, { hosts: {} }).hosts;
}

export async function markParkReady(ledger: Ledger, host: string, p: ParkReady): Promise<void> {
  const cur = parkReadyHosts(ledger)[host];
  if (cur && cur.run_id === p.run_id && cur.since === p.since) return;
  await ledger.update<ParksDoc>(DOC, { hosts: {} }, (doc) => ({ hosts: { ...doc.hosts, [host]: p } }));
}

export async function clearParkReady(ledger: Ledger, host: string): Promise<void> {
  if (!parkReadyHosts(ledger)[host]) return;
  await ledger.update<ParksDoc>(DOC, { hosts: {} }, (doc) => {
    const { [host]: _gone, ...rest } = doc.hosts;
    return { hosts: rest };
  });
}

export function parkReadyWarning(host: string, verb: string, cost: string): Warning {
  return warning("PARK_READY", "warn", `${host}: the sweep is safe to park (every roster hashed on a kept mount) but no on-box way to ${verb} is documented; it bills idle until a human does it in the console. Cost so far ${cost}.`.slice(0, 400));
}
