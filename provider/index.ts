// The public surface of pulumi-pve: the resources a Pulumi program declares. Connection
// settings are not here: the provider reads them from stack config (`proxmox:*`), the
// environment (`PROXMOX_VE_*`) or a credentials file, in its own process (README, Configuration).

export { Pool, type PoolArgs, type PoolMembers } from "./resources/pool";
export { PoolOutputs } from "./resources/generated/pool";
export { User, type UserArgs } from "./resources/user";
export { UserOutputs } from "./resources/generated/user";
export { ApiToken, type ApiTokenArgs } from "./resources/api-token";
export { ApiTokenOutputs } from "./resources/generated/api-token";
export { Role, type RoleArgs } from "./resources/role";
export { RoleOutputs } from "./resources/generated/role";
export { UserRoleBinding, type UserRoleBindingArgs } from "./resources/user-role-binding";
export { UserRoleBindingOutputs } from "./resources/generated/user-role-binding";
export {
  PermissionCheck,
  checkPermissions,
  describeMissing,
  type PermissionCheckArgs,
  type PermissionRequirement,
  type MissingPermission,
} from "./resources/preflight";
export { PermissionCheckOutputs } from "./resources/generated/preflight";
export { Storage, type StorageArgs, type StorageType } from "./resources/storage";
export { StorageOutputs } from "./resources/generated/storage";
export { CloudInitSnippet, type CloudInitSnippetArgs } from "./resources/cloud-init-snippet";
export { CloudInitSnippetOutputs } from "./resources/generated/cloud-init-snippet";
export { Template, type TemplateArgs, type TemplateImage } from "./resources/template";
export { TemplateOutputs } from "./resources/generated/template";
export { VmClone, type VmCloneArgs, type NetworkDevice, type IpConfigInput, type CiCustom, type TemplateRef, type VmidRange } from "./resources/vm-clone";
export { VmCloneOutputs } from "./resources/generated/vm-clone";
