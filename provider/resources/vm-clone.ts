// VmClone: a VM cloned from a cloud-init template, configured, started, and reported with its
// IP addresses.
//
// Replaces: templateVmid, full, storage, an explicit vmid. Migrates: node. Updates in place:
// everything else (cpu, memory, NICs, cloud-init, tags, description, on-boot, disk growth,
// pool, power state). What PVE cannot hot-plug into a running VM (cores, sockets, memory without
// the cpu/memory hotplug features) is applied with a shutdown + start when `allowReboot` is
// true, and otherwise left pending in PVE and listed in `pendingChanges` (with a warning).
//
// Marker: the description of every VM this provider creates ends with the line
// `managed-by=pulumi-pve resource=<resource name> stack=<project>/<stack>`; read() strips it
// from `description`. create() first looks for a VM carrying this exact marker (one an
// interrupted `pulumi up` created but never recorded) and ADOPTS it instead of cloning again.
// Transient API failures (a lost answer, a 5xx, lock contention) are checked and retried: a
// clone without an answer is looked for before it is asked again; configuration steps look
// before they act, so they are simply run again.
// Adopt: `adopt: true` with `vmid` and `node` takes an EXISTING VM (not necessarily a clone;
// `template` is then optional) under management instead of cloning: create() finds it, refuses
// a template or a VM carrying another resource's marker, stamps the marker, and converges the
// declared settings onto it (undeclared ones, the description's text included, are left as they
// are). This is how an existing VM is imported: the engine's own import (`pulumi import`, the
// `import` option) cannot run a dynamic provider's read. On delete an adopted VM is RELEASED
// (marker removed, VM untouched) unless `destroyOnDelete: true`; a cloned VM is destroyed unless
// `destroyOnDelete: false`. A failed adoption never destroys the VM.
// Refresh: read() returns the refreshed inputs too (the settings PVE holds, the rest as
// declared, the pool as cluster/resources shows it when one is declared), so `preview --diff`
// after a refresh names each drifted property. A pool change is one `PUT /pools` (allow-move).
// A VM missing from the cluster is confirmed gone (its VMID is free) before it is forgotten: one
// the credentials merely cannot see (no VM.Audit) fails the refresh instead.
// Id: `<node>/<vmid>` (the node at creation; read() finds the VM wherever it is now).

import * as pulumi from "@pulumi/pulumi";
import { InputChecker } from "./check";
import { diffResource } from "./diff";
import { stubProvider, type Lifecycle } from "./dynamic";
import { defaultOf, diffRulesOf, outputSlots } from "./fields";
import { vmCloneTable, type TemplateRef } from "./fields/vm-clone";
import { VmCloneOutputs, type VmCloneArgs, type VmCloneInputs, type VmCloneState } from "./generated/vm-clone";
import { adoptExisting, adoptUnrecorded, releaseVm } from "./vm/clone-adoption";
import { checkChangedReferences, checkCloneInputs, withCloneDefaults } from "./vm/clone-check";
import { cloneFor } from "./vm/clone-placement";
import { baseFromVm, findForRead, inputsOfState, observedState, refreshedBase } from "./vm/clone-read";
import { convergePool, convergeRetrying } from "./vm/converge";
import { destroyAfterFailedCreate } from "./vm/create-failure";
import { confirmGone, liveStatus, locateVm } from "./vm/lookup";
import { destroyVm, migrateVm } from "./vm/power";
import { requireTemplateNode, templateNodeFor } from "./vm/template-node";
import { vmContext } from "./vm/vm-context";
import { parseVmId } from "./vm/vm-id";
import { vmidOutput } from "./vm/vmid-output";

export { cloneOrigin } from "./vm/clone-origin";
export { inputsOfState } from "./vm/clone-read";

export type { CiCustom, IpConfigInput, NetworkDevice } from "./vm/config-map";

export type { VmCloneArgs, VmCloneInputs, VmCloneState } from "./generated/vm-clone";
export type { TemplateRef, VmidRange } from "./fields/vm-clone";

const rules = diffRulesOf<VmCloneInputs>(vmCloneTable);

export const vmCloneLifecycle: Lifecycle<VmCloneInputs, VmCloneState> = {
  async check(olds, news) {
    const n = { ...news } as unknown as Record<string, any>;
    const c = new InputChecker(n);
    const checked = checkCloneInputs(c, n, olds); // ./vm/clone-check.ts
    // templateVmid alone: the template's node is found (./vm/template-node.ts)
    if (checked.cloning && checked.templateVmid !== undefined && n.templateNode === undefined && c.failures.length === 0) {
      checked.templateNode = await templateNodeFor(olds, checked.templateVmid);
      if (checked.templateNode !== undefined) n.templateNode = checked.templateNode;
    }
    // references that must exist (template, nodes, storage): one cached cluster view per process
    if (c.failures.length === 0) await checkChangedReferences(c, n, olds);
    return c.result(withCloneDefaults(c, n, checked) as VmCloneInputs);
  },

  async diff(_id, olds, news) {
    // An allocated vmid is not an input change; an imported VM has no recorded template.
    const effective: Partial<VmCloneInputs> = { ...news, vmid: news.vmid ?? olds.vmid, node: news.node ?? olds.node };
    if (olds.templateVmid === undefined) {
      effective.templateVmid = undefined;
      effective.full = olds.full;
      effective.storage = olds.storage;
    }
    // destroyOnDelete compared with its default filled in (it depends on adopt)
    const previous: Partial<VmCloneInputs> = { ...olds, destroyOnDelete: destroysOnDelete(olds) };
    effective.destroyOnDelete = destroysOnDelete(news);
    const d = diffResource(rules, previous, effective, {
      // a replacement with the same explicit vmid must delete the old VM first
      deleteBeforeReplace: (o) => news.vmid !== undefined && o.vmid === news.vmid,
    });
    return { changes: d.changes, replaces: d.replaces, deleteBeforeReplace: d.deleteBeforeReplace, stables: ["vmid"] };
  },

  async create(inputs) {
    const ctx = vmContext();
    if (inputs.adopt) return adoptExisting(ctx, inputs); // ./vm/clone-adoption.ts
    if (inputs.templateNode === undefined) inputs = { ...inputs, templateNode: await requireTemplateNode(ctx, inputs) };
    // a VM an interrupted run made for this resource (its marker) is taken over, not cloned again
    const adopted = await adoptUnrecorded(ctx, inputs);
    const node = adopted?.node ?? inputs.node ?? inputs.templateNode;
    // on `node`, beside the template and migrated when its storage is local (./vm/clone-placement.ts)
    const { vmid } = adopted ?? (await cloneFor(ctx, inputs, node));
    try {
      // a fresh clone is stopped; a retry (or an adopted VM) looks again (./vm/converge.ts)
      const outs = await convergeRetrying(ctx, `configuring VM ${vmid}`, node, vmid, inputs, undefined, adopted ? {} : { status: "stopped" });
      return { id: `${node}/${vmid}`, outs: { ...outs, vmidAllocated: inputs.vmid === undefined } };
    } catch (err) {
      return destroyAfterFailedCreate(ctx, err, vmid, node, { rerunAdopts: inputs.resourceName !== undefined && inputs.stack !== undefined });
    }
  },

  async read(id, props) {
    const ctx = vmContext();
    const { vmid } = props?.vmid !== undefined ? { vmid: props.vmid } : parseId(id);
    const vm = await findForRead(ctx, vmid, { status: props?.status, node: props?.node, pool: props?.pool }); // ./vm/clone-read.ts
    if (!vm) return confirmGone(ctx, vmid, props?.node ?? parseId(id).node);
    // a refresh brings the recorded state up to date; a read from the id alone reports what a
    // program declaring this VM would hold
    const state = await observedState(ctx, vm, props ? refreshedBase(props, vm) : baseFromVm(vm), props);
    // The refreshed inputs: what PVE holds as read, the rest as declared. Without them the
    // engine would diff the next program against the old inputs and show a drifted VM as
    // `~ update` naming no property.
    // (ReadResult types `inputs` like the state; these are the inputs part of it)
    return { id, props: state, inputs: inputsOfState(state) as VmCloneState };
  },

  async update(id, olds, news) {
    const ctx = vmContext();
    const vmid = olds.vmid;
    const where = await locateVm(ctx, vmid);
    if (!where) throw new Error(`VM ${vmid} (resource id ${id}) no longer exists on the cluster. Run \`pulumi refresh\` to forget it, then \`pulumi up\` to create it again.`);
    let node = where.node;
    // the node's answer, not /cluster/resources' (stale for up to pvestatd's 10 s)
    const live = await liveStatus(ctx, node, vmid);
    if (news.node && news.node !== node) {
      await migrateVm(ctx, node, vmid, news.node, live.status === "running");
      node = news.node;
    }
    await convergePool(ctx, vmid, where.pool, news.pool, olds.pool);
    // a migration keeps the power state
    const outs = await convergeRetrying(ctx, `updating VM ${vmid}`, node, vmid, { ...news, vmid: news.vmid ?? vmid }, olds, live);
    return { outs: { ...outs, vmidAllocated: olds.vmidAllocated ?? news.vmid === undefined } };
  },

  async delete(id, props) {
    const ctx = vmContext();
    const { vmid } = props?.vmid !== undefined ? { vmid: props.vmid } : parseId(id);
    if (props && !destroysOnDelete(props)) {
      await releaseVm(ctx, vmid, props);
      return;
    }
    await destroyVm(ctx, vmid, props?.node, { shutdownTimeoutSeconds: props?.shutdownTimeoutSeconds ?? defaultOf<number>(vmCloneTable, "shutdownTimeoutSeconds") });
  },
};

function destroysOnDelete(i: Partial<VmCloneInputs>): boolean {
  return i.destroyOnDelete ?? i.adopt !== true;
}

const parseId = (id: string) => parseVmId(id, "VmClone");

/** A VM cloned from a template (see the top of this file). */
export class VmClone extends VmCloneOutputs {
  constructor(name: string, args: VmCloneArgs, opts?: pulumi.CustomResourceOptions) {
    const { template, ...rest } = args;
    const tpl = template === undefined ? undefined : pulumi.output(template as pulumi.Input<TemplateRef>);
    super(
      stubProvider("provider/resources/vm-clone.js", "vmCloneLifecycle"),
      name,
      {
        ...rest,
        ...outputSlots(vmCloneTable),
        name: args.name ?? name,
        resourceName: name,
        stack: `${pulumi.getProject()}/${pulumi.getStack()}`,
        templateVmid: args.templateVmid ?? tpl?.apply((t) => t.vmid),
        templateNode: args.templateNode ?? tpl?.apply((t) => t.node),
        vmid: args.vmid,
        node: args.node,
      },
      opts,
      "proxmox",
      "VmClone",
    );
    // known at preview when given (the engine's output is unknown until create)
    (this as { vmid: pulumi.Output<number> }).vmid = vmidOutput(args.vmid, this.vmid, this.id);
  }
}
