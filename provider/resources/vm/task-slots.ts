// Bounds the long-running PVE tasks (clone, start, shutdown, migrate, destroy, resize) this
// provider process runs at once per cluster, so a 30-VM program does not start 30 clones at
// once: the node would fork 30 workers that compete for the same storage and config locks
// (`can't lock file ... got timeout`). Setting: `proxmox:maxConcurrentTasks`
// (PROXMOX_VE_MAX_CONCURRENT_TASKS), default 4 like PVE's own bulk actions.

import { Semaphore } from "../../util/semaphore";

const slots = new Map<string, Semaphore>();

/** The task bound of this process for a cluster (keyed by endpoint). */
export function taskSlots(endpoint: string, limit: number): Semaphore {
  const key = endpoint.replace(/\/+$/, "");
  let s = slots.get(key);
  if (!s || s.limit !== limit) {
    // A different limit (reconfigured process, tests) gets a fresh bound; tasks already
    // holding the old one finish under it.
    s = new Semaphore(limit);
    slots.set(key, s);
  }
  return s;
}

/** Forgets every bound (tests). */
export function clearTaskSlots(): void {
  slots.clear();
}
