import type { Params } from "./http";
import { apiPath } from "./path";
import { coerceNumbers, requireNumber, toBool } from "./coerce";
import type { RequestOptions, Requester } from "./requester";
import { PveApiError, isVmidInUse } from "./errors";

export interface PveVersion {
  version: string;
  release: string;
  repoid: string;
  console?: string;
}

export type ClusterResourceType = "vm" | "storage" | "node" | "sdn";

export interface ClusterResource {
  id: string;
  type: string;
  node?: string;
  vmid?: number;
  name?: string;
  status?: string;
  template?: boolean;
  tags?: string;
  pool?: string;
  lock?: string;
  storage?: string;
  content?: string;
  shared?: boolean;
  maxmem?: number;
  maxdisk?: number;
  maxcpu?: number;
  [key: string]: unknown;
}

export interface HaResource {
  sid: string;
  state?: string;
  type?: string;
  group?: string;
  comment?: string;
  max_relocate?: number;
  max_restart?: number;
  digest?: string;
  [key: string]: unknown;
}

export interface HaResourceCreate {
  /** `vm:100` or `100`. */
  sid: string;
  state?: "started" | "stopped" | "enabled" | "disabled" | "ignored";
  comment?: string;
  group?: string;
  max_relocate?: number;
  max_restart?: number;
  failback?: boolean;
}

const RESOURCE_NUMBERS = ["vmid", "maxmem", "maxdisk", "maxcpu", "mem", "disk", "cpu", "uptime", "netin", "netout", "diskread", "diskwrite"];

export class ClusterApi {
  constructor(private readonly r: Requester) {}

  version(opts?: RequestOptions): Promise<PveVersion> {
    return this.r.get<PveVersion>("/version", undefined, opts);
  }

  /** The lowest free VMID, or (with `vmid`) a check that this one is free. PVE answers a string. */
  async nextId(vmid?: number, opts?: RequestOptions): Promise<number> {
    const raw = await this.r.get<string | number>("/cluster/nextid", vmid === undefined ? undefined : { vmid }, opts);
    return requireNumber(raw, "next VMID");
  }

  /**
   * Whether VMID `vmid` is in use. PVE leaves out of every listing the VMs a principal lacks
   * VM.Audit on, while `GET /cluster/nextid?vmid=N` (open to every user) refuses a taken id.
   */
  async vmidTaken(vmid: number, opts?: RequestOptions): Promise<boolean> {
    try {
      await this.nextId(vmid, opts);
      return false;
    } catch (err) {
      if (err instanceof PveApiError && isVmidInUse(err, vmid)) return true;
      throw err;
    }
  }

  async resources(type?: ClusterResourceType, opts?: RequestOptions): Promise<ClusterResource[]> {
    const rows = await this.r.get<ClusterResource[]>("/cluster/resources", type ? { type } : undefined, opts);
    return rows.map((row) => {
      const out = coerceNumbers(row, RESOURCE_NUMBERS);
      if (row.template !== undefined) out.template = toBool(row.template);
      if (row.shared !== undefined) out.shared = toBool(row.shared);
      return out;
    });
  }

  haResources(type?: "vm" | "ct", opts?: RequestOptions): Promise<HaResource[]> {
    return this.r.get<HaResource[]>("/cluster/ha/resources", type ? { type } : undefined, opts);
  }

  haResource(sid: string, opts?: RequestOptions): Promise<HaResource> {
    return this.r.get<HaResource>(apiPath`/cluster/ha/resources/${sid}`, undefined, opts);
  }

  async createHaResource(params: HaResourceCreate, opts?: RequestOptions): Promise<void> {
    await this.r.post("/cluster/ha/resources", params as unknown as Params, opts);
  }

  async deleteHaResource(sid: string, params: { purge?: boolean } = {}, opts?: RequestOptions): Promise<void> {
    await this.r.del(apiPath`/cluster/ha/resources/${sid}`, params, opts);
  }
}
