// What every VM step runs with: the provider process's shared client, its task bound and its
// VMID allocator (one of each per endpoint); and how a step runs a PVE task inside that bound.

import type { TaskResult, WaitForTaskOptions, PveClient } from "../../proxmox";
import { vmidAllocatorFor, type VmidAllocator } from "../../proxmox/vmid-allocator";
import { connection } from "../context";
import { taskSlots, type TaskBound, type TaskOptions } from "./task-slots";

export interface VmContext {
  api: PveClient;
  slots: TaskBound;
  allocator: VmidAllocator;
}

/** The shared client, task bound and VMID allocator of this provider process. */
export function vmContext(): VmContext {
  const { settings, client } = connection();
  return {
    api: client,
    slots: taskSlots(settings.endpoint, settings.maxConcurrentTasks ?? 4),
    allocator: vmidAllocatorFor(settings.endpoint),
  };
}

/** UPIDs of the tasks this process is waiting for (a running clone not in here is someone else's). */
const ownTasks = new Set<string>();

/** Whether this process is waiting for the task `upid` (it started it). */
export function isOwnTask(upid: string): boolean {
  return ownTasks.has(upid);
}

/**
 * Starts a task (inside the bound, task-slots.ts) and waits for it; a null answer (synchronous
 * PVE) is success. `power` tasks (start, shutdown, stop) are bounded apart, so VMs whose disk is
 * ready do not wait for the rest of the fleet's clones; `copy` tasks (full clones, migrations)
 * also take one of the few copy slots; `priority` tasks go before queued others of their pool.
 */
export async function runTask(ctx: VmContext, start: () => Promise<string | null>, wait?: WaitForTaskOptions, opts: TaskOptions = {}): Promise<TaskResult | null> {
  return ctx.slots.run(async () => {
    const upid = await start();
    if (!upid) return null;
    ownTasks.add(upid);
    try {
      return await ctx.api.tasks.wait(upid, wait);
    } finally {
      ownTasks.delete(upid);
    }
  }, opts);
}
