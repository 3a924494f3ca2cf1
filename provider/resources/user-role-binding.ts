// UserRoleBinding: grants roles to one principal (a user, an API token or a group) on one ACL
// path, with or without propagation to the paths below it.
//
// PVE keeps one ACL entry per (path, principal, role), with one propagate flag. So:
// - Roles change in place; the principal, the path or `propagate` replace the binding.
// - A binding removes, on delete or when a role leaves its list, only the roles IT granted.
// - Overlap: PVE's ACL cannot tell who granted an entry, so two grants of one (path, principal,
//   role) are indistinguishable, and deleting either would revoke it for both. So a binding never
//   takes over an existing grant silently: when a role it lists is already granted (by a person,
//   another stack, or another binding), create (and an update adding that role) FAILS, naming it,
//   unless `adopt: true`. With adopt, the existing grant is recorded in `preexistingRoles` and
//   kept when the binding is deleted or drops the role (unless `destroyOnDelete: true`); if its
//   propagate flag differs, adoption fails instead of changing it. Two bindings of one program
//   listing the same (path, principal, role) are refused even when created in parallel: the
//   provider process remembers each triple a binding granted or adopted in this run.
//   What stays out of reach: an adopted grant belongs to someone else, so if they revoke it
//   (e.g. another stack deletes its binding), refresh shows the role missing and the next `up`
//   grants it again, now as this binding's own.
// - `destroyOnDelete: false` keeps every role on delete (nothing is revoked).
// - read() reports which of the binding's roles are still granted: a role removed out of band
//   drops out of `roles` (drift) and the next `up` grants it again. When none of its roles is
//   left, refresh drops the binding from the state and the next `up` creates it again. A
//   changed propagate flag shows as a change of `propagate` (a replacement).
//
// Id (and a future import, which Pulumi 3.248 cannot do for dynamic-provider resources): the id is `<path>|<type>:<principal>`, e.g. `/pool/fleet|user:fleet@pve` or
// `/pool/fleet|token:fleet@pve!ci`; importing it claims every role that principal has on that
// path. `<path>|<type>:<principal>|<role>,<role>` imports only the listed roles.
//
// Roles: built-in names are checked in check(); a custom role is checked at create (it must
// exist by then: pass `role.roleid` from a Role resource so the binding waits for it).

import * as pulumi from "@pulumi/pulumi";
import type { AclEntry } from "../proxmox/access";
import { InputChecker } from "./check";
import { client, providerLogger } from "./context";
import { diffResource, isUnknown } from "./diff";
import { stubProvider, type Lifecycle } from "./dynamic";
import { BUILTIN_ROLES, normalizeAclPath } from "./access-names";
import { compact, difference, gone, intersection, listText, readResult, sortedSet } from "./access/common";
import { comparable, logReleased, managementOf } from "./adoption";
import { checkFields, diffRulesOf, outputSlots } from "./fields";
import { userRoleBindingTable } from "./fields/user-role-binding";
import { UserRoleBindingOutputs, type UserRoleBindingArgs, type UserRoleBindingInputs, type UserRoleBindingState } from "./generated/user-role-binding";
import { checkReferencesOnCluster, type Reference } from "./vm/references";

export type { UserRoleBindingArgs, UserRoleBindingInputs, UserRoleBindingState } from "./generated/user-role-binding";

const rules = diffRulesOf<UserRoleBindingInputs>(userRoleBindingTable);

/**
 * check(): the custom roles a binding newly lists must exist, or be declared by a Role resource
 * of the same run (checked before the binding when it is given `role.roleid`, or depends on it).
 * One read-only `GET /access/roles`; roles it already listed are not looked up again.
 */
async function checkCustomRoles(c: InputChecker, before: unknown, roles: unknown): Promise<void> {
  if (!Array.isArray(roles)) return;
  const had = new Set(Array.isArray(before) ? before : []);
  const refs: Reference[] = [];
  roles.forEach((r, i) => {
    if (typeof r === "string" && !isUnknown(r) && !BUILTIN_ROLES.has(r) && !had.has(r)) refs.push({ kind: "role", property: `roles[${i}]`, role: r });
  });
  await checkReferencesOnCluster(c, refs);
}

export type PrincipalType = "user" | "token" | "group";

const PRINCIPALS: PrincipalType[] = ["user", "token", "group"];

export function principalOf(inputs: Partial<UserRoleBindingInputs>): { type: PrincipalType; ugid: string } {
  for (const type of PRINCIPALS) {
    const ugid = inputs[type];
    if (typeof ugid === "string" && ugid !== "") return { type, ugid };
  }
  throw new Error("a UserRoleBinding needs one of user, token or group");
}

export function bindingId(path: string, type: PrincipalType, ugid: string): string {
  return `${path}|${type}:${ugid}`;
}

/** `<path>|<type>:<ugid>[|<role>,<role>...]`. */
export function parseBindingId(id: string): { path: string; type: PrincipalType; ugid: string; roles?: string[] } {
  const parts = id.split("|");
  const m = parts.length >= 2 && parts.length <= 3 ? /^(user|token|group):(.+)$/.exec(parts[1]) : null;
  if (!m) {
    throw new Error(`'${id}' is not a UserRoleBinding id: expected '<path>|<user|token|group>:<principal>[|<role>,<role>]', e.g. '/pool/fleet|user:fleet@pve|PVEVMAdmin'`);
  }
  const roles = parts[2] ? parts[2].split(",").filter(Boolean) : undefined;
  return { path: normalizeAclPath(parts[0]), type: m[1] as PrincipalType, ugid: m[2], roles };
}

function principalParam(type: PrincipalType, ugid: string): { users?: string[]; tokens?: string[]; groups?: string[] } {
  if (type === "user") return { users: [ugid] };
  if (type === "token") return { tokens: [ugid] };
  return { groups: [ugid] };
}

/** The roles (→ propagate) `type:ugid` has directly on `path` now. */
async function grantsOn(path: string, type: PrincipalType, ugid: string): Promise<Map<string, boolean>> {
  const acl: AclEntry[] = await client().access.getAcl();
  const out = new Map<string, boolean>();
  for (const e of acl) if (e.path === path && e.type === type && e.ugid === ugid) out.set(e.roleid, e.propagate);
  return out;
}

async function requireRolesExist(roles: string[]): Promise<void> {
  const custom = roles.filter((r) => !BUILTIN_ROLES.has(r));
  if (!custom.length) return;
  const known = new Set((await client().access.listRoles()).map((r) => r.roleid));
  const missing = custom.filter((r) => !known.has(r));
  if (missing.length) {
    throw new Error(
      `roles: ${listText(missing.map((r) => `'${r}'`))} ${missing.length > 1 ? "do" : "does"} not exist on the cluster. Create custom roles first: declare them with a Role resource and pass role.roleid here, so the binding waits for them.`,
    );
  }
}

/** (path, principal, role) triples a binding granted or adopted in this provider process (one
 *  `pulumi up`): how two bindings of one program, created in parallel, are told apart. */
const claims = new Set<string>();
const claimKey = (path: string, type: PrincipalType, ugid: string, role: string) => `${path}|${type}:${ugid}|${role}`;

/**
 * Splits `wanted` roles into those to grant and those already granted (adopted, with adopt);
 * fails on a role another binding of this run claimed, on an existing grant without adopt, and
 * on an existing grant with the other propagate flag, which granting would overwrite. Claims
 * the wanted roles for the caller: it must run without an `await` between the read of
 * `current` and the grant, and the caller releases the claims if granting fails.
 */
function planGrant(wanted: string[], current: Map<string, boolean>, propagate: boolean, adopt: boolean, target: { path: string; type: PrincipalType; ugid: string }): { grant: string[]; already: string[] } {
  const where = `${target.type} '${target.ugid}' on '${target.path}'`;
  const key = (r: string) => claimKey(target.path, target.type, target.ugid, r);
  const claimed = wanted.filter((r) => claims.has(key(r)));
  if (claimed.length) {
    throw new Error(
      `roles: ${listText(claimed.map((r) => `'${r}'`))} for ${where} ${claimed.length > 1 ? "are" : "is"} already granted by another UserRoleBinding of this program. ` +
        `PVE keeps one ACL entry per (path, principal, role), so two bindings of one grant cannot be told apart and deleting either would revoke it for both. Keep each (path, principal, role) in one binding.`,
    );
  }
  const existing = wanted.filter((r) => current.has(r));
  if (existing.length && !adopt) {
    throw new Error(
      `roles: ${where} already has ${listText(existing.map((r) => `'${r}'`))}, granted outside this binding (by a person, another stack or another binding). ` +
        `PVE cannot tell grants apart, so a binding does not take one over silently: set adopt: true to take the existing grant under management (it is then kept when this binding is deleted, unless destroyOnDelete: true), or remove ${existing.length > 1 ? "them" : "it"} from roles. ` +
        `If another binding of this stack is dropping ${existing.length > 1 ? "these roles" : "this role"} in the same update, run \`pulumi up\` again once it has.`,
    );
  }
  const conflicts = wanted.filter((r) => current.has(r) && current.get(r) !== propagate);
  if (conflicts.length) {
    throw new Error(
      `${where} already has ${listText(conflicts.map((r) => `'${r}'`))} with propagate=${!propagate}, granted outside this binding; this binding asks for propagate=${propagate}. ` +
        `PVE keeps one propagate flag per (path, principal, role), so granting it would change that other grant. Make the two agree, or remove the other grant first.`,
    );
  }
  for (const r of wanted) claims.add(key(r));
  return { grant: wanted.filter((r) => !current.has(r)), already: existing };
}

function release(target: { path: string; type: PrincipalType; ugid: string }, roles: string[]): void {
  for (const r of roles) claims.delete(claimKey(target.path, target.type, target.ugid, r));
}

async function grant(path: string, type: PrincipalType, ugid: string, roles: string[], propagate: boolean): Promise<void> {
  if (!roles.length) return;
  await client().access.updateAcl({ path, roles, propagate, ...principalParam(type, ugid) });
}

async function revoke(path: string, type: PrincipalType, ugid: string, roles: string[]): Promise<void> {
  if (!roles.length) return;
  await client().access.updateAcl({ path, roles, delete: true, ...principalParam(type, ugid) });
}

export const userRoleBindingLifecycle: Lifecycle<UserRoleBindingInputs, UserRoleBindingState> = {
  async check(olds, news) {
    const c = new InputChecker(news as unknown as Record<string, unknown>);
    checkFields(c, userRoleBindingTable);
    c.exclusive(PRINCIPALS, { required: true });
    if (c.failures.length === 0) await checkCustomRoles(c, olds?.roles, news.roles);
    const path = typeof news.path === "string" && news.path !== "" && !isUnknown(news.path) ? normalizeAclPath(news.path) : news.path;
    return c.result<UserRoleBindingInputs>(compact({ ...news, path, roles: sortedSet(news.roles)!, propagate: news.propagate ?? true }));
  },

  async diff(_id, olds, news) {
    const cmp = comparable(olds, news, []);
    const d = diffResource(rules, cmp.olds, cmp.news, { deleteBeforeReplace: (o, n) => sameTarget(o, n) });
    return { changes: d.changes, replaces: d.replaces, deleteBeforeReplace: d.deleteBeforeReplace };
  },

  async create(inputs) {
    const { type, ugid } = principalOf(inputs);
    const propagate = inputs.propagate !== false;
    await requireRolesExist(inputs.roles);
    const current = await grantsOn(inputs.path, type, ugid);
    const target = { path: inputs.path, type, ugid };
    const { grant: toGrant, already } = planGrant(inputs.roles, current, propagate, inputs.adopt === true, target);
    if (already.length) {
      providerLogger.info(
        `UserRoleBinding ${bindingId(inputs.path, type, ugid)}: adopted ${listText(already)}, granted before; ${inputs.destroyOnDelete ? "revoked" : "kept"} when the binding is deleted.`,
      );
    }
    try {
      await grant(inputs.path, type, ugid, toGrant, propagate);
    } catch (err) {
      release(target, inputs.roles);
      throw err;
    }
    return {
      id: bindingId(inputs.path, type, ugid),
      outs: compact({ ...inputs, propagate, preexistingRoles: sortedSet(already)! }),
    };
  },

  async read(id, props) {
    const target = props?.path !== undefined && props.roles !== undefined ? { ...principalOf(props), path: props.path } : parseBindingId(id);
    const current = await grantsOn(target.path, target.type, target.ugid);
    const imported = props?.roles === undefined;
    const claimed = imported ? (parseBindingId(id).roles ?? [...current.keys()]) : props.roles;
    const present = sortedSet(intersection(claimed, [...current.keys()]))!;
    // A grant that is gone is claimed by nobody: the next `up` grants it again as this binding's.
    release(target, difference(claimed, present));
    if (present.length === 0) return gone<UserRoleBindingState>();
    const flags = new Set(present.map((r) => current.get(r)));
    let propagate = props?.propagate ?? true;
    if (flags.size === 1) propagate = [...flags][0] as boolean;
    else if (imported) {
      throw new Error(`${target.type} '${target.ugid}' has roles on '${target.path}' with different propagate flags; import them as separate bindings, listing the roles: '${bindingId(target.path, target.type, target.ugid)}|<role>,<role>'`);
    }
    const inputs: UserRoleBindingInputs = { path: target.path, roles: present, [target.type]: target.ugid, propagate, ...managementOf(props) };
    const preexistingRoles = intersection(props?.preexistingRoles ?? [], present);
    return readResult(bindingId(target.path, target.type, target.ugid), { ...inputs, propagate, preexistingRoles }, inputs);
  },

  async update(_id, olds, news) {
    const { type, ugid } = principalOf(news);
    const propagate = news.propagate !== false;
    await requireRolesExist(news.roles);
    const current = await grantsOn(news.path, type, ugid);
    const target = { path: news.path, type, ugid };
    const preexisting = olds.preexistingRoles ?? [];
    // Newly listed roles: granted, or adopted when someone else already granted them.
    const added = difference(news.roles, olds.roles);
    const { already } = planGrant(added, current, propagate, news.adopt === true, target);
    const toGrant = news.roles.filter((r) => !current.has(r));
    const dropped = difference(olds.roles, news.roles);
    // a role dropped from the list is revoked if this binding granted it (adopted: with destroyOnDelete)
    const toRevoke = intersection(revocable(dropped, preexisting, news.destroyOnDelete === true || undefined), [...current.keys()]);
    try {
      await grant(news.path, type, ugid, toGrant, propagate);
    } catch (err) {
      release(target, added);
      throw err;
    }
    await revoke(news.path, type, ugid, toRevoke);
    release(target, dropped);
    const nextPreexisting = sortedSet([...intersection(preexisting, news.roles), ...already])!;
    return { outs: compact({ ...news, propagate, preexistingRoles: nextPreexisting }) };
  },

  async delete(id, props) {
    const { type, ugid } = principalOf(props);
    const target = { path: props.path, type, ugid };
    if (props.destroyOnDelete === false) {
      release(target, props.roles);
      return logReleased(`the roles of UserRoleBinding ${id}`, props.adopt);
    }
    const current = await grantsOn(props.path, type, ugid);
    // What this binding granted (and, with destroyOnDelete, adopted) that is still there: a
    // role that is gone, or a principal deleted with its ACLs, needs nothing.
    const ours = intersection(revocable(props.roles, props.preexistingRoles ?? [], props.destroyOnDelete), [...current.keys()]);
    await revoke(props.path, type, ugid, ours);
    release(target, props.roles);
  },
};

/** Of `roles`, those to revoke: this binding's own, and the adopted ones only with destroyOnDelete: true. */
function revocable(roles: string[], adopted: string[], destroyOnDelete: boolean | undefined): string[] {
  if (destroyOnDelete === false) return [];
  return destroyOnDelete === true ? roles : difference(roles, adopted);
}

function sameTarget(o: Partial<UserRoleBindingInputs>, n: Partial<UserRoleBindingInputs>): boolean {
  try {
    const a = principalOf(o);
    const b = principalOf(n);
    return a.type === b.type && a.ugid === b.ugid && normalizeAclPath(String(o.path)) === normalizeAclPath(String(n.path));
  } catch {
    return false;
  }
}

/** Grants roles to one principal (a user, an API token or a group) on one ACL path, with or without
 *  propagation. It revokes only the roles it granted; a role already granted there makes create fail
 *  unless `adopt: true`, which records it in `preexistingRoles` and keeps it on delete. */
export class UserRoleBinding extends UserRoleBindingOutputs {
  constructor(name: string, args: UserRoleBindingArgs, opts?: pulumi.CustomResourceOptions) {
    const props = { user: undefined, token: undefined, group: undefined, ...args, ...outputSlots(userRoleBindingTable) }; // every principal is an output
    super(stubProvider("provider/resources/user-role-binding.js", "userRoleBindingLifecycle"), name, props, opts, "proxmox", "UserRoleBinding");
  }
}
