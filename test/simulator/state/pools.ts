// Pools as user.cfg keeps them (pve-manager Pool.pm, pve-access-control
// `add_vm_to_pool` / `remove_vm_from_pool`): a pool has a comment, VM ids and storage ids;
// a VM belongs to at most one pool; nested pools `a/b/c`.

import type { Sim } from "../sim";
import { PoolView, PveError } from "../types";

export interface PoolRec {
  poolid: string;
  comment?: string;
  vms: Set<number>;
  storage: Set<string>;
}

export const POOLID_RE = /^[A-Za-z][A-Za-z0-9.\-_]*(\/[A-Za-z][A-Za-z0-9.\-_]*){0,2}$/;

export class PoolState implements PoolView {
  private readonly pools = new Map<string, PoolRec>();
  /** vmid → poolid (user.cfg `vms`). */
  private readonly vmPool = new Map<number, string>();

  constructor(private readonly sim: Sim) {}

  all(): PoolRec[] {
    return [...this.pools.values()].sort((a, b) => a.poolid.localeCompare(b.poolid));
  }

  get(poolid: string): PoolRec | undefined {
    return this.pools.get(poolid);
  }

  /** `pool 'x' does not exist` (500). */
  require(poolid: string): PoolRec {
    const p = this.pools.get(poolid);
    if (!p) throw new PveError(500, `pool '${poolid}' does not exist`);
    return p;
  }

  create(poolid: string, comment?: string): PoolRec {
    if (this.pools.has(poolid)) throw new Error(`pool '${poolid}' already exists`);
    const slash = poolid.lastIndexOf("/");
    if (slash > 0) {
      const parent = poolid.slice(0, slash);
      if (!this.pools.has(parent)) throw new Error(`parent '${parent}' does not exist`);
    }
    const rec: PoolRec = { poolid, vms: new Set(), storage: new Set() };
    if (comment !== undefined) rec.comment = comment;
    this.pools.set(poolid, rec);
    return rec;
  }

  subpools(poolid: string): string[] {
    return [...this.pools.keys()].filter((p) => p.startsWith(poolid + "/") && !p.slice(poolid.length + 1).includes("/")).sort();
  }

  /** Removes the pool and its ACLs (PVE `delete_pool_acl`); members are left alone. */
  delete(poolid: string): void {
    const p = this.pools.get(poolid);
    if (!p) return;
    for (const vmid of p.vms) if (this.vmPool.get(vmid) === poolid) this.vmPool.delete(vmid);
    this.pools.delete(poolid);
    this.sim.access.removeAclsAt(`/pool/${poolid}`);
  }

  // ---- PoolView -----------------------------------------------------------------------

  exists(poolid: string): boolean {
    return this.pools.has(poolid);
  }

  poolOfVm(vmid: number): string | undefined {
    return this.vmPool.get(vmid);
  }

  /** AccessControl `add_vm_to_pool` as used by create/clone with `pool=`. */
  addVm(poolid: string, vmid: number): void {
    const p = this.require(poolid);
    const existing = this.vmPool.get(vmid);
    if (existing !== undefined && existing !== poolid) {
      throw new PveError(500, `VM ${vmid} belongs already to pool '${existing}'`);
    }
    p.vms.add(vmid);
    this.vmPool.set(vmid, poolid);
  }

  /** Moves or adds without checks (update_pool with allow-move already decided). */
  placeVm(poolid: string, vmid: number): void {
    const old = this.vmPool.get(vmid);
    if (old !== undefined) this.pools.get(old)?.vms.delete(vmid);
    this.require(poolid).vms.add(vmid);
    this.vmPool.set(vmid, poolid);
  }

  removeVm(vmid: number): void {
    const old = this.vmPool.get(vmid);
    if (old !== undefined) this.pools.get(old)?.vms.delete(vmid);
    this.vmPool.delete(vmid);
  }

  poolOfStorage(storage: string): string[] {
    return this.all()
      .filter((p) => p.storage.has(storage))
      .map((p) => p.poolid);
  }
}
