// check()-time existence checks for what a VmClone, a Template or a UserRoleBinding refers to: a
// template (a VM that is a template, on the named node), a node, a storage (on a node, holding a
// content type), a pool and a custom role. All are read-only calls: one cached
// `GET /cluster/resources` per provider process serves a whole fleet's checks (nodes, storages,
// VMs), `GET /pools?poolid=` each pool, `GET /access/roles` the roles. What the same run declares
// (a Pool, Storage or Role resource checked earlier in this process, see ../declared.ts) is
// accepted without asking PVE, a declared storage judged by its declared content and nodes. A
// reference that looks missing is looked up once more, fresh, before it is reported (a Template
// created earlier in the same run must not fail its clones' checks from a stale answer).
//
// Nothing is reported when the API cannot tell: unreachable, no privilege to read (a 403), or a
// cluster view in which the credentials see no node (or no storage) at all. create() then meets
// the problem and reports PVE's own words. What could not be checked for lack of a privilege (a
// read-only CI token) is said as a warning naming it (../preview-access.ts). Callers ask only about references whose input changed
// (a preview of an unchanged resource asks PVE nothing) and never about unknown values.
//
// A reference to something the same stack creates must be passed as that resource's output
// (`storage.storage`, `pool.poolid`, `template.vmid`): unknown at preview, known once it exists.

import type { ClusterResource, PveClient } from "../../proxmox";
import { isNotFound } from "../../proxmox/errors";
import type { InputChecker } from "../check";
import { BUILTIN_ROLES } from "../access-names";
import { clearDeclared, declared } from "../declared";
import { connection } from "../context";
import { lookupDenied, unseen } from "../preview-access";

const TTL_MS = 5_000;
const cache = new Map<string, { at: number; rows: Promise<ClusterResource[]> }>();
const pools = new Map<string, { at: number; exists: Promise<boolean | undefined> }>();
const roleLists = new Map<string, { at: number; ids: Promise<Set<string> | undefined> }>();

/** The cluster's role ids, or undefined when the credentials cannot read them. */
function roleIds(api: PveClient, endpoint: string, fresh: boolean): Promise<Set<string> | undefined> {
  const hit = roleLists.get(endpoint);
  if (!fresh && hit && Date.now() - hit.at < TTL_MS) return hit.ids;
  const ids = api.access.listRoles().then(
    (rows) => new Set(rows.map((r) => r.roleid)),
    (err: unknown) => {
      lookupDenied("the custom roles", err);
      return undefined;
    },
  );
  roleLists.set(endpoint, { at: Date.now(), ids });
  return ids;
}

function snapshot(api: PveClient, endpoint: string, fresh: boolean): Promise<ClusterResource[]> {
  const hit = cache.get(endpoint);
  if (!fresh && hit && Date.now() - hit.at < TTL_MS) return hit.rows;
  const rows = api.cluster.resources();
  cache.set(endpoint, { at: Date.now(), rows });
  rows.catch(() => cache.delete(endpoint));
  return rows;
}

/** Whether the pool exists: true, false, or undefined when the credentials cannot tell. */
function poolExists(api: PveClient, endpoint: string, poolid: string, fresh: boolean): Promise<boolean | undefined> {
  const key = `${endpoint}\u0000${poolid}`;
  const hit = pools.get(key);
  if (!fresh && hit && Date.now() - hit.at < TTL_MS) return hit.exists;
  const exists = api.pools.get(poolid).then(
    () => true,
    (err: unknown) => {
      if (isNotFound(err)) return false;
      lookupDenied(`pool '${poolid}'`, err);
      return undefined;
    },
  );
  pools.set(key, { at: Date.now(), exists });
  return exists;
}

/** One thing an input refers to, and the property that names it. */
export type Reference =
  | { kind: "node"; property: string; node: string }
  | {
      kind: "storage";
      property: string;
      storage: string;
      /** Must be available on this node (when the node is in the cluster). */
      node?: string;
      /** Must hold this content type (`images`, `import`, `snippets`...). */
      content?: string;
      /** Said after the problem, e.g. that the value is a default. */
      note?: string;
    }
  | {
      kind: "template";
      property: string;
      vmid: number;
      /** The node the template must be on, and the property naming it. */
      node?: string;
      nodeProperty?: string;
      /** What to do when there is no such VM. */
      missingHint: string;
    }
  | { kind: "pool"; property: string; pool: string }
  | { kind: "role"; property: string; role: string };

type Found = Array<[string, string]>;

const isTemplateRow = (r: ClusterResource, vmid: number) => (r.type === "qemu" || String(r.id).startsWith("qemu/")) && Number(r.vmid) === Number(vmid);

/** Templates referenced but not listed: taken VMIDs the credentials cannot see (probed only on this failure path). */
async function hiddenVmids(api: PveClient, rows: ClusterResource[], refs: Reference[]): Promise<Set<number>> {
  const hidden = new Set<number>();
  for (const ref of refs) {
    if (ref.kind !== "template" || rows.some((r) => isTemplateRow(r, ref.vmid))) continue;
    if (await api.cluster.vmidTaken(ref.vmid).catch(() => false)) hidden.add(ref.vmid);
  }
  return hidden;
}

/**
 * Templates listed as plain VMs: pvestatd broadcasts a VM's template flag with its stats every
 * 10 s (pve-manager API2Tools.pm extract_vm_stats reads it from the RRD data), so a template
 * converted since shows `template: 0`, or `status: unknown` and no flag at all when it is newer
 * than the last cycle, as a Template built by the same `up` is. Its config says what it is now
 * (probed only on this failure path).
 */
async function convertedSinceBroadcast(api: PveClient, rows: ClusterResource[], refs: Reference[]): Promise<Set<number>> {
  const converted = new Set<number>();
  for (const ref of refs) {
    if (ref.kind !== "template") continue;
    const row = rows.find((r) => isTemplateRow(r, ref.vmid));
    if (!row || row.template === true || !row.node) continue;
    const config = await api.qemu.getConfig(String(row.node), ref.vmid).catch(() => undefined);
    if (config && String(config.template ?? "0") === "1") converted.add(ref.vmid);
  }
  return converted;
}

function clusterProblems(rows: ClusterResource[], refs: Reference[], hidden: Set<number> = new Set(), converted: Set<number> = new Set()): Found {
  const out: Found = [];
  const nodes = rows.filter((r) => r.type === "node").map((r) => String(r.node));
  const nodeList = [...nodes].sort().join(", ");
  const storages = rows.filter((r) => r.type === "storage");
  const inCluster = (node: string) => nodes.length === 0 || nodes.includes(node);
  if (nodes.length === 0) unseen(refs.filter((r) => r.kind === "node").map((r) => `node '${(r as { node: string }).node}' (${r.property})`), "no node", "Sys.Audit on /nodes");
  if (storages.length === 0) unseen(refs.filter((r) => r.kind === "storage" && !declared.storage(r.storage)).map((r) => `storage '${(r as { storage: string }).storage}' (${r.property})`), "no storage", "Datastore.Audit on /storage");
  for (const ref of refs) {
    if (ref.kind === "node") {
      if (!inCluster(ref.node)) out.push([ref.property, `node '${ref.node}' is not in the cluster (nodes: ${nodeList}), or these credentials cannot see it (that needs Sys.Audit on /nodes/${ref.node}).`]);
    } else if (ref.kind === "template") {
      const tpl = rows.find((r) => isTemplateRow(r, ref.vmid));
      if (!tpl && hidden.has(ref.vmid)) {
        out.push([ref.property, `VM ${ref.vmid} exists, but these credentials cannot see it: that needs VM.Audit on /vms/${ref.vmid} (PVEAuditor there, or on a pool holding it).`]);
      } else if (!tpl) out.push([ref.property, `there is no VM ${ref.vmid} on the cluster; ${ref.missingHint}`]);
      else if (tpl.template !== true && !converted.has(ref.vmid)) out.push([ref.property, `VM ${ref.vmid} is not a template (convert it with \`qm template ${ref.vmid}\`, or use a Template resource).`]);
      else if (ref.node !== undefined && nodes.includes(ref.node) && tpl.node !== ref.node) {
        out.push([ref.nodeProperty ?? ref.property, `template ${ref.vmid} is on node '${tpl.node}', not '${ref.node}'.`]);
      }
    } else if (ref.kind === "storage" && declared.storage(ref.storage)) {
      // declared by this run: judged by what it will be after it
      const d = declared.storage(ref.storage)!;
      const note = ref.note ? ` ${ref.note}` : "";
      if (ref.node !== undefined && d.nodes?.length && !d.nodes.includes(ref.node)) {
        out.push([ref.property, `storage '${ref.storage}' (declared by this stack) is not available on node '${ref.node}' (its nodes: ${d.nodes.join(", ")}).${note}`]);
      } else if (ref.content && d.content && !d.content.includes(ref.content)) {
        out.push([ref.property, `storage '${ref.storage}' (declared by this stack) does not hold '${ref.content}' content (its content: ${d.content.join(", ") || "nothing"}); add ${ref.content} to its content, or choose another storage.${note}`]);
      }
    } else if (ref.kind === "storage" && storages.length > 0) {
      const note = ref.note ? ` ${ref.note}` : "";
      const all = storages.filter((r) => r.storage === ref.storage);
      if (all.length === 0) {
        const ids = [...new Set(storages.map((r) => String(r.storage)))].sort();
        out.push([ref.property, `storage '${ref.storage}' does not exist (storages: ${ids.join(", ")}), or these credentials cannot see it (that needs Datastore.Audit on /storage/${ref.storage}).${note}`]);
        continue;
      }
      const checkNode = ref.node !== undefined && nodes.includes(ref.node);
      const here = checkNode ? all.filter((r) => r.node === ref.node) : all;
      if (here.length === 0) {
        const on = [...new Set(all.map((r) => String(r.node)))].sort();
        out.push([ref.property, `storage '${ref.storage}' is not available on node '${ref.node}' (it is on: ${on.join(", ")}).${note}`]);
        continue;
      }
      const content = here[0].content;
      if (ref.content && typeof content === "string" && !content.split(",").map((c) => c.trim()).includes(ref.content)) {
        out.push([ref.property, `storage '${ref.storage}' does not hold '${ref.content}' content (it holds: ${content || "nothing"}); enable it on the storage (content ${ref.content}), or choose another storage.${note}`]);
      }
    }
  }
  return out;
}

async function poolAndRoleProblems(api: PveClient, endpoint: string, refs: Reference[], fresh: boolean): Promise<Found> {
  const out: Found = [];
  for (const ref of refs) {
    if (ref.kind === "pool" && !declared.pool(ref.pool)) {
      if ((await poolExists(api, endpoint, ref.pool, fresh)) === false) out.push([ref.property, `pool '${ref.pool}' does not exist; create it first (a Pool resource, passing pool.poolid here), or fix ${ref.property}.`]);
    }
    if (ref.kind === "role" && !BUILTIN_ROLES.has(ref.role) && !declared.role(ref.role)) {
      const ids = await roleIds(api, endpoint, fresh);
      if (ids && !ids.has(ref.role)) {
        out.push([ref.property, `role '${ref.role}' does not exist on the cluster. Declare it with a Role resource and pass role.roleid here (so the binding waits for it), or fix the name (role ids are case-sensitive).`]);
      }
    }
  }
  return out;
}

/** Adds a failure per reference that does not exist (or cannot serve) on the cluster. */
export async function checkReferences(c: InputChecker, api: PveClient, endpoint: string, refs: Reference[]): Promise<void> {
  if (refs.length === 0) return;
  const needCluster = refs.some((r) => r.kind !== "pool" && r.kind !== "role" && !(r.kind === "storage" && declared.storage(r.storage)));
  const cluster = async (fresh: boolean): Promise<Found> => {
    if (!needCluster) return clusterProblems([], refs);
    const rows = await snapshot(api, endpoint, fresh);
    return clusterProblems(rows, refs, fresh ? await hiddenVmids(api, rows, refs) : undefined, fresh ? await convertedSinceBroadcast(api, rows, refs) : undefined);
  };
  // A cached answer first; anything it finds missing is asked again fresh before it fails.
  const ask = async (fresh: boolean): Promise<Found> => [...(await cluster(fresh)), ...(await poolAndRoleProblems(api, endpoint, refs, fresh))];
  let found: Found;
  try {
    found = await ask(false);
    if (found.length) found = await ask(true);
  } catch (err) {
    lookupDenied(refs.map((r) => r.property).join(", "), err);
    return;
  }
  for (const [property, reason] of found) c.fail(property, reason);
}

/** checkReferences through the provider's connection. Without usable connection settings it
 *  checks nothing: the first API call reports what is missing. */
export async function checkReferencesOnCluster(c: InputChecker, refs: Reference[]): Promise<void> {
  if (refs.length === 0) return;
  let conn: ReturnType<typeof connection>;
  try {
    conn = connection();
  } catch {
    return;
  }
  await checkReferences(c, conn.client, conn.settings.endpoint, refs);
}

/**
 * The node of template `vmid`, from the cached cluster view (asked again, fresh, when it is not
 * there): what a VmClone given only `templateVmid` clones from. Undefined when the template is not
 * in the credentials' view (absent, hidden, or the API cannot be asked: then a warning says why).
 */
export async function findTemplateNode(vmid: number): Promise<string | undefined> {
  let conn: ReturnType<typeof connection>;
  try {
    conn = connection();
  } catch {
    return undefined;
  }
  try {
    for (const fresh of [false, true]) {
      const row = (await snapshot(conn.client, conn.settings.endpoint, fresh)).find((r) => isTemplateRow(r, vmid));
      if (row?.node !== undefined) return String(row.node);
    }
  } catch (err) {
    lookupDenied(`the node of template ${vmid} (templateVmid)`, err);
  }
  return undefined;
}

export interface CloneReferences {
  templateVmid?: number;
  templateNode?: string;
  node?: string;
  storage?: string;
}

/** A VmClone's references: its template (on its node), its target node and full-clone storage
 *  (which must hold VM images, on `cloneNode`, the node the clone runs on, when given). */
export async function checkCloneReferences(c: InputChecker, refs: CloneReferences, opts: { cloneNode?: string } = {}): Promise<void> {
  const list: Reference[] = [];
  if (refs.templateNode !== undefined) list.push({ kind: "node", property: "templateNode", node: refs.templateNode });
  if (refs.node !== undefined) list.push({ kind: "node", property: "node", node: refs.node });
  if (refs.templateVmid !== undefined) {
    list.push({
      kind: "template",
      property: "templateVmid",
      vmid: refs.templateVmid,
      node: refs.templateNode,
      nodeProperty: "templateNode",
      missingHint: "nothing to clone: create the template first (a Template resource), or fix templateVmid.",
    });
  }
  if (refs.storage !== undefined) list.push({ kind: "storage", property: "storage", storage: refs.storage, node: opts.cloneNode, content: "images" });
  await checkReferencesOnCluster(c, list);
}

/** Forgets the cached cluster view, pool and role answers, and the run's declarations (tests). */
export function clearReferenceCache(): void {
  cache.clear();
  pools.clear();
  roleLists.clear();
  clearDeclared();
}
