// Building a Template's VM: created with a safe VMID, its imported disk grown, converted to a
// template, added to HA; a failure after the VM exists destroys it again (vm/create-failure.ts).

import { codecs, failedTaskLeftVolumes } from "../../proxmox";
import { isVmidCollision } from "../../proxmox/vmid-allocator";
import { destroyAfterFailedCreate } from "../vm/create-failure";
import { byHand, freeVolumesOfFailedTask } from "../vm/leftover-volumes";
import { runTask, type VmContext } from "../vm/vm-context";

/** Creates the VM on `node` with `vmid`, or with an allocated VMID (the next one when another
 *  VM took it meanwhile). Returns its VMID. */
export async function createWithVmid(ctx: VmContext, node: string, vmid: number | undefined, params: Record<string, string | number>): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const lease = vmid !== undefined ? ctx.allocator.reserveExplicit(vmid) : await ctx.allocator.allocate(ctx.api.cluster);
    try {
      await runTask(ctx, () => ctx.api.qemu.create(node, lease.vmid, params));
      lease.created();
      return lease.vmid;
    } catch (err) {
      if (failedTaskLeftVolumes(err)) {
        // create_disks could not free a disk it had allocated (the storage lock): no VM holds it
        const refused = await freeVolumesOfFailedTask(ctx, node, lease.vmid);
        if (refused.length) {
          lease.markTaken();
          throw new Error(`the create of VM ${lease.vmid} on node '${node}' failed (${(err as Error).message}) and PVE left ${refused.join(", ")} behind; ${byHand(node, refused)}`, { cause: err });
        }
      }
      if (vmid === undefined && isVmidCollision(err, lease.vmid) && attempt < 20) {
        lease.markTaken();
        continue;
      }
      lease.release();
      throw err;
    }
  }
}

/** Grows scsi0 to `diskSize` (when larger), converts VM `vmid` to a template and, with `ha`,
 *  adds it to HA stopped; on failure the VM is destroyed and the error says so. */
export async function finishTemplate(ctx: VmContext, node: string, vmid: number, o: { diskSize?: string; ha: boolean }): Promise<void> {
  const api = ctx.api;
  try {
    if (o.diskSize) {
      const config = await api.qemu.getConfig(node, vmid);
      const have = codecs.parseSize(codecs.parseDrive(String(config.scsi0)).size ?? "0");
      const want = codecs.parseSize(o.diskSize);
      if (want > have) await runTask(ctx, () => api.qemu.resize(node, vmid, "scsi0", codecs.formatSize(want)));
    }
    await runTask(ctx, () => api.qemu.template(node, vmid));
    if (o.ha) await api.cluster.createHaResource({ sid: `vm:${vmid}`, state: "stopped" });
  } catch (err) {
    await destroyAfterFailedCreate(ctx, err, vmid, node, { template: true });
  }
}
