// The properties of a PermissionCheck, declared once (../fields.ts explains what derives from this
// table). `requirements` is a list of objects: its check is the field's own, below.

import { checkFullTokenId, checkPrivilegeName, checkUserid, normalizeAclPath } from "../access-names";
import { sortedSet } from "../access/common";
import type { InputChecker } from "../check";
import { isUnknown } from "../diff";
import { table } from "../fields";
import { aclPathProblem } from "./user-role-binding";

/** Privileges a principal needs on one ACL path (an item of `requirements`). */
export interface PermissionRequirement {
  /** An ACL path, e.g. `/pool/fleet`, `/vms/9000`, `/sdn/zones/localnetwork/vmbr0`. */
  path: string;
  /** Privileges needed there, all of them. */
  privileges: string[];
}

/** What a principal lacks on one ACL path, as found by {@link checkPermissions}. */
export interface MissingPermission {
  /** The ACL path, normalised (e.g. `/pool/fleet`). */
  path: string;
  /** The required privileges the principal does not have there, sorted. */
  privileges: string[];
}

/** One requirement, validated where known, with its path normalised and its privileges sorted. */
function normaliseRequirement(c: InputChecker, r: unknown, i: number): unknown {
  if (typeof r === "string" && isUnknown(r)) return r;
  if (r === null || typeof r !== "object" || Array.isArray(r)) {
    c.fail(`requirements[${i}]`, "each requirement is { path, privileges }.");
    return r;
  }
  const { path: rawPath, privileges } = r as { path: unknown; privileges: unknown };
  let path = rawPath;
  if (typeof rawPath === "string" && !isUnknown(rawPath)) {
    path = normalizeAclPath(rawPath);
    const problem = aclPathProblem(rawPath);
    if (problem) c.fail(`requirements[${i}].path`, `path '${rawPath}' is not valid: ${problem}`);
  } else if (!isUnknown(rawPath)) c.fail(`requirements[${i}].path`, "path must be a string, e.g. /pool/fleet.");
  if (typeof privileges === "string" && isUnknown(privileges)) return { path, privileges };
  if (!Array.isArray(privileges) || privileges.length === 0) {
    c.fail(`requirements[${i}].privileges`, 'privileges must be a non-empty list, e.g. ["VM.Audit"].');
    return { path, privileges };
  }
  privileges.forEach((p, j) => {
    if (isUnknown(p)) return;
    const problem = typeof p === "string" ? checkPrivilegeName(p) : "a privilege name must be a string.";
    if (problem) c.fail(`requirements[${i}].privileges[${j}]`, problem);
  });
  return { path, privileges: sortedSet(privileges as string[]) };
}

/**
 * The check of `requirements`: each requirement is checked and normalised on its own, so one
 * unknown value (a path naming a template that is being replaced) leaves the others sorted, as
 * the state has them. Returns the list normalised, or the value as given when it is not a list.
 */
function checkRequirements(c: InputChecker): unknown {
  const reqs: unknown = c.inputs.requirements;
  if (reqs === undefined || reqs === null) c.fail("requirements", "requirements is required.");
  else if (Array.isArray(reqs)) {
    if (reqs.length === 0) c.fail("requirements", "requirements must not be empty.");
    return reqs.map((r, i) => normaliseRequirement(c, r, i));
  } else if (!isUnknown(reqs)) c.fail("requirements", "requirements must be a list of { path, privileges }.");
  return reqs;
}

export const permissionCheckTable = table({
  resource: "PermissionCheck",
  module: "preflight",
  summary:
    "A permission preflight as a resource: checks (with PVE's own permission model) that a principal has every required privilege, at create, when its inputs change and at refresh. Make other resources depend on it so `up` fails early, with one message, before they are touched.",
  argsDoc: "The inputs of a {@link PermissionCheck}. None replaces it: a change re-runs the check in place.",
  id: "`permissions:<principal checked>` (`permissions:ci@pve`)",
  imports: { "../fields/preflight": ["MissingPermission", "PermissionRequirement"] },
  fields: {
    principal: {
      kind: "string",
      rule: (v: string) => (v.includes("!") ? checkFullTokenId(v) : checkUserid(v)),
      defaultDoc: "the provider's own credentials",
      doc: "The principal to check: `user@realm` or a full token id `user@realm!tokenid`.",
    },
    requirements: {
      kind: "custom",
      type: "PermissionRequirement[]",
      argsType: [
        "pulumi.Input<",
        "    pulumi.Input<{",
        "      /** An ACL path, e.g. `/pool/fleet` or `/vms/9000`. */",
        "      path: pulumi.Input<string>;",
        "      /** Privileges needed on that path, all of them (non-empty), e.g. `VM.Audit`. */",
        "      privileges: pulumi.Input<pulumi.Input<string>[]>;",
        "    }>[]",
        "  >",
      ].join("\n"),
      required: true,
      check: checkRequirements,
      normalizeDoc: "with the paths normalised and the privileges sorted",
      doc: "What the principal needs: a non-empty list of `{ path, privileges }`.",
    },
    failOnMissing: { kind: "boolean", defaultDoc: "true", doc: "Fail create and update when something is missing; false only reports `missing`." },
    checkedPrincipal: { kind: "string", role: "output", present: true, doc: "The principal actually checked: `principal`, or the provider's own id when it was not given." },
    missing: { kind: "custom", role: "output", present: true, type: "MissingPermission[]", doc: "What was missing at the last check (create, update or refresh); empty when all is granted." },
  },
});
