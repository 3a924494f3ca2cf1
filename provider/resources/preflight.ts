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
import { normalizeAclPath } from "./access-names";
import { compact, readResult } from "./access/common";
import { checkFields, outputSlots } from "./fields";
import { permissionCheckTable, type MissingPermission, type PermissionRequirement } from "./fields/preflight";
import { PermissionCheckOutputs, type PermissionCheckArgs, type PermissionCheckInputs, type PermissionCheckState } from "./generated/preflight";

export type { MissingPermission, PermissionRequirement } from "./fields/preflight";
export type { PermissionCheckArgs, PermissionCheckInputs, PermissionCheckState } from "./generated/preflight";

/** Who is checked, and for what (the argument of {@link checkPermissions}). */
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

async function runCheck(inputs: PermissionCheckInputs): Promise<PermissionCheckState> {
  const api = client();
  const missing = await checkPermissions(api, inputs);
  const checkedPrincipal = inputs.principal ?? api.identity.id;
  if (missing.length && inputs.failOnMissing !== false) throw new Error(describeMissing(checkedPrincipal, missing));
  return compact({ ...inputs, checkedPrincipal, missing });
}

export const permissionCheckLifecycle: Lifecycle<PermissionCheckInputs, PermissionCheckState> = {
  async check(_olds, news) {
    const c = new InputChecker(news as unknown as Record<string, unknown>);
    const { requirements = news.requirements } = checkFields(c, permissionCheckTable) as Partial<PermissionCheckInputs>;
    return c.result<PermissionCheckInputs>(compact({ ...news, requirements }));
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
export class PermissionCheck extends PermissionCheckOutputs {
  constructor(name: string, args: PermissionCheckArgs, opts?: pulumi.CustomResourceOptions) {
    const props = { principal: undefined, failOnMissing: undefined, ...args, ...outputSlots(permissionCheckTable) };
    super(stubProvider("provider/resources/preflight.js", "permissionCheckLifecycle"), name, props, opts, "proxmox", "PermissionCheck");
  }
}
