// VmClone's adoption: taking a VM that exists under management instead of cloning one.
//
// - adoptUnrecorded(): create() first looks for a VM carrying this resource's marker (one an
//   interrupted `pulumi up` created but never recorded, found by findMarkedVms()) and adopts it
//   instead of cloning again;
// - adoptExisting(): `adopt: true` takes the existing VM `vmid` on `node`, stamps the marker and
//   converges the declared settings onto it; a failed adoption never destroys the VM;
// - releaseVm(): delete of a VM kept on delete removes the marker line only.

import { isNotFound, type QemuConfig } from "../../proxmox";
import { providerLogger } from "../context";
import { clonesStartedHere } from "./clone";
import { madeLike } from "./clone-origin";
import type { CloneInputs, CloneState } from "./clone-shape";
import { descriptionOf, markerOf, splitDescription, withoutMarker } from "./config-map";
import { convergePool, convergeRetrying } from "./converge";
import { retryConvergent } from "./convergent-retry";
import { confirmGone, locateVm } from "./lookup";
import { destroyVm } from "./power";
import { sharedVmResources } from "./shared-reads";
import type { VmContext } from "./vm-context";

/** How old a shared cluster/resources answer the crash-recovery lookup accepts (ms). */
export const MARKER_SNAPSHOT_MS = 30_000;

export interface MarkerIdentity {
  name: string;
  resourceName: string;
  stack: string;
}

/**
 * VMs carrying this resource's marker (same resource name and stack): VMs an earlier,
 * interrupted run created but never recorded. Clones still running that this process did not
 * start are waited for first (an interrupted run's clone finishes on the node on its own, and
 * only then carries its name and marker), up to `settleMs`.
 */
export async function findMarkedVms(ctx: VmContext, who: MarkerIdentity, settleMs = 120_000): Promise<Array<{ vmid: number; node: string; config: QemuConfig }>> {
  const deadline = ctx.api.clock.now() + settleMs;
  for (let round = 0; ; round++) {
    // The first look shares the process's short-lived cluster/resources answer (a fleet's
    // creates start together: one request, not one per VM). That is safe because the marker
    // names this resource AND stack: no other resource's create, concurrent or not, makes a VM
    // carrying it, so an answer a second old cannot show someone else's VM as ours. Waiting for
    // a foreign clone reads fresh.
    const rows = round === 0 ? await sharedVmResources(ctx, MARKER_SNAPSHOT_MS, { evenAfterOwnTasks: true }) : await ctx.api.cluster.resources("vm");
    const ours = new Set([...ctx.allocator.reservedIds, ...clonesStartedHere()]);
    const foreignClones = rows.filter((r) => r.lock === "clone" && !ours.has(Number(r.vmid)));
    if (foreignClones.length && ctx.api.clock.now() < deadline) {
      await ctx.api.clock.sleep(1_000);
      continue;
    }
    const found: Array<{ vmid: number; node: string; config: QemuConfig }> = [];
    for (const r of rows) {
      // A VM younger than pvestatd's last broadcast is listed without its name (status
      // `unknown`; pve-manager API2Tools.pm extract_vm_stats): its config decides.
      if ((r.name !== undefined && r.name !== who.name) || !r.node || r.template === true || Number(r.template) === 1) continue;
      // ...except VMs this process is cloning or cloned itself (a fleet's own new VMs): those
      // are another resource's, or this create's, never an interrupted run's
      if (r.name === undefined && ours.has(Number(r.vmid))) continue;
      let config: QemuConfig;
      try {
        config = await ctx.api.qemu.getConfig(r.node, Number(r.vmid));
      } catch (err) {
        if (isNotFound(err)) continue; // gone (or moved) since the shared answer: not ours to adopt now
        throw err;
      }
      if (String(config.template ?? "0") === "1") continue;
      const marker = markerOf(config);
      if (marker.resourceName === who.resourceName && marker.stack === who.stack) found.push({ vmid: Number(r.vmid), node: r.node, config });
    }
    return found.sort((a, b) => a.vmid - b.vmid);
  }
}

/**
 * A VM this resource created in an earlier run that was interrupted before the engine recorded
 * it (found by its marker: same resource name AND stack): adopted, so the interrupted run
 * leaves neither an orphan nor a duplicate. More than one (should not happen): the lowest is
 * adopted and the others, equally ours and unrecorded, are destroyed.
 */
export async function adoptUnrecorded(ctx: VmContext, inputs: CloneInputs): Promise<{ vmid: number; node: string } | undefined> {
  if (!inputs.resourceName || !inputs.stack || inputs.name === undefined) return undefined;
  // A replacement (create before delete) runs this create while the VM it replaces still
  // exists and carries the same marker: only a VM made the way these inputs make one (same
  // template, linked or full, storage) is the interrupted run's.
  const found = (await findMarkedVms(ctx, { name: inputs.name, resourceName: inputs.resourceName, stack: inputs.stack })).filter((f) => madeLike(f.config, inputs));
  if (inputs.vmid !== undefined && found.length && found[0].vmid !== inputs.vmid) return undefined;
  const [keep, ...extra] = found;
  for (const e of extra) {
    providerLogger.warn(`VM ${e.vmid} on node '${e.node}' carries the marker of '${inputs.resourceName}' (stack ${inputs.stack}) too; destroying it (VM ${keep.vmid} is adopted)`);
    await destroyVm(ctx, e.vmid, e.node, { shutdownTimeoutSeconds: 0 });
  }
  if (keep) providerLogger.info(`adopting VM ${keep.vmid} on node '${keep.node}': created for '${inputs.resourceName}' by an interrupted run (marker found)`);
  return keep;
}

/**
 * `adopt: true`: takes the existing VM `inputs.vmid` on `inputs.node` under management. The VM
 * must exist, be no template, and carry no other resource's marker. Its marker is stamped and
 * the declared settings converged onto it; a failure leaves the VM in place (it is not ours to
 * destroy) with its description as it was.
 */
export async function adoptExisting(ctx: VmContext, inputs: CloneInputs): Promise<{ id: string; outs: CloneState }> {
  const vmid = inputs.vmid as number;
  const where = await locateVm(ctx, vmid);
  if (!where) {
    await confirmGone(ctx, vmid, inputs.node);
    throw new Error(`cannot adopt VM ${vmid}: there is no VM ${vmid} on the cluster. Fix vmid, or remove adopt to clone a new VM.`);
  }
  if (where.template) throw new Error(`cannot adopt VM ${vmid}: it is a template. Manage templates with Template (adopt: true), and clone VMs from them.`);
  if (where.node !== inputs.node) throw new Error(`cannot adopt VM ${vmid} on node '${inputs.node}': it is on node '${where.node}'. Set node: "${where.node}" (a later node change migrates it).`);
  const node = where.node;
  const description = descriptionOf(await ctx.api.qemu.getConfig(node, vmid));
  const marker = splitDescription(description);
  if (marker.resourceName !== undefined && (marker.resourceName !== inputs.resourceName || marker.stack !== inputs.stack)) {
    throw new Error(
      `cannot adopt VM ${vmid}: its description carries the marker of resource '${marker.resourceName}'${marker.stack ? ` of stack ${marker.stack}` : ""}, so another program manages it. ` +
        `Release it there first (delete that resource with destroyOnDelete: false), or remove the marker line from its description.`,
    );
  }
  providerLogger.info(`adopting VM ${vmid} on node '${node}' for '${inputs.resourceName ?? ""}'`);
  try {
    const outs = await convergeRetrying(ctx, `adopting VM ${vmid}`, node, vmid, inputs, undefined);
    await convergePool(ctx, vmid, where.pool, inputs.pool, undefined);
    return { id: `${node}/${vmid}`, outs: { ...outs, vmidAllocated: false } };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    let restored = "its description was restored";
    try {
      const now = await ctx.api.qemu.getConfig(node, vmid);
      if (String(now.description ?? "") !== String(description ?? "")) {
        await ctx.api.qemu.updateConfigSync(node, vmid, description === undefined ? { delete: "description" } : { description });
      }
    } catch (restoreError) {
      restored = `restoring its description failed (${restoreError instanceof Error ? restoreError.message : String(restoreError)})`;
    }
    throw new Error(`${why}\n(VM ${vmid} on node '${node}' was not adopted; it was left in place, not destroyed, and ${restored}.)`);
  }
}

/** Delete of a VM kept on delete (adopted, or destroyOnDelete: false): its marker line is
 *  removed, nothing else changes. Already gone, or no longer ours: nothing to do. */
export async function releaseVm(ctx: VmContext, vmid: number, props: Pick<CloneState, "resourceName">): Promise<void> {
  await retryConvergent(ctx, `releasing VM ${vmid}`, async () => {
    const where = await locateVm(ctx, vmid);
    if (!where) return;
    const text = descriptionOf(await ctx.api.qemu.getConfig(where.node, vmid));
    const marker = splitDescription(text);
    if (marker.resourceName === undefined || marker.resourceName !== props.resourceName) return;
    const rest = withoutMarker(text);
    await ctx.api.qemu.updateConfigSync(where.node, vmid, rest === undefined ? { delete: "description" } : { description: rest });
    providerLogger.info(`released VM ${vmid} on node '${where.node}': no longer managed by '${props.resourceName}'; the VM itself is kept (destroyOnDelete is false)`);
  });
}
