// Bringing an existing VM to a VmClone's inputs (create, update, adopt): its config, disk size,
// pool, power state and pending changes, then the addresses its guest agent reports. Each step
// looks before it acts, so a step that failed for a transient reason is simply run again
// (retryConvergent, convergent-retry.ts).

import { codecs, type QemuConfig } from "../../proxmox";
import { providerLogger } from "../context";
import { AgentWaitError, waitForAgentIpv4, type GuestHint } from "./agent-wait";
import type { CloneInputs, CloneState } from "./clone-shape";
import { CLOUD_INIT_KEY, cloudInitStillPending } from "./cloud-init-pending";
import { configChange, driveSize, macAddresses, markerOf, settingsOf } from "./config-map";
import { retryConvergent } from "./convergent-retry";
import { pendingKeys } from "./lookup";
import { startVm, stopVm } from "./power";
import { runTask, type VmContext } from "./vm-context";
import { GROWN_DISK } from "../fields/vm-clone";

/** What the caller already knows about the VM, so converge() need not ask: its power state. */
export interface KnownState {
  status?: string;
  /** Seconds since it started, when running. */
  uptime?: number;
}

/** Brings a cloned VM to the inputs: config, disk, power, pending, addresses. */
export async function converge(ctx: VmContext, node: string, vmid: number, next: CloneInputs, prev: Partial<CloneState> | undefined, known: KnownState = {}): Promise<CloneState> {
  const api = ctx.api;
  let config = await api.qemu.getConfig(node, vmid);
  const agentOn = config.agent !== undefined && codecs.parseAgent(config.agent).enabled === true;
  if (next.started && next.waitForIp && !agentOn) {
    throw new AgentWaitError(
      next.adopt
        ? `VM ${vmid} (${next.name ?? ""}) on node '${node}' has no QEMU guest agent configured (agent: 1), so its IP address cannot be learned. Enable the agent on the VM, or set waitForIp: false.`
        : `VM ${vmid} (${next.name ?? ""}) on node '${node}' has no QEMU guest agent configured (template ${next.templateVmid} lacks agent: 1), so its IP address cannot be learned. Enable the agent in the template, or set waitForIp: false.`,
    );
  }
  const change = configChange(config, settingsOf(next), next.resourceName, prev ? settingsOf(prev) : undefined, next.stack);
  if (Object.keys(change.set).length || change.delete.length) {
    await api.qemu.updateConfigSync(node, vmid, { ...change.set, ...(change.delete.length ? { delete: change.delete.join(",") } : {}) });
    config = configAfter(config, change) ?? (await api.qemu.getConfig(node, vmid));
  }
  const changed = Object.keys(change.set).length > 0 || change.delete.length > 0;
  if (next.diskSize) await growDisk(ctx, node, vmid, config, next.disk ?? GROWN_DISK, next.diskSize);

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
    cloudInit = [...new Set([...cloudInitStillPending(prev, bootedAt), ...now])].sort();
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

/** Grows drive `disk` to `size` (PVE cannot shrink one: that is an error). */
async function growDisk(ctx: VmContext, node: string, vmid: number, config: QemuConfig, disk: string, size: string): Promise<void> {
  const current = driveSize(config, disk);
  if (current === undefined) throw new Error(`VM ${vmid} has no disk '${disk}' to resize: set disk to one of its disks (${Object.keys(config).filter((k) => codecs.DISK_KEY.test(k)).join(", ")})`);
  const want = codecs.parseSize(size);
  const have = codecs.parseSize(current);
  if (want < have) throw new Error(`disk ${disk} of VM ${vmid} is ${current}; PVE cannot shrink disks to ${size}. Keep the size, or replace the VM.`);
  if (want > have) await runTask(ctx, () => ctx.api.qemu.resize(node, vmid, disk, codecs.formatSize(want)));
}

/**
 * Pool membership from `current` (what cluster/resources shows now) to `want`. A VM is in at
 * most one pool: moving it is one `PUT /pools` with allow-move (never a moment in no pool). A
 * pool no longer declared is left only when it is the one this resource had put the VM in.
 */
export async function convergePool(ctx: VmContext, vmid: number, current: string | undefined, want: string | undefined, before: string | undefined): Promise<void> {
  if (want !== undefined && want !== current) {
    await ctx.api.pools.update(want, { vms: [vmid], ...(current !== undefined ? { allowMove: true } : {}) });
  } else if (want === undefined && current !== undefined && current === before) {
    await ctx.api.pools.update(current, { vms: [vmid], delete: true });
  }
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
async function describeGuest(ctx: VmContext, config: QemuConfig, inputs: CloneInputs): Promise<GuestHint> {
  const custom: Partial<Record<string, string>> = config.cicustom === undefined ? {} : Object.fromEntries(codecs.splitPropertyString(String(config.cicustom)));
  let image: string | undefined;
  if (inputs.templateVmid !== undefined && inputs.templateNode !== undefined) {
    try {
      const tpl = await ctx.api.qemu.getConfig(inputs.templateNode, inputs.templateVmid);
      image = markerOf(tpl).origin;
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

/** converge(), run again for transient failures (convergent-retry.ts): `known` holds for the
 *  first attempt only, a retry looks again. */
export async function convergeRetrying(ctx: VmContext, what: string, node: string, vmid: number, next: CloneInputs, prev: Partial<CloneState> | undefined, known: KnownState = {}): Promise<CloneState> {
  let first: KnownState = known;
  return retryConvergent(ctx, what, () => {
    const k = first;
    first = {};
    return converge(ctx, node, vmid, next, prev, k);
  });
}
