// user.cfg as the simulator keeps it: users (with tokens), groups, roles, ACLs; plus the
// password hashes and OTP secrets PVE keeps in shadow.cfg / tfa.cfg.
// Permission resolution lives in ../permissions.ts; this class answers AccessView by
// delegating to it.

import { createHash, randomBytes } from "crypto";
import type { Sim } from "../sim";
import { builtinRolesFor, privilegesFor } from "../roles";
import { effectivePrivileges, PrivMap } from "../permissions";
import { AccessView, AuthContext, PveError } from "../types";

export interface TokenRec {
  tokenid: string;
  comment?: string;
  /** 0 or absent = never. */
  expire?: number;
  privsep: number;
  secret: string;
}

export interface OtpSecret {
  /** `totp`: RFC 6238 (SHA-1, 30 s, 6 digits) with a base32 secret; `static`: a fixed code. */
  type: "totp" | "static";
  secret: string;
}

export interface UserRec {
  userid: string;
  enable: number;
  expire: number;
  firstname?: string;
  lastname?: string;
  email?: string;
  comment?: string;
  keys?: string;
  groups: Set<string>;
  passwordHash?: string;
  passwordSalt?: string;
  otp?: OtpSecret;
  tokens: Map<string, TokenRec>;
}

export interface GroupRec {
  groupid: string;
  comment?: string;
}

export interface RoleRec {
  privs: Set<string>;
  special: boolean;
}

export type AclType = "user" | "group" | "token";

export interface AclEntry {
  path: string;
  type: AclType;
  ugid: string;
  roleid: string;
  propagate: number;
}

/** ACLs of one path: `type` → ugid → roleid → propagate. */
export type AclNode = Record<AclType, Map<string, Map<string, number>>>;

export const REALMS: Record<string, string> = { pam: "pam", pve: "pve" };

export const USER_RE = /^([^\s:/]+)@([A-Za-z][A-Za-z0-9.\-_]+)$/;
export const TOKEN_NAME_RE = /^[A-Za-z][A-Za-z0-9.\-_]+$/;

export function splitTokenId(full: string): { userid: string; token: string } | undefined {
  const i = full.lastIndexOf("!");
  if (i < 0) return undefined;
  return { userid: full.slice(0, i), token: full.slice(i + 1) };
}

function hashPassword(password: string, salt: string): string {
  return createHash("sha256").update(`${salt}:${password}`).digest("base64");
}

export class AccessState implements AccessView {
  readonly users = new Map<string, UserRec>();
  readonly groups = new Map<string, GroupRec>();
  readonly roles = new Map<string, RoleRec>();
  readonly acls = new Map<string, AclNode>();
  readonly privileges: Set<string>;
  /** The full `root@pam!<id>=<uuid>` token string created at start. */
  readonly rootToken: string;
  private readonly tokenRng: () => number;

  constructor(private readonly sim: Sim) {
    const version = sim.options.pveVersion;
    this.privileges = new Set(privilegesFor(version));
    for (const [roleid, privs] of Object.entries(builtinRolesFor(version))) {
      this.roles.set(roleid, { privs: new Set(privs), special: true });
    }
    this.tokenRng = sim.rngFor("tokens");
    const root = this.addUser({ userid: "root@pam", email: undefined, comment: "Built-in Superuser" });
    this.setPassword(root.userid, sim.options.rootPassword);
    const secret = this.newSecret();
    root.tokens.set(sim.options.rootTokenId, { tokenid: sim.options.rootTokenId, privsep: 0, secret, comment: "simulator root token" });
    this.rootToken = `root@pam!${sim.options.rootTokenId}=${secret}`;
  }

  newSecret(): string {
    return this.sim.uuid(this.tokenRng);
  }

  // ---- users -------------------------------------------------------------------------

  addUser(u: Partial<Omit<UserRec, "groups" | "tokens">> & { userid: string; groups?: Iterable<string> }): UserRec {
    const rec: UserRec = {
      enable: 1,
      expire: 0,
      ...u,
      groups: new Set(u.groups ?? []),
      tokens: new Map(),
    };
    for (const k of Object.keys(rec) as (keyof UserRec)[]) if (rec[k] === undefined) delete rec[k];
    this.users.set(rec.userid, rec);
    return rec;
  }

  user(userid: string): UserRec | undefined {
    return this.users.get(userid);
  }

  /** PVE `check_user_exist`: 500 `no such user ('x')`. */
  requireUser(userid: string): UserRec {
    const u = this.users.get(userid);
    if (!u) throw new PveError(500, `no such user ('${userid}')`);
    return u;
  }

  setPassword(userid: string, password: string): void {
    const u = this.requireUser(userid);
    u.passwordSalt = randomBytes(8).toString("hex");
    u.passwordHash = hashPassword(password, u.passwordSalt);
  }

  checkPassword(userid: string, password: string): boolean {
    const u = this.users.get(userid);
    if (!u || !u.passwordHash || !u.passwordSalt) return false;
    return hashPassword(password, u.passwordSalt) === u.passwordHash;
  }

  /** Enabled and not expired at sim time. */
  userActive(u: UserRec): boolean {
    if (!u.enable) return false;
    return !(u.expire && u.expire < this.sim.nowSeconds());
  }

  deleteUser(userid: string): void {
    this.users.delete(userid);
    for (const node of this.acls.values()) {
      node.user.delete(userid);
      for (const tok of [...node.token.keys()]) if (splitTokenId(tok)?.userid === userid) node.token.delete(tok);
    }
    this.pruneAcls();
  }

  // ---- tokens -------------------------------------------------------------------------

  /** PVE `check_token_exist`: `no such token 'x' for user 'u'`. */
  requireToken(userid: string, tokenid: string): TokenRec {
    const u = this.requireUser(userid);
    const t = u.tokens.get(tokenid);
    if (!t) throw new PveError(500, `no such token '${tokenid}' for user '${userid}'`);
    return t;
  }

  deleteToken(userid: string, tokenid: string): void {
    this.users.get(userid)?.tokens.delete(tokenid);
    const full = `${userid}!${tokenid}`;
    for (const node of this.acls.values()) node.token.delete(full);
    this.pruneAcls();
  }

  // ---- groups -------------------------------------------------------------------------

  groupMembers(groupid: string): string[] {
    return [...this.users.values()].filter((u) => u.groups.has(groupid)).map((u) => u.userid).sort();
  }

  deleteGroup(groupid: string): void {
    this.groups.delete(groupid);
    for (const u of this.users.values()) u.groups.delete(groupid);
    for (const node of this.acls.values()) node.group.delete(groupid);
    this.pruneAcls();
  }

  // ---- roles --------------------------------------------------------------------------

  isValidPrivilege(priv: string): boolean {
    return this.privileges.has(priv);
  }

  deleteRole(roleid: string): void {
    this.roles.delete(roleid);
    for (const node of this.acls.values()) {
      for (const type of ["user", "group", "token"] as AclType[]) {
        for (const [ugid, roles] of node[type]) {
          roles.delete(roleid);
          if (roles.size === 0) node[type].delete(ugid);
        }
      }
    }
    this.pruneAcls();
  }

  // ---- ACLs ---------------------------------------------------------------------------

  aclNode(path: string, create = false): AclNode | undefined {
    let node = this.acls.get(path);
    if (!node && create) {
      node = { user: new Map(), group: new Map(), token: new Map() };
      this.acls.set(path, node);
    }
    return node;
  }

  setAcl(path: string, type: AclType, ugid: string, roleid: string, propagate: number): void {
    const node = this.aclNode(path, true)!;
    let roles = node[type].get(ugid);
    if (!roles) node[type].set(ugid, (roles = new Map()));
    roles.set(roleid, propagate ? 1 : 0);
  }

  removeAcl(path: string, type: AclType, ugid: string, roleid: string): boolean {
    const roles = this.acls.get(path)?.[type].get(ugid);
    const had = roles?.delete(roleid) ?? false;
    if (roles && roles.size === 0) this.acls.get(path)![type].delete(ugid);
    this.pruneAcls();
    return had;
  }

  /** Removes every ACL on `path` (PVE `delete_pool_acl`, `remove_vm_access`). */
  removeAclsAt(path: string): void {
    this.acls.delete(path);
  }

  aclEntries(): AclEntry[] {
    const out: AclEntry[] = [];
    for (const path of [...this.acls.keys()].sort()) {
      const node = this.acls.get(path)!;
      for (const type of ["user", "group", "token"] as AclType[]) {
        for (const [ugid, roles] of [...node[type]].sort(([a], [b]) => a.localeCompare(b))) {
          for (const [roleid, propagate] of [...roles].sort(([a], [b]) => a.localeCompare(b))) {
            out.push({ path, type, ugid, roleid, propagate });
          }
        }
      }
    }
    return out;
  }

  private pruneAcls(): void {
    for (const [path, node] of this.acls) {
      if (node.user.size + node.group.size + node.token.size === 0) this.acls.delete(path);
    }
  }

  // ---- AccessView ---------------------------------------------------------------------

  /** Effective privileges (priv → propagate flag) of `principal` on `path`. */
  privileges_of(principal: string, path: string): PrivMap {
    return effectivePrivileges(this, this.sim.pools, principal, path);
  }

  has(auth: AuthContext, path: string, priv: string): boolean {
    return this.privileges_of(auth.principal, path).has(priv);
  }

  check(auth: AuthContext, path: string, privs: string[], any = false): void {
    const have = this.privileges_of(auth.principal, path);
    if (any) {
      if (privs.some((p) => have.has(p))) return;
      throw new PveError(403, `Permission check failed (${path}, ${privs.join("|")})`);
    }
    for (const p of privs) if (!have.has(p)) throw new PveError(403, `Permission check failed (${path}, ${p})`);
  }

  removeVmAcls(vmid: number): void {
    this.removeAclsAt(`/vms/${vmid}`);
  }

  isRoot(auth: AuthContext): boolean {
    return auth.principal === "root@pam";
  }
}
