// Shared setup for the VM lifecycle tests: a simulator with a nonzero latency model, the
// provider's context pointed at it, and a cloud-init template built like the seed's recipe.
import { PREPARED_LOCAL_CONTENT } from "../../../simulator/state/cluster";
import { clearClients, type PveClient } from "../../../../provider/proxmox";
import { clearVmidAllocators } from "../../../../provider/proxmox/vmid-allocator";
import { client, configureForTests } from "../../../../provider/resources/context";
import { clearTaskSlots } from "../../../../provider/resources/vm/task-slots";
import { startSimulator, type RunningSimulator } from "../../../simulator";
import type { SimOptions } from "../../../simulator/sim";

export interface VmSim {
  s: RunningSimulator;
  api: PveClient;
  /** The simulator's cluster state (VMs, tasks, locks). */
  cluster: any;
  stop(): Promise<void>;
}

export async function startVmSim(opts: SimOptions = {}, extraConfig: Record<string, string> = {}): Promise<VmSim> {
  // `local` as an admin prepared it (snippets and import content), unless the test says otherwise
  const s = await startSimulator({ seed: 7, timeFactor: 0.02, ...opts, cluster: { localContent: PREPARED_LOCAL_CONTENT, ...(opts.cluster ?? {}) } });
  clearClients();
  clearVmidAllocators();
  clearTaskSlots();
  configureForTests({ endpoint: s.url, apiToken: s.rootToken, caCert: s.caCert, ...extraConfig });
  return { s, api: client(), cluster: s.sim.ext.cluster, stop: () => s.stop() };
}

/** The seed's template recipe, through the API: disk, cloud-init drive, serial console, NIC, agent. */
export async function makeTemplate(api: PveClient, vmid: number, extra: Record<string, string | number> = {}, node = "pve1"): Promise<void> {
  await api.qemu.createAndWait(node, vmid, {
    name: `tpl${vmid}`,
    memory: 2048,
    cores: 2,
    scsihw: "virtio-scsi-pci",
    scsi0: "local-lvm:8",
    ide2: "local-lvm:cloudinit",
    boot: "order=scsi0",
    serial0: "socket",
    vga: "serial0",
    net0: "virtio,bridge=vmbr0",
    // DHCP for net0 through cloud-init, as PVE's cloud-init guide sets up a template: without an
    // ipconfig0 PVE's network-config lists no NIC and the guest configures none
    ipconfig0: "ip=dhcp",
    agent: "1",
    ...extra,
  });
  await api.qemu.templateAndWait(node, vmid);
}

/** API calls (method + route template) the simulator saw since `from`. */
export function callsSince(s: RunningSimulator, from: number): string[] {
  return s.sim.requestLog.slice(from).map((e) => `${e.method} ${e.template ?? e.path}`);
}
