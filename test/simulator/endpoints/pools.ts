// /pools (new style, ?poolid=, nested pools) and the deprecated /pools/{poolid}, after
// pve-manager API2/Pool.pm (BEHAVIOURS.md §6). Members are cluster/resources-style entries
// from the ClusterView.

import { checkPermModify } from "../permissions";
import type { Sim } from "../sim";
import type { PoolRec } from "../state/pools";
import { AuthContext, ParamDefs, PveError, ResourceEntry, SimRequest } from "../types";
import { splitList } from "../validate";

const POOLID = { type: "string", format: "pve-poolid" } as const;
const UPDATE_PARAMS: ParamDefs = {
  "allow-move": { type: "boolean", optional: true, default: 0 },
  comment: { type: "string", optional: true },
  delete: { type: "boolean", optional: true, default: 0 },
  poolid: POOLID,
  storage: { type: "string", optional: true, format: "pve-storage-id-list" },
  vms: { type: "string", optional: true, format: "pve-vmid-list" },
};
const ALLOCATE = { check: ["perm", "/pool/{poolid}", ["Pool.Allocate"]] } as const;

function locked<T>(prefix: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new PveError(500, `${prefix}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export function register(sim: Sim): void {
  const pools = sim.pools;
  const env = { access: sim.access, pools };

  const members = (pool: PoolRec, type?: string): ResourceEntry[] => {
    const out: ResourceEntry[] = [];
    if (type === undefined || type === "qemu" || type === "lxc") {
      for (const vmid of [...pool.vms].sort((a, b) => a - b)) {
        const r = sim.cluster.vmResource(vmid);
        if (!r) continue;
        if (type !== undefined && r.type !== type) continue;
        out.push(r);
      }
    }
    if (type === undefined || type === "storage") {
      for (const sid of [...pool.storage].sort()) {
        const entries = sim.cluster.storageResources(sid);
        if (!entries.length) continue;
        out.push(entries[0]);
      }
    }
    return out;
  };

  const poolEntry = (pool: PoolRec): Record<string, unknown> => {
    const e: Record<string, unknown> = { poolid: pool.poolid };
    if (pool.comment !== undefined) e.comment = pool.comment;
    return e;
  };

  const update = (req: SimRequest) => {
    const p = req.params;
    const auth: AuthContext = req.auth;
    locked("update pools failed", () => {
      const pool = pools.get(p.poolid);
      if (!pool) throw new Error(`pool '${p.poolid}' does not exist`);
      if (p.comment !== undefined) pool.comment = p.comment;
      if (p.vms !== undefined) {
        for (const v of splitList(p.vms)) {
          const vmid = Number(v);
          checkPermModify(env, auth, `/vms/${vmid}`, false);
          if (p.delete) {
            if (!pool.vms.has(vmid)) throw new Error(`VM ${vmid} is not a pool member`);
            pools.removeVm(vmid);
          } else {
            if (pool.vms.has(vmid)) throw new Error(`VM ${vmid} is already a pool member`);
            const existing = pools.poolOfVm(vmid);
            if (existing !== undefined) {
              if (!p["allow-move"]) throw new Error(`VM ${vmid} belongs already to pool '${existing}' and 'allow-move' is not set`);
              sim.access.check(auth, `/pool/${existing}`, ["Pool.Allocate"]);
            }
            pools.placeVm(pool.poolid, vmid);
          }
        }
      }
      if (p.storage !== undefined) {
        for (const sid of splitList(p.storage)) {
          checkPermModify(env, auth, `/storage/${sid}`, false);
          if (p.delete) {
            if (!pool.storage.has(sid)) throw new Error(`Storage '${sid}' is not a pool member`);
            pool.storage.delete(sid);
          } else {
            if (!sim.cluster.storageExists(sid)) throw new Error(`storage '${sid}' does not exist`);
            if (pool.storage.has(sid)) throw new Error(`Storage '${sid}' is already a pool member`);
            pool.storage.add(sid);
          }
        }
      }
    });
    return null;
  };

  const remove = (req: SimRequest) => {
    const poolid: string = req.params.poolid;
    locked("delete pool failed", () => {
      const pool = pools.get(poolid);
      if (!pool) throw new Error(`pool '${poolid}' does not exist`);
      for (const sub of pools.subpools(poolid)) throw new Error(`pool '${poolid}' is not empty (contains pool '${sub}')`);
      for (const vmid of [...pool.vms].sort((a, b) => a - b)) {
        if (sim.cluster.vmExists(vmid)) throw new Error(`pool '${poolid}' is not empty (contains VM ${vmid})`);
      }
      for (const sid of [...pool.storage].sort()) {
        if (sim.cluster.storageExists(sid)) throw new Error(`pool '${poolid}' is not empty (contains storage '${sid}')`);
      }
      pools.delete(poolid);
    });
    return null;
  };

  sim.route({
    method: "GET",
    path: "/pools",
    params: { poolid: { ...POOLID, optional: true }, type: { type: "string", optional: true, enum: ["qemu", "lxc", "storage"], requires: "poolid" } },
    permissions: { user: "all" },
    handler: (req) => {
      if (req.params.poolid !== undefined) {
        const pool = pools.require(req.params.poolid);
        sim.access.check(req.auth, `/pool/${pool.poolid}`, ["Pool.Audit"]);
        return [{ ...poolEntry(pool), members: members(pool, req.params.type) }];
      }
      return pools.all().filter((p) => sim.access.has(req.auth, `/pool/${p.poolid}`, "Pool.Audit")).map(poolEntry);
    },
  });

  sim.route({
    method: "POST",
    path: "/pools",
    params: { comment: { type: "string", optional: true }, poolid: POOLID },
    permissions: ALLOCATE as any,
    handler: (req) => {
      locked("create pool failed", () => {
        const id: string = req.params.poolid;
        if (pools.exists(id)) throw new Error(`pool '${id}' already exists`);
        pools.create(id, req.params.comment);
      });
      return null;
    },
  });

  sim.route({ method: "PUT", path: "/pools", params: UPDATE_PARAMS, permissions: ALLOCATE as any, handler: update });
  sim.route({ method: "DELETE", path: "/pools", params: { poolid: POOLID }, permissions: ALLOCATE as any, handler: remove });

  sim.route({
    method: "GET",
    path: "/pools/{poolid}",
    params: { poolid: POOLID, type: { type: "string", optional: true, enum: ["qemu", "lxc", "storage"] } },
    permissions: { check: ["perm", "/pool/{poolid}", ["Pool.Audit"]] },
    handler: (req) => {
      const pool = pools.require(req.params.poolid);
      const e: Record<string, unknown> = { members: members(pool, req.params.type) };
      if (pool.comment !== undefined) e.comment = pool.comment;
      return e;
    },
  });
  sim.route({ method: "PUT", path: "/pools/{poolid}", params: UPDATE_PARAMS, permissions: ALLOCATE as any, handler: update });
  sim.route({ method: "DELETE", path: "/pools/{poolid}", params: { poolid: POOLID }, permissions: ALLOCATE as any, handler: remove });
}
