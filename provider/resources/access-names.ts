// What PVE's access control accepts, known without asking the cluster: user, token, group
// and role ids, ACL paths (with PVE's normalisation), privilege names per PVE version and the
// built-in roles. check() of Pool, User, ApiToken, Role, UserRoleBinding and PermissionCheck
// validate with these, so a typo fails before any API call. Sources: BEHAVIOURS.md §7, §9, §10
// (pve-access-control `check_path`, `normalize_path`, `create_roles`).

import { pveNames } from "./check";

/** PVE's limit on a user id (`name@realm`). */
export const MAX_USERID_LENGTH = 64;

/** Privileges both PVE 8 and PVE 9 know. */
const COMMON_PRIVILEGES = [
  "Datastore.Allocate",
  "Datastore.AllocateSpace",
  "Datastore.AllocateTemplate",
  "Datastore.Audit",
  "Group.Allocate",
  "Mapping.Audit",
  "Mapping.Modify",
  "Mapping.Use",
  "Permissions.Modify",
  "Pool.Allocate",
  "Pool.Audit",
  "Realm.Allocate",
  "Realm.AllocateUser",
  "SDN.Allocate",
  "SDN.Audit",
  "SDN.Use",
  "Sys.AccessNetwork",
  "Sys.Audit",
  "Sys.Console",
  "Sys.Incoming",
  "Sys.Modify",
  "Sys.PowerMgmt",
  "Sys.Syslog",
  "User.Modify",
  "VM.Allocate",
  "VM.Audit",
  "VM.Backup",
  "VM.Clone",
  "VM.Config.CDROM",
  "VM.Config.CPU",
  "VM.Config.Cloudinit",
  "VM.Config.Disk",
  "VM.Config.HWType",
  "VM.Config.Memory",
  "VM.Config.Network",
  "VM.Config.Options",
  "VM.Console",
  "VM.Migrate",
  "VM.PowerMgmt",
  "VM.Snapshot",
  "VM.Snapshot.Rollback",
] as const;

const GUEST_AGENT_PRIVILEGES = [
  "VM.GuestAgent.Audit",
  "VM.GuestAgent.FileRead",
  "VM.GuestAgent.FileSystemMgmt",
  "VM.GuestAgent.FileWrite",
  "VM.GuestAgent.Unrestricted",
] as const;

/** PVE 8.x: has VM.Monitor; no VM.GuestAgent.*, no VM.Replicate. */
export const PVE8_PRIVILEGES: readonly string[] = [...COMMON_PRIVILEGES, "VM.Monitor"].sort();
/** PVE 9.x: VM.Monitor removed; VM.GuestAgent.* and VM.Replicate added (pve-access-control, July 2025). */
export const PVE9_PRIVILEGES: readonly string[] = [...COMMON_PRIVILEGES, ...GUEST_AGENT_PRIVILEGES, "VM.Replicate"].sort();
/** What check() accepts: a privilege of either major version (the server's own list is checked at create). */
export const KNOWN_PRIVILEGES: ReadonlySet<string> = new Set([...PVE8_PRIVILEGES, ...PVE9_PRIVILEGES]);

/** The roles PVE creates itself (same names in 8 and 9); they cannot be changed or deleted. */
export const BUILTIN_ROLES: ReadonlySet<string> = new Set([
  "Administrator",
  "NoAccess",
  "PVEAdmin",
  "PVEAuditor",
  "PVEDatastoreAdmin",
  "PVEDatastoreUser",
  "PVEMappingAdmin",
  "PVEMappingUser",
  "PVEPoolAdmin",
  "PVEPoolUser",
  "PVESDNAdmin",
  "PVESDNUser",
  "PVESysAdmin",
  "PVETemplateUser",
  "PVEUserAdmin",
  "PVEVMAdmin",
  "PVEVMUser",
]);

/** A hint for a privilege name PVE does not know (wrong case, or a version-specific one). */
export function privilegeHint(name: string): string {
  const lower = name.toLowerCase();
  const sameButCase = [...KNOWN_PRIVILEGES].find((p) => p.toLowerCase() === lower);
  if (sameButCase) return ` Did you mean '${sameButCase}'? Privilege names are case-sensitive.`;
  const prefix = name.split(".")[0];
  const family = [...KNOWN_PRIVILEGES].filter((p) => p.split(".")[0] === prefix);
  if (family.length) return ` Known ${prefix}.* privileges: ${family.join(", ")}.`;
  return ` Privilege groups are ${[...new Set([...KNOWN_PRIVILEGES].map((p) => p.split(".")[0]))].join(", ")}.`;
}

/** Returns a reason when `name` is no privilege of PVE 8 or 9, else undefined. */
export function checkPrivilegeName(name: unknown): string | undefined {
  if (typeof name !== "string") return `a privilege must be a string, got ${typeof name}.`;
  if (KNOWN_PRIVILEGES.has(name)) return undefined;
  return `'${name}' is not a Proxmox VE privilege.${privilegeHint(name)}`;
}

// ---- ids ---------------------------------------------------------------------------------

export function checkUserid(value: string): string | undefined {
  if (value.length > MAX_USERID_LENGTH) return `a user id has at most ${MAX_USERID_LENGTH} characters (got ${value.length}).`;
  if (!pveNames.userid.test(value)) {
    return "expected '<name>@<realm>', e.g. 'fleet@pve' or 'root@pam' (the name without spaces, ':' or '/'; the realm starting with a letter).";
  }
  return undefined;
}

export function realmOf(userid: string): string {
  return userid.slice(userid.lastIndexOf("@") + 1);
}

export function checkTokenName(value: string): string | undefined {
  if (!pveNames.tokenName.test(value)) {
    return "a token id starts with a letter and has at least 2 characters from letters, digits, '.', '-' and '_' (e.g. 'fleet').";
  }
  return undefined;
}

/** `user@realm!tokenid`. */
export function checkFullTokenId(value: string): string | undefined {
  const bang = value.lastIndexOf("!");
  if (bang < 0) return "expected a full token id '<user>@<realm>!<tokenid>', e.g. 'fleet@pve!ci'.";
  return checkUserid(value.slice(0, bang)) ?? checkTokenName(value.slice(bang + 1));
}

export function splitFullTokenId(value: string): { userid: string; tokenid: string } {
  const bang = value.lastIndexOf("!");
  return { userid: value.slice(0, bang), tokenid: value.slice(bang + 1) };
}

export function checkRoleid(value: string): string | undefined {
  return pveNames.roleid.test(value) ? undefined : "a role id has letters, digits, '.', '-' and '_' only.";
}

export function checkGroupid(value: string): string | undefined {
  return pveNames.groupid.test(value) ? undefined : "a group id has letters, digits, '.', '-' and '_' only.";
}

export function checkPoolid(value: string): string | undefined {
  if (pveNames.poolid.test(value)) return undefined;
  return "a pool id starts with a letter and has letters, digits, '-' and '_'; nested pools are 'parent/child' (at most 3 levels, each starting with a letter).";
}

// ---- ACL paths ---------------------------------------------------------------------------

/** PVE `normalize_path`: leading '/' added, duplicate '/' collapsed, trailing '/' removed. */
export function normalizeAclPath(path: string): string {
  let p = ("/" + path).replace(/\/+/g, "/");
  if (p.length > 1) p = p.replace(/\/$/, "");
  return p;
}

const ID = "[A-Za-z0-9.\\-_]+";
const ACL_PATHS: RegExp[] = [
  /^\/$/,
  /^\/access$/,
  /^\/access\/(groups|realm)$/,
  new RegExp(`^/access/groups/${ID}$`),
  /^\/access\/realm\/[A-Za-z][A-Za-z0-9.\-_]+$/,
  /^\/nodes$/,
  new RegExp(`^/nodes/${ID}$`),
  /^\/pool$/,
  new RegExp(`^/pool/${ID}(/${ID}){0,2}$`),
  /^\/sdn$/,
  /^\/sdn\/(controllers|dns|fabrics|ipams|prefix-lists|route-maps|zones)$/,
  new RegExp(`^/sdn/(controllers|dns|fabrics|ipams|prefix-lists|route-maps)/${ID}$`),
  new RegExp(`^/sdn/zones/${ID}(/${ID})?$`),
  /^\/storage$/,
  new RegExp(`^/storage/${ID}$`),
  /^\/vms$/,
  /^\/mapping$/,
  new RegExp(`^/mapping/${ID}(/${ID})?$`),
];

/** PVE `check_path` on a normalised path; returns a reason when it is not an ACL path. */
export function checkAclPath(path: string): string | undefined {
  const vm = /^\/vms\/(\d+)$/.exec(path);
  if (vm) return Number(vm[1]) >= 100 ? undefined : "VM ids start at 100.";
  const vlan = new RegExp(`^/sdn/zones/${ID}/${ID}/(\\d+)$`).exec(path);
  if (vlan) return Number(vlan[1]) >= 1 && Number(vlan[1]) <= 9999 ? undefined : "a VLAN tag is 1-9999.";
  if (ACL_PATHS.some((re) => re.test(path))) return undefined;
  return (
    "not an ACL path PVE accepts. Valid: '/', '/vms/{vmid}', '/pool/{poolid}', '/storage/{storage}', '/nodes/{node}', " +
    "'/sdn/zones/{zone}[/{vnet}[/{vlan}]]' (plain Linux bridges are in zone 'localnetwork'), '/access', '/access/groups/{group}', " +
    "'/access/realm/{realm}', '/mapping/{type}/{id}', and the parents '/vms', '/pool', '/storage', '/nodes', '/sdn'."
  );
}
