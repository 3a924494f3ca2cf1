// Parameter definitions and checks shared by the cluster part's endpoint modules.
import type { Sim } from "../sim";
import { AuthContext, ParamDef, PveError } from "../types";
import { Cluster } from "../state/cluster";
import { keyRequirement } from "../qemu-config";

export const NODE: ParamDef = { type: "string", format: "pve-node" };
export const VMID: ParamDef = { type: "integer", format: "pve-vmid", minimum: 100, maximum: 999999999 };
export const OPT_VMID: ParamDef = { ...VMID, optional: true };
export const STORAGE: ParamDef = { type: "string", format: "pve-storage-id" };
export const OPT_STORAGE: ParamDef = { ...STORAGE, optional: true };
export const SKIPLOCK: ParamDef = { type: "boolean", optional: true };
export const DIGEST: ParamDef = { type: "string", maxLength: 40, optional: true };

/** A request for an unknown node: pveproxy cannot resolve it. */
export function checkNode(c: Cluster, node: string): void {
  if (!c.hasNode(node)) {
    throw new PveError(500, `hostname lookup '${node}' failed - failed to get address info for: ${node}: Name or service not known`);
  }
}

/** `skiplock` is for root@pam only. */
export function checkSkiplock(sim: Sim, auth: AuthContext, skiplock: unknown): boolean {
  if (!skiplock) return false;
  if (auth.principal !== "root@pam") throw new PveError(400, "Parameter verification failed.", { skiplock: "Only root may use this option." });
  return true;
}

export function hasAll(sim: Sim, auth: AuthContext, path: string, privs: string[]): boolean {
  return privs.every((p) => sim.access.has(auth, path, p));
}

/** `check_vm_perm`: the privileges on `/pool/<pool>` suffice, else on `/vms/<vmid>`. */
export function checkVmPerm(sim: Sim, auth: AuthContext, vmid: number, pool: string | undefined, privs: string[], any = false): void {
  if (pool && (any ? privs.some((p) => hasAll(sim, auth, `/pool/${pool}`, [p])) : hasAll(sim, auth, `/pool/${pool}`, privs))) return;
  sim.access.check(auth, `/vms/${vmid}`, privs, any);
}

/** QEMU `$check_vm_modify_config_perm` (and the drive and serial checks beside it) for the keys
 *  a create or config update sets or deletes; root@pam itself (not its tokens) passes all. */
export function checkConfigKeys(sim: Sim, auth: AuthContext, vmid: number, pool: string | undefined, keys: Array<[string, string | undefined]>): void {
  if (auth.userid === "root@pam" && auth.tokenid === undefined) return;
  for (const [key, value] of keys) {
    const r = keyRequirement(key, value);
    if (r === "root") {
      throw new PveError(500, /^serial\d+$/.test(key) ? `only root can set '${key}' config for real devices` : `only root can set '${key}' config`);
    }
    checkVmPerm(sim, auth, vmid, pool, r.privs, r.any);
    if (r.onRoot) sim.access.check(auth, "/", r.onRoot);
  }
}

export const sleepReal = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
