// Pool: a Proxmox VE resource pool, with the VMs and storages this stack places in it.
//
// Members: `vms` and `storage` are the members this resource MANAGES, not a picture of the
// whole pool. Create and update add the declared ones and remove the ones taken out of the
// declaration; members that joined otherwise (a fleet's clones created with `pool=`, a VM a
// person moved in) are never touched and are no drift. Every member the pool has is reported
// in the output `members` ({ vms, storage }). A declared member that left the pool out of band
// is drift: refresh shows it missing from `vms`/`storage` and the next `up` puts it back.
//
// Delete takes out the members this resource declared, then deletes the pool. If other members
// are left, it refuses with a message naming them, unless `removeMembersOnDelete` is true
// (then they are taken out of the pool first; VMs and storages themselves are never deleted).
//
// Adopt (the import route: Pulumi cannot import dynamic-provider resources): `adopt: true`
// takes an existing pool under management (adoption.ts): a declared comment is applied, the
// declared members are added, and no member is taken out. A failed adoption leaves the pool as
// it was. Delete then RELEASES the pool (it stays, with all its members) unless
// `destroyOnDelete: true`, which deletes it as above.
//
// Id: the pool id. read() also works from the id alone: such a pool claims no members until
// its next update, so the program's `vms`/`storage` match as long as those members are in it.
//
// Uses the new-style `/pools?poolid=` API (PVE >= 8.1, nested pools) and falls back to the
// deprecated `/pools/{poolid}` calls on older nodes.

import * as pulumi from "@pulumi/pulumi";
import type { PoolInfo } from "../proxmox/pools";
import { isNotFound, isPoolMembershipConflict, PveApiError } from "../proxmox/errors";
import { InputChecker } from "./check";
import { client } from "./context";
import { diffResource, isUnknown } from "./diff";
import { stubProvider, type Lifecycle } from "./dynamic";
import { compact, difference, emptyToUndefined, gone, readResult, intersection, listText, sortedSet } from "./access/common";
import { declare } from "./declared";
import { alreadyExistsError, checkAdoptable, comparable, destroysOnDelete, logReleased, managementOf, manages, nothingToAdoptError } from "./adoption";
import { checkFields, diffRulesOf, outputSlots, pveParams } from "./fields";
import { poolTable, type PoolMembers } from "./fields/pool";
import { PoolOutputs, type PoolArgs, type PoolInputs, type PoolState } from "./generated/pool";

export type { PoolArgs, PoolInputs, PoolState } from "./generated/pool";
export type { PoolMembers } from "./fields/pool";

const rules = diffRulesOf<PoolInputs>(poolTable);

function membersOf(pool: PoolInfo): PoolMembers {
  const vms = new Set<number>();
  const storage = new Set<string>();
  for (const m of pool.members) {
    if (m.type === "storage") {
      const sid = m.storage ?? String(m.id).split("/").pop();
      if (sid) storage.add(sid);
    } else if (m.vmid !== undefined) {
      vms.add(Number(m.vmid));
    }
  }
  return { vms: sortedSet([...vms])!, storage: sortedSet([...storage])! };
}

/** What to change to go from the managed members in `olds` to the declaration in `news`. */
export function memberPlan(olds: Partial<PoolState>, news: Partial<PoolInputs>) {
  const actual = olds.members ?? { vms: [], storage: [] };
  // An adopted pool declaring no `vms` (or `storage`) leaves those members alone.
  const vms = manages(news, "vms") ? (news.vms ?? []) : (olds.vms ?? []);
  const storage = manages(news, "storage") ? (news.storage ?? []) : (olds.storage ?? []);
  return {
    addVms: difference(news.vms ?? [], actual.vms),
    removeVms: intersection(difference(olds.vms ?? [], vms), actual.vms),
    addStorage: difference(news.storage ?? [], actual.storage),
    removeStorage: intersection(difference(olds.storage ?? [], storage), actual.storage),
  };
}

async function readPool(poolid: string): Promise<PoolInfo | undefined> {
  try {
    return await client().pools.getCompat(poolid);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

async function applyMembers(poolid: string, plan: ReturnType<typeof memberPlan>, allowMove: boolean | undefined): Promise<void> {
  const pools = client().pools;
  if (plan.removeVms.length) await pools.updateCompat(poolid, { vms: plan.removeVms, delete: true });
  if (plan.removeStorage.length) await pools.updateCompat(poolid, { storage: plan.removeStorage, delete: true });
  if (plan.addVms.length) {
    try {
      await pools.updateCompat(poolid, { vms: plan.addVms, allowMove: allowMove || undefined });
    } catch (err) {
      if (isPoolMembershipConflict(err)) {
        throw new Error(`${(err as Error).message}. A VM is in at most one pool: take it out of the other pool, or set allowMove: true on Pool '${poolid}' to move it.`);
      }
      throw err;
    }
  }
  if (plan.addStorage.length) await pools.updateCompat(poolid, { storage: plan.addStorage });
}

async function stateOf(inputs: PoolInputs): Promise<PoolState> {
  const pool = await readPool(inputs.poolid);
  if (!pool) throw new Error(`pool '${inputs.poolid}' disappeared while it was being configured`);
  return compact({ ...inputs, comment: emptyToUndefined(pool.comment), members: membersOf(pool) });
}

/** Takes the members `plan` added (and that are still in the pool) out again; returns the pool as read before. */
async function takeBackAdded(poolid: string, plan: ReturnType<typeof memberPlan>): Promise<PoolInfo | undefined> {
  const pools = client().pools;
  const pool = await readPool(poolid);
  const now = pool ? membersOf(pool) : { vms: [], storage: [] };
  const vms = intersection(plan.addVms, now.vms);
  const storage = intersection(plan.addStorage, now.storage);
  if (vms.length) await pools.updateCompat(poolid, { vms, delete: true });
  if (storage.length) await pools.updateCompat(poolid, { storage, delete: true });
  return pool;
}

/** `adopt: true`: the existing pool, with the declared comment and members applied. On a
 *  failure the members it added are taken out again and the comment restored. */
async function adoptPool(inputs: PoolInputs): Promise<PoolState> {
  const pools = client().pools;
  const before = await readPool(inputs.poolid);
  if (!before) throw nothingToAdoptError("Pool", `pool '${inputs.poolid}'`, "poolid");
  const comment = emptyToUndefined(inputs.comment);
  const plan = memberPlan({ members: membersOf(before) }, inputs);
  try {
    if (comment !== undefined && comment !== emptyToUndefined(before.comment)) await pools.updateCompat(inputs.poolid, { comment });
    await applyMembers(inputs.poolid, plan, inputs.allowMove);
    return await stateOf(inputs);
  } catch (err) {
    let undone = "it was left as it was";
    try {
      const now = await takeBackAdded(inputs.poolid, plan);
      if (now && emptyToUndefined(now.comment) !== emptyToUndefined(before.comment)) await pools.updateCompat(inputs.poolid, { comment: before.comment ?? "" });
    } catch (undo) {
      undone = `undoing its changes failed (${(undo as Error).message})`;
    }
    throw new Error(`${(err as Error).message}\n(pool '${inputs.poolid}' was not adopted; ${undone}.)`);
  }
}

export const poolLifecycle: Lifecycle<PoolInputs, PoolState> = {
  async check(olds, news) {
    const c = new InputChecker(news as unknown as Record<string, unknown>);
    const { poolid } = checkFields(c, poolTable) as Partial<PoolInputs>;
    if (poolid !== undefined) declare.pool(poolid); // references to it from this run pass (declared.ts)
    await checkAdoptable(c, olds as Record<string, unknown>, news as PoolInputs & Record<string, unknown>, { kind: "Pool", idProp: "poolid", what: (id) => `pool '${id}'`, read: readPool });
    return c.result<PoolInputs>({
      ...news,
      poolid: poolid ?? news.poolid,
      vms: sortedSet(news.vms),
      storage: sortedSet(news.storage),
    });
  },

  async diff(_id, olds, news) {
    const cmp = comparable(olds, news, ["comment"]);
    const d = diffResource(rules, cmp.olds, cmp.news, { deleteBeforeReplace: () => true });
    const changed = [...d.changed];
    if (isUnknown(news.vms) || isUnknown(news.storage)) {
      changed.push(...["vms", "storage"].filter((k) => isUnknown((news as any)[k])));
    } else {
      const plan = memberPlan(olds, news);
      if (plan.addVms.length || plan.removeVms.length) changed.push("vms");
      if (plan.addStorage.length || plan.removeStorage.length) changed.push("storage");
    }
    return {
      changes: changed.length > 0,
      replaces: d.replaces,
      deleteBeforeReplace: d.deleteBeforeReplace,
    };
  },

  async create(inputs) {
    const pools = client().pools;
    if (inputs.adopt) return { id: inputs.poolid, outs: await adoptPool(inputs) };
    try {
      await pools.create(inputs.poolid, emptyToUndefined(inputs.comment));
    } catch (err) {
      if (err instanceof PveApiError && err.kind === "alreadyExists") throw alreadyExistsError("Pool", `pool '${inputs.poolid}'`, "poolid", err);
      throw err;
    }
    const plan = memberPlan({}, inputs);
    try {
      await applyMembers(inputs.poolid, plan, inputs.allowMove);
    } catch (err) {
      // Leave nothing half-made: take out what got in, then remove the pool.
      const left: string[] = [];
      try {
        await takeBackAdded(inputs.poolid, plan);
        await pools.deleteCompat(inputs.poolid);
      } catch (cleanup) {
        left.push(`pool '${inputs.poolid}' was created but could not be removed again (${(cleanup as Error).message}); delete it by hand`);
      }
      const msg = (err as Error).message;
      throw new Error(left.length ? `${msg}; ${left.join("; ")}` : msg);
    }
    return { id: inputs.poolid, outs: await stateOf(inputs) };
  },

  async read(id, props) {
    const pool = await readPool(id);
    if (!pool) return gone<PoolState>();
    const members = membersOf(pool);
    const old: Partial<PoolState> = props ?? {};
    // Declared members that are still there stay declared; one that left shows as drift.
    const vms = old.vms === undefined ? undefined : intersection(old.vms, members.vms);
    const storage = old.storage === undefined ? undefined : intersection(old.storage, members.storage);
    const inputs: PoolInputs = {
      poolid: id,
      comment: emptyToUndefined(pool.comment),
      vms,
      storage,
      removeMembersOnDelete: old.removeMembersOnDelete,
      allowMove: old.allowMove,
      ...managementOf(old),
    };
    for (const k of Object.keys(inputs) as (keyof PoolInputs)[]) if (inputs[k] === undefined) delete inputs[k];
    return readResult(id, { ...inputs, members }, inputs);
  },

  async update(_id, olds, news) {
    const pools = client().pools;
    if (manages(news, "comment") && emptyToUndefined(olds.comment) !== emptyToUndefined(news.comment)) {
      await pools.updateCompat(news.poolid, pveParams(poolTable, news, ["comment"]));
    }
    // Plan against the pool as it is now, not as last read.
    const current = await readPool(news.poolid);
    if (!current) throw new Error(`pool '${news.poolid}' does not exist any more: run \`pulumi refresh\` to drop it from the state, then \`pulumi up\` to create it again`);
    await applyMembers(news.poolid, memberPlan({ ...olds, members: membersOf(current) }, news), news.allowMove);
    return { outs: await stateOf(news) };
  },

  async delete(id, props) {
    if (!destroysOnDelete(props)) return logReleased(`pool '${id}'`, props.adopt);
    const pools = client().pools;
    const pool = await readPool(id);
    if (!pool) return;
    const members = membersOf(pool);
    const ours = { vms: intersection(props.vms ?? [], members.vms), storage: intersection(props.storage ?? [], members.storage) };
    const others = { vms: difference(members.vms, ours.vms), storage: difference(members.storage, ours.storage) };
    if ((others.vms.length || others.storage.length) && !props.removeMembersOnDelete) {
      const named = [
        ...(others.vms.length ? [`VM${others.vms.length > 1 ? "s" : ""} ${listText(others.vms)}`] : []),
        ...(others.storage.length ? [`storage ${listText(others.storage.map((s) => `'${s}'`))}`] : []),
      ];
      throw new Error(
        `pool '${id}' is not empty: it holds ${named.join(" and ")}, which this stack did not place there. ` +
          `Destroy or move those first, or set removeMembersOnDelete: true on the Pool (and run \`pulumi up\`) to take them out of the pool before deleting it (the VMs and storages themselves are kept).`,
      );
    }
    if (members.vms.length) await pools.updateCompat(id, { vms: members.vms, delete: true });
    if (members.storage.length) await pools.updateCompat(id, { storage: members.storage, delete: true });
    try {
      await pools.deleteCompat(id);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
  },
};

/** A PVE resource pool and the VMs and storages this stack places in it. `vms`/`storage` are
 *  the members it manages (others are left alone; `members` lists all). Delete takes the declared
 *  members out and deletes the pool; `adopt: true` takes an existing pool under management. */
export class Pool extends PoolOutputs {
  constructor(name: string, args: PoolArgs, opts?: pulumi.CustomResourceOptions) {
    super(stubProvider("provider/resources/pool.js", "poolLifecycle"), name, { ...args, ...outputSlots(poolTable) }, opts, "proxmox", "Pool");
  }
}
