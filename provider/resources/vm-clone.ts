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
import { codecs } from "../proxmox";
import { InputChecker } from "./check";
import { diffResource, normalize, type DiffRules } from "./diff";
import { stubProvider, type Lifecycle } from "./dynamic";
import { adoptExisting, adoptUnrecorded, releaseVm } from "./vm/clone-adoption";
import { checkChangedReferences, checkCloneInputs, withCloneDefaults } from "./vm/clone-check";
import { cloneFor } from "./vm/clone-placement";
import { baseFromVm, findForRead, inputsOfState, observedState, refreshedBase } from "./vm/clone-read";
import type { CiCustom, IpConfigInput, NetworkDevice, VmSettings } from "./vm/config-map";
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

type In<T> = pulumi.Input<T>;

/** What the user writes. */
export interface VmCloneArgs {
  /** The template to clone: a Template resource, or `{ node, vmid }` of an existing one. */
  template?:
    | In<{
        /** The node the template is on. */
        node: In<string>;
        /** The template's VMID. Changing it replaces the VM. */
        vmid: In<number>;
      }>
    | {
        /** The node the template is on. */
        node: In<string>;
        /** The template's VMID. Changing it replaces the VM. */
        vmid: In<number>;
      };
  /** Alternative to `template`: the template's VMID, and its node (default: the node the
   *  cluster shows it on). */
  templateVmid?: In<number>;
  /** With `templateVmid`: the template's node. Default: the node the cluster shows it on. Not a replacement. */
  templateNode?: In<string>;
  /** VM name (DNS name); default: the resource name. */
  name?: In<string>;
  /** Node the VM runs on; default the template's node. A different node at creation clones
   *  there (`target`) from shared storage, else beside the template and migrates the new VM
   *  (./vm/clone-placement.ts); a later change migrates the VM. */
  node?: In<string>;
  /** Full clone (copy disks) instead of a linked clone. Default false (linked). */
  full?: In<boolean>;
  /** Target storage for a full clone. */
  storage?: In<string>;
  /** Resource pool to put the VM in. Default none; changed in place (moved between pools). */
  pool?: In<string>;
  /** Explicit VMID. Default: allocated (lowest free, safe at any parallelism). */
  vmid?: In<number>;
  /** Allocate from this range instead of PVE's nextid. */
  vmidRange?: In<{
    /** Lowest VMID to allocate (>= 100). */
    min: number;
    /** Highest VMID to allocate (>= min). */
    max: number;
  }>;
  /** CPU cores per socket (1-1024). Default: the template's; changed in place (needs a restart
   *  without CPU hotplug: see `allowReboot`). */
  cores?: In<number>;
  /** CPU sockets (1-16). Default: the template's; changed in place (needs a restart: see `allowReboot`). */
  sockets?: In<number>;
  /** MiB. */
  memory?: In<number>;
  /** MiB; 0 disables ballooning. */
  balloon?: In<number>;
  /** Disk to grow with `diskSize`; default `scsi0`. */
  disk?: In<string>;
  /** Size of `disk`, e.g. `20G` (grow only). */
  diskSize?: In<string>;
  /** The NICs, `net0`, `net1`, ... in order. Default: the template's; changed in place. */
  networks?: In<In<NetworkDevice>[]>;
  /** Cloud-init network config per NIC (`ipconfigN`), e.g. `[{ ip: "dhcp" }]`. Default: the
   *  template's; changed in place (the guest reads it at its next boot). */
  ipConfigs?: In<In<IpConfigInput>[]>;
  /** Cloud-init DNS server(s). Default: the template's (else the host's); changed in place. */
  nameserver?: In<string>;
  /** Cloud-init DNS search domain. Default: the template's (else the host's); changed in place. */
  searchdomain?: In<string>;
  /** Cloud-init default user name. Default: the template's (else the image's); changed in place. */
  ciuser?: In<string>;
  /** OpenSSH public keys for the cloud-init user, one key a line. Default: the template's; changed in place. */
  sshKeys?: In<In<string>[]>;
  /** Snippet volumes (`local:snippets/user.yaml`), e.g. a CloudInitSnippet's volume id. */
  cicustom?: In<{ [K in keyof CiCustom]?: In<string> }>;
  /** PVE tags. Default: the template's; changed in place. */
  tags?: In<In<string>[]>;
  /** The VM's notes (the provider's marker line is appended to them). Default none; changed in place. */
  description?: In<string>;
  /** Start the VM when its node boots (`onboot`). Default: the template's (off); changed in place. */
  onBoot?: In<boolean>;
  /** Running (default) or stopped. */
  started?: In<boolean>;
  /** Apply changes that need a restart by shutting the VM down and starting it. Default false. */
  allowReboot?: In<boolean>;
  /** Wait for the guest agent to report an IPv4 (default: when started). */
  waitForIp?: In<boolean>;
  /** The guest's name of the NIC whose IPv4 is awaited and reported. Default: none, the NIC is
   *  found by net0's MAC address (its name depends on cloud-init: `eth0` with ipConfigs, else
   *  the udev name such as `ens18`). */
  agentInterface?: In<string>;
  /** How long to wait for that address; default 300. */
  agentTimeoutSeconds?: In<number>;
  /** Graceful shutdown time before a hard stop (delete, reboot); default 60. */
  shutdownTimeoutSeconds?: In<number>;
  /** Take the existing VM `vmid` on `node` under management instead of cloning (see the top of
   *  this file). A change replaces the resource. */
  adopt?: In<boolean>;
  /** Destroy the VM when the resource is deleted. Default: true for a cloned VM, false for an
   *  adopted one (then delete only removes the marker line: the VM is released, untouched). */
  destroyOnDelete?: In<boolean>;
}

/** Resolved inputs, normalised the way PVE stores them. */
export interface VmCloneInputs extends VmSettings {
  resourceName?: string;
  /** `<project>/<stack>` of the program (set by the VmClone class): part of the marker. */
  stack?: string;
  /** Absent only for an adopted VM declared without a template. */
  templateVmid: number;
  templateNode: string;
  node: string;
  full: boolean;
  storage?: string;
  pool?: string;
  vmid?: number;
  vmidRange?: { min: number; max: number };
  disk?: string;
  diskSize?: string;
  started: boolean;
  allowReboot: boolean;
  waitForIp: boolean;
  agentInterface?: string;
  agentTimeoutSeconds: number;
  shutdownTimeoutSeconds: number;
  adopt?: boolean;
  destroyOnDelete?: boolean;
}

export interface VmCloneState extends VmCloneInputs {
  vmid: number;
  /** The VMID was allocated (not given as an input): a refresh must not turn it into one. */
  vmidAllocated?: boolean;
  /** `running` or `stopped`. */
  status: string;
  /** First IPv4 of net0 (found by its MAC), or of `agentInterface` when set (when the agent answered). */
  ipv4Address?: string;
  /** Every non-loopback IPv4 the agent reported. */
  ipv4Addresses: string[];
  /** MACs of net0, net1, ... */
  macAddresses: string[];
  /** Config keys that wait for the next cold start (allowReboot false): those PVE holds as
   *  pending, and cloud-init keys changed while the VM ran (PVE writes them at once, but the
   *  guest reads its cloud-init data only at boot). */
  pendingChanges: string[];
  /** When cloud-init keys are pending: the start (epoch seconds) they wait after, so a refresh
   *  knows that a restart since has applied them. */
  cloudInitBoot?: number;
}

const sameWhenUnset = { normalize: () => undefined };

const rules: DiffRules<VmCloneInputs> = {
  resourceName: {},
  stack: {},
  templateVmid: { replaces: true },
  templateNode: {},
  node: {},
  full: { replaces: true, normalize: normalize.flag },
  storage: { replaces: true },
  pool: {},
  vmid: { replaces: true },
  vmidRange: sameWhenUnset,
  name: {},
  cores: {},
  sockets: {},
  memory: {},
  balloon: {},
  disk: {},
  diskSize: { normalize: (v: string) => codecs.normalizeSize(v) },
  networks: {},
  ipConfigs: {},
  nameserver: {},
  searchdomain: {},
  ciuser: {},
  sshKeys: {},
  cicustom: {},
  tags: { normalize: normalize.tags },
  description: {},
  onBoot: { normalize: normalize.flag },
  started: {},
  allowReboot: {},
  waitForIp: {},
  agentInterface: {},
  agentTimeoutSeconds: {},
  shutdownTimeoutSeconds: {},
  adopt: { replaces: true, normalize: normalize.flag },
  destroyOnDelete: {},
};

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
    const vm = await findForRead(ctx, vmid, props?.status); // ./vm/clone-read.ts
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
    await destroyVm(ctx, vmid, props?.node, { shutdownTimeoutSeconds: props?.shutdownTimeoutSeconds ?? 60 });
  },
};

function destroysOnDelete(i: Partial<VmCloneInputs>): boolean {
  return i.destroyOnDelete ?? i.adopt !== true;
}

const parseId = (id: string) => parseVmId(id, "VmClone");

/** A VM cloned from a template (see the top of this file). */
export class VmClone extends pulumi.dynamic.Resource {
  /** The VM's VMID (given, or allocated at create). */
  declare readonly vmid: pulumi.Output<number>;
  /** The node the VM is on. */
  declare readonly node: pulumi.Output<string>;
  /** The VM's name. */
  declare readonly name: pulumi.Output<string>;
  /** Power state as last read: `running` or `stopped`. */
  declare readonly status: pulumi.Output<string>;
  /** CPU cores per socket, as PVE holds them. */
  declare readonly cores: pulumi.Output<number | undefined>;
  /** Memory in MiB, as PVE holds it. */
  declare readonly memory: pulumi.Output<number | undefined>;
  /** First IPv4 of net0 (found by its MAC), or of `agentInterface`, as the guest agent reported it; undefined without an answer. */
  declare readonly ipv4Address: pulumi.Output<string | undefined>;
  /** Every non-loopback IPv4 the guest agent reported. */
  declare readonly ipv4Addresses: pulumi.Output<string[]>;
  /** The MAC addresses of net0, net1, ... in order. */
  declare readonly macAddresses: pulumi.Output<string[]>;
  /** Config keys waiting for the VM's next cold start (changes not applied because `allowReboot` is false). */
  declare readonly pendingChanges: pulumi.Output<string[]>;

  constructor(name: string, args: VmCloneArgs, opts?: pulumi.CustomResourceOptions) {
    const { template, ...rest } = args;
    const tpl = template === undefined ? undefined : pulumi.output(template as In<{ node: In<string>; vmid: In<number> }>);
    super(
      stubProvider("provider/resources/vm-clone.js", "vmCloneLifecycle"),
      name,
      {
        ...rest,
        name: args.name ?? name,
        resourceName: name,
        stack: `${pulumi.getProject()}/${pulumi.getStack()}`,
        templateVmid: args.templateVmid ?? tpl?.apply((t) => t.vmid),
        templateNode: args.templateNode ?? tpl?.apply((t) => t.node),
        vmid: args.vmid,
        node: args.node,
        status: undefined,
        ipv4Address: undefined,
        ipv4Addresses: undefined,
        macAddresses: undefined,
        pendingChanges: undefined,
      },
      opts,
      "proxmox",
      "VmClone",
    );
    this.vmid = vmidOutput(args.vmid, this.vmid, this.id);
  }
}
