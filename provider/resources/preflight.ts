// Permission preflight: does a principal have the privileges a job needs, on the paths it
// needs them? Asks PVE's own permission model (GET /access/permissions, which resolves
// propagation, groups, pools and token privilege separation) instead of re-implementing it,
// and answers with the complete list of what is missing, so a stack fails early with one
// readable message rather than with a 403 in the middle of a fleet.
//
// - `checkPermissions(client, { principal, requirements })`: the function (any PveClient).
// - `PermissionCheck`: the same as a resource, so a program can make other resources wait for
//   it (dependsOn) and fail at `up` before they are touched. It runs at create, again when its
//   inputs change, and at refresh (where it updates `missing` instead of failing).
//
// Without `principal` the caller (the provider's own credentials) is checked, which needs no
// privilege. For another user or token, PVE requires Sys.Audit on /access (a user may check its
// own tokens without it).

import * as pulumi from "@pulumi/pulumi";
import type { PveClient } from "../proxmox/client";
import { isPermissionDenied } from "../proxmox/errors";
import { InputChecker } from "./check";
import { client } from "./context";
import { isUnknown, sameValue } from "./diff";
import { stubProvider, type Lifecycle } from "./dynamic";
import { checkAclPath, checkFullTokenId, checkPrivilegeName, checkUserid, normalizeAclPath } from "./access-names";
import { compact, readResult, sortedSet } from "./access/common";

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

export interface PermissionQuery {
  /** `user@realm` or `user@realm!tokenid`; absent: the caller. */
  principal?: string;
  requirements: PermissionRequirement[];
}

/** Everything `principal` lacks, per path (empty when every requirement is met). */
export async function checkPermissions(api: PveClient, query: PermissionQuery): Promise<MissingPermission[]> {
  const byPath = new Map<string, Set<string>>();
  for (const r of query.requirements) {
    const path = normalizeAclPath(r.path);
    const set = byPath.get(path) ?? new Set<string>();
    for (const p of r.privileges) set.add(p);
    byPath.set(path, set);
  }
  const missing: MissingPermission[] = [];
  for (const [path, needed] of [...byPath].sort(([a], [b]) => a.localeCompare(b))) {
    let answer: Record<string, Record<string, number>>;
    try {
      answer = await api.access.permissions(compact({ path, userid: query.principal }));
    } catch (err) {
      if (isPermissionDenied(err) && query.principal) {
        throw new Error(
          `cannot check the permissions of '${query.principal}': reading another principal's permissions needs Sys.Audit on /access (PVEAuditor there) for '${api.identity.id}', the provider's credentials. (${(err as Error).message})`,
        );
      }
      throw err;
    }
    const have = answer[path] ?? {};
    const lacking = [...needed].filter((p) => !(p in have)).sort();
    if (lacking.length) missing.push({ path, privileges: lacking });
  }
  return missing;
}

/** One message naming every missing privilege, with a way to grant it. */
export function describeMissing(principal: string, missing: MissingPermission[]): string {
  const lines = missing.map((m) => `  ${m.path}: ${m.privileges.join(", ")}`);
  const tokenNote = principal.includes("!")
    ? " For a token with privilege separation, grant the roles to the token as well as to its user (UserRoleBinding with `token:`)."
    : "";
  return `'${principal}' lacks privileges it needs:\n${lines.join("\n")}\nGrant roles that include them on these paths (or on a parent, with propagation), e.g. with UserRoleBinding.${tokenNote}`;
}

// ---- the resource --------------------------------------------------------------------------

/** The inputs of a {@link PermissionCheck}. None replaces it: a change re-runs the check in place. */
export interface PermissionCheckArgs {
  /** `user@realm` or a full token id `user@realm!tokenid`; absent: the provider's own credentials. */
  principal?: pulumi.Input<string>;
  /** What the principal needs: a non-empty list of `{ path, privileges }`. Required; a change re-runs the check in place. */
  requirements: pulumi.Input<
    pulumi.Input<{
      /** An ACL path, e.g. `/pool/fleet` or `/vms/9000`. */
      path: pulumi.Input<string>;
      /** Privileges needed on that path, all of them (non-empty), e.g. `VM.Audit`. */
      privileges: pulumi.Input<pulumi.Input<string>[]>;
    }>[]
  >;
  /** Fail create/update when something is missing. Default true; false only reports `missing`. */
  failOnMissing?: pulumi.Input<boolean>;
}

export interface PermissionCheckInputs {
  principal?: string;
  requirements: PermissionRequirement[];
  failOnMissing?: boolean;
}

export interface PermissionCheckState extends PermissionCheckInputs {
  /** The principal checked (the caller's id when `principal` was not given). */
  checkedPrincipal: string;
  /** What was missing at the last check (empty when all is granted). */
  missing: MissingPermission[];
}

async function runCheck(inputs: PermissionCheckInputs): Promise<PermissionCheckState> {
  const api = client();
  const missing = await checkPermissions(api, inputs);
  const checkedPrincipal = inputs.principal ?? api.identity.id;
  if (missing.length && inputs.failOnMissing !== false) throw new Error(describeMissing(checkedPrincipal, missing));
  return compact({ ...inputs, checkedPrincipal, missing });
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
    const problem = checkAclPath(path as string);
    if (problem) c.fail(`requirements[${i}].path`, `path '${rawPath}' is not valid: ${problem}`);
  } else if (!isUnknown(rawPath)) c.fail(`requirements[${i}].path`, "path must be a string, e.g. /pool/fleet.");
  if (typeof privileges === "string" && isUnknown(privileges)) return { path, privileges };
  if (!Array.isArray(privileges) || privileges.length === 0) {
    c.fail(`requirements[${i}].privileges`, "privileges must be a non-empty list, e.g. [\"VM.Audit\"].");
    return { path, privileges };
  }
  privileges.forEach((p, j) => {
    if (isUnknown(p)) return;
    const problem = typeof p === "string" ? checkPrivilegeName(p) : "a privilege name must be a string.";
    if (problem) c.fail(`requirements[${i}].privileges[${j}]`, problem);
  });
  return { path, privileges: sortedSet(privileges as string[]) };
}

export const permissionCheckLifecycle: Lifecycle<PermissionCheckInputs, PermissionCheckState> = {
  async check(_olds, news) {
    const c = new InputChecker(news as unknown as Record<string, unknown>);
    c.string("principal", { rule: (v) => (v.includes("!") ? checkFullTokenId(v) : checkUserid(v)) });
    c.boolean("failOnMissing");
    // Each requirement is checked and normalised on its own: one unknown value (a path naming a
    // template that is being replaced) leaves the others sorted, as the state has them.
    const reqs: unknown = news.requirements;
    let normalised: unknown = reqs;
    if (reqs === undefined || reqs === null) c.fail("requirements", "requirements is required.");
    else if (Array.isArray(reqs)) {
      if (reqs.length === 0) c.fail("requirements", "requirements must not be empty.");
      normalised = reqs.map((r, i) => normaliseRequirement(c, r, i));
    } else if (!isUnknown(reqs)) c.fail("requirements", "requirements must be a list of { path, privileges }.");
    return c.result<PermissionCheckInputs>(compact({ ...news, requirements: normalised as PermissionRequirement[] }));
  },

  async diff(_id, olds, news) {
    const changes =
      isUnknown(news) ||
      !sameValue(olds.principal, news.principal) ||
      !sameValue(olds.requirements, news.requirements) ||
      (olds.failOnMissing !== false) !== (news.failOnMissing !== false);
    return { changes, replaces: [] };
  },

  async create(inputs) {
    const outs = await runCheck(inputs);
    return { id: `permissions:${outs.checkedPrincipal}`, outs };
  },

  async read(id, props) {
    if (!props?.requirements) throw new Error("a PermissionCheck cannot be imported: it owns nothing on the cluster; declare it instead");
    const inputs: PermissionCheckInputs = compact({ principal: props.principal, requirements: props.requirements, failOnMissing: props.failOnMissing });
    const outs = await runCheck({ ...inputs, failOnMissing: false });
    return readResult(id, { ...outs, failOnMissing: props.failOnMissing }, inputs);
  },

  async update(_id, _olds, news) {
    return { outs: await runCheck(news) };
  },

  async delete() {
    // Nothing on the cluster belongs to a check.
  },
};

/** A permission preflight as a resource: checks (with PVE's own permission model) that a principal
 *  has every required privilege, at create, when its inputs change and at refresh. Make other
 *  resources depend on it so `up` fails early, with one message, before they are touched. */
export class PermissionCheck extends pulumi.dynamic.Resource {
  /** The principal to check as given (`user@realm` or `user@realm!tokenid`); undefined: the provider's credentials. */
  declare readonly principal: pulumi.Output<string | undefined>;
  /** The requirements checked, with paths normalised and privileges sorted. */
  declare readonly requirements: pulumi.Output<PermissionRequirement[]>;
  /** The principal actually checked: `principal`, or the provider's own id when it was not given. */
  declare readonly checkedPrincipal: pulumi.Output<string>;
  /** What was missing at the last check (create, update or refresh); empty when all is granted. */
  declare readonly missing: pulumi.Output<MissingPermission[]>;

  constructor(name: string, args: PermissionCheckArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      stubProvider("provider/resources/preflight.js", "permissionCheckLifecycle"),
      name,
      { principal: undefined, failOnMissing: undefined, ...args, checkedPrincipal: undefined, missing: undefined },
      opts,
      "proxmox",
      "PermissionCheck",
    );
  }
}
