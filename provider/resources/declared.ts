// What the running deployment itself declares, as seen by check() in this provider process.
//
// One provider process serves every dynamic resource of a program run (a preview or an up), and
// the engine checks a resource before anything that depends on it: a Template given
// `pool: pool.poolid` is checked after that Pool. During a preview the Pool does not exist yet,
// but its `poolid` is already known (the engine previews a create with its inputs as outputs),
// so a reference check that only asked PVE would refuse a pool, storage or role the same stack
// is about to create. Pool, Storage and Role record here what they declare; reference checks
// accept a declared id (judging a declared storage by its declared content and nodes, the state
// it will have after this run) and ask PVE about the rest.
//
// A literal name that no resource of the run declares before the check (no output passed, no
// dependsOn) is looked up on the cluster: declare the dependency to reference what the stack
// creates.

export interface DeclaredStorage {
  content?: string[];
  nodes?: string[];
}

const pools = new Set<string>();
const roles = new Set<string>();
const storages = new Map<string, DeclaredStorage>();

export const declare = {
  pool(poolid: string): void {
    pools.add(poolid);
  },
  role(roleid: string): void {
    roles.add(roleid);
  },
  storage(storage: string, details: DeclaredStorage): void {
    storages.set(storage, details);
  },
};

export const declared = {
  pool: (poolid: string): boolean => pools.has(poolid),
  role: (roleid: string): boolean => roles.has(roleid),
  storage: (storage: string): DeclaredStorage | undefined => storages.get(storage),
};

/** Forgets every declaration (tests). */
export function clearDeclared(): void {
  pools.clear();
  roles.clear();
  storages.clear();
}
