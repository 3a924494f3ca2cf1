// VmClone's read(): a refresh (the recorded state brought up to date) or a read from the id
// alone (no state: what a program taking the VM over would declare).
//
// A refresh reads every VM at once: where they are comes from one shared cluster/resources
// answer, config and pending keys from one GET .../pending per VM (shared-reads.ts).

import { codecs, isNotFound, isPermissionDenied, type QemuConfig } from "../../proxmox";
import { agentAddresses, agentAddressesAndPower } from "./agent-wait";
import { clonedFrom } from "./clone-origin";
import type { CloneInputs, CloneState } from "./clone-shape";
import { CLOUD_INIT_KEY, cloudInitStillPending } from "./cloud-init-pending";
import { SETTINGS_KEYS, driveSize, macAddresses, markerOf, settingsFromConfig, settingsOf, type Marker } from "./config-map";
import { liveStatus, locateVm } from "./lookup";
import { configWithPending, locateVmShared, type VmLocation } from "./shared-reads";
import type { VmContext } from "./vm-context";
import { GROWN_DISK } from "../fields/vm-clone";

/** A VM as read() found it: where it is and whether it runs, its config and pending keys. */
export interface FoundVm {
  vmid: number;
  where: VmLocation;
  config: QemuConfig;
  pending: string[];
  marker: Marker;
  /** Read from the recorded node without the cluster listing: `where.status` is not known yet
   *  (observedState asks the node: the agent read, or status/current). */
  powerUnknown?: boolean;
}

/** What the state recorded of the VM: where read() looks first. */
export interface Recorded {
  status?: string;
  node?: string;
  pool?: string;
}

/** VM `vmid` on the cluster, or undefined when no listing shows it (gone, or hidden). */
export async function findForRead(ctx: VmContext, vmid: number, recorded: Recorded = {}): Promise<FoundVm | undefined> {
  // A refresh reads the VM where it was recorded: its config from that node (one GET
  // .../pending, which fails `does not exist` on any other node), its power state from the
  // node too (observedState: the agent read it makes anyway, or status/current). The cluster
  // listing only when the VM is not there (migrated, gone, or hidden from these credentials),
  // or when a pool is declared (only the listing says which pool holds a VM).
  if (recorded.node !== undefined && recorded.pool === undefined) {
    try {
      const read = await configWithPending(ctx, recorded.node, vmid);
      return { vmid, where: { node: recorded.node, status: "unknown", template: false }, config: read.config, pending: read.pending, marker: markerOf(read.config), powerUnknown: true };
    } catch (err) {
      if (!isNotFound(err) && !isPermissionDenied(err)) throw err;
    }
  }
  const recordedStatus = recorded.status;
  let where = await locateVmShared(ctx, vmid);
  if (!where) return undefined;
  let read: { config: QemuConfig; pending: string[] };
  try {
    read = await configWithPending(ctx, where.node, vmid);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    where = await locateVm(ctx, vmid); // moved or gone since the shared answer
    if (!where) return undefined;
    read = await configWithPending(ctx, where.node, vmid);
  }
  // /cluster/resources shows the power state of pvestatd's last broadcast (every 10 s): when it
  // disagrees with the state, or is not yet known, ask the node (one request, only then)
  if ((where.status !== "running" && where.status !== "stopped") || (recordedStatus !== undefined && recordedStatus !== where.status)) {
    const live = await liveStatus(ctx, where.node, vmid);
    where = { ...where, status: live.status, ...(live.uptime !== undefined ? { uptime: live.uptime } : {}) };
  }
  return { vmid, where, config: read.config, pending: read.pending, marker: markerOf(read.config) };
}

/** Refresh: the recorded state, with the pool as cluster/resources shows it (when one is
 *  declared), the marker's identity, and the disk's size (when one is declared). */
export function refreshedBase(props: CloneState, vm: FoundVm): Partial<CloneInputs> {
  const base: Partial<CloneInputs> = { ...props };
  if (props.pool !== undefined) withPool(base, vm.where);
  withIdentity(base, vm.marker);
  if (base.disk && props.diskSize !== undefined) withDiskSize(base, vm.config, base.disk);
  return base;
}

/** Read from an id: check()'s defaults, the pool, the marker's identity, how the VM was cloned
 *  (its template, linked or full, storage), and the size of scsi0. */
export function baseFromVm(vm: FoundVm): Partial<CloneInputs> {
  const base: Partial<CloneInputs> = {
    templateNode: vm.where.node,
    full: false,
    allowReboot: false,
    waitForIp: vm.where.status === "running",
    agentTimeoutSeconds: 300,
    shutdownTimeoutSeconds: 60,
  };
  withPool(base, vm.where);
  withIdentity(base, vm.marker);
  Object.assign(base, clonedFrom(vm.config, vm.marker.origin));
  withDiskSize(base, vm.config, GROWN_DISK);
  return base;
}

function withPool(base: Partial<CloneInputs>, where: VmLocation): void {
  if (where.pool !== undefined) base.pool = where.pool;
  else delete base.pool;
}

function withIdentity(base: Partial<CloneInputs>, marker: Marker): void {
  if (marker.resourceName !== undefined) base.resourceName = marker.resourceName;
  if (marker.stack !== undefined) base.stack = marker.stack;
}

function withDiskSize(base: Partial<CloneInputs>, config: QemuConfig, disk: string): void {
  const size = driveSize(config, disk);
  if (size !== undefined) {
    base.disk = disk;
    base.diskSize = size;
  }
}

/** The state: `base` with what PVE holds now (the settings `props` declares, or every one), the
 *  power state, the agent's addresses, and the changes waiting for a restart. */
export async function observedState(ctx: VmContext, vm: FoundVm, base: Partial<CloneInputs>, props: CloneState | undefined): Promise<CloneState> {
  const { vmid, config } = vm;
  let where = vm.where;
  const settings = settingsFromConfig(config, props ? settingsOf(props) : undefined);
  const agentOn = config.agent !== undefined && codecs.parseAgent(config.agent).enabled;
  const nic = { macAddress: macAddresses(config)[0], interfaceName: base.agentInterface };
  let ips: { primary: string[]; all: string[] } | undefined;
  if (vm.powerUnknown) {
    // the node's own answer: the agent read (which a running VM gets anyway) says whether it runs
    const probe = agentOn ? await agentAddressesAndPower(ctx.api, where.node, vmid, nic) : { power: "unknown" as const };
    ips = probe.ips;
    // without an agent (or its answer), status/current; its uptime also dates the last boot
    const needUptime = probe.power === "running" && props?.cloudInitBoot !== undefined && (props.pendingChanges ?? []).some((k) => CLOUD_INIT_KEY.test(k));
    if (probe.power === "unknown" || needUptime) {
      const live = await liveStatus(ctx, where.node, vmid);
      where = { ...where, status: live.status, ...(live.uptime !== undefined ? { uptime: live.uptime } : {}) };
    } else where = { ...where, status: probe.power };
  }
  const running = where.status === "running";
  if (!vm.powerUnknown && running && agentOn) {
    ips = await agentAddresses(ctx.api, where.node, vmid, nic);
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
    pendingChanges: vm.pending,
  } as CloneState;
  if (running) {
    const bootedAt = where.uptime === undefined ? undefined : Math.floor(ctx.api.clock.now() / 1000) - where.uptime;
    const cloudInit = cloudInitStillPending(props, bootedAt);
    if (cloudInit.length) {
      state.pendingChanges = [...new Set([...vm.pending, ...cloudInit])];
      if (props?.cloudInitBoot !== undefined) state.cloudInitBoot = props.cloudInitBoot;
    } else delete state.cloudInitBoot;
  } else delete state.cloudInitBoot;
  const primary = ips?.primary[0] ?? props?.ipv4Address;
  if (primary !== undefined) state.ipv4Address = primary;
  else delete state.ipv4Address;
  for (const k of SETTINGS_KEYS) if (settings[k] === undefined) delete (state as unknown as Record<string, unknown>)[k];
  return state;
}

/** Outputs only: what a refresh must not hand back as inputs. */
const OUTPUT_KEYS = ["status", "ipv4Address", "ipv4Addresses", "macAddresses", "pendingChanges", "vmidAllocated", "cloudInitBoot"] as const;

/**
 * The inputs a program declaring exactly this state would have (what read() returns for the
 * engine to diff the next program against): the state without its outputs, and without the
 * VMID when it was allocated.
 */
export function inputsOfState(state: CloneState): CloneInputs {
  const out: Record<string, unknown> = { ...state };
  for (const k of OUTPUT_KEYS) delete out[k];
  if (state.vmidAllocated !== false && state.adopt !== true) delete out.vmid;
  return out as unknown as CloneInputs;
}
