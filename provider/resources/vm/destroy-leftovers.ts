// What a destroy can leave behind. PVE's destroy_vm frees each disk in an eval: a free that fails
// (the storage lock, held by other tasks for more than its 10 s, above all) is only a warning, and
// the VM's config goes anyway (proxmox/errors.ts disksNotRemoved). With
// destroy-unreferenced-disks PVE tries such a disk once more; a disk still there after that is
// owned by a VM that no longer exists, on no one's books. The provider frees it itself, as
// `pvesm free` would (DELETE .../storage/{storage}/content/{volid}), or fails naming it.

import { disksNotRemoved, isNotFound, isPermissionDenied } from "../../proxmox";
import { providerLogger } from "../context";
import { retryConvergent } from "./convergent-retry";
import { runTask, type VmContext } from "./vm-context";

/** Frees the disks a destroy of `vmid` on `node` warned it could not remove and that are still there. */
export async function freeDisksLeftBehind(ctx: VmContext, node: string, vmid: number, warningLines: readonly string[]): Promise<void> {
  const warned = disksNotRemoved(warningLines);
  if (!warned.length) return;
  const left: Array<{ volid: string; reason: string }> = [];
  for (const storage of new Set(warned.map((w) => storageOf(w.volid)))) {
    const present = new Set((await ctx.api.storage.content(node, storage, { vmid })).map((e) => e.volid));
    left.push(...warned.filter((w) => storageOf(w.volid) === storage && present.has(w.volid)));
  }
  const refused: string[] = [];
  for (const { volid, reason } of left) {
    providerLogger.warn(`VM ${vmid} was destroyed on node '${node}' but PVE left its disk ${volid} behind (${reason}); removing it`);
    try {
      await retryConvergent(ctx, `removing disk ${volid} of destroyed VM ${vmid}`, () =>
        runTask(ctx, () => ctx.api.storage.deleteContent(node, storageOf(volid), volid), undefined, { storageLockOn: node }),
      );
    } catch (err) {
      if (isNotFound(err)) continue;
      if (!isPermissionDenied(err)) throw err;
      refused.push(volid);
    }
  }
  if (refused.length) {
    const storages = [...new Set(refused.map(storageOf))].map((s) => `/storage/${s}`).join(", ");
    throw new Error(
      `VM ${vmid} was destroyed on node '${node}', but PVE could not remove ${refused.length === 1 ? "its disk" : "its disks"} ${refused.join(", ")} ` +
        `(${left.find((l) => l.volid === refused[0])!.reason}), and this provider's credentials may not remove ${refused.length === 1 ? "it" : "them"} ` +
        `(Datastore.Allocate on ${storages}). Remove ${refused.length === 1 ? "it" : "them"} on node '${node}' with: ${refused.map((v) => `pvesm free ${v}`).join("; ")}`,
    );
  }
}

const storageOf = (volid: string): string => volid.slice(0, volid.indexOf(":"));
