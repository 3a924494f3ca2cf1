// Fresh looks at one VM: where it is, whether it runs, what PVE holds as pending; and, when
// it is missing, whether it is really gone. (Reads a refresh shares are in shared-reads.ts.)

import type { ReadResult } from "@pulumi/pulumi/dynamic";
import { gone } from "../read-result";
import { findVm, type VmLocation } from "./shared-reads";
import type { VmContext } from "./vm-context";

/** Where a VM is now (it may have been migrated since it was recorded). */
export async function locateVm(ctx: VmContext, vmid: number): Promise<VmLocation | undefined> {
  return findVm(await ctx.api.cluster.resources("vm"), vmid);
}

/**
 * Whether the VM runs, as its node says now. `/cluster/resources` reports the power state
 * pvestatd last broadcast (every 10 s, pve-manager PVE/Service/pvestatd.pm), so right after a
 * start or stop it is stale: decisions (stop before destroy, start or not) ask the node.
 */
export async function liveStatus(ctx: VmContext, node: string, vmid: number): Promise<{ status: string; uptime?: number }> {
  const s = await ctx.api.qemu.status(node, vmid);
  return { status: s.status, ...(s.uptime !== undefined ? { uptime: Number(s.uptime) } : {}) };
}

/** Keys PVE holds as pending (applied at the next cold start). */
export async function pendingKeys(ctx: VmContext, node: string, vmid: number): Promise<string[]> {
  const rows = await ctx.api.qemu.pending(node, vmid);
  return rows
    .filter((r) => r.pending !== undefined || (r.delete !== undefined && r.delete > 0))
    .map((r) => r.key)
    .sort();
}

/**
 * read() found no VM `vmid`. Before the engine forgets it, make sure it is gone and not merely
 * hidden: PVE leaves out of every listing the VMs a principal lacks VM.Audit on, while
 * `GET /cluster/nextid?vmid=N` (open to every user) says whether the VMID is taken.
 */
export async function confirmGone<T>(ctx: VmContext, vmid: number, node: string | undefined): Promise<ReadResult<T>> {
  if (!(await ctx.api.cluster.vmidTaken(vmid))) return gone<T>(); // free: the VM is gone
  throw new Error(
    `cannot see VM ${vmid}${node ? ` on ${node}` : ""}: the VMID is taken but the credentials lack VM.Audit on /vms/${vmid}; refresh would wrongly forget it. ` +
      `Grant VM.Audit there (PVEAuditor on /vms/${vmid}, or on a pool holding it), or refresh with credentials that can see it. (If another VM now holds VMID ${vmid}, remove this resource from the state with \`pulumi state delete\`.)`,
  );
}
