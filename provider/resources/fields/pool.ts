// The properties of a Pool, declared once (../fields.ts explains what derives from this table).

import { adoptionFields } from "../adoption";
import { checkPoolid } from "../access-names";
import { emptyToUndefined } from "../access/common";
import { pveNames, VMID_RANGE } from "../check";
import { table } from "../fields";

/** The members of a pool, by kind (the {@link Pool} output `members`). */
export interface PoolMembers {
  /** VM ids in the pool, sorted. */
  vms: number[];
  /** Storage ids in the pool, sorted. */
  storage: string[];
}

export const poolTable = table({
  resource: "Pool",
  module: "pool",
  summary:
    "A PVE resource pool and the VMs and storages this stack places in it. `vms`/`storage` are the members it manages (others are left alone; `members` lists all). Delete takes the declared members out and deletes the pool; `adopt: true` takes an existing pool under management.",
  argsDoc: "The inputs of a {@link Pool}. Only `poolid` replaces the pool; everything else is applied in place.",
  id: "the pool id (`fleet`)",
  imports: { "../fields/pool": ["PoolMembers"] },
  fields: {
    poolid: { kind: "string", required: true, change: "replaces", rule: checkPoolid, doc: "The pool id; `parent/child` for a nested pool (PVE >= 8.1)." },
    comment: { kind: "string", pve: "comment", pveClear: "", normalize: (v: string) => emptyToUndefined(v), normalizeDoc: "with an empty comment as none", doc: "Free-text comment." },
    vms: {
      kind: "list",
      of: "number",
      diffedBy: "resource",
      normalizeDoc: "as a set (order and repeats do not matter)",
      item: (v: unknown) => (typeof v === "number" && Number.isInteger(v) && v >= VMID_RANGE.min && v <= VMID_RANGE.max ? undefined : `a VM id is an integer from ${VMID_RANGE.min} to ${VMID_RANGE.max}, got ${JSON.stringify(v)}.`),
      doc: "VM ids this stack places in the pool (e.g. the template). Other members are left alone.",
    },
    storage: {
      kind: "list",
      of: "string",
      diffedBy: "resource",
      normalizeDoc: "as a set (order and repeats do not matter)",
      item: (v: unknown) => (typeof v === "string" && pveNames.storageId.test(v) ? undefined : `'${String(v)}' is not a storage id (letters, digits, '-', '_' and '.', starting with a letter).`),
      doc: "Storage ids this stack places in the pool. Other members are left alone.",
    },
    removeMembersOnDelete: { kind: "boolean", defaultDoc: "false", change: "behaviour", doc: "On delete, take every remaining member out of the pool first instead of refusing (the VMs and storages themselves are kept)." },
    allowMove: { kind: "boolean", defaultDoc: "false", change: "behaviour", doc: "Move a declared VM that belongs to another pool (PVE `allow-move`); without it that is an error." },
    ...adoptionFields("the existing pool `poolid`"),
    members: { kind: "custom", role: "output", present: true, type: "PoolMembers", doc: "Every member the pool has (declared or not), as last read." },
  },
});
