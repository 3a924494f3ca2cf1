// The latency model the benchmark runs the simulator with, and the ideal wall time of each
// scenario derived from it (BENCHMARKS.md, "Ideals"). Every ideal is a lower bound no tool
// can beat on the simulator: the per-VM critical path (each request, fork and worker step in
// order), plus what the VMs must share (one storage channel for full copies, the template
// node's pvedaemon workers for the synchronous parts of clone, config and start requests, the
// node's storage lock for every volume allocation, linked clone and free). It
// assumes an oracle that sends each request the moment it can go and notices every task end
// and the guest agent's first answer at once: the figures above it are the provider's (and the
// engine's) overhead.

import { DEFAULT_LATENCY } from "../../test/simulator/latency";

const GiB = 1024 ** 3;

/** The latency model (PVE milliseconds, before the time factor). */
export const MODEL = {
  forkMs: 50,
  cloneBaseMs: 500,
  storageBandwidth: 1 * GiB,
  diskBytes: 10 * GiB,
  startMs: 2000,
  bootToAgentMs: 10000,
};

/** The simulator's defaults the bench does not override (test/simulator/latency.ts, cluster.ts,
 *  server.ts): API latency per request (GET / other), pvedaemon and pveproxy workers per node,
 *  linked clone per disk, volume allocation and free (both under the storage lock, as the linked
 *  clone is), guest shutdown (ACPI), destroy apart from its frees. */
export const PVE = {
  readMs: 5,
  writeMs: 20,
  workers: 3,
  linkedCloneMs: DEFAULT_LATENCY.linkedCloneMs,
  allocateDiskMs: DEFAULT_LATENCY.allocateDiskMs,
  freeDiskMs: DEFAULT_LATENCY.freeDiskMs,
  shutdownMs: DEFAULT_LATENCY.shutdownMs,
  destroyMs: DEFAULT_LATENCY.destroyMs,
};

/** Volumes per VM: the disk and the cloud-init drive (each allocated, or cloned, and freed under the lock). */
const VOLUMES = 2;

/**
 * When the last of N VMs can have finished a two-stage pipeline on W workers (a lower bound):
 * stage 1 takes `a` ms of worker time per VM (the clone POST), then `gap` ms off the workers (the
 * clone task), then stage 2 `b` ms of worker time (config PUT + start POST). Four bounds: all the
 * worker time; one VM's chain; the first VM's stage 1 and gap, then every stage 2; every stage 1,
 * then the last one's gap and stage 2.
 */
export function pipelineMs(n: number, a: number, gap: number, b: number, workers = PVE.workers): number {
  return Math.max((n * (a + b)) / workers, a + gap + b, a + gap + (n * b) / workers, (n * a) / workers + gap + b);
}

/**
 * Full clones (fork, clone setup, the cloud-init drive and the disk allocated under the storage
 * lock, then the 10 GiB copy through the template storage's one channel shared by all copies,
 * outside the lock): the last copy ends no earlier than N·S/B after the first clone's copy began
 * (the other clones' allocations, 0.6 s each, hide under the copies); that VM then needs its
 * config PUT, start POST, start task and boot, and one agent read. Requests on the path: nextid
 * (GET), clone POST, config PUT, start POST, agent GET.
 */
export function fullIdealMs(n: number, timeFactor: number): number {
  const m = MODEL;
  const copies = (n * m.diskBytes * 1000) / m.storageBandwidth;
  const head = PVE.readMs + PVE.writeMs + m.forkMs + m.cloneBaseMs + VOLUMES * PVE.allocateDiskMs;
  const tail = PVE.writeMs + PVE.writeMs + m.forkMs + m.startMs + m.bootToAgentMs + PVE.readMs;
  return (head + copies + tail) * timeFactor;
}

/** The storage-lock work of one linked clone: the cloud-init drive allocated, the disk's thin snapshot. */
export const LINKED_LOCK_MS = PVE.allocateDiskMs + PVE.linkedCloneMs;

/**
 * Linked clones: no copy; the clone takes a shared lock on the template, an exclusive one on the
 * new VMID, so clones of one template may run at once, but each does its volume work (the
 * cloud-init drive's allocation, the disk's thin snapshot) under the template node's storage
 * lock, one clone at a time. What the VMs share: that lock (N · LINKED_LOCK_MS after the first
 * clone's fork and setup), and the node's 3 pvedaemon workers, which serve the synchronous part
 * of every clone POST, config PUT and start POST (20 ms each: `pipelineMs` with the clone task as
 * the gap). After the last start POST: fork, start, boot to the agent (`extraBootMs`: the package
 * install of a late agent), one agent read.
 */
export function linkedIdealMs(n: number, timeFactor: number, extraBootMs = 0): number {
  const m = MODEL;
  const cloneTask = m.forkMs + m.cloneBaseMs + LINKED_LOCK_MS;
  const workers = pipelineMs(n, PVE.writeMs, cloneTask, 2 * PVE.writeMs);
  const lock = PVE.writeMs + m.forkMs + m.cloneBaseMs + n * LINKED_LOCK_MS + 2 * PVE.writeMs;
  return (PVE.readMs + Math.max(workers, lock) + m.forkMs + m.startMs + m.bootToAgentMs + extraBootMs + PVE.readMs) * timeFactor;
}

/**
 * Destroy of running VMs with a graceful shutdown: where the VM is and whether it runs (two
 * GETs), shutdown POST, fork, the guest's ACPI shutdown, DELETE, fork, destroy, then its two
 * volumes freed under the node's storage lock. The shutdown POSTs and DELETEs share the node's
 * pvedaemon workers (`pipelineMs` with the shutdown task as the gap); the frees of all N VMs
 * share the lock, one at a time, from the first VM's.
 */
export function destroyIdealMs(n: number, timeFactor: number): number {
  const daemon = pipelineMs(n, PVE.writeMs, MODEL.forkMs + PVE.shutdownMs, PVE.writeMs);
  const first = 2 * PVE.readMs + PVE.writeMs + MODEL.forkMs + PVE.shutdownMs + PVE.writeMs + MODEL.forkMs + PVE.destroyMs;
  const frees = Math.max(2 * PVE.readMs + daemon + MODEL.forkMs + PVE.destroyMs + VOLUMES * PVE.freeDiskMs, first + n * VOLUMES * PVE.freeDiskMs);
  return frees * timeFactor;
}
