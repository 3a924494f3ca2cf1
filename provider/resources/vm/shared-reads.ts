// Reads that many VmClone operations of one provider process can share, so a `pulumi refresh`
// of N VMs does not ask the cluster N times the same question.
//
// - `GET /cluster/resources?type=vm` (where every VM is, and whether it runs) is taken once and
//   shared by every caller within `SHARED_SNAPSHOT_MS`: a refresh reads all resources at once.
//   Only for read(): a VM missing from a shared snapshot is looked up again with a fresh read
//   before it is declared gone, and writers (update, delete) keep their own fresh reads. A
//   snapshot is not reused once this process has waited for a task since it was taken (a
//   start, stop, migrate or destroy of ours may have changed what it says).
// - The crash-recovery lookup of create() (findMarkedVms) accepts an older snapshot, even one
//   taken before tasks of this process ran: it looks for VMs of an EARLIER run carrying one
//   resource's marker, which nothing this process does creates (see clone-adoption.ts).
// - `GET .../pending` carries both the config (each key's value, with pending values applied
//   the way `GET .../config` shows them) and what is pending: one request instead of two.

import type { ClusterResource, PveClient, QemuConfig } from "../../proxmox";
import type { VmContext } from "./vm-context";

/** How long a cluster/resources answer is shared (ms). */
export const SHARED_SNAPSHOT_MS = 2_000;

interface Snapshot {
  at: number;
  tasks: number;
  rows: Promise<ClusterResource[]>;
}

const snapshots = new WeakMap<PveClient, Snapshot>();

/** The VMs of the cluster, from a snapshot at most `maxAgeMs` old (one request per window). */
export function sharedVmResources(ctx: VmContext, maxAgeMs = SHARED_SNAPSHOT_MS, opts: { evenAfterOwnTasks?: boolean } = {}): Promise<ClusterResource[]> {
  const now = ctx.api.clock.now();
  const s = snapshots.get(ctx.api);
  if (s && now - s.at <= maxAgeMs && (opts.evenAfterOwnTasks || s.tasks === ctx.api.stats.tasksWaited)) return s.rows;
  const rows = ctx.api.cluster.resources("vm");
  const entry: Snapshot = { at: now, tasks: ctx.api.stats.tasksWaited, rows };
  snapshots.set(ctx.api, entry);
  // a failed read is not shared with later callers
  rows.catch(() => {
    if (snapshots.get(ctx.api) === entry) snapshots.delete(ctx.api);
  });
  return rows;
}

export interface VmLocation {
  node: string;
  status: string;
  lock?: string;
  template: boolean;
  /** The pool the VM belongs to (a VM is in at most one), if any. */
  pool?: string;
  /** Seconds since the VM started (running VMs). */
  uptime?: number;
}

/** VM `vmid` in a cluster/resources answer. */
export function findVm(rows: ClusterResource[], vmid: number): VmLocation | undefined {
  const row = rows.find((r) => Number(r.vmid) === vmid && (r.type === "qemu" || String(r.id).startsWith("qemu/")));
  if (!row || !row.node) return undefined;
  const where: VmLocation = { node: row.node, status: String(row.status ?? "unknown"), lock: row.lock as string | undefined, template: row.template === true };
  if (typeof row.pool === "string" && row.pool !== "") where.pool = row.pool;
  if (row.uptime !== undefined && Number.isFinite(Number(row.uptime))) where.uptime = Number(row.uptime);
  return where;
}

/**
 * Where a VM is and whether it runs, from the shared snapshot; a VM the snapshot lacks (created
 * since, or really gone) is confirmed with a fresh read.
 */
export async function locateVmShared(ctx: VmContext, vmid: number): Promise<VmLocation | undefined> {
  const hit = findVm(await sharedVmResources(ctx), vmid);
  if (hit) return hit;
  return findVm(await ctx.api.cluster.resources("vm"), vmid);
}

/**
 * The config as `GET .../config` shows it (pending values applied, pending deletions removed)
 * and the keys still pending, from one `GET .../pending`.
 */
export async function configWithPending(ctx: VmContext, node: string, vmid: number): Promise<{ config: QemuConfig; pending: string[] }> {
  const rows = await ctx.api.qemu.pending(node, vmid);
  const config: QemuConfig = {};
  const pending: string[] = [];
  for (const r of rows) {
    const deleted = r.delete !== undefined && Number(r.delete) > 0;
    if (r.pending !== undefined || deleted) pending.push(r.key);
    if (deleted) continue;
    const value = r.pending !== undefined ? r.pending : r.value;
    if (value !== undefined) config[r.key] = value as string | number;
  }
  return { config, pending: pending.sort() };
}

/** Forgets shared snapshots (tests). */
export function clearSharedReads(client?: PveClient): void {
  if (client) snapshots.delete(client);
}
