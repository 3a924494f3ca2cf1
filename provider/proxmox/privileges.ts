/**
 * The smallest built-in PVE 9 role that grants a privilege (BEHAVIOURS.md §10),
 * used to tell a user what to grant when a permission check fails.
 */
const ROLE_FOR_PRIVILEGE: Record<string, string> = {
  "Datastore.Audit": "PVEDatastoreUser",
  "Datastore.AllocateSpace": "PVEDatastoreUser",
  "Datastore.Allocate": "PVEDatastoreAdmin",
  "Datastore.AllocateTemplate": "PVEDatastoreAdmin",
  "Pool.Audit": "PVEPoolUser",
  "Pool.Allocate": "PVEPoolAdmin",
  "SDN.Audit": "PVESDNUser",
  "SDN.Use": "PVESDNUser",
  "SDN.Allocate": "PVESDNAdmin",
  "Sys.Audit": "PVEAuditor",
  "Sys.Console": "PVESysAdmin",
  "Sys.Syslog": "PVESysAdmin",
  "User.Modify": "PVEUserAdmin",
  "Group.Allocate": "PVEUserAdmin",
  "Realm.AllocateUser": "PVEUserAdmin",
  "Mapping.Audit": "PVEMappingUser",
  "Mapping.Use": "PVEMappingUser",
  "Mapping.Modify": "PVEMappingAdmin",
  "VM.Audit": "PVEAuditor",
  "VM.Clone": "PVETemplateUser",
  "VM.Console": "PVEVMUser",
  "VM.PowerMgmt": "PVEVMUser",
  "VM.Backup": "PVEVMUser",
  "VM.Config.CDROM": "PVEVMUser",
  "VM.Config.Cloudinit": "PVEVMUser",
};

export function roleGranting(privilege: string): string {
  const direct = ROLE_FOR_PRIVILEGE[privilege];
  if (direct) return direct;
  if (privilege.startsWith("VM.")) return "PVEVMAdmin";
  return "Administrator";
}
