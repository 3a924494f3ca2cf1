// Power and placement of an existing VM: start, stop (graceful first), destroy, migrate. Each is
// a PVE task run inside this process's task bound (vm-context.ts, task-slots.ts).

import { isNotFound } from "../../proxmox";
import { providerLogger } from "../context";
import { retryConvergent } from "./convergent-retry";
import { freeDisksLeftBehind } from "./leftover-volumes";
import { liveStatus, locateVm } from "./lookup";
import { runTask, type VmContext } from "./vm-context";

export interface StopOptions {
  shutdownTimeoutSeconds: number;
}

/**
 * Graceful shutdown within the timeout, then a hard stop if the guest did not go down. Both are
 * power tasks (task-slots.ts): a fleet's shutdowns, which wait for the guests, do not hold the
 * slots its deletes need.
 */
export async function stopVm(ctx: VmContext, node: string, vmid: number, o: StopOptions): Promise<void> {
  if (o.shutdownTimeoutSeconds <= 0) {
    await runTask(ctx, () => ctx.api.qemu.stop(node, vmid), undefined, { power: true });
    return;
  }
  try {
    await runTask(ctx, () => ctx.api.qemu.shutdown(node, vmid, { timeout: o.shutdownTimeoutSeconds }), undefined, { power: true });
    return;
  } catch (err) {
    if (isNotFound(err)) throw err;
    providerLogger.warn(`VM ${vmid} on node '${node}' did not shut down within ${o.shutdownTimeoutSeconds} s; stopping it`);
  }
  await runTask(ctx, () => ctx.api.qemu.stop(node, vmid), undefined, { power: true });
}

/** A power task (task-slots.ts): a fleet's starts do not queue behind its clones. */
export async function startVm(ctx: VmContext, node: string, vmid: number): Promise<void> {
  await runTask(ctx, () => ctx.api.qemu.start(node, vmid), undefined, { power: true });
}

/**
 * Shutdown (bounded) → stop → destroy with purge and destroy-unreferenced-disks.
 * A VM that is already gone is success.
 */
export async function destroyVm(ctx: VmContext, vmid: number, hintNode: string | undefined, o: StopOptions): Promise<void> {
  const warned = await retryConvergent(ctx, `destroying VM ${vmid}`, () => destroyOnce(ctx, vmid, hintNode, o));
  // after the retries: once the VM is gone, what it left is known only from this task's log
  if (warned) await freeDisksLeftBehind(ctx, warned.node, vmid, warned.lines);
}

/** Destroys the VM; the destroy task's warnings, when it had any. */
async function destroyOnce(ctx: VmContext, vmid: number, hintNode: string | undefined, o: StopOptions): Promise<{ node: string; lines: string[] } | undefined> {
  // Where the VM is and whether it runs: the recorded node answers both in one request
  // (status/current fails `does not exist` on any other node); the cluster listing is asked
  // only when the VM is not there (migrated since, or gone).
  let live: { status: string } | undefined;
  if (hintNode !== undefined) {
    try {
      live = await liveStatus(ctx, hintNode, vmid);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  let node = hintNode;
  if (!live) {
    const where = await locateVm(ctx, vmid);
    if (!where) return undefined;
    node = where.node;
  }
  const at = node!;
  try {
    if ((live ?? (await liveStatus(ctx, at, vmid))).status === "running") await stopVm(ctx, at, vmid, o);
    const done = await runTask(ctx, () => ctx.api.qemu.delete(at, vmid, { purge: true, destroyUnreferencedDisks: true }), undefined, { storageLockOn: at });
    return done?.warnings ? { node: at, lines: done.warningLines ?? [] } : undefined;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Online when running (with local disks), offline otherwise. */
export async function migrateVm(ctx: VmContext, node: string, vmid: number, target: string, running: boolean): Promise<void> {
  await runTask(ctx, () => ctx.api.qemu.migrate(node, vmid, { target, online: running || undefined, withLocalDisks: running || undefined }), undefined, { copy: true });
}
