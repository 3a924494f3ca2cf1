import { PveApiError } from "./errors";
import { apiPath } from "./path";
import { toNumber } from "./coerce";
import type { RequestOptions, Requester } from "./requester";

export interface PoolMember {
  id: string;
  type: "qemu" | "lxc" | "openvz" | "storage" | string;
  node: string;
  vmid?: number;
  storage?: string;
  [key: string]: unknown;
}

export interface PoolInfo {
  poolid: string;
  comment?: string;
  members: PoolMember[];
}

export interface PoolUpdate {
  comment?: string;
  vms?: number[];
  storage?: string[];
  /** Remove the given vms/storage instead of adding them. */
  delete?: boolean;
  /** Move guests that belong to another pool. */
  allowMove?: boolean;
}

function normaliseMembers(members: PoolMember[] | undefined): PoolMember[] {
  return (members ?? []).map((m) => (m.vmid === undefined ? m : { ...m, vmid: toNumber(m.vmid) }));
}

function updateParams(update: PoolUpdate): Record<string, string | number | boolean | number[] | string[] | undefined> {
  return {
    comment: update.comment,
    vms: update.vms?.length ? update.vms : undefined,
    storage: update.storage?.length ? update.storage : undefined,
    delete: update.delete,
    "allow-move": update.allowMove,
  };
}

/** True when PVE is too old for the new-style /pools?poolid= calls (PVE < 8.1). */
export function isLegacyPoolApiNeeded(err: unknown): boolean {
  if (!(err instanceof PveApiError)) return false;
  if (err.status === 501) return true;
  return err.kind === "validation" && ("poolid" in err.errors || "type" in err.errors);
}

/**
 * Resource pools. New style (`/pools?poolid=`, nested `a/b/c`) by default; the deprecated
 * `/pools/{poolid}` calls are kept for older nodes, and the `...Compat` forms fall back to them.
 */
export class PoolsApi {
  constructor(private readonly r: Requester) {}

  async list(opts?: RequestOptions): Promise<PoolInfo[]> {
    const rows = await this.r.get<PoolInfo[]>("/pools", undefined, opts);
    return rows.map((p) => ({ ...p, members: normaliseMembers(p.members) }));
  }

  async get(poolid: string, opts?: RequestOptions): Promise<PoolInfo> {
    const rows = await this.r.get<PoolInfo[]>("/pools", { poolid }, opts);
    const pool = rows.find((p) => p.poolid === poolid) ?? rows[0];
    if (!pool) {
      throw new PveApiError({ method: "GET", path: `/pools?poolid=${poolid}`, endpoint: "", status: 500, bodyMessage: `pool '${poolid}' does not exist` });
    }
    return { ...pool, poolid: pool.poolid ?? poolid, members: normaliseMembers(pool.members) };
  }

  async create(poolid: string, comment?: string, opts?: RequestOptions): Promise<void> {
    await this.r.post("/pools", { poolid, comment }, opts);
  }

  async update(poolid: string, update: PoolUpdate, opts?: RequestOptions): Promise<void> {
    await this.r.put("/pools", { poolid, ...updateParams(update) }, opts);
  }

  async delete(poolid: string, opts?: RequestOptions): Promise<void> {
    await this.r.del("/pools", { poolid }, opts);
  }

  // Deprecated API (no nested pools).

  async getLegacy(poolid: string, opts?: RequestOptions): Promise<PoolInfo> {
    const data = await this.r.get<{ comment?: string; members?: PoolMember[] }>(apiPath`/pools/${poolid}`, undefined, opts);
    return { poolid, comment: data.comment, members: normaliseMembers(data.members) };
  }

  async updateLegacy(poolid: string, update: PoolUpdate, opts?: RequestOptions): Promise<void> {
    await this.r.put(apiPath`/pools/${poolid}`, updateParams(update), opts);
  }

  async deleteLegacy(poolid: string, opts?: RequestOptions): Promise<void> {
    await this.r.del(apiPath`/pools/${poolid}`, undefined, opts);
  }

  // New style first, the deprecated call when the node does not know it.

  async getCompat(poolid: string, opts?: RequestOptions): Promise<PoolInfo> {
    try {
      return await this.get(poolid, opts);
    } catch (err) {
      if (isLegacyPoolApiNeeded(err)) return this.getLegacy(poolid, opts);
      throw err;
    }
  }

  async updateCompat(poolid: string, update: PoolUpdate, opts?: RequestOptions): Promise<void> {
    try {
      await this.update(poolid, update, opts);
    } catch (err) {
      if (isLegacyPoolApiNeeded(err)) await this.updateLegacy(poolid, update, opts);
      else throw err;
    }
  }

  async deleteCompat(poolid: string, opts?: RequestOptions): Promise<void> {
    try {
      await this.delete(poolid, opts);
    } catch (err) {
      if (isLegacyPoolApiNeeded(err)) await this.deleteLegacy(poolid, opts);
      else throw err;
    }
  }
}
