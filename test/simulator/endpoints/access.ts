// /access/*: users, tokens, groups, roles, ACLs, permissions, ticket, password.
// After pve-access-control API2/{User,Group,Role,ACL,AccessControl}.pm; texts per
// BEHAVIOURS.md §1, §7–§10 and the recorded fixtures.

import { allEffectivePermissions, effectivePrivileges, isValidAclPath, normalizeAclPath } from "../permissions";
import type { Sim } from "../sim";
import { AclType, REALMS, splitTokenId, UserRec } from "../state/access";
import { AuthContext, ParamDef, paramError, PveError, SimRequest } from "../types";
import { splitList } from "../validate";

const USERID: ParamDef = { type: "string", format: "pve-userid", maxLength: 64 };
const TOKENID: ParamDef = { type: "string", pattern: "[A-Za-z][A-Za-z0-9.\\-_]+" };
const USER_FIELDS = {
  comment: { type: "string", optional: true, maxLength: 2048 },
  email: { type: "string", optional: true, format: "email-opt", maxLength: 254 },
  enable: { type: "boolean", optional: true, default: 1 },
  expire: { type: "integer", optional: true, minimum: 0 },
  firstname: { type: "string", optional: true, maxLength: 1024 },
  groups: { type: "string", optional: true, format: "pve-groupid-list" },
  keys: { type: "string", optional: true, pattern: "[0-9a-zA-Z!=]{0,4096}" },
  lastname: { type: "string", optional: true, maxLength: 1024 },
} satisfies Record<string, ParamDef>;

/** PVE's `lock_user_config($code, $errmsg)`: plain errors get the prefix, parameter
 *  errors (400) pass through. */
function locked<T>(prefix: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof PveError && e.status === 400) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new PveError(500, `${prefix}: ${msg}`);
  }
}

function die(msg: string): never {
  throw new Error(msg);
}

function realmOf(userid: string): string {
  return userid.slice(userid.lastIndexOf("@") + 1);
}

function tokenInfo(t: { comment?: string; expire?: number; privsep: number }): Record<string, unknown> {
  const out: Record<string, unknown> = { privsep: t.privsep, expire: t.expire ?? 0 };
  if (t.comment !== undefined) out.comment = t.comment;
  return out;
}

function userEntry(u: UserRec): Record<string, unknown> {
  const e: Record<string, unknown> = { userid: u.userid, enable: u.enable, expire: u.expire };
  for (const k of ["firstname", "lastname", "email", "comment", "keys"] as const) if (u[k] !== undefined) e[k] = u[k];
  return e;
}

export function register(sim: Sim): void {
  const access = sim.access;
  const privsOf = (auth: AuthContext, path: string) => effectivePrivileges(access, sim.pools, auth.principal, path);
  const anyOf = (auth: AuthContext, path: string, privs: string[]) => {
    const have = privsOf(auth, path);
    return privs.some((p) => have.has(p));
  };

  sim.route({
    method: "GET",
    path: "/access",
    params: {},
    permissions: { user: "all" },
    handler: () => ["ticket", "users", "groups", "roles", "acl", "domains", "openid", "tfa", "permissions"].map((subdir) => ({ subdir })),
  });

  // ---- users --------------------------------------------------------------------------

  sim.route({
    method: "GET",
    path: "/access/users",
    params: { enabled: { type: "boolean", optional: true }, full: { type: "boolean", optional: true, default: 0 } },
    permissions: { user: "all" },
    handler: (req) => {
      const canAll = anyOf(req.auth, "/access/groups", ["User.Modify", "Sys.Audit"]);
      const out: Record<string, unknown>[] = [];
      for (const u of [...access.users.values()].sort((a, b) => a.userid.localeCompare(b.userid))) {
        const visible =
          u.userid === req.auth.userid || canAll || [...u.groups].some((g) => anyOf(req.auth, `/access/groups/${g}`, ["User.Modify", "Sys.Audit"]));
        if (!visible) continue;
        if (req.params.enabled !== undefined && u.enable !== req.params.enabled) continue;
        const e = userEntry(u);
        e["realm-type"] = REALMS[realmOf(u.userid)] ?? realmOf(u.userid);
        if (req.params.full) {
          if (u.groups.size) e.groups = [...u.groups].sort().join(",");
          e.tokens = [...u.tokens.values()].map((t) => ({ tokenid: t.tokenid, ...tokenInfo(t) }));
        }
        out.push(e);
      }
      return out;
    },
  });

  sim.route({
    method: "POST",
    path: "/access/users",
    params: { ...USER_FIELDS, password: { type: "string", optional: true, minLength: 8, maxLength: 64 }, userid: USERID },
    permissions: { check: ["and", ["userid-param", "Realm.AllocateUser"], ["userid-group", ["User.Modify"], "groups_param", "create"]] },
    handler: (req) => {
      const p = req.params;
      locked("create user failed", () => {
        if (access.user(p.userid)) die(`user '${p.userid}' already exists`);
        const realm = realmOf(p.userid);
        if (!REALMS[realm]) die(`domain '${realm}' does not exist`);
        const groups = p.groups ? splitList(p.groups) : [];
        for (const g of groups) if (!access.groups.has(g)) die(`no such group '${g}'`);
        access.addUser({
          userid: p.userid,
          enable: p.enable ?? 1,
          expire: p.expire ?? 0,
          firstname: p.firstname,
          lastname: p.lastname,
          email: p.email,
          comment: p.comment,
          keys: p.keys,
          groups,
        });
        if (p.password !== undefined) access.setPassword(p.userid, p.password);
      });
      return null;
    },
  });

  sim.route({
    method: "GET",
    path: "/access/users/{userid}",
    params: { userid: USERID },
    permissions: { check: ["userid-group", ["User.Modify", "Sys.Audit"]] },
    handler: (req) => {
      const u = access.requireUser(req.params.userid);
      const e = userEntry(u);
      delete e.userid;
      e.groups = [...u.groups].sort();
      e.tokens = Object.fromEntries([...u.tokens.values()].map((t) => [t.tokenid, tokenInfo(t)]));
      return e;
    },
  });

  sim.route({
    method: "PUT",
    path: "/access/users/{userid}",
    params: { append: { type: "boolean", optional: true, requires: "groups" }, ...USER_FIELDS, userid: USERID },
    permissions: { check: ["userid-group", ["User.Modify"], "groups_param", "update"] },
    handler: (req) => {
      const p = req.params;
      locked("update user failed", () => {
        const u = access.requireUser(p.userid);
        for (const k of ["firstname", "lastname", "email", "comment", "keys"] as const) {
          if (p[k] !== undefined) {
            if (p[k] === "") delete u[k];
            else u[k] = p[k];
          }
        }
        if (p.enable !== undefined) u.enable = p.enable;
        if (p.expire !== undefined) u.expire = p.expire;
        if (p.groups !== undefined) {
          if (!p.append) u.groups.clear();
          for (const g of splitList(p.groups)) if (access.groups.has(g)) u.groups.add(g);
        }
      });
      return null;
    },
  });

  sim.route({
    method: "DELETE",
    path: "/access/users/{userid}",
    params: { userid: USERID },
    permissions: { check: ["and", ["userid-param", "Realm.AllocateUser"], ["userid-group", ["User.Modify"]]] },
    handler: (req) => {
      locked("delete user failed", () => {
        access.requireUser(req.params.userid);
        access.deleteUser(req.params.userid);
      });
      return null;
    },
  });

  sim.route({
    method: "GET",
    path: "/access/users/{userid}/tfa",
    params: { multiple: { type: "boolean", optional: true, default: 0 }, userid: USERID },
    permissions: { check: ["or", ["userid-param", "self"], ["userid-group", ["User.Modify", "Sys.Audit"]]] },
    handler: (req) => {
      const u = access.requireUser(req.params.userid);
      const types = u.otp ? ["totp"] : [];
      return req.params.multiple ? { types } : { types, ...(u.otp ? { user: "oath" } : {}) };
    },
  });

  // ---- tokens -------------------------------------------------------------------------

  const tokenPerm = { check: ["or", ["userid-param", "self"], ["userid-group", ["User.Modify"]]] } as const;
  const tokenFields = {
    comment: { type: "string", optional: true },
    expire: { type: "integer", optional: true, minimum: 0 },
    privsep: { type: "boolean", optional: true, default: 1 },
  } satisfies Record<string, ParamDef>;

  sim.route({
    method: "GET",
    path: "/access/users/{userid}/token",
    params: { userid: USERID },
    permissions: tokenPerm as any,
    handler: (req) => {
      const u = access.requireUser(req.params.userid);
      return [...u.tokens.values()].sort((a, b) => a.tokenid.localeCompare(b.tokenid)).map((t) => ({ tokenid: t.tokenid, ...tokenInfo(t) }));
    },
  });

  sim.route({
    method: "GET",
    path: "/access/users/{userid}/token/{tokenid}",
    params: { tokenid: TOKENID, userid: USERID },
    permissions: tokenPerm as any,
    handler: (req) => tokenInfo(access.requireToken(req.params.userid, req.params.tokenid)),
  });

  sim.route({
    method: "POST",
    path: "/access/users/{userid}/token/{tokenid}",
    params: { ...tokenFields, tokenid: TOKENID, userid: USERID },
    permissions: tokenPerm as any,
    handler: (req) => {
      const p = req.params;
      const u = access.requireUser(p.userid);
      if (u.tokens.has(p.tokenid)) throw paramError({ tokenid: "Token already exists." });
      const expire = p.expire ?? (u.expire || undefined);
      const secret = access.newSecret();
      const rec = { tokenid: p.tokenid, privsep: p.privsep ?? 1, secret, expire, comment: p.comment };
      u.tokens.set(p.tokenid, rec);
      // PVE echoes what it stored; form values are Perl strings (fixture: "privsep":"0").
      const info: Record<string, unknown> = { privsep: p.privsep === undefined ? 1 : String(p.privsep) };
      if (expire !== undefined) info.expire = p.expire === undefined ? expire : String(p.expire);
      if (p.comment !== undefined) info.comment = p.comment;
      return { "full-tokenid": `${p.userid}!${p.tokenid}`, info, value: secret };
    },
  });

  const tokenUpdateParams: Record<string, ParamDef> = { ...tokenFields, tokenid: TOKENID, userid: USERID };
  if (sim.options.pveVersion !== "8.4") {
    tokenUpdateParams.delete = { type: "string", optional: true, format: "pve-configid-list" };
    tokenUpdateParams.regenerate = { type: "boolean", optional: true, default: 0 };
  }
  sim.route({
    method: "PUT",
    path: "/access/users/{userid}/token/{tokenid}",
    params: tokenUpdateParams,
    permissions: tokenPerm as any,
    handler: (req) => {
      const p = req.params;
      const t = access.requireToken(p.userid, p.tokenid);
      for (const k of p.delete ? splitList(p.delete) : []) {
        if (k === "comment") delete t.comment;
        else if (k === "expire") delete t.expire;
      }
      if (p.comment !== undefined) t.comment = p.comment;
      if (p.expire !== undefined) t.expire = p.expire;
      if (p.privsep !== undefined) t.privsep = p.privsep;
      const out = tokenInfo(t);
      if (p.regenerate) {
        t.secret = access.newSecret();
        out["full-tokenid"] = `${p.userid}!${p.tokenid}`;
        out.value = t.secret;
      }
      return out;
    },
  });

  sim.route({
    method: "DELETE",
    path: "/access/users/{userid}/token/{tokenid}",
    params: { tokenid: TOKENID, userid: USERID },
    permissions: tokenPerm as any,
    handler: (req) => {
      access.requireToken(req.params.userid, req.params.tokenid);
      access.deleteToken(req.params.userid, req.params.tokenid);
      return null;
    },
  });

  // ---- groups -------------------------------------------------------------------------

  const GROUPID: ParamDef = { type: "string", format: "pve-groupid" };
  sim.route({
    method: "GET",
    path: "/access/groups",
    params: {},
    permissions: { user: "all" },
    handler: (req) =>
      [...access.groups.values()]
        .filter((g) => anyOf(req.auth, `/access/groups/${g.groupid}`, ["Sys.Audit", "Group.Allocate", "User.Modify"]))
        .sort((a, b) => a.groupid.localeCompare(b.groupid))
        .map((g) => {
          const e: Record<string, unknown> = { groupid: g.groupid, users: access.groupMembers(g.groupid).join(",") };
          if (g.comment !== undefined) e.comment = g.comment;
          return e;
        }),
  });
  sim.route({
    method: "POST",
    path: "/access/groups",
    params: { comment: { type: "string", optional: true }, groupid: GROUPID },
    permissions: { check: ["perm", "/access/groups", ["Group.Allocate"]] },
    handler: (req) => {
      locked("create group failed", () => {
        if (access.groups.has(req.params.groupid)) die(`group '${req.params.groupid}' already exists`);
        access.groups.set(req.params.groupid, { groupid: req.params.groupid, comment: req.params.comment });
      });
      return null;
    },
  });
  sim.route({
    method: "GET",
    path: "/access/groups/{groupid}",
    params: { groupid: GROUPID },
    permissions: { check: ["perm", "/access/groups", ["Sys.Audit", "Group.Allocate"], "any", 1] },
    handler: (req) => {
      const g = access.groups.get(req.params.groupid);
      if (!g) throw new PveError(500, `group '${req.params.groupid}' does not exist`);
      const e: Record<string, unknown> = { members: access.groupMembers(g.groupid) };
      if (g.comment !== undefined) e.comment = g.comment;
      return e;
    },
  });
  sim.route({
    method: "PUT",
    path: "/access/groups/{groupid}",
    params: { comment: { type: "string", optional: true }, groupid: GROUPID },
    permissions: { check: ["perm", "/access/groups", ["Group.Allocate"]] },
    handler: (req) => {
      locked("update group failed", () => {
        const g = access.groups.get(req.params.groupid) ?? die(`group '${req.params.groupid}' does not exist`);
        if (req.params.comment !== undefined) g.comment = req.params.comment;
      });
      return null;
    },
  });
  sim.route({
    method: "DELETE",
    path: "/access/groups/{groupid}",
    params: { groupid: GROUPID },
    permissions: { check: ["perm", "/access/groups", ["Group.Allocate"]] },
    handler: (req) => {
      locked("delete group failed", () => {
        if (!access.groups.has(req.params.groupid)) die(`group '${req.params.groupid}' does not exist`);
        access.deleteGroup(req.params.groupid);
      });
      return null;
    },
  });

  // ---- roles --------------------------------------------------------------------------

  const ROLEID: ParamDef = { type: "string", format: "pve-roleid" };
  const PRIVS: ParamDef = { type: "string", optional: true, format: "pve-priv-list" };
  const parsePrivs = (s: string | undefined): string[] => {
    const out = s ? splitList(s) : [];
    for (const p of out) if (!access.isValidPrivilege(p)) die(`invalid privilege '${p}'`);
    return out;
  };
  sim.route({
    method: "GET",
    path: "/access/roles",
    params: {},
    permissions: { user: "all" },
    handler: () =>
      [...access.roles]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([roleid, r]) => ({ roleid, privs: [...r.privs].sort().join(","), special: r.special ? 1 : 0 })),
  });
  sim.route({
    method: "POST",
    path: "/access/roles",
    params: { privs: PRIVS, roleid: ROLEID },
    permissions: { check: ["perm", "/access", ["Sys.Modify"]] },
    handler: (req) => {
      locked("create role failed", () => {
        if (access.roles.has(req.params.roleid)) die(`role '${req.params.roleid}' already exists`);
        access.roles.set(req.params.roleid, { privs: new Set(parsePrivs(req.params.privs)), special: false });
      });
      return null;
    },
  });
  sim.route({
    method: "GET",
    path: "/access/roles/{roleid}",
    params: { roleid: ROLEID },
    permissions: { user: "all" },
    handler: (req) => {
      const r = access.roles.get(req.params.roleid);
      if (!r) throw new PveError(500, `role '${req.params.roleid}' does not exist`);
      return Object.fromEntries([...r.privs].sort().map((p) => [p, 1]));
    },
  });
  sim.route({
    method: "PUT",
    path: "/access/roles/{roleid}",
    params: { append: { type: "boolean", optional: true, requires: "privs" }, privs: PRIVS, roleid: ROLEID },
    permissions: { check: ["perm", "/access", ["Sys.Modify"]] },
    handler: (req) => {
      const id = req.params.roleid;
      if (access.roles.get(id)?.special) throw new PveError(500, `auto-generated role '${id}' cannot be modified`);
      locked("update role failed", () => {
        const r = access.roles.get(id) ?? die(`role '${id}' does not exist`);
        const privs = parsePrivs(req.params.privs);
        if (!req.params.append) r.privs.clear();
        for (const p of privs) r.privs.add(p);
      });
      return null;
    },
  });
  sim.route({
    method: "DELETE",
    path: "/access/roles/{roleid}",
    params: { roleid: ROLEID },
    permissions: { check: ["perm", "/access", ["Sys.Modify"]] },
    handler: (req) => {
      const id = req.params.roleid;
      if (access.roles.get(id)?.special) throw new PveError(500, `auto-generated role '${id}' cannot be deleted`);
      locked("delete role failed", () => {
        if (!access.roles.has(id)) die(`role '${id}' does not exist`);
        access.deleteRole(id);
      });
      return null;
    },
  });

  // ---- ACLs ---------------------------------------------------------------------------

  sim.route({
    method: "GET",
    path: "/access/acl",
    params: {},
    permissions: { user: "all" },
    handler: (req) => {
      const audit = privsOf(req.auth, "/access").has("Sys.Audit");
      return access
        .aclEntries()
        .filter((e) => audit || canModify(req.auth, e.path))
        .map((e) => ({ path: e.path, type: e.type, ugid: e.ugid, roleid: e.roleid, propagate: e.propagate }));
    },
  });
  const canModify = (auth: AuthContext, path: string): boolean => {
    const privs = ["Permissions.Modify"];
    if (/^\/storage\/.+$/.test(path)) privs.push("Datastore.Allocate");
    else if (/^\/vms\/.+$/.test(path)) privs.push("VM.Allocate");
    else if (/^\/pool\/.+$/.test(path)) privs.push("Pool.Allocate");
    return anyOf(auth, path, privs);
  };

  sim.route({
    method: "PUT",
    path: "/access/acl",
    params: {
      delete: { type: "boolean", optional: true },
      groups: { type: "string", optional: true, format: "pve-groupid-list" },
      path: { type: "string" },
      propagate: { type: "boolean", optional: true, default: 1 },
      roles: { type: "string", format: "pve-roleid-list" },
      tokens: { type: "string", optional: true, format: "pve-tokenid-list" },
      users: { type: "string", optional: true, format: "pve-userid-list" },
    },
    permissions: { check: ["perm-modify", "{path}"] },
    handler: (req) => {
      const p = req.params;
      if (!p.users && !p.groups && !p.tokens) {
        const msg = "either 'users', 'groups' or 'tokens' is required.";
        throw paramError({ users: msg, groups: msg, tokens: msg });
      }
      const path = normalizeAclPath(p.path);
      if (!p.delete && !isValidAclPath(path)) throw paramError({ path: `invalid ACL path '${p.path}'` });
      const propagate = p.propagate === undefined ? 1 : p.propagate ? 1 : 0;
      const direct = effectivePrivileges(access, sim.pools, req.auth.principal, path);
      locked("ACL update failed", () => {
        for (const role of splitList(p.roles)) {
          const r = access.roles.get(role) ?? die(`role '${role}' does not exist`);
          if (!direct.has("Permissions.Modify")) {
            const verb = p.delete ? "remove" : "add";
            for (const priv of r.privs) {
              if (!direct.has(priv)) {
                throw paramError({ role: `Cannot ${verb} role '${role}' - requires 'Permissions.Modify' or superset of privileges.` });
              }
            }
          }
          const apply = (type: AclType, id: string) => {
            if (p.delete) access.removeAcl(path, type, id, role);
            else access.setAcl(path, type, id, role, propagate);
          };
          for (const g of p.groups ? splitList(p.groups) : []) {
            if (!access.groups.has(g)) die(`group '${g}' does not exist`);
            apply("group", g);
          }
          for (const u of p.users ? splitList(p.users) : []) {
            if (!access.user(u)) die(`user '${u}' does not exist`);
            apply("user", u);
          }
          for (const t of p.tokens ? splitList(p.tokens) : []) {
            const s = splitTokenId(t)!;
            access.requireToken(s.userid, s.token);
            apply("token", t);
          }
        }
      });
      return null;
    },
  });

  // ---- permissions --------------------------------------------------------------------

  sim.route({
    method: "GET",
    path: "/access/permissions",
    params: {
      path: { type: "string", optional: true },
      userid: { type: "string", optional: true, pattern: "[^\\s:/]+@[A-Za-z][A-Za-z0-9.\\-_]+(?:![A-Za-z][A-Za-z0-9.\\-_]+)?" },
    },
    permissions: { user: "all" },
    handler: (req) => {
      const target: string = req.params.userid ?? req.auth.principal;
      if (target !== req.auth.principal) {
        const ownToken = !req.auth.tokenid && splitTokenId(target)?.userid === req.auth.userid;
        if (!ownToken) access.check(req.auth, "/access", ["Sys.Audit"]);
      }
      if (req.params.path !== undefined) {
        const privs = effectivePrivileges(access, sim.pools, target, req.params.path);
        return { [req.params.path]: Object.fromEntries([...privs].sort(([a], [b]) => a.localeCompare(b))) };
      }
      return allEffectivePermissions(access, sim.pools, target);
    },
  });

  // ---- ticket, password ---------------------------------------------------------------

  sim.route({
    method: "GET",
    path: "/access/ticket",
    params: {},
    permissions: { user: "world" },
    handler: () => null,
  });

  sim.route({
    method: "POST",
    path: "/access/ticket",
    params: {
      "new-format": { type: "boolean", optional: true, default: 1 },
      otp: { type: "string", optional: true },
      password: { type: "string" },
      path: { type: "string", optional: true, maxLength: 64, requires: "privs" },
      privs: { type: "string", optional: true, format: "pve-priv-list", maxLength: 64, requires: "path" },
      realm: { type: "string", optional: true, format: "pve-realm", maxLength: 32 },
      "tfa-challenge": { type: "string", optional: true },
      username: { type: "string", maxLength: 64 },
    },
    permissions: { user: "world" },
    allowToken: false,
    handler: (req) => {
      return sim.auth.login(req.params);
    },
  });

  sim.route({
    method: "PUT",
    path: "/access/password",
    params: {
      "confirmation-password": { type: "string", optional: true, minLength: 5, maxLength: 64 },
      password: { type: "string", minLength: 8, maxLength: 64 },
      userid: USERID,
    },
    permissions: { check: ["or", ["userid-param", "self"], ["and", ["userid-param", "Realm.AllocateUser"], ["userid-group", ["User.Modify"]]]] },
    allowToken: false,
    handler: (req: SimRequest) => {
      const p = req.params;
      access.requireUser(p.userid);
      if (p["confirmation-password"] !== undefined && !access.checkPassword(req.auth.userid, p["confirmation-password"])) {
        throw new PveError(403, "Permission check failed");
      }
      access.setPassword(p.userid, p.password);
      return null;
    },
  });
}
