// Privileges and built-in roles as PVE creates them (pve-access-control AccessControl.pm
// `create_roles`), written down by us per BEHAVIOURS.md §10 for PVE 9 and PVE 8.
// tests/conformance.test.ts checks them against /work/shared/pve-api/builtin-roles.json.

import type { PveVersion } from "./sim";

const COMMON_PRIVS = [
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
];

const GUEST_AGENT_USER = ["VM.GuestAgent.Audit", "VM.GuestAgent.FileRead", "VM.GuestAgent.FileSystemMgmt", "VM.GuestAgent.FileWrite"];
const GUEST_AGENT_ALL = [...GUEST_AGENT_USER, "VM.GuestAgent.Unrestricted"];

/** Every privilege the version knows (PVE 9 added VM.GuestAgent.* and VM.Replicate and
 *  dropped VM.Monitor). */
export function privilegesFor(version: PveVersion): string[] {
  const extra = version === "8.4" ? ["VM.Monitor"] : [...GUEST_AGENT_ALL, "VM.Replicate"];
  return [...COMMON_PRIVS, ...extra].sort();
}

export function builtinRolesFor(version: PveVersion): Record<string, string[]> {
  const v9 = version !== "8.4";
  const all = privilegesFor(version);
  const vmUser = ["VM.Audit", "VM.Backup", "VM.Config.CDROM", "VM.Config.Cloudinit", "VM.Console", "VM.PowerMgmt", ...(v9 ? GUEST_AGENT_USER : [])];
  const vmAdmin = [
    ...vmUser,
    "VM.Allocate",
    "VM.Clone",
    "VM.Config.CPU",
    "VM.Config.Disk",
    "VM.Config.HWType",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.Options",
    "VM.Migrate",
    "VM.Snapshot",
    "VM.Snapshot.Rollback",
    ...(v9 ? ["VM.GuestAgent.Unrestricted", "VM.Replicate"] : ["VM.Monitor"]),
  ];
  const adminExcluded = new Set([
    "Mapping.Modify",
    "Permissions.Modify",
    "Realm.Allocate",
    "Sys.PowerMgmt",
    "Sys.Modify",
    "Sys.Incoming",
    "Sys.AccessNetwork",
  ]);
  const roles: Record<string, string[]> = {
    Administrator: all,
    NoAccess: [],
    PVEAdmin: all.filter((p) => !adminExcluded.has(p)),
    PVEAuditor: ["Datastore.Audit", "Mapping.Audit", "Pool.Audit", "SDN.Audit", "Sys.Audit", "VM.Audit", ...(v9 ? ["VM.GuestAgent.Audit"] : [])],
    PVEDatastoreAdmin: ["Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.AllocateTemplate", "Datastore.Audit"],
    PVEDatastoreUser: ["Datastore.AllocateSpace", "Datastore.Audit"],
    PVEMappingAdmin: ["Mapping.Audit", "Mapping.Modify", "Mapping.Use"],
    PVEMappingUser: ["Mapping.Audit", "Mapping.Use"],
    PVEPoolAdmin: ["Pool.Allocate", "Pool.Audit"],
    PVEPoolUser: ["Pool.Audit"],
    PVESDNAdmin: ["SDN.Allocate", "SDN.Audit", "SDN.Use"],
    PVESDNUser: ["SDN.Audit", "SDN.Use"],
    PVESysAdmin: ["Sys.Audit", "Sys.Console", "Sys.Syslog"],
    PVETemplateUser: ["VM.Audit", "VM.Clone"],
    PVEUserAdmin: ["Group.Allocate", "Realm.AllocateUser", "User.Modify"],
    PVEVMAdmin: vmAdmin,
    PVEVMUser: vmUser,
  };
  for (const k of Object.keys(roles)) roles[k] = [...new Set(roles[k])].sort();
  return roles;
}
