// Permission resolution and the evaluation of a route's `permissions.check`, after
// pve-access-control AccessControl.pm `roles`, RPCEnvironment.pm `compile_acl_path`,
// `permissions`, `check_api2_permissions`, `check_perm_modify` (BEHAVIOURS.md §7, §8).

import type { AccessState } from "./state/access";
import { splitTokenId } from "./state/access";
import type { PoolState } from "./state/pools";
import { AuthContext, EndpointPermissions, PermCheck, PveError } from "./types";

/** privilege → propagate flag (1/0), as GET /access/permissions shows it. */
export type PrivMap = Map<string, number>;
/** roleid → propagate flag. */
type RoleMap = Map<string, number>;

function pathLevels(path: string): string[] {
  if (path === "/") return ["/"];
  const parts = path.split("/").filter((p) => p !== "");
  const out = ["/"];
  for (let i = 0; i < parts.length; i++) out.push("/" + parts.slice(0, i + 1).join("/"));
  return out;
}

/** PVE `roles($cfg, $user, $path)`: walk from `/`; at each level token > user > group;
 *  a level that sets anything replaces what was inherited; above the target only
 *  propagating ACLs count. */
export function rolesOf(access: AccessState, principal: string, path: string): RoleMap {
  if (principal === "root@pam") return new Map([["Administrator", 1]]);
  const tok = splitTokenId(principal);
  if (tok) {
    const owner = access.user(tok.userid);
    const info = owner?.tokens.get(tok.token);
    if (!info) return new Map();
    if (!info.privsep) return rolesOf(access, tok.userid, path);
  }
  const user = tok ? undefined : access.user(principal);
  let roles: RoleMap = new Map();
  const levels = pathLevels(path);
  levels.forEach((level, i) => {
    const node = access.acls.get(level);
    if (!node) return;
    const final = i === levels.length - 1;
    let next: RoleMap | undefined;
    const take = (src: Map<string, number>) => {
      next ??= new Map();
      for (const [role, prop] of src) if (prop || final) next.set(role, prop);
    };
    if (tok) {
      const r = node.token.get(principal);
      if (r) take(r);
    } else {
      const r = node.user.get(principal);
      if (r) take(r);
      if (!next && user) {
        for (const [g, gr] of node.group) if (user.groups.has(g)) take(gr);
      }
    }
    if (next) roles = next;
  });
  return roles;
}

function poolPathsFor(pools: PoolState, path: string): string[] {
  let m = /^\/vms\/(\d+)$/.exec(path);
  if (m) {
    const pool = pools.poolOfVm(Number(m[1]));
    return pool ? [`/pool/${pool}`] : [];
  }
  m = /^\/storage\/([^/]+)$/.exec(path);
  if (m) return pools.poolOfStorage(m[1]).map((p) => `/pool/${p}`);
  return [];
}

function privsFromRoles(access: AccessState, roles: RoleMap): PrivMap {
  const privs: PrivMap = new Map();
  if (roles.has("NoAccess")) return privs;
  for (const [roleid, prop] of roles) {
    const role = access.roles.get(roleid);
    if (!role) continue;
    for (const p of role.privs) privs.set(p, (privs.get(p) ?? 0) || prop);
  }
  return privs;
}

/** RPCEnvironment `permissions($user, $path)`: roles of the path plus pool roles for pool
 *  members (only roles the direct ACLs did not set; a pool NoAccess wins), NoAccess empties,
 *  privsep tokens are intersected with their user's privileges. */
export function effectivePrivileges(access: AccessState, pools: PoolState, principal: string, path: string): PrivMap {
  if (principal === "root@pam") return new Map([...access.privileges].map((p) => [p, 1]));
  const roles = rolesOf(access, principal, path);
  for (const poolPath of poolPathsFor(pools, path)) {
    for (const [role, prop] of rolesOf(access, principal, poolPath)) {
      if (role === "NoAccess") {
        if (!roles.has("NoAccess")) roles.set("NoAccess", prop);
      } else if (!roles.has(role)) {
        roles.set(role, prop);
      }
    }
  }
  let privs = privsFromRoles(access, roles);
  const tok = splitTokenId(principal);
  if (tok) {
    const info = access.user(tok.userid)?.tokens.get(tok.token);
    if (info?.privsep) {
      const userPrivs = effectivePrivileges(access, pools, tok.userid, path);
      const out: PrivMap = new Map();
      for (const [p, prop] of privs) if (userPrivs.has(p)) out.set(p, prop && userPrivs.get(p) ? 1 : 0);
      privs = out;
    }
  }
  return privs;
}

/** RPCEnvironment `get_effective_permissions`: top-level paths, every ACL path, and the
 *  member paths of every pool; paths without any privilege are left out. */
export function allEffectivePermissions(access: AccessState, pools: PoolState, principal: string): Record<string, Record<string, number>> {
  const paths = new Set(["/", "/access", "/access/groups", "/nodes", "/pool", "/sdn", "/storage", "/vms"]);
  for (const p of access.acls.keys()) paths.add(p);
  for (const pool of pools.all()) {
    for (const vmid of pool.vms) paths.add(`/vms/${vmid}`);
    for (const s of pool.storage) paths.add(`/storage/${s}`);
  }
  const out: Record<string, Record<string, number>> = {};
  for (const p of [...paths].sort()) {
    const privs = effectivePrivileges(access, pools, principal, p);
    if (privs.size) out[p] = Object.fromEntries([...privs].sort(([a], [b]) => a.localeCompare(b)));
  }
  return out;
}

// ---- ACL paths ------------------------------------------------------------------------

/** AccessControl `normalize_path`: collapse `//`, drop trailing `/`, add leading `/`. */
export function normalizeAclPath(path: string): string {
  let p = "/" + path;
  p = p.replace(/\/+/g, "/");
  if (p.length > 1) p = p.replace(/\/$/, "");
  return p;
}

const ACL_PATH_RES = [
  /^\/$/,
  /^\/access(\/(groups|realm))?$/,
  /^\/access\/groups\/[A-Za-z0-9.\-_]+$/,
  /^\/access\/realm\/[A-Za-z][A-Za-z0-9.\-_]+$/,
  /^\/nodes$/,
  /^\/nodes\/[A-Za-z0-9.\-_]+$/,
  /^\/pool$/,
  /^\/pool\/[A-Za-z0-9.\-_]+(\/[A-Za-z0-9.\-_]+){0,2}$/,
  /^\/sdn$/,
  /^\/sdn\/(controllers|dns|fabrics|ipams|prefix-lists|route-maps|zones)$/,
  /^\/sdn\/(controllers|dns|fabrics|ipams|prefix-lists|route-maps)\/[A-Za-z0-9.\-_]+$/,
  /^\/sdn\/zones\/[A-Za-z0-9.\-_]+(\/[A-Za-z0-9.\-_]+)?$/,
  /^\/storage$/,
  /^\/storage\/[A-Za-z0-9.\-_]+$/,
  /^\/vms$/,
  /^\/mapping(\/[A-Za-z0-9.\-_]+){0,2}$/,
];

/** AccessControl `check_path`. */
export function isValidAclPath(path: string): boolean {
  const vm = /^\/vms\/(\d+)$/.exec(path);
  if (vm) return Number(vm[1]) >= 100;
  const vlan = /^\/sdn\/zones\/[A-Za-z0-9.\-_]+\/[A-Za-z0-9.\-_]+\/(\d+)$/.exec(path);
  if (vlan) return Number(vlan[1]) >= 1 && Number(vlan[1]) <= 9999;
  return ACL_PATH_RES.some((re) => re.test(path));
}

// ---- check_api2_permissions -----------------------------------------------------------

export interface CheckEnv {
  access: AccessState;
  pools: PoolState;
}

function substitute(template: string, params: Record<string, any>): string {
  return template.replace(/\{([^}]+)\}/g, (_, k) => (params[k] === undefined ? "" : String(params[k])));
}

function permFail(detail?: string): PveError {
  return new PveError(403, detail ? `Permission check failed (${detail})` : "Permission check failed");
}

/** `check_perm_modify`: Permissions.Modify, or the object's allocate privilege. */
export function checkPermModify(env: CheckEnv, auth: AuthContext, path: string, noerr: boolean): boolean {
  const privs = ["Permissions.Modify"];
  if (/^\/storage\/.+$/.test(path)) privs.push("Datastore.Allocate");
  else if (/^\/vms\/.+$/.test(path)) privs.push("VM.Allocate");
  else if (/^\/pool\/.+$/.test(path)) privs.push("Pool.Allocate");
  return checkPrivs(env, auth, path, privs, true, noerr);
}

function checkPrivs(env: CheckEnv, auth: AuthContext, path: string, privs: string[], any: boolean, noerr: boolean): boolean {
  const have = env.access.privileges_of(auth.principal, path);
  if (any) {
    if (privs.some((p) => have.has(p))) return true;
    if (noerr) return false;
    throw permFail(`${path}, ${privs.join("|")}`);
  }
  for (const p of privs) {
    if (!have.has(p)) {
      if (noerr) return false;
      throw permFail(`${path}, ${p}`);
    }
  }
  return true;
}

function userExists(env: CheckEnv, userid: string, noerr: boolean): boolean {
  if (env.access.user(userid)) return true;
  if (noerr) return false;
  throw new PveError(500, `no such user ('${userid}')`);
}

/** Evaluates one `permissions.check` array like RPCEnvironment `check_api2_permissions`. */
export function evalCheck(env: CheckEnv, check: PermCheck, auth: AuthContext, params: Record<string, any>, noerr = false): boolean {
  const [test] = check;
  switch (test) {
    case "perm": {
      const [, tmpl, privs, ...rest] = check as unknown as [string, string, string[], ...unknown[]];
      const opts: Record<string, unknown> = {};
      for (let i = 0; i + 1 < rest.length; i += 2) opts[String(rest[i])] = rest[i + 1];
      if (typeof opts.require_param === "string" && params[opts.require_param] === undefined) {
        if (noerr) return false;
        throw permFail();
      }
      const path = normalizeAclPath(substitute(tmpl, params));
      return checkPrivs(env, auth, path, privs, Boolean(opts.any), noerr);
    }
    case "and": {
      for (const sub of check.slice(1) as PermCheck[]) if (!evalCheck(env, sub, auth, params, noerr)) return false;
      return true;
    }
    case "or": {
      for (const sub of check.slice(1) as PermCheck[]) if (evalCheck(env, sub, auth, params, true)) return true;
      if (noerr) return false;
      throw permFail();
    }
    case "userid-param": {
      const sub = check[1] as string;
      const userid = String(params.userid ?? "");
      if (sub === "self") {
        if (!userExists(env, userid, noerr)) return false;
        if (auth.principal === userid) return true;
        if (noerr) return false;
        throw permFail();
      }
      const realm = userid.split("@").pop() ?? "";
      return checkPrivs(env, auth, `/access/realm/${realm}`, [sub], false, noerr);
    }
    case "userid-group": {
      const [, privs, ...rest] = check as unknown as [string, string[], ...unknown[]];
      const opts: Record<string, unknown> = {};
      for (let i = 0; i + 1 < rest.length; i += 2) opts[String(rest[i])] = rest[i + 1];
      const userid = String(params.userid ?? "");
      const checkExisting = opts.groups_param !== "create";
      if (checkExisting && !userExists(env, userid, noerr)) return false;
      if (checkPrivs(env, auth, "/access/groups", privs, true, true)) return true;
      // Without rights on all groups: the user must be in a group the caller may manage,
      // and every group named in `groups` must be one the caller may manage.
      if (checkExisting) {
        const u = env.access.user(userid)!;
        const ok = [...u.groups].some((g) => checkPrivs(env, auth, `/access/groups/${g}`, privs, true, true));
        if (!ok) {
          if (noerr) return false;
          throw permFail(`/access/groups, ${privs.join("|")}`);
        }
      }
      if (opts.groups_param && typeof params.groups === "string") {
        for (const g of params.groups.split(/[,;\s]+/).filter(Boolean)) {
          if (!checkPrivs(env, auth, `/access/groups/${g}`, privs, true, noerr)) return false;
        }
      } else if (!checkExisting) {
        return checkPrivs(env, auth, "/access/groups", privs, true, noerr);
      }
      return true;
    }
    case "perm-modify": {
      const path = normalizeAclPath(substitute(check[1] as string, params));
      return checkPermModify(env, auth, path, noerr);
    }
    default:
      throw new Error(`unknown permission check '${String(test)}'`);
  }
}

/** Applies a route's permissions like `check_api2_permissions`: `world` → no check,
 *  `all` → any authenticated caller (the handler checks the rest), a `check` → evaluated,
 *  nothing declared → root@pam only. */
export function enforcePermissions(env: CheckEnv, perms: EndpointPermissions | undefined, auth: AuthContext, params: Record<string, any>): void {
  if (auth.principal === "root@pam") return;
  if (!perms) throw permFail("user != root@pam");
  if (perms.user === "world" || perms.user === "all") return;
  if (perms.check) {
    evalCheck(env, perms.check, auth, params);
    return;
  }
  if (perms.handlerChecks) return;
  throw permFail("user != root@pam");
}
