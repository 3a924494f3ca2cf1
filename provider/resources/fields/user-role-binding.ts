// The properties of a UserRoleBinding, declared once (../fields.ts explains what derives from this
// table). That exactly one of user, token and group is set, and that a custom role exists, are
// checked by the resource's check().

import { adoptionFields } from "../adoption";
import { BUILTIN_ROLES, checkAclPath, checkFullTokenId, checkGroupid, checkRoleid, checkUserid, normalizeAclPath } from "../access-names";
import { normalize } from "../diff";
import { table } from "../fields";

/** Why `value` is not an ACL path PVE accepts, once normalised (`pool/fleet/` is `/pool/fleet`). */
export function aclPathProblem(value: string): string | undefined {
  return checkAclPath(normalizeAclPath(value));
}

/** Why `r` cannot be granted: not a role id, or a misspelt built-in role (custom ones are looked up). */
function roleProblem(r: unknown): string | undefined {
  if (typeof r !== "string") return "a role id must be a string.";
  const bad = checkRoleid(r);
  if (bad) return bad;
  if (BUILTIN_ROLES.has(r)) return undefined;
  const builtin = [...BUILTIN_ROLES].find((b) => b.toLowerCase() === r.toLowerCase());
  if (builtin) return `unknown role '${r}': did you mean the built-in role '${builtin}'? Role ids are case-sensitive.`;
  if (/^PVE/i.test(r)) return `unknown role '${r}': it is not one of PVE's built-in roles (${[...BUILTIN_ROLES].join(", ")}).`;
  return undefined; // a custom role: checked at create
}

const ONE_OF = "Exactly one of user, token and group.";
const adoption = adoptionFields("the roles the principal already has here");

export const userRoleBindingTable = table({
  resource: "UserRoleBinding",
  module: "user-role-binding",
  summary:
    "Grants roles to one principal (a user, an API token or a group) on one ACL path, with or without propagation. It revokes only the roles it granted; a role already granted there makes create fail unless `adopt: true`, which records it in `preexistingRoles` and keeps it on delete.",
  argsDoc: "The inputs of a {@link UserRoleBinding}. `roles` changes in place; the path, the principal and `propagate` replace the binding.",
  id: "`<path>|<type>:<principal>` (`/pool/fleet|user:fleet@pve`, `/pool/fleet|token:fleet@pve!ci`)",
  fields: {
    path: {
      kind: "string",
      required: true,
      change: "replaces",
      rule: aclPathProblem,
      normalize: normalizeAclPath,
      normalizeDoc: "with the path normalised (`pool/fleet/` is `/pool/fleet`)",
      doc: "An ACL path: `/`, `/pool/{id}`, `/vms/{id}`, `/storage/{id}`, `/nodes/{node}`, `/sdn/zones/{zone}[/{vnet}]`, `/access/...`.",
    },
    roles: {
      kind: "list",
      of: "string",
      required: true,
      nonEmpty: true,
      item: roleProblem,
      normalize: normalize.stringSet,
      normalizeDoc: "as a set (order and repeats do not matter)",
      doc: "Roles to grant (built-in names or custom roles' ids; a custom role must exist at create). As an output, the binding's roles still granted, as last read: a role revoked out of band drops out.",
    },
    user: { kind: "string", change: "replaces", rule: checkUserid, doc: `The user to grant to (\`name@realm\`). ${ONE_OF}` },
    token: { kind: "string", change: "replaces", rule: checkFullTokenId, doc: `The API token to grant to, as a full id \`user@realm!tokenid\` (e.g. ApiToken \`fullTokenId\`). ${ONE_OF}` },
    group: { kind: "string", change: "replaces", rule: checkGroupid, doc: `The group to grant to (its group id). ${ONE_OF}` },
    propagate: { kind: "boolean", present: "state", defaultDoc: "true", change: "replaces", normalize: (v: boolean) => v !== false, doc: "Whether the grant applies to the paths below `path` too." },
    // A binding adopts and releases roles, not one object.
    adopt: { ...adoption.adopt, doc: "Take roles the principal already has here under management instead of failing (they are then kept on delete)." },
    destroyOnDelete: { ...adoption.destroyOnDelete, defaultDoc: "only the roles this binding granted are revoked", doc: "On delete, revoke the adopted roles too (true), or revoke nothing (false)." },
    preexistingRoles: { kind: "list", of: "string", role: "output", present: true, doc: "Roles the principal had here before this binding; the binding never removes them." },
  },
});

