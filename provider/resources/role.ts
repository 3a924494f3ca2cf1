// Role: a custom role, a named list of privileges.
//
// check() accepts privileges that exist in PVE 8 or PVE 9 (their lists differ: VM.Monitor is
// PVE 8 only; VM.GuestAgent.* and VM.Replicate are PVE 9 only). When the list is new or changed,
// check() (so the preview) and create/update compare it with the privileges the server itself
// knows (its built-in Administrator role holds them all) and fail naming each privilege the
// server lacks and its PVE version, before changing anything.
//
// VM.Monitor on PVE 9: PVE 9 removed it (the QEMU monitor became root-only and guest-agent
// calls got their own VM.GuestAgent.* privileges) and rejects it in a role. Lists written for
// PVE 8, like kubermatic machine-controller's, include it to read a VM's IP addresses through
// the guest agent. By default that is an error naming the privilege and the version. With
// `translatePrivileges: true` the provider applies the nearest equivalent of the server's
// version instead, and reports what it applied in `appliedPrivileges`:
//   - on PVE 9: VM.Monitor -> VM.GuestAgent.Audit (what agent queries such as
//     network-get-interfaces check on PVE 9);
//   - on PVE 8: VM.GuestAgent.* -> VM.Monitor (what agent calls checked on PVE 8);
// a privilege without an equivalent (VM.Replicate on PVE 8) is still an error.
//
// Adopt (the import route: Pulumi cannot import dynamic-provider resources): `adopt: true`
// takes an existing custom role under management (adoption.ts): its privileges become the
// declared list (checked against the server as above, before anything changes). Delete then
// RELEASES the role (it stays, with the ACLs that use it) unless `destroyOnDelete: true`.
//
// Id: the role id; read() also works from the id alone. Built-in roles (PVEVMAdmin...)
// cannot be managed: PVE refuses to change or delete them.

import * as pulumi from "@pulumi/pulumi";
import { isNotFound, PveApiError } from "../proxmox/errors";
import { InputChecker } from "./check";
import { client } from "./context";
import { diffResource, isUnknown, sameValue } from "./diff";
import { lookupDenied } from "./preview-access";
import { stubProvider, type Lifecycle } from "./dynamic";
import { compact, gone, readResult, listText, sortedSet } from "./access/common";
import { declare } from "./declared";
import { alreadyExistsError, checkAdoptable, comparable, destroysOnDelete, logReleased, managementOf, nothingToAdoptError } from "./adoption";
import { checkFields, diffRulesOf, outputSlots } from "./fields";
import { roleTable } from "./fields/role";
import { RoleOutputs, type RoleArgs, type RoleInputs, type RoleState } from "./generated/role";

export type { RoleArgs, RoleInputs, RoleState } from "./generated/role";

const rules = diffRulesOf<RoleInputs>(roleTable);

/** PVE 8 <-> 9 equivalents, used only with translatePrivileges. */
const TO_PVE9: Record<string, string> = { "VM.Monitor": "VM.GuestAgent.Audit" };
const TO_PVE8: Record<string, string> = {
  "VM.GuestAgent.Audit": "VM.Monitor",
  "VM.GuestAgent.FileRead": "VM.Monitor",
  "VM.GuestAgent.FileWrite": "VM.Monitor",
  "VM.GuestAgent.FileSystemMgmt": "VM.Monitor",
  "VM.GuestAgent.Unrestricted": "VM.Monitor",
};

const WHY: Record<string, string> = {
  "VM.Monitor": "PVE 9 removed VM.Monitor; guest-agent access is governed by VM.GuestAgent.* (reading a VM's IP addresses needs VM.GuestAgent.Audit)",
  "VM.Replicate": "VM.Replicate exists from PVE 9 on",
};

export interface ServerPrivileges {
  version: string;
  privileges: Set<string>;
}

/** The privileges this server knows: those of its built-in Administrator role. */
export async function serverPrivileges(): Promise<ServerPrivileges> {
  const api = client();
  const [version, roles] = await Promise.all([api.cluster.version(), api.access.listRoles()]);
  const admin = roles.find((r) => r.roleid === "Administrator");
  if (!admin) throw new Error("the server lists no Administrator role; cannot tell which privileges it knows");
  return { version: version.version, privileges: new Set(admin.privs) };
}

/** The privileges to write for `declared` on this server, or an error naming what it lacks. */
export function applicablePrivileges(declared: string[], server: ServerPrivileges, translate: boolean): string[] {
  const major = Number(server.version.split(".")[0]);
  const table = major >= 9 ? TO_PVE9 : TO_PVE8;
  const out = new Set<string>();
  const missing: string[] = [];
  for (const p of declared) {
    if (server.privileges.has(p)) out.add(p);
    else if (translate && table[p] && server.privileges.has(table[p])) out.add(table[p]);
    else missing.push(p);
  }
  if (missing.length) {
    const reasons = missing.map((p) => (WHY[p] ? ` (${WHY[p]})` : "")).join("");
    const mappable = missing.filter((p) => table[p] && server.privileges.has(table[p]));
    const rest = missing.filter((p) => !mappable.includes(p));
    const hints: string[] = [];
    if (mappable.length) {
      hints.push(`Replace ${mappable.map((p) => `${p} with ${table[p]}`).join(", ")}, or set translatePrivileges: true to have the provider do so.`);
    }
    if (rest.length) hints.push(`Remove ${listText(rest)} from privileges.`);
    throw new Error(
      `privileges: ${listText(missing.map((p) => `'${p}'`))} ${missing.length > 1 ? "do" : "does"} not exist on this server (PVE ${server.version})${reasons}. ${hints.join(" ")}`,
    );
  }
  return sortedSet([...out])!;
}

/** check(): the server's verdict on the declared privileges, when it can be asked. */
async function checkOnServer(c: InputChecker, inputs: RoleInputs): Promise<void> {
  let server: ServerPrivileges;
  try {
    server = await serverPrivileges();
  } catch (err) {
    lookupDenied(`the privileges role '${inputs.roleid}' lists`, err);
    return;
  }
  try {
    applicablePrivileges(inputs.privileges, server, inputs.translatePrivileges === true);
  } catch (err) {
    c.fail("privileges", (err as Error).message.replace(/^privileges: /, ""));
  }
}

async function readRole(roleid: string): Promise<string[] | undefined> {
  try {
    return sortedSet(await client().access.getRole(roleid))!;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export const roleLifecycle: Lifecycle<RoleInputs, RoleState> = {
  async check(olds, news) {
    const c = new InputChecker(news as unknown as Record<string, unknown>);
    const { roleid } = checkFields(c, roleTable) as Partial<RoleInputs>;
    if (roleid !== undefined) declare.role(roleid); // bindings of this run may name it (declared.ts)
    const out = compact({ ...news, privileges: sortedSet(news.privileges)! });
    // A list this server would refuse fails the preview, as it would fail `up` (create and update
    // check the same before changing anything): asked only when the list is new or changed.
    const before = (olds ?? {}) as Partial<RoleInputs>;
    const changed = !sameValue(sortedSet(before.privileges), out.privileges) || (before.translatePrivileges === true) !== (out.translatePrivileges === true);
    if (c.failures.length === 0 && changed && !isUnknown(out.privileges)) await checkOnServer(c, out);
    await checkAdoptable(c, olds as Record<string, unknown>, out as RoleInputs & Record<string, unknown>, { kind: "Role", idProp: "roleid", what: (id) => `role '${id}'`, read: readRole });
    return c.result<RoleInputs>(out);
  },

  async diff(_id, olds, news) {
    const cmp = comparable(olds, news, []);
    const d = diffResource(rules, cmp.olds, cmp.news, { deleteBeforeReplace: () => false });
    return { changes: d.changes, replaces: d.replaces, deleteBeforeReplace: d.deleteBeforeReplace };
  },

  async create(inputs) {
    const server = await serverPrivileges();
    const applied = applicablePrivileges(inputs.privileges, server, inputs.translatePrivileges === true);
    if (inputs.adopt) {
      const before = await readRole(inputs.roleid);
      if (!before) throw nothingToAdoptError("Role", `role '${inputs.roleid}'`, "roleid");
      if (before.join(",") !== applied.join(",")) await client().access.updateRole(inputs.roleid, applied);
    } else {
      try {
        await client().access.createRole(inputs.roleid, applied);
      } catch (err) {
        if (err instanceof PveApiError && err.kind === "alreadyExists") throw alreadyExistsError("Role", `role '${inputs.roleid}'`, "roleid", err);
        throw err;
      }
    }
    return { id: inputs.roleid, outs: compact({ ...inputs, appliedPrivileges: (await readRole(inputs.roleid)) ?? applied, pveVersion: server.version }) };
  },

  async read(id, props) {
    const live = await readRole(id);
    if (!live) return gone<RoleState>();
    const same = props?.appliedPrivileges !== undefined && live.join(",") === sortedSet(props.appliedPrivileges)!.join(",");
    // Unchanged on the server: keep the declared list (it may differ by translation). Changed:
    // the server's list is the truth, and the next diff shows the drift.
    const inputs: RoleInputs = compact({
      roleid: id,
      privileges: same && props?.privileges ? props.privileges : live,
      translatePrivileges: props?.translatePrivileges,
      ...managementOf(props),
    });
    return readResult(id, compact({ ...inputs, appliedPrivileges: live, pveVersion: props?.pveVersion }), inputs);
  },

  async update(id, _olds, news) {
    const server = await serverPrivileges();
    const applied = applicablePrivileges(news.privileges, server, news.translatePrivileges === true);
    await client().access.updateRole(id, applied);
    return { outs: compact({ ...news, appliedPrivileges: (await readRole(id)) ?? applied, pveVersion: server.version }) };
  },

  async delete(id, props) {
    if (!destroysOnDelete(props)) return logReleased(`role '${id}'`, props.adopt);
    try {
      await client().access.deleteRole(id);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  },
};

/** A custom PVE role: a named list of privileges. The list is checked against the privileges the
 *  server knows before anything changes; `translatePrivileges` maps PVE 8/9 equivalents (e.g.
 *  VM.Monitor -> VM.GuestAgent.Audit). `adopt: true` takes an existing custom role under management. */
export class Role extends RoleOutputs {
  constructor(name: string, args: RoleArgs, opts?: pulumi.CustomResourceOptions) {
    super(stubProvider("provider/resources/role.js", "roleLifecycle"), name, { ...args, ...outputSlots(roleTable) }, opts, "proxmox", "Role");
  }
}
