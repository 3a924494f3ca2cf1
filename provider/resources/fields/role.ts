// The properties of a Role, declared once (../fields.ts explains what derives from this table).
// The privileges are also checked against the server's own list, by the resource's check().

import { adoptionFields } from "../adoption";
import { BUILTIN_ROLES, checkPrivilegeName, checkRoleid } from "../access-names";
import { normalize } from "../diff";
import { table } from "../fields";

export const roleTable = table({
  resource: "Role",
  module: "role",
  summary:
    "A custom PVE role: a named list of privileges. The list is checked against the privileges the server knows before anything changes; `translatePrivileges` maps PVE 8/9 equivalents (e.g. VM.Monitor -> VM.GuestAgent.Audit). `adopt: true` takes an existing custom role under management.",
  argsDoc: "The inputs of a {@link Role}. Only `roleid` replaces the role; the rest is applied in place.",
  id: "the role id (`MachineController`)",
  fields: {
    roleid: {
      kind: "string",
      required: true,
      change: "replaces",
      rule: (v: string) => checkRoleid(v) ?? (BUILTIN_ROLES.has(v) ? `'${v}' is a built-in role, which PVE does not let anyone change; choose another roleid and bind the built-in role directly.` : undefined),
      doc: "The role id (not a built-in role's).",
    },
    privileges: {
      kind: "list",
      of: "string",
      required: true,
      item: checkPrivilegeName,
      normalize: normalize.stringSet,
      normalizeDoc: "as a set (order and repeats do not matter)",
      doc: 'Privilege names, e.g. `["VM.Audit", "VM.Clone"]`, of PVE 8 or 9; the server\'s own list is checked before anything changes (see `appliedPrivileges` for what it has).',
    },
    translatePrivileges: {
      kind: "boolean",
      normalize: (v: boolean) => v === true,
      defaultDoc: "false",
      doc: "Map privileges of the other PVE major version to this server's equivalent (VM.Monitor -> VM.GuestAgent.Audit on PVE 9, VM.GuestAgent.* -> VM.Monitor on PVE 8); without it they are an error.",
    },
    ...adoptionFields("the existing role `roleid`"),
    appliedPrivileges: { kind: "list", of: "string", role: "output", present: true, doc: "The privileges the role has on the server (after translation), sorted." },
    pveVersion: { kind: "string", role: "output", doc: "The PVE version the role was last written to (e.g. `9.1.4`)." },
  },
});
