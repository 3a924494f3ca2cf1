// What every VM step runs with: the provider process's shared client, its task bound and its
// VMID allocator (one of each per endpoint).

import type { PveClient } from "../../proxmox";
import { vmidAllocatorFor, type VmidAllocator } from "../../proxmox/vmid-allocator";
import { connection } from "../context";
import { taskSlots, type TaskBound } from "./task-slots";

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
