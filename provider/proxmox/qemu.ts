import type { Params } from "./http";
import { apiPath } from "./path";
import { coerceNumbers, toBool } from "./coerce";
import type { RequestOptions, Requester } from "./requester";
import type { TaskResult, TasksApi, WaitForTaskOptions } from "./tasks";

/** A VM config as PVE returns it: keys as in POST /nodes/{node}/qemu, values strings or numbers. */
export interface QemuConfig {
  digest?: string;
  name?: string;
  tags?: string;
  template?: number;
  lock?: string;
  memory?: number | string;
  cores?: number;
  sockets?: number;
  [key: string]: string | number | undefined;
}

/** Parameters for create/update: PVE option names, property strings already formatted. */
export type QemuParams = Params;

export interface VmListEntry {
  vmid: number;
  status: "running" | "stopped";
  name?: string;
  template?: boolean;
  tags?: string;
  lock?: string;
  maxmem?: number;
  maxdisk?: number;
  cpus?: number;
  uptime?: number;
  [key: string]: unknown;
}

export interface VmStatus {
  vmid: number;
  status: "running" | "stopped";
  qmpstatus?: string;
  name?: string;
  lock?: string;
  template?: boolean;
  agent?: boolean;
  uptime?: number;
  maxmem?: number;
  maxdisk?: number;
  cpus?: number;
  pid?: number;
  tags?: string;
  ha?: { managed: number; [key: string]: unknown };
  [key: string]: unknown;
}

export interface PendingEntry {
  key: string;
  value?: string | number;
  pending?: string | number;
  /** 1 = pending delete, 2 = pending forced delete. */
  delete?: number;
}

export interface CloneParams {
  newid: number;
  name?: string;
  description?: string;
  full?: boolean;
  pool?: string;
  storage?: string;
  target?: string;
  snapname?: string;
  format?: "raw" | "qcow2" | "vmdk";
  bwlimit?: number;
}

export interface DeleteVmParams {
  purge?: boolean;
  destroyUnreferencedDisks?: boolean;
  skiplock?: boolean;
}

export interface MigrateParams {
  target: string;
  online?: boolean;
  withLocalDisks?: boolean;
  targetstorage?: string;
  force?: boolean;
  bwlimit?: number;
}

export interface GuestIpAddress {
  "ip-address": string;
  "ip-address-type": "ipv4" | "ipv6" | string;
  prefix: number;
}

export interface GuestNetworkInterface {
  name: string;
  "hardware-address"?: string;
  "ip-addresses"?: GuestIpAddress[];
  statistics?: Record<string, number>;
}

/** The guest agent either answers, or says (inside a 200) that it cannot. */
export type AgentNetworkResult =
  | { ok: true; interfaces: GuestNetworkInterface[] }
  | { ok: false; errorClass: string; description: string };

export interface CloudInitEntry {
  key: string;
  value?: string;
  pending?: string;
  delete?: number;
}

const WRITE = { retryOnLocked: true } as const;

function vmPath(node: string, vmid: number): string {
  return apiPath`/nodes/${node}/qemu/${vmid}`;
}

function normaliseListEntry<T extends { template?: unknown; agent?: unknown }>(row: T, numbers: string[]): T {
  const out = coerceNumbers(row, numbers) as T & Record<string, unknown>;
  if (row.template !== undefined) out.template = toBool(row.template);
  if (row.agent !== undefined) out.agent = toBool(row.agent);
  return out;
}

const VM_NUMBERS = ["vmid", "maxmem", "maxdisk", "mem", "disk", "cpus", "cpu", "uptime", "pid", "netin", "netout", "diskread", "diskwrite"];

/** QEMU VMs on a node. Calls that start a task return its UPID; the `...AndWait` forms wait for it. */
export class QemuApi {
  constructor(
    private readonly r: Requester,
    private readonly tasks: TasksApi,
  ) {}

  async list(node: string, params: { full?: boolean } = {}, opts?: RequestOptions): Promise<VmListEntry[]> {
    const rows = await this.r.get<VmListEntry[]>(apiPath`/nodes/${node}/qemu`, params, opts);
    return rows.map((row) => normaliseListEntry(row, VM_NUMBERS));
  }

  create(node: string, vmid: number, params: QemuParams, opts?: RequestOptions): Promise<string> {
    return this.r.post<string>(apiPath`/nodes/${node}/qemu`, { ...params, vmid }, opts);
  }

  async getConfig(node: string, vmid: number, params: { current?: boolean; snapshot?: string } = {}, opts?: RequestOptions): Promise<QemuConfig> {
    return this.r.get<QemuConfig>(`${vmPath(node, vmid)}/config`, params, opts);
  }

  /** PUT config: synchronous; returns when the change is written (or pending). */
  async updateConfigSync(node: string, vmid: number, params: QemuParams, opts?: RequestOptions): Promise<void> {
    await this.r.put(`${vmPath(node, vmid)}/config`, params, { ...WRITE, ...opts });
  }

  /** POST config: asynchronous; a UPID, or null when PVE finished within `background_delay`. */
  updateConfig(node: string, vmid: number, params: QemuParams, opts?: RequestOptions): Promise<string | null> {
    return this.r.post<string | null>(`${vmPath(node, vmid)}/config`, params, { ...WRITE, ...opts });
  }

  pending(node: string, vmid: number, opts?: RequestOptions): Promise<PendingEntry[]> {
    return this.r.get<PendingEntry[]>(`${vmPath(node, vmid)}/pending`, undefined, opts);
  }

  clone(node: string, vmid: number, params: CloneParams, opts?: RequestOptions): Promise<string> {
    return this.r.post<string>(`${vmPath(node, vmid)}/clone`, { ...params }, { ...WRITE, ...opts });
  }

  template(node: string, vmid: number, params: { disk?: string } = {}, opts?: RequestOptions): Promise<string> {
    return this.r.post<string>(`${vmPath(node, vmid)}/template`, params, { ...WRITE, ...opts });
  }

  /** `size` as PVE takes it: `+10G` grows by, `32G` sets. PVE < 8.0 answers null (synchronous). */
  resize(node: string, vmid: number, disk: string, size: string, params: { digest?: string } = {}, opts?: RequestOptions): Promise<string | null> {
    return this.r.put<string | null>(`${vmPath(node, vmid)}/resize`, { disk, size, ...params }, { ...WRITE, ...opts });
  }

  async status(node: string, vmid: number, opts?: RequestOptions): Promise<VmStatus> {
    const raw = await this.r.get<VmStatus>(`${vmPath(node, vmid)}/status/current`, undefined, opts);
    return normaliseListEntry(raw, VM_NUMBERS);
  }

  start(node: string, vmid: number, params: { timeout?: number } = {}, opts?: RequestOptions): Promise<string> {
    return this.r.post<string>(`${vmPath(node, vmid)}/status/start`, params, { ...WRITE, ...opts });
  }

  stop(node: string, vmid: number, params: { timeout?: number; "overrule-shutdown"?: boolean } = {}, opts?: RequestOptions): Promise<string> {
    return this.r.post<string>(`${vmPath(node, vmid)}/status/stop`, params, { ...WRITE, ...opts });
  }

  shutdown(node: string, vmid: number, params: { timeout?: number; forceStop?: boolean } = {}, opts?: RequestOptions): Promise<string> {
    return this.r.post<string>(`${vmPath(node, vmid)}/status/shutdown`, params, { ...WRITE, ...opts });
  }

  delete(node: string, vmid: number, params: DeleteVmParams = {}, opts?: RequestOptions): Promise<string> {
    return this.r.del<string>(
      vmPath(node, vmid),
      { purge: params.purge, "destroy-unreferenced-disks": params.destroyUnreferencedDisks, skiplock: params.skiplock },
      { ...WRITE, ...opts },
    );
  }

  migrate(node: string, vmid: number, params: MigrateParams, opts?: RequestOptions): Promise<string> {
    const { withLocalDisks, ...rest } = params;
    return this.r.post<string>(`${vmPath(node, vmid)}/migrate`, { ...rest, "with-local-disks": withLocalDisks }, { ...WRITE, ...opts });
  }

  async agentNetworkInterfaces(node: string, vmid: number, opts?: RequestOptions): Promise<AgentNetworkResult> {
    const data = await this.r.get<{ result: GuestNetworkInterface[] | { error: { class: string; desc: string } } }>(
      `${vmPath(node, vmid)}/agent/network-get-interfaces`,
      undefined,
      opts,
    );
    const result = data?.result;
    if (Array.isArray(result)) return { ok: true, interfaces: result };
    const error = (result as { error?: { class?: string; desc?: string } } | undefined)?.error;
    return { ok: false, errorClass: error?.class ?? "Unknown", description: error?.desc ?? "the guest agent gave no result" };
  }

  cloudinit(node: string, vmid: number, opts?: RequestOptions): Promise<CloudInitEntry[]> {
    return this.r.get<CloudInitEntry[]>(`${vmPath(node, vmid)}/cloudinit`, undefined, opts);
  }

  /** Regenerates the cloud-init drive from the current config. */
  async regenerateCloudinit(node: string, vmid: number, opts?: RequestOptions): Promise<void> {
    await this.r.put(`${vmPath(node, vmid)}/cloudinit`, undefined, { ...WRITE, ...opts });
  }

  cloudinitDump(node: string, vmid: number, type: "user" | "network" | "meta", opts?: RequestOptions): Promise<string> {
    return this.r.get<string>(`${vmPath(node, vmid)}/cloudinit/dump`, { type }, opts);
  }

  // Convenience forms that wait for the task.

  async createAndWait(node: string, vmid: number, params: QemuParams, wait?: WaitForTaskOptions): Promise<TaskResult> {
    return this.tasks.wait(await this.create(node, vmid, params, { signal: wait?.signal }), wait);
  }

  async cloneAndWait(node: string, vmid: number, params: CloneParams, wait?: WaitForTaskOptions): Promise<TaskResult> {
    return this.tasks.wait(await this.clone(node, vmid, params, { signal: wait?.signal }), wait);
  }

  /** Waits when PVE answered with a task; returns null when the update completed synchronously. */
  async updateConfigAndWait(node: string, vmid: number, params: QemuParams, wait?: WaitForTaskOptions): Promise<TaskResult | null> {
    const upid = await this.updateConfig(node, vmid, params, { signal: wait?.signal });
    return upid ? this.tasks.wait(upid, wait) : null;
  }

  async templateAndWait(node: string, vmid: number, params: { disk?: string } = {}, wait?: WaitForTaskOptions): Promise<TaskResult> {
    return this.tasks.wait(await this.template(node, vmid, params, { signal: wait?.signal }), wait);
  }

  async resizeAndWait(node: string, vmid: number, disk: string, size: string, wait?: WaitForTaskOptions): Promise<TaskResult | null> {
    const upid = await this.resize(node, vmid, disk, size, {}, { signal: wait?.signal });
    return upid ? this.tasks.wait(upid, wait) : null;
  }

  async startAndWait(node: string, vmid: number, wait?: WaitForTaskOptions): Promise<TaskResult> {
    return this.tasks.wait(await this.start(node, vmid, {}, { signal: wait?.signal }), wait);
  }

  async stopAndWait(node: string, vmid: number, wait?: WaitForTaskOptions): Promise<TaskResult> {
    return this.tasks.wait(await this.stop(node, vmid, {}, { signal: wait?.signal }), wait);
  }

  async shutdownAndWait(node: string, vmid: number, params: { timeout?: number; forceStop?: boolean } = {}, wait?: WaitForTaskOptions): Promise<TaskResult> {
    return this.tasks.wait(await this.shutdown(node, vmid, params, { signal: wait?.signal }), wait);
  }

  async deleteAndWait(node: string, vmid: number, params: DeleteVmParams = {}, wait?: WaitForTaskOptions): Promise<TaskResult> {
    return this.tasks.wait(await this.delete(node, vmid, params, { signal: wait?.signal }), wait);
  }

  async migrateAndWait(node: string, vmid: number, params: MigrateParams, wait?: WaitForTaskOptions): Promise<TaskResult> {
    return this.tasks.wait(await this.migrate(node, vmid, params, { signal: wait?.signal }), wait);
  }
}
