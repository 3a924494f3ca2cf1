// Volumes PVE leaves behind in no VM's config, and their removal. PVE frees volumes in evals that
// only warn when the free fails (above all the storage lock, held by other tasks for more than its
// 10 s): a destroy's disks (QemuServer.pm destroy_vm: `Could not remove disk '<volid>', check
// manually: …`, the config goes anyway; with destroy-unreferenced-disks PVE tries once more), and
// what a failed clone or create had made (API2/Qemu.pm clone_vm, create_disks: `warn $@`). Such a volume is owned by a VM
// that does not exist, on no one's books, and a clone to that VMID fails on its name. The provider
// frees it itself, as `pvesm free` would (DELETE .../storage/{storage}/content/{volid}), or fails
// naming it.

import { disksNotRemoved, isNotFound, isPermissionDenied } from "../../proxmox";
import { providerLogger } from "../context";
import { retryConvergent } from "./convergent-retry";
import { locateVm } from "./lookup";
import { runTask, type VmContext } from "./vm-context";

/** Frees the disks a destroy of `vmid` on `node` warned it could not remove and that are still there. */
export async function freeDisksLeftBehind(ctx: VmContext, node: string, vmid: number, warningLines: readonly string[]): Promise<void> {
  const warned = disksNotRemoved(warningLines);
  if (!warned.length) return;
  const left: Array<{ volid: string; reason: string }> = [];
  for (const storage of new Set(warned.map((w) => storageOf(w.volid)))) {
    // credentials that may not list the storage try the free, which says whether it is theirs to do
    const present = await volumesOf(ctx, node, storage, vmid);
    left.push(...warned.filter((w) => storageOf(w.volid) === storage && (present === undefined || present.includes(w.volid))));
  }
  for (const { volid, reason } of left) providerLogger.warn(`VM ${vmid} was destroyed on node '${node}' but PVE left its disk ${volid} behind (${reason}); removing it`);
  const refused = await freeVolumes(ctx, node, vmid, left.map((l) => l.volid));
  if (refused.length) {
    throw new Error(
      `VM ${vmid} was destroyed on node '${node}', but PVE could not remove ${refused.length === 1 ? "its disk" : "its disks"} ${refused.join(", ")} ` +
        `(${left.find((l) => l.volid === refused[0])!.reason}), and ${byHand(node, refused)}`,
    );
  }
}

/** The end of an error naming volumes the provider may not free: the privilege, and the command. */
export function byHand(node: string, refused: string[]): string {
  const storages = [...new Set(refused.map(storageOf))].map((s) => `/storage/${s}`).join(", ");
  const them = refused.length === 1 ? "it" : "them";
  return `this provider's credentials may not remove ${them} (Datastore.Allocate on ${storages}). Remove ${them} on node '${node}' with: ${refused.map((v) => `pvesm free ${v}`).join("; ")}`;
}

/**
 * After a clone or create to `vmid` on `node` failed and PVE could not free what it had made:
 * frees every volume of that VMID on the node's image storages, as long as no VM has that id (a VM
 * that has it, another client's clone included, owns its volumes). Returns what is left, for the
 * error.
 */
export async function freeVolumesOfFailedTask(ctx: VmContext, node: string, vmid: number): Promise<string[]> {
  if (await locateVm(ctx, vmid)) return [];
  const volids: string[] = [];
  for (const s of await ctx.api.storage.listOnNode(node, { content: "images", enabled: true })) {
    volids.push(...((await volumesOf(ctx, node, s.storage, vmid)) ?? []));
  }
  if (!volids.length) return [];
  providerLogger.warn(`the failed task for VMID ${vmid} on node '${node}' left ${volids.join(", ")} behind (PVE could not free ${volids.length === 1 ? "it" : "them"}); removing ${volids.length === 1 ? "it" : "them"}`);
  return freeVolumes(ctx, node, vmid, volids);
}

/** Frees each volume (retrying contention); those the credentials may not free are returned. */
async function freeVolumes(ctx: VmContext, node: string, vmid: number, volids: string[]): Promise<string[]> {
  const refused: string[] = [];
  for (const volid of volids) {
    try {
      await retryConvergent(ctx, `removing volume ${volid} of VMID ${vmid}`, () =>
        runTask(ctx, () => ctx.api.storage.deleteContent(node, storageOf(volid), volid), undefined, { storageLockOn: node }),
      );
    } catch (err) {
      if (isNotFound(err)) continue;
      if (!isPermissionDenied(err)) throw err;
      refused.push(volid);
    }
  }
  return refused;
}

/** The volumes of `vmid` on a storage, or undefined when these credentials may not list it. */
async function volumesOf(ctx: VmContext, node: string, storage: string, vmid: number): Promise<string[] | undefined> {
  try {
    return (await ctx.api.storage.content(node, storage, { vmid })).map((e) => e.volid);
  } catch (err) {
    if (isPermissionDenied(err)) return undefined;
    throw err;
  }
}

const storageOf = (volid: string): string => volid.slice(0, volid.indexOf(":"));
