// check()-time existence checks for what a VmClone refers to: the template (a VM that is a
// template, on the named node), the target node and the full-clone storage. One cached
// `GET /cluster/resources` per provider process serves a whole fleet's checks; a reference that
// looks missing is looked up once more, fresh, before it is reported (a Template created earlier
// in the same run must not fail its clones' checks from a stale answer). When the API cannot be
// asked (unreachable, no privilege), nothing is reported here: create() meets the problem and
// reports PVE's own words.

import type { ClusterResource, PveClient } from "../../proxmox";
import type { InputChecker } from "../check";

const TTL_MS = 5_000;
const cache = new Map<string, { at: number; rows: Promise<ClusterResource[]> }>();

function snapshot(api: PveClient, endpoint: string, fresh: boolean): Promise<ClusterResource[]> {
  const hit = cache.get(endpoint);
  if (!fresh && hit && Date.now() - hit.at < TTL_MS) return hit.rows;
  const rows = api.cluster.resources();
  cache.set(endpoint, { at: Date.now(), rows });
  rows.catch(() => cache.delete(endpoint));
  return rows;
}

export interface CloneReferences {
  templateVmid?: number;
  templateNode?: string;
  node?: string;
  storage?: string;
}

function problems(rows: ClusterResource[], refs: CloneReferences): Array<[keyof CloneReferences, string]> {
  const out: Array<[keyof CloneReferences, string]> = [];
  const nodes = rows.filter((r) => r.type === "node").map((r) => String(r.node));
  const nodeList = nodes.sort().join(", ");
  if (refs.templateNode !== undefined && !nodes.includes(refs.templateNode)) out.push(["templateNode", `node '${refs.templateNode}' is not in the cluster (nodes: ${nodeList}).`]);
  if (refs.node !== undefined && !nodes.includes(refs.node)) out.push(["node", `node '${refs.node}' is not in the cluster (nodes: ${nodeList}).`]);
  if (refs.templateVmid !== undefined) {
    const tpl = rows.find((r) => (r.type === "qemu" || String(r.id).startsWith("qemu/")) && Number(r.vmid) === Number(refs.templateVmid));
    if (!tpl) out.push(["templateVmid", `there is no VM ${refs.templateVmid} on the cluster to clone; create the template first (a Template resource), or fix templateVmid.`]);
    else if (tpl.template !== true) out.push(["templateVmid", `VM ${refs.templateVmid} is not a template (convert it with \`qm template ${refs.templateVmid}\`, or use a Template resource).`]);
    else if (refs.templateNode !== undefined && nodes.includes(refs.templateNode) && tpl.node !== refs.templateNode) {
      out.push(["templateNode", `template ${refs.templateVmid} is on node '${tpl.node}', not '${refs.templateNode}'.`]);
    }
  }
  if (refs.storage !== undefined && !rows.some((r) => r.type === "storage" && r.storage === refs.storage)) {
    const ids = [...new Set(rows.filter((r) => r.type === "storage").map((r) => String(r.storage)))].sort();
    out.push(["storage", `storage '${refs.storage}' does not exist (storages: ${ids.join(", ")}).`]);
  }
  return out;
}

/** Adds a failure per reference that does not exist on the cluster. */
export async function checkCloneReferences(c: InputChecker, api: PveClient, endpoint: string, refs: CloneReferences): Promise<void> {
  let found: Array<[keyof CloneReferences, string]>;
  try {
    found = problems(await snapshot(api, endpoint, false), refs);
    if (found.length) found = problems(await snapshot(api, endpoint, true), refs);
  } catch {
    return;
  }
  for (const [property, reason] of found) c.fail(property, reason);
}

/** Forgets the cached cluster view (tests). */
export function clearReferenceCache(): void {
  cache.clear();
}
