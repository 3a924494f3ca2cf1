// Storage: a storage definition the stack owns (`/storage`, i.e. /etc/pve/storage.cfg).
// Types `dir` (path, shared), `lvmthin` (volume group, thin pool) and `nfs` (server, export,
// options). Content types, nodes and enabled update in place; the id, type, path and backing
// (vgname/thinpool, server/export) replace, deleting first when the id stays (PVE ids are
// unique), creating first when the id changes.
// Delete refuses while volumes live on the storage, naming them, unless removeVolumesOnDelete.
//
// Adopt (the import route: Pulumi cannot import dynamic-provider resources): `adopt: true`
// takes an existing storage definition under management (adoption.ts). The declared type and
// backing (path, vgname/thinpool, server/export) must be what it has (they cannot change in
// place); declared content, nodes, enabled, shared and options are applied; what is left out
// stays as it is. Delete then RELEASES the definition (it stays, volumes and all) unless
// `destroyOnDelete: true`, which deletes it as above.

import * as pulumi from "@pulumi/pulumi";
import { stubProvider, type Lifecycle } from "./dynamic";
import { diffResource, isUnknown, normalize, sameValue } from "./diff";
import { InputChecker } from "./check";
import { client } from "./context";
import { PveApiError } from "../proxmox/errors";
import { declare } from "./declared";
import { alreadyExistsError, checkAdoptable, comparable, destroysOnDelete, logReleased, managementOf, manages, nothingToAdoptError } from "./adoption";
import type { StorageConfig } from "../proxmox/storage";
import { toBool } from "../proxmox/coerce";
import { gone } from "./read-result";
import { checkFields, diffRulesOf, outputSlots, pveParams } from "./fields";
import { CONTENT_TYPES, storageTable, type StorageType } from "./fields/storage";
import { StorageOutputs, type StorageArgs, type StorageInputs, type StorageState } from "./generated/storage";

export { CONTENT_TYPES, STORAGE_TYPES, type StorageType } from "./fields/storage";
export type { StorageArgs, StorageInputs, StorageState } from "./generated/storage";

/** What each type can hold (pve-storage plugins' `plugindata.content`). */
const CONTENT_OF: Record<StorageType, readonly string[]> = {
  dir: CONTENT_TYPES,
  nfs: CONTENT_TYPES,
  lvmthin: ["images", "rootdir"],
};

/** What an adopted storage manages only when declared. */
const SETTINGS = ["content", "path", "shared", "vgname", "thinpool", "server", "export", "options", "nodes", "enabled"];
/** What cannot change in place: an adopted storage must already have the declared value. */
const FIXED = ["path", "vgname", "thinpool", "server", "export"] as const;

const rules = diffRulesOf<StorageInputs>(storageTable);
/** An adopted storage may leave `content` out: it keeps its own. */
const adoptedTable = { ...storageTable, fields: { ...storageTable.fields, content: { ...storageTable.fields.content, required: false } } };

function list(value: unknown): string[] {
  return String(value ?? "")
    .split(/[,;\s]+/)
    .filter((x) => x !== "" && x !== "none");
}

/** A PVE boolean (1/0, "1"/"0", on/off...); absent is false. */
function flag(value: unknown): boolean {
  return toBool(value) ?? false;
}

/** The state as PVE stores it, from a `GET /storage/{id}` answer, with the resource's own flags. */
export function stateFromConfig(cfg: StorageConfig, flags: Pick<StorageInputs, "removeVolumesOnDelete" | "adopt" | "destroyOnDelete"> = {}): StorageState {
  const { removeVolumesOnDelete } = flags;
  const type = String(cfg.type) as StorageType;
  const s: StorageState = { storage: cfg.storage, type, content: normalize.stringSet(list(cfg.content)), enabled: !flag(cfg.disable) };
  if (type === "dir" || type === "nfs") s.path = cfg.path;
  if (type === "dir") s.shared = flag(cfg.shared);
  if (type === "lvmthin") Object.assign(s, { vgname: cfg.vgname, thinpool: cfg.thinpool });
  if (type === "nfs") {
    s.server = cfg.server as string;
    s.export = cfg.export as string;
    if (cfg.options !== undefined) s.options = String(cfg.options);
  }
  if (cfg.nodes !== undefined) s.nodes = normalize.stringSet(list(cfg.nodes));
  if (removeVolumesOnDelete !== undefined) s.removeVolumesOnDelete = removeVolumesOnDelete;
  return { ...s, ...managementOf(flags) };
}

async function readConfig(storage: string): Promise<StorageConfig | undefined> {
  try {
    return await client().storage.get(storage);
  } catch (e) {
    if (e instanceof PveApiError && e.kind === "notFound") return undefined;
    throw e;
  }
}

/** Every volume on the storage, per node where it is available (once for a shared one). */
async function volumesOn(state: StorageState): Promise<string[]> {
  const api = client();
  const nodes = (await api.nodes.list()).map((n) => n.node).filter((n) => !state.nodes || state.nodes.includes(n)).sort();
  const shared = state.type === "nfs" || !!state.shared;
  const found: string[] = [];
  for (const node of shared ? nodes.slice(0, 1) : nodes) {
    const entries = await api.storage.content(node, state.storage);
    for (const e of entries) found.push(shared ? e.volid : `${e.volid} (on ${node})`);
  }
  return found;
}

/** The PUT /storage/{id} parameters that take `olds` (as PVE has it) to `news`; an adopted
 *  storage changes only what `news` declares. */
function changeParams(olds: StorageState, news: StorageInputs): Record<string, string | number | boolean> {
  const params: Record<string, string | number | boolean> = {};
  const del: string[] = [];
  if (news.content !== undefined && !sameValue(normalize.stringSet(olds.content ?? []), normalize.stringSet(news.content))) {
    params.content = news.content.length ? news.content.join(",") : "none";
  }
  if (manages(news, "nodes") && !sameValue(olds.nodes, news.nodes)) {
    if (news.nodes?.length) params.nodes = news.nodes.join(",");
    else del.push("nodes");
  }
  if (manages(news, "enabled") && flag(olds.enabled) !== (news.enabled !== false)) params.disable = news.enabled === false;
  if (news.type === "dir" && manages(news, "shared") && flag(olds.shared) !== flag(news.shared)) params.shared = !!news.shared;
  if (news.type === "nfs" && manages(news, "options") && olds.options !== news.options) {
    if (news.options) params.options = news.options;
    else del.push("options");
  }
  if (del.length) params.delete = del.join(",");
  return params;
}

/** `adopt: true`: the existing definition, checked against the declared type and backing, with
 *  the declared settings applied (in one PUT: it is applied whole or not at all). */
async function adoptStorage(inputs: StorageInputs): Promise<StorageState> {
  const cfg = await readConfig(inputs.storage);
  if (!cfg) throw nothingToAdoptError("Storage", `storage '${inputs.storage}'`, "storage");
  const have = stateFromConfig(cfg);
  const fix = (prop: string, has: unknown, declared: unknown, why: string) =>
    new Error(`cannot adopt storage '${inputs.storage}': ${prop}: it has ${JSON.stringify(has)}, the program declares ${JSON.stringify(declared)}. ${why}`);
  if (have.type !== inputs.type) throw fix("type", have.type, inputs.type, `A storage's type cannot change: declare type: ${JSON.stringify(have.type)}.`);
  for (const k of FIXED) {
    if (inputs[k] !== undefined && inputs[k] !== have[k]) {
      throw fix(k, have[k], inputs[k], `${k} cannot change in place: declare ${k}: ${JSON.stringify(have[k])}, or leave ${k} out to keep it.`);
    }
  }
  const params = changeParams(have, inputs);
  if (Object.keys(params).length) await client().storage.update(inputs.storage, params);
  const after = await readConfig(inputs.storage);
  if (!after) throw new Error(`storage '${inputs.storage}' disappeared while it was being adopted`);
  return stateFromConfig(after, inputs);
}

export const storageLifecycle: Lifecycle<StorageInputs, StorageState> = {
  async check(olds, news) {
    const c = new InputChecker(news);
    const { storage: id, type, content, nodes } = checkFields(c, news.adopt ? adoptedTable : storageTable) as Partial<StorageInputs>;
    if (type && content) {
      const bad = content.filter((x) => !CONTENT_OF[type].includes(x));
      if (bad.length) c.fail("content", `a ${type} storage cannot hold ${bad.join(", ")}; it holds ${CONTENT_OF[type].join(", ")}`);
    }
    const need = (k: keyof StorageInputs, when: string) => {
      if (news.adopt) return; // an adopted storage keeps what is left out
      if (news[k] === undefined || news[k] === null || news[k] === ("" as never)) c.fail(k, `${k} is required for a ${when} storage.`);
    };
    const forbid = (keys: (keyof StorageInputs)[], when: string) => {
      for (const k of keys) if (news[k] !== undefined && news[k] !== null) c.fail(k, `${k} does not apply to a ${when} storage.`);
    };
    if (type === "dir") {
      need("path", "dir");
      forbid(["vgname", "thinpool", "server", "export", "options"], "dir");
    } else if (type === "lvmthin") {
      need("vgname", "lvmthin");
      need("thinpool", "lvmthin");
      forbid(["path", "shared", "server", "export", "options"], "lvmthin");
    } else if (type === "nfs") {
      need("server", "nfs");
      need("export", "nfs");
      forbid(["vgname", "thinpool", "shared"], "nfs");
    }
    // References to it from this run (a Template's storage...) are judged by this declaration.
    if (id !== undefined) declare.storage(id, { content: content && !isUnknown(content) ? [...content] : undefined, nodes: nodes && !isUnknown(nodes) ? [...nodes] : undefined });
    // Unknown nodes: a read-only call, only when the list changed and the input alone is fine.
    if (c.failures.length === 0 && nodes && !isUnknown(nodes) && !sameValue(normalize.stringSet(nodes), olds.nodes ? normalize.stringSet(olds.nodes) : undefined)) {
      const known = (await client().nodes.list()).map((n) => n.node);
      nodes.forEach((n, i) => {
        if (!known.includes(n)) c.fail(`nodes[${i}]`, `node '${n}' is not in the cluster (nodes: ${known.sort().join(", ")}).`);
      });
    }
    const out: StorageInputs = {
      ...news,
      storage: id ?? news.storage,
      type: type ?? news.type,
      content: content && !isUnknown(content) ? normalize.stringSet(content) : news.content,
      enabled: news.enabled ?? (news.adopt ? undefined : true),
    };
    if (out.enabled === undefined) delete out.enabled;
    if (type === "nfs" && news.path === undefined && id && !news.adopt) out.path = `/mnt/pve/${id}`;
    if (type === "dir" && news.shared === undefined && !news.adopt) out.shared = false;
    if (nodes && !isUnknown(nodes)) out.nodes = normalize.stringSet(nodes);
    await checkAdoptable(c, olds as Record<string, unknown>, news as StorageInputs & Record<string, unknown>, { kind: "Storage", idProp: "storage", what: (id) => `storage '${id}'`, read: readConfig });
    return c.result(out);
  },

  async diff(_id, olds, news) {
    const cmp = comparable(olds, news, SETTINGS);
    const d = diffResource(rules, cmp.olds, cmp.news, { deleteBeforeReplace: (o, n) => o.storage === n.storage });
    return { changes: d.changes, replaces: d.replaces, deleteBeforeReplace: d.deleteBeforeReplace ?? false };
  },

  async create(inputs) {
    const api = client();
    if (inputs.adopt) return { id: inputs.storage, outs: await adoptStorage(inputs) };
    const content = inputs.content ?? [];
    try {
      await api.storage.create({
        ...(pveParams(storageTable, inputs) as { storage: string; type: string }), // storage, type and the backing (check() refuses a path on lvmthin)
        content: content.length ? content.join(",") : "none",
        shared: inputs.type === "dir" ? !!inputs.shared : undefined,
        nodes: inputs.nodes?.length ? inputs.nodes.join(",") : undefined,
        disable: inputs.enabled === false,
      });
    } catch (e) {
      if (e instanceof PveApiError && e.kind === "alreadyExists") throw alreadyExistsError("Storage", `storage '${inputs.storage}'`, "storage", e);
      throw e;
    }
    const cfg = await readConfig(inputs.storage);
    if (!cfg) throw new Error(`storage '${inputs.storage}' was created but cannot be read back (GET /storage/${inputs.storage})`);
    return { id: inputs.storage, outs: stateFromConfig(cfg, inputs) };
  },

  async read(id, props) {
    const cfg = await readConfig(id);
    if (!cfg) return gone<StorageState>();
    const state = stateFromConfig(cfg, props);
    if (props) return { id, props: state };
    const { removeVolumesOnDelete: _r, ...inputs } = state;
    void _r;
    return { id, props: state, inputs: inputs as StorageState };
  },

  async update(id, olds, news) {
    const params = changeParams(olds, news);
    if (Object.keys(params).length) await client().storage.update(id, params);
    const cfg = await readConfig(id);
    if (!cfg) throw new Error(`storage '${id}' disappeared while it was being updated`);
    return { outs: stateFromConfig(cfg, news) };
  },

  async delete(id, props) {
    if (!destroysOnDelete(props)) return logReleased(`storage '${id}'`, props.adopt);
    const api = client();
    const cfg = await readConfig(id);
    if (!cfg) return;
    const state = stateFromConfig(cfg, props);
    const volumes = await volumesOn(state);
    if (volumes.length && !props.removeVolumesOnDelete) {
      const shown = volumes.slice(0, 20).join(", ") + (volumes.length > 20 ? `, and ${volumes.length - 20} more` : "");
      throw new Error(
        `storage '${id}' still holds ${volumes.length} volume${volumes.length > 1 ? "s" : ""}: ${shown}. ` +
          `Remove them first (or the resources that own them), or set removeVolumesOnDelete: true (and \`pulumi up\`) to have them deleted with the storage`,
      );
    }
    if (volumes.length) {
      const nodes = (await api.nodes.list()).map((n) => n.node).filter((n) => !state.nodes || state.nodes.includes(n)).sort();
      const shared = state.type === "nfs" || !!state.shared;
      for (const node of shared ? nodes.slice(0, 1) : nodes) {
        for (const e of await api.storage.content(node, id)) await api.storage.deleteContentAndWait(node, id, e.volid);
      }
    }
    try {
      await api.storage.delete(id);
    } catch (e) {
      if (e instanceof PveApiError && e.kind === "notFound") return;
      throw e;
    }
  },
};

/** A storage definition the stack owns (`/etc/pve/storage.cfg`): `dir`, `lvmthin` or `nfs`. Delete
 *  refuses while volumes live on it unless `removeVolumesOnDelete`; `adopt: true` takes an existing
 *  definition under management. */
export class Storage extends StorageOutputs {
  constructor(name: string, args: StorageArgs, opts?: pulumi.CustomResourceOptions) {
    super(stubProvider("provider/resources/storage.js", "storageLifecycle"), name, { ...args, ...outputSlots(storageTable) }, opts, "proxmox", "Storage");
  }
}
