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
import { codecs, type QemuConfig } from "../proxmox";
import { InputChecker, checkTags, checkVmName, known, pveNames, VMID_RANGE } from "./check";
import { providerLogger } from "./context";
import { diffResource, isUnknown, normalize, sameValue, type DiffRules } from "./diff";
import { stubProvider, type Lifecycle } from "./dynamic";
import { AgentWaitError, agentAddresses, waitForAgentIpv4, type GuestHint } from "./vm/agent-wait";
import { checkCicustom, checkIpConfigs } from "./vm/cloud-init-inputs";
import { checkCloneReferences } from "./vm/references";
import {
  SETTINGS_KEYS,
  composeDescription,
  configChange,
  macAddresses,
  normalizeSettings,
  settingsFromConfig,
  splitDescription,
  withoutMarker,
  type CiCustom,
  type IpConfigInput,
  type NetworkDevice,
  type VmSettings,
} from "./vm/config-map";
import {
  createFailure,
  destroyVm,
  findMarkedVms,
  getConfig,
  confirmGone,
  isNotFound,
  liveStatus,
  locateVm,
  migrateVm,
  pendingKeys,
  retryConvergent,
  runTask,
  startVm,
  stopVm,
  vmContext,
  type VmContext,
} from "./vm/lifecycle";
import { configWithPending, locateVmShared } from "./vm/shared-reads";
import { parseVmId } from "./vm/vm-id";
import { vmidOutput } from "./vm/vmid-output";
import { requireTemplateNode, templateNodeFor } from "./vm/template-node";
import { cloneOnto } from "./vm/clone-placement";

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

/** Outputs only: what a refresh must not hand back as inputs. */
const OUTPUT_KEYS = ["status", "ipv4Address", "ipv4Addresses", "macAddresses", "pendingChanges", "vmidAllocated", "cloudInitBoot"] as const;

/** Cloud-init options: PVE applies them to the config at once (never pending, qemu-server
 *  `$fast_plug_option`) and writes them to the drive at the next start; the guest reads them at
 *  boot. On a running VM they wait for a restart like pending keys. */
const CLOUD_INIT_KEY = /^(ipconfig\d+|cicustom|sshkeys|ciuser|cipassword|nameserver|searchdomain|citype|ciupgrade)$/;

/** Cloud-init keys `earlier` listed that still wait: the VM (started at `bootedAt`, epoch s) has
 *  not restarted since `earlier.cloudInitBoot`. */
function cloudInitStillPending(earlier: Partial<VmCloneState> | undefined, bootedAt: number | undefined): string[] {
  const keys = (earlier?.pendingChanges ?? []).filter((k) => CLOUD_INIT_KEY.test(k));
  if (!keys.length || earlier?.cloudInitBoot === undefined || bootedAt === undefined) return keys;
  // a start since then (its uptime says it began later) has regenerated the drive
  return Math.abs(bootedAt - earlier.cloudInitBoot) > 60 ? [] : keys;
}

function destroysOnDelete(i: Partial<VmCloneInputs>): boolean {
  return i.destroyOnDelete ?? i.adopt !== true;
}

/**
 * The inputs a program declaring exactly this state would have (what read() returns for the
 * engine to diff the next program against): the state without its outputs, and without the
 * VMID when it was allocated.
 */
export function inputsOfState(state: VmCloneState): VmCloneInputs {
  const out: Record<string, unknown> = { ...state };
  for (const k of OUTPUT_KEYS) delete out[k];
  if (state.vmidAllocated !== false && state.adopt !== true) delete out.vmid;
  return out as unknown as VmCloneInputs;
}

const MAC = /^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/;

function settingsOf(i: Partial<VmCloneInputs>): VmSettings {
  const s: VmSettings = {};
  for (const k of SETTINGS_KEYS) if (i[k] !== undefined) (s as Record<string, unknown>)[k] = i[k];
  return s;
}

function wantsIp(i: VmCloneInputs): boolean {
  return i.started && i.waitForIp;
}

const parseId = (id: string) => parseVmId(id, "VmClone");

function driveSize(config: Record<string, unknown>, disk: string): string | undefined {
  const text = config[disk];
  if (text === undefined) return undefined;
  const size = codecs.parseDrive(String(text)).size;
  return size ? codecs.normalizeSize(size) : undefined;
}

/**
 * A VM this resource created in an earlier run that was interrupted before the engine recorded
 * it (found by its marker: same resource name AND stack): adopted, so the interrupted run
 * leaves neither an orphan nor a duplicate. More than one (should not happen): the lowest is
 * adopted and the others, equally ours and unrecorded, are destroyed.
 */
async function adoptUnrecorded(ctx: VmContext, inputs: VmCloneInputs): Promise<{ vmid: number; node: string } | undefined> {
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

/** How cloning `inputs` makes a VM, as the marker records it: `<template>:linked`,
 *  `<template>:full` or `<template>:full:<storage>`. */
export function cloneOrigin(inputs: Pick<VmCloneInputs, "templateVmid" | "full" | "storage">): string {
  return `${inputs.templateVmid}:${inputs.full ? `full${inputs.storage ? `:${inputs.storage}` : ""}` : "linked"}`;
}

/** The template a linked clone's disk names (dir/nfs `9000/base-9000-disk-0.qcow2/101/...`,
 *  rbd and zfs `base-9000-disk-0/vm-101-disk-0`); LVM-thin names none (`vm-101-disk-0`). */
function baseOfDisk(value: unknown): number | undefined {
  const m = /base-(\d+)-disk-\d+(?:\.\w+)?\//.exec(String(value));
  return m ? Number(m[1]) : undefined;
}

/** Whether a VM is what cloning `inputs` makes: by the origin its marker records; a marker of an
 *  older release has none, then by its disks (a linked clone's name its template, where the
 *  storage type puts it in the name; a full clone's name none, on the given storage). */
function madeLike(config: QemuConfig, inputs: VmCloneInputs): boolean {
  const origin = splitDescription(config.description === undefined ? undefined : String(config.description)).origin;
  if (origin !== undefined) return origin === cloneOrigin(inputs);
  const disks = Object.entries(config).filter(([k]) => codecs.DISK_KEY.test(k) && !/cloudinit|media=cdrom/.test(String(config[k])));
  const bases = disks.map(([, v]) => baseOfDisk(v)).filter((b): b is number => b !== undefined);
  if (!inputs.full) return bases.length > 0 && bases.every((b) => b === inputs.templateVmid);
  if (bases.length) return false;
  return inputs.storage === undefined || disks.every(([, v]) => String(v).startsWith(`${inputs.storage}:`));
}

/**
 * `adopt: true`: takes the existing VM `inputs.vmid` on `inputs.node` under management. The VM
 * must exist, be no template, and carry no other resource's marker. Its marker is stamped and
 * the declared settings converged onto it; a failure leaves the VM in place (it is not ours to
 * destroy) with its description as it was.
 */
async function adoptExisting(ctx: VmContext, inputs: VmCloneInputs): Promise<{ id: string; outs: VmCloneState }> {
  const vmid = inputs.vmid as number;
  const where = await locateVm(ctx, vmid);
  if (!where) {
    await confirmGone(ctx, vmid, inputs.node);
    throw new Error(`cannot adopt VM ${vmid}: there is no VM ${vmid} on the cluster. Fix vmid, or remove adopt to clone a new VM.`);
  }
  if (where.template) throw new Error(`cannot adopt VM ${vmid}: it is a template. Manage templates with Template (adopt: true), and clone VMs from them.`);
  if (where.node !== inputs.node) throw new Error(`cannot adopt VM ${vmid} on node '${inputs.node}': it is on node '${where.node}'. Set node: "${where.node}" (a later node change migrates it).`);
  const node = where.node;
  const before = await getConfig(ctx, node, vmid);
  const description = before.description === undefined ? undefined : String(before.description);
  const marker = splitDescription(description);
  if (marker.resourceName !== undefined && (marker.resourceName !== inputs.resourceName || marker.stack !== inputs.stack)) {
    throw new Error(
      `cannot adopt VM ${vmid}: its description carries the marker of resource '${marker.resourceName}'${marker.stack ? ` of stack ${marker.stack}` : ""}, so another program manages it. ` +
        `Release it there first (delete that resource with destroyOnDelete: false), or remove the marker line from its description.`,
    );
  }
  providerLogger.info(`adopting VM ${vmid} on node '${node}' for '${inputs.resourceName ?? ""}'`);
  try {
    const outs = await retryConvergent(ctx, `adopting VM ${vmid}`, () => converge(ctx, node, vmid, inputs, undefined));
    await convergePool(ctx, vmid, where.pool, inputs.pool, undefined);
    return { id: `${node}/${vmid}`, outs: { ...outs, vmidAllocated: false } };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    let restored = "its description was restored";
    try {
      const now = await getConfig(ctx, node, vmid);
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
async function releaseVm(ctx: VmContext, vmid: number, props: VmCloneState): Promise<void> {
  await retryConvergent(ctx, `releasing VM ${vmid}`, async () => {
    const where = await locateVm(ctx, vmid);
    if (!where) return;
    const config = await getConfig(ctx, where.node, vmid);
    const text = config.description === undefined ? undefined : String(config.description);
    const marker = splitDescription(text);
    if (marker.resourceName === undefined || marker.resourceName !== props.resourceName) return;
    const rest = withoutMarker(text);
    await ctx.api.qemu.updateConfigSync(where.node, vmid, rest === undefined ? { delete: "description" } : { description: rest });
    providerLogger.info(`released VM ${vmid} on node '${where.node}': no longer managed by '${props.resourceName}'; the VM itself is kept (destroyOnDelete is false)`);
  });
}

/**
 * Pool membership from `current` (what cluster/resources shows now) to `want`. A VM is in at
 * most one pool: moving it is one `PUT /pools` with allow-move (never a moment in no pool). A
 * pool no longer declared is left only when it is the one this resource had put the VM in.
 */
async function convergePool(ctx: VmContext, vmid: number, current: string | undefined, want: string | undefined, before: string | undefined): Promise<void> {
  if (want !== undefined && want !== current) {
    await ctx.api.pools.update(want, { vms: [vmid], ...(current !== undefined ? { allowMove: true } : {}) });
  } else if (want === undefined && current !== undefined && current === before) {
    await ctx.api.pools.update(current, { vms: [vmid], delete: true });
  }
}

/** What the caller already knows about the VM, so converge() need not ask: its power state. */
interface KnownState {
  status?: string;
  /** Seconds since it started, when running. */
  uptime?: number;
}

/**
 * The config after a PUT of `change`, when it is known without asking PVE: PVE stores the values
 * as sent, and only adds a MAC to a NIC sent without one (then undefined: read it back).
 */
function configAfter(config: QemuConfig, change: { set: Record<string, string | number>; delete: string[] }): QemuConfig | undefined {
  for (const [k, v] of Object.entries(change.set)) if (/^net\d+$/.test(k) && !codecs.parseNet(String(v)).macaddr) return undefined;
  const out: QemuConfig = { ...config, ...change.set };
  for (const k of change.delete) delete out[k];
  return out;
}

/** What the agent-wait error needs to name the likely cause: the template's image (its marker's
 *  origin, read only on this failure path), the user-data snippet, whether net0 is configured. */
async function describeGuest(ctx: VmContext, config: QemuConfig, inputs: VmCloneInputs): Promise<GuestHint> {
  const custom: Partial<Record<string, string>> = config.cicustom === undefined ? {} : Object.fromEntries(codecs.splitPropertyString(String(config.cicustom)));
  let image: string | undefined;
  if (inputs.templateVmid !== undefined && inputs.templateNode !== undefined) {
    try {
      const tpl = await getConfig(ctx, inputs.templateNode, inputs.templateVmid);
      image = splitDescription(tpl.description === undefined ? undefined : String(tpl.description)).origin;
    } catch {
      image = undefined;
    }
  }
  return {
    ...(image !== undefined ? { image } : {}),
    ...(custom.user !== undefined ? { userData: custom.user } : {}),
    networkConfigured: config.ipconfig0 !== undefined || custom.network !== undefined,
  };
}

/** Brings a cloned VM to the inputs: config, disk, power, pending, addresses. */
async function converge(ctx: VmContext, node: string, vmid: number, next: VmCloneInputs, prev: VmCloneInputs | undefined, known: KnownState = {}): Promise<VmCloneState> {
  const api = ctx.api;
  let config = await getConfig(ctx, node, vmid);
  const agentOn = config.agent !== undefined && codecs.parseAgent(config.agent).enabled === true;
  if (wantsIp(next) && !agentOn) {
    throw new AgentWaitError(
      next.adopt
        ? `VM ${vmid} (${next.name ?? ""}) on node '${node}' has no QEMU guest agent configured (agent: 1), so its IP address cannot be learned. Enable the agent on the VM, or set waitForIp: false.`
        : `VM ${vmid} (${next.name ?? ""}) on node '${node}' has no QEMU guest agent configured (template ${next.templateVmid} lacks agent: 1), so its IP address cannot be learned. Enable the agent in the template, or set waitForIp: false.`,
    );
  }
  const change = configChange(config, settingsOf(next), next.resourceName, prev ? settingsOf(prev) : undefined, next.stack);
  if (Object.keys(change.set).length || change.delete.length) {
    await api.qemu.updateConfigSync(node, vmid, { ...change.set, ...(change.delete.length ? { delete: change.delete.join(",") } : {}) });
    config = configAfter(config, change) ?? (await getConfig(ctx, node, vmid));
  }
  const changed = Object.keys(change.set).length > 0 || change.delete.length > 0;
  if (next.diskSize) {
    const disk = next.disk ?? "scsi0";
    const current = driveSize(config, disk);
    if (current === undefined) throw new Error(`VM ${vmid} has no disk '${disk}' to resize: set disk to one of its disks (${Object.keys(config).filter((k) => codecs.DISK_KEY.test(k)).join(", ")})`);
    const want = codecs.parseSize(next.diskSize);
    const have = codecs.parseSize(current);
    if (want < have) throw new Error(`disk ${disk} of VM ${vmid} is ${current}; PVE cannot shrink disks to ${next.diskSize}. Keep the size, or replace the VM.`);
    if (want > have) await runTask(ctx, () => api.qemu.resize(node, vmid, disk, codecs.formatSize(want)));
  }

  let uptime = known.uptime;
  let status = known.status;
  if (status === undefined) {
    const s = await api.qemu.status(node, vmid);
    status = s.status;
    uptime = s.uptime === undefined ? undefined : Number(s.uptime);
  }
  const nowSeconds = Math.floor(api.clock.now() / 1000);
  const bootedAt = status === "running" && uptime !== undefined ? nowSeconds - uptime : undefined;
  // Pending changes live on a running VM: a stopped VM's config PUT applies everything pending,
  // and a start applies what is left. Ask only when the answer can be non-empty and matters.
  let pending = status === "running" || (!changed && !next.started) ? await pendingKeys(ctx, node, vmid) : [];
  // cloud-init keys changed on a running VM (now or in an earlier run) wait for its next boot
  let cloudInit: string[] = [];
  if (status === "running") {
    const now = [...Object.keys(change.set), ...change.delete].filter((k) => CLOUD_INIT_KEY.test(k));
    cloudInit = [...new Set([...cloudInitStillPending(prev as Partial<VmCloneState> | undefined, bootedAt), ...now])].sort();
    pending = [...new Set([...pending, ...cloudInit])];
  }
  if (status === "running" && pending.length) {
    if (next.allowReboot) {
      await stopVm(ctx, node, vmid, { shutdownTimeoutSeconds: next.shutdownTimeoutSeconds });
      status = "stopped";
    } else {
      const plain = pending.filter((k) => !CLOUD_INIT_KEY.test(k));
      const why = [
        plain.length ? `${plain.join(", ")} (PVE cannot hot-plug them)` : "",
        cloudInit.length ? `${cloudInit.join(", ")} (cloud-init data is read by the guest at boot)` : "",
      ].filter((x) => x !== "");
      providerLogger.warn(
        `VM ${vmid} on node '${node}': ${why.join(" and ")} will only take effect at the next restart. Set allowReboot: true to let the provider restart the VM.`,
      );
    }
  }
  let justStarted = false;
  if (next.started && status !== "running") {
    await startVm(ctx, node, vmid);
    justStarted = true;
    status = "running";
    pending = []; // a cold start applies every pending change and regenerates the cloud-init drive
    cloudInit = [];
  } else if (!next.started && status === "running") {
    await stopVm(ctx, node, vmid, { shutdownTimeoutSeconds: next.shutdownTimeoutSeconds });
    status = "stopped";
  }

  let primary: string[] = [];
  let all: string[] = [];
  if (status === "running" && next.waitForIp) {
    const r = await waitForAgentIpv4(api, {
      node,
      vmid,
      name: next.name,
      macAddress: macAddresses(config)[0],
      interfaceName: next.agentInterface,
      timeoutMs: next.agentTimeoutSeconds * 1000,
      fleetKey: next.templateVmid !== undefined ? `${node}/${next.templateVmid}` : undefined,
      justStarted,
      describeGuest: () => describeGuest(ctx, config, next),
    });
    primary = r.primary;
    all = r.all;
  }
  return {
    ...next,
    vmid,
    node,
    status,
    ...(primary.length ? { ipv4Address: primary[0] } : {}),
    ipv4Addresses: all,
    macAddresses: macAddresses(config),
    pendingChanges: pending,
    ...(cloudInit.length && bootedAt !== undefined ? { cloudInitBoot: bootedAt } : {}),
  };
}

export const vmCloneLifecycle: Lifecycle<VmCloneInputs, VmCloneState> = {
  async check(olds, news) {
    const n = { ...news } as unknown as Record<string, any>;
    const c = new InputChecker(n);
    checkVmName(c);
    const adopt = c.boolean("adopt");
    c.boolean("destroyOnDelete");
    // an unknown `adopt` (preview) lets the template fields pass; up checks again with it known
    const cloning = adopt !== true && !isUnknown(n.adopt);
    const templateVmid = c.integer("templateVmid", { required: cloning, ...VMID_RANGE });
    let templateNode = c.string("templateNode", { pattern: pveNames.node, describe: "a node name" });
    c.string("node", { pattern: pveNames.node, describe: "a node name" });
    if (adopt === true) {
      if (n.vmid === undefined) c.fail("vmid", "adopt needs the vmid of the existing VM to take under management.");
      if (n.node === undefined) c.fail("node", "adopt needs the node the existing VM is on (e.g. node: \"pve1\").");
      if (n.vmidRange !== undefined) c.fail("vmidRange", "an adopted VM keeps its vmid: remove vmidRange, or set adopt: false.");
      if (n.full !== undefined) c.fail("full", "an adopted VM is not cloned: remove full, or set adopt: false.");
      if (n.storage !== undefined) c.fail("storage", "an adopted VM is not cloned: remove storage, or set adopt: false.");
    }
    const full = c.boolean("full");
    const storage = c.string("storage", { pattern: pveNames.storageId, describe: "a storage id" });
    if (storage !== undefined && full !== true && known(n.full)) c.fail("storage", "storage is only used by full clones (PVE: parameter 'storage' not allowed for linked clones); set full: true or remove storage.");
    if (storage !== undefined && n.full === undefined && adopt !== true) c.fail("storage", "storage is only used by full clones; set full: true.");
    c.string("pool", { pattern: pveNames.poolid, describe: "a pool id" });
    c.exclusive(["vmid", "vmidRange"]);
    c.integer("vmid", VMID_RANGE);
    if (known(n.vmidRange)) {
      const r = n.vmidRange;
      if (!Number.isInteger(r.min) || !Number.isInteger(r.max) || r.min < 100 || r.max < r.min) {
        c.fail("vmidRange", `vmidRange must be { min, max } with 100 <= min <= max; got ${JSON.stringify(r)}.`);
      }
    }
    c.integer("cores", { min: 1, max: 1024 });
    c.integer("sockets", { min: 1, max: 16 });
    c.integer("memory", { min: 16 });
    c.integer("balloon", { min: 0 });
    c.string("disk", { pattern: codecs.DISK_KEY, describe: "a disk key such as scsi0 or virtio0" });
    const diskSize = c.string("diskSize", {
      rule: (v) => {
        try {
          codecs.parseSize(v);
          return undefined;
        } catch (e) {
          return (e as Error).message;
        }
      },
    });
    if (diskSize !== undefined && known(olds?.diskSize)) {
      try {
        if (codecs.parseSize(diskSize) < codecs.parseSize(String(olds.diskSize))) {
          c.fail("diskSize", `diskSize cannot shrink from ${olds.diskSize} to ${diskSize}: PVE does not shrink disks. Keep the size, or replace the VM.`);
        }
      } catch {
        /* reported above */
      }
    }
    c.list<NetworkDevice>("networks", {
      item: (d) => {
        if (!d || typeof d !== "object") return "each network must be an object { bridge, model?, vlanTag?, firewall?, macAddress?, mtu? }.";
        if (!known(d.bridge)) return isUnknown(d.bridge) ? undefined : "bridge is required (e.g. vmbr0).";
        if (known(d.model) && !codecs.NET_MODELS.has(d.model)) return `model '${d.model}' is not a PVE NIC model (${[...codecs.NET_MODELS].join(", ")}).`;
        if (known(d.vlanTag) && (!Number.isInteger(d.vlanTag) || d.vlanTag < 1 || d.vlanTag > 4094)) return `vlanTag must be 1-4094, got ${d.vlanTag}.`;
        if (known(d.macAddress) && !MAC.test(d.macAddress)) return `macAddress '${d.macAddress}' is not a MAC address (XX:XX:XX:XX:XX:XX).`;
        return undefined;
      },
    });
    checkIpConfigs(c);
    c.string("nameserver");
    c.string("searchdomain");
    c.string("stack", { pattern: /^[^\s/]+\/[^\s/]+$/, describe: "<project>/<stack>" });
    c.string("ciuser");
    c.list<string>("sshKeys", { item: (k) => (typeof k === "string" && /^\S+ \S+/.test(k.trim()) ? undefined : "each SSH key must be an OpenSSH public key line ('ssh-ed25519 AAAA... comment').") });
    checkCicustom(c, n.cicustom);
    checkTags(c);
    c.string("description", { maxLength: 8000 });
    c.boolean("onBoot");
    const started = c.boolean("started");
    c.boolean("allowReboot");
    c.boolean("waitForIp");
    c.string("agentInterface", { pattern: /^[\w.\-@]+$/, describe: "an interface name such as ens18 or eth0" });
    c.integer("agentTimeoutSeconds", { min: 1, max: 86_400 });
    c.integer("shutdownTimeoutSeconds", { min: 0, max: 3_600 });

    // templateVmid alone: the template's node is found (./vm/template-node.ts)
    if (cloning && templateVmid !== undefined && n.templateNode === undefined && c.failures.length === 0) {
      templateNode = await templateNodeFor(olds, templateVmid);
      if (templateNode !== undefined) n.templateNode = templateNode;
    }
    if (c.failures.length === 0) {
      // references that must exist (template, nodes, storage): one cached cluster view per process
      const refs = { templateVmid: n.templateVmid, templateNode: n.templateNode, node: n.node, storage: n.storage };
      for (const k of Object.keys(refs) as (keyof typeof refs)[]) if (!known(refs[k])) delete refs[k];
      // Only references that changed: a preview of an unchanged VM asks PVE nothing.
      const previous = (olds ?? {}) as Record<string, unknown>;
      for (const k of Object.keys(refs) as (keyof typeof refs)[]) if (sameValue(previous[k], refs[k])) delete refs[k];
      await checkCloneReferences(c, refs, { cloneNode: known(n.templateNode) ? n.templateNode : undefined });
    }

    const out: Record<string, any> = { ...n };
    out.node = n.node ?? templateNode ?? n.templateNode;
    out.full = n.full ?? false;
    out.started = n.started ?? true;
    out.allowReboot = n.allowReboot ?? false;
    out.waitForIp = n.waitForIp ?? (started ?? true);
    out.agentTimeoutSeconds = n.agentTimeoutSeconds ?? 300;
    out.shutdownTimeoutSeconds = n.shutdownTimeoutSeconds ?? 60;
    if (known(n.diskSize) && c.failures.length === 0) out.disk = n.disk ?? "scsi0";
    if (c.failures.length === 0) {
      const settings: Record<string, unknown> = {};
      for (const k of SETTINGS_KEYS) if (known(n[k])) settings[k] = n[k];
      Object.assign(out, normalizeSettings(settings as VmSettings));
      if (known(n.diskSize)) out.diskSize = codecs.normalizeSize(n.diskSize);
      if (known(n.vmid)) out.vmid = Number(n.vmid);
    }
    for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
    return c.result(out as VmCloneInputs);
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
    if (inputs.adopt) return adoptExisting(ctx, inputs);
    if (inputs.templateNode === undefined) inputs = { ...inputs, templateNode: await requireTemplateNode(ctx, inputs) };
    let node = inputs.node ?? inputs.templateNode;
    const adopted = await adoptUnrecorded(ctx, inputs);
    if (adopted) node = adopted.node;
    // on `node`, beside the template and migrated when its storage is local (./vm/clone-placement.ts)
    const { vmid } = adopted ?? await cloneOnto(ctx, {
      templateNode: inputs.templateNode,
      templateVmid: inputs.templateVmid,
      vmid: inputs.vmid,
      vmidRange: inputs.vmidRange,
      params: {
        name: inputs.name,
        description: composeDescription(inputs.description, inputs.resourceName, inputs.stack, cloneOrigin(inputs)),
        full: inputs.full,
        pool: inputs.pool,
        storage: inputs.full ? inputs.storage : undefined,
      },
    }, inputs, node);
    try {
      // a fresh clone is stopped; a retry (or an adopted VM) looks again
      let first = !adopted;
      const outs = await retryConvergent(ctx, `configuring VM ${vmid}`, () => {
        const known: KnownState = first ? { status: "stopped" } : {};
        first = false;
        return converge(ctx, node, vmid, inputs, undefined, known);
      });
      return { id: `${node}/${vmid}`, outs: { ...outs, vmidAllocated: inputs.vmid === undefined } };
    } catch (err) {
      try {
        await destroyVm(ctx, vmid, node, { shutdownTimeoutSeconds: 0 });
      } catch (cleanupError) {
        throw createFailure(err, vmid, node, cleanupError, { rerunAdopts: inputs.resourceName !== undefined && inputs.stack !== undefined });
      }
      throw createFailure(err, vmid, node);
    }
  },

  async read(id, props) {
    const ctx = vmContext();
    const { vmid } = props?.vmid !== undefined ? { vmid: props.vmid } : parseId(id);
    // A refresh reads every VM at once: where they are comes from one shared cluster/resources
    // answer, config and pending keys from one GET .../pending per VM.
    let where = await locateVmShared(ctx, vmid);
    if (!where) return confirmGone(ctx, vmid, props?.node ?? parseId(id).node);
    let read: { config: QemuConfig; pending: string[] };
    try {
      read = await configWithPending(ctx, where.node, vmid);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      where = await locateVm(ctx, vmid); // moved or gone since the shared answer
      if (!where) return confirmGone(ctx, vmid, props?.node ?? parseId(id).node);
      read = await configWithPending(ctx, where.node, vmid);
    }
    // /cluster/resources shows the power state of pvestatd's last broadcast (every 10 s): when it
    // disagrees with the state, or is not yet known, ask the node (one request, only then)
    if ((where.status !== "running" && where.status !== "stopped") || (props?.status !== undefined && props.status !== where.status)) {
      const live = await liveStatus(ctx, where.node, vmid);
      where = { ...where, status: live.status, ...(live.uptime !== undefined ? { uptime: live.uptime } : {}) };
    }
    const config = read.config;
    const like = props ? settingsOf(props) : undefined;
    const settings = settingsFromConfig(config, like);
    const running = where.status === "running";
    const base: Partial<VmCloneInputs> = props
      ? { ...props }
      : {
          templateNode: where.node,
          full: false,
          allowReboot: false,
          waitForIp: running,
          agentTimeoutSeconds: 300,
          shutdownTimeoutSeconds: 60,
        };
    // the pool the VM is in, when the resource declares one (or on import)
    if (!props || props.pool !== undefined) {
      if (where.pool !== undefined) base.pool = where.pool;
      else delete base.pool;
    }
    const marker = splitDescription(config.description === undefined ? undefined : String(config.description));
    if (marker.resourceName !== undefined) base.resourceName = marker.resourceName;
    if (marker.stack !== undefined) base.stack = marker.stack;
    if (!props) {
      // The marker's origin says how the VM was cloned; without one (another tool's VM, an older
      // release's), a linked clone's disk may name its template (not on LVM-thin).
      const origin = /^(\d+):(linked|full)(?::(.+))?$/.exec(marker.origin ?? "");
      if (origin) {
        base.templateVmid = Number(origin[1]);
        base.full = origin[2] === "full";
        if (origin[3] !== undefined) base.storage = origin[3];
      } else {
        for (const [k, v] of Object.entries(config)) {
          const b = codecs.DISK_KEY.test(k) ? baseOfDisk(v) : undefined;
          if (b !== undefined) base.templateVmid = b;
        }
      }
    }
    const disk = base.disk ?? (props ? undefined : "scsi0");
    if (disk && (props?.diskSize !== undefined || !props)) {
      const size = driveSize(config, disk);
      if (size !== undefined) {
        base.disk = disk;
        base.diskSize = size;
      }
    }
    let ips: { primary: string[]; all: string[] } | undefined;
    if (running && config.agent !== undefined && codecs.parseAgent(config.agent).enabled) {
      ips = await agentAddresses(ctx.api, where.node, vmid, { macAddress: macAddresses(config)[0], interfaceName: base.agentInterface });
    }
    const state = {
      ...base,
      ...settings,
      vmid,
      node: where.node,
      started: running,
      status: where.status,
      ipv4Addresses: ips?.all ?? props?.ipv4Addresses ?? [],
      macAddresses: macAddresses(config),
      pendingChanges: read.pending,
    } as VmCloneState;
    if (running) {
      const bootedAt = where.uptime === undefined ? undefined : Math.floor(ctx.api.clock.now() / 1000) - where.uptime;
      const cloudInit = cloudInitStillPending(props, bootedAt);
      if (cloudInit.length) {
        state.pendingChanges = [...new Set([...read.pending, ...cloudInit])];
        if (props?.cloudInitBoot !== undefined) state.cloudInitBoot = props.cloudInitBoot;
      } else delete state.cloudInitBoot;
    } else delete state.cloudInitBoot;
    const primary = ips?.primary[0] ?? props?.ipv4Address;
    if (primary !== undefined) state.ipv4Address = primary;
    else delete state.ipv4Address;
    for (const k of SETTINGS_KEYS) if (settings[k] === undefined) delete (state as unknown as Record<string, unknown>)[k];
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
    let known: KnownState = live; // a migration keeps the power state
    const outs = await retryConvergent(ctx, `updating VM ${vmid}`, () => {
      const k = known;
      known = {};
      return converge(ctx, node, vmid, { ...news, vmid: news.vmid ?? vmid }, olds, k);
    });
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
