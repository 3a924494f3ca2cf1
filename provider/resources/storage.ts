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
import * as path from "path";
import { stubProvider, type Lifecycle } from "./dynamic";
import { diffResource, isUnknown, normalize, sameValue, type DiffRules } from "./diff";
import { InputChecker, pveNames } from "./check";
import { client } from "./context";
import { PveApiError } from "../proxmox/errors";
import { declare } from "./declared";
import { adoptionRules, alreadyExistsError, checkAdoptable, comparable, destroysOnDelete, logReleased, managementOf, manages, nothingToAdoptError, type Adoptable } from "./adoption";
import type { StorageConfig } from "../proxmox/storage";
import { toBool } from "../proxmox/coerce";
import { gone } from "./read-result";

/** A storage type this provider manages: a directory (`dir`), an LVM thin pool (`lvmthin`) or an NFS share (`nfs`). */
export type StorageType = "dir" | "lvmthin" | "nfs";
export const STORAGE_TYPES: readonly StorageType[] = ["dir", "lvmthin", "nfs"];
export const CONTENT_TYPES = ["images", "rootdir", "iso", "vztmpl", "snippets", "import", "backup"] as const;
/** What each type can hold (pve-storage plugins' `plugindata.content`). */
const CONTENT_OF: Record<StorageType, readonly string[]> = {
  dir: CONTENT_TYPES,
  nfs: CONTENT_TYPES,
  lvmthin: ["images", "rootdir"],
};

/** The inputs of a {@link Storage}. The id, type, path and backing (vgname/thinpool, server/export)
 *  replace the storage; content, shared, options, nodes and enabled are changed in place. */
export interface StorageArgs {
  /** The storage id (`pve-storage-id`). Changing it replaces the storage (the new one is created first). */
  storage: pulumi.Input<string>;
  /** The storage type: `dir`, `lvmthin` or `nfs`. Required; changing it replaces the storage. */
  type: pulumi.Input<StorageType>;
  /** What it holds: images, rootdir, iso, vztmpl, snippets, import, backup. */
  content: pulumi.Input<pulumi.Input<string>[]>;
  /** dir: absolute directory; nfs: mount point (default /mnt/pve/<storage>). */
  path?: pulumi.Input<string>;
  /** dir: the directory is the same on every node (e.g. a mounted network file system). */
  shared?: pulumi.Input<boolean>;
  /** lvmthin (required there): the LVM volume group. Changing it replaces the storage. */
  vgname?: pulumi.Input<string>;
  /** lvmthin (required there): the thin pool in `vgname`. Changing it replaces the storage. */
  thinpool?: pulumi.Input<string>;
  /** nfs (required there): the NFS server's host name or IP address. Changing it replaces the storage. */
  server?: pulumi.Input<string>;
  /** nfs (required there): the exported absolute path on the server. Changing it replaces the storage. */
  export?: pulumi.Input<string>;
  /** nfs mount options, e.g. `vers=4.2`. */
  options?: pulumi.Input<string>;
  /** Nodes it is available on. Default: all. */
  nodes?: pulumi.Input<pulumi.Input<string>[]>;
  /** Whether the storage is enabled. Default true; changed in place. */
  enabled?: pulumi.Input<boolean>;
  /** On delete, remove the volumes stored on it instead of refusing. Default false. */
  removeVolumesOnDelete?: pulumi.Input<boolean>;
  /** Take the existing storage `storage` under management instead of creating it (see the top of this file). */
  adopt?: pulumi.Input<boolean>;
  /** Delete the storage when the resource is deleted. Default: true, or false for an adopted storage (then it is released). */
  destroyOnDelete?: pulumi.Input<boolean>;
}

export interface StorageInputs extends Adoptable {
  storage: string;
  type: StorageType;
  /** Absent only for an adopted storage that leaves its content as it is. */
  content?: string[];
  path?: string;
  shared?: boolean;
  vgname?: string;
  thinpool?: string;
  server?: string;
  export?: string;
  options?: string;
  nodes?: string[];
  /** Absent only for an adopted storage that leaves it as it is. */
  enabled?: boolean;
  removeVolumesOnDelete?: boolean;
}

export interface StorageState extends StorageInputs {
  content: string[];
  enabled: boolean;
}

/** What an adopted storage manages only when declared. */
const SETTINGS = ["content", "path", "shared", "vgname", "thinpool", "server", "export", "options", "nodes", "enabled"];
/** What cannot change in place: an adopted storage must already have the declared value. */
const FIXED = ["path", "vgname", "thinpool", "server", "export"] as const;

const rules: DiffRules<StorageInputs> = {
  storage: { replaces: true },
  type: { replaces: true },
  path: { replaces: true },
  vgname: { replaces: true },
  thinpool: { replaces: true },
  server: { replaces: true },
  export: { replaces: true },
  content: { normalize: normalize.stringSet },
  shared: { normalize: normalize.flag },
  options: {},
  nodes: { normalize: normalize.stringSet },
  enabled: { normalize: normalize.flag },
  removeVolumesOnDelete: { normalize: normalize.flag },
  ...adoptionRules,
};

function list(value: unknown): string[] {
  return String(value ?? "")
    .split(/[,;\s]+/)
    .filter((x) => x !== "" && x !== "none");
}

/** A PVE boolean (1/0, "1"/"0", on/off...); absent is false. */
function flag(value: unknown): boolean {
  return toBool(value) ?? false;
}

function absolutePath(v: string): string | undefined {
  if (!v.startsWith("/")) return "it must be an absolute path";
  if (v !== "/" && (path.posix.normalize(v) !== v || v.endsWith("/"))) return "it must be normalised (no '.', '..', doubled or trailing '/')";
  if (v === "/") return "it must not be '/'";
  if (/[\s,;=]/.test(v)) return "it must not contain whitespace, ',', ';' or '='";
  return undefined;
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
    const id = c.string("storage", { required: true, pattern: pveNames.storageId, describe: "a storage id: letters, digits, '-', '_', '.', starting with a letter and not ending with '-', '_' or '.'" });
    const type = c.string("type", { required: true, oneOf: STORAGE_TYPES }) as StorageType | undefined;
    const content = c.list<string>("content", {
      required: !news.adopt,
      item: (v) => (typeof v !== "string" || !(CONTENT_TYPES as readonly string[]).includes(v) ? `unknown content type '${String(v)}'; known: ${CONTENT_TYPES.join(", ")}` : undefined),
    });
    if (type && content) {
      const bad = content.filter((x) => !CONTENT_OF[type].includes(x));
      if (bad.length) c.fail("content", `a ${type} storage cannot hold ${bad.join(", ")}; it holds ${CONTENT_OF[type].join(", ")}`);
    }
    const p = c.string("path", { rule: absolutePath });
    c.boolean("shared");
    c.string("vgname", { pattern: /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/, describe: "an LVM volume group name" });
    c.string("thinpool", { pattern: /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/, describe: "an LVM thin pool name" });
    c.string("server", { pattern: /^[A-Za-z0-9.:\-[\]]+$/, describe: "a host name or IP address" });
    c.string("export", { rule: absolutePath });
    c.string("options", { pattern: /^[^\s]+$/, describe: "mount options without spaces, e.g. vers=4.2,soft" });
    const nodes = c.list<string>("nodes", { nonEmpty: true, item: (n) => (typeof n !== "string" || !pveNames.node.test(n) ? `'${String(n)}' is not a node name` : undefined) });
    c.boolean("enabled");
    c.boolean("removeVolumesOnDelete");
    c.boolean("adopt");
    c.boolean("destroyOnDelete");
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
    void p;
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
        storage: inputs.storage,
        type: inputs.type,
        content: content.length ? content.join(",") : "none",
        path: inputs.type === "dir" || inputs.type === "nfs" ? inputs.path : undefined,
        shared: inputs.type === "dir" ? !!inputs.shared : undefined,
        vgname: inputs.vgname,
        thinpool: inputs.thinpool,
        server: inputs.server,
        export: inputs.export,
        options: inputs.options,
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
export class Storage extends pulumi.dynamic.Resource {
  /** The storage id. */
  declare readonly storage: pulumi.Output<string>;
  /** The storage type: `dir`, `lvmthin` or `nfs`. */
  declare readonly type: pulumi.Output<StorageType>;
  /** The content types it holds, sorted, as read from PVE. */
  declare readonly content: pulumi.Output<string[]>;
  /** dir: the directory; nfs: the mount point (default `/mnt/pve/<storage>`). */
  declare readonly path: pulumi.Output<string | undefined>;
  /** dir: whether the directory is the same on every node (default false). */
  declare readonly shared: pulumi.Output<boolean | undefined>;
  /** lvmthin: the LVM volume group. */
  declare readonly vgname: pulumi.Output<string | undefined>;
  /** lvmthin: the thin pool. */
  declare readonly thinpool: pulumi.Output<string | undefined>;
  /** nfs: the NFS server. */
  declare readonly server: pulumi.Output<string | undefined>;
  /** nfs: the exported path on the server. */
  declare readonly export: pulumi.Output<string | undefined>;
  /** nfs: the mount options. */
  declare readonly options: pulumi.Output<string | undefined>;
  /** The nodes it is restricted to, sorted; undefined: all nodes. */
  declare readonly nodes: pulumi.Output<string[] | undefined>;
  /** Whether the storage is enabled (default true). */
  declare readonly enabled: pulumi.Output<boolean>;

  constructor(name: string, args: StorageArgs, opts?: pulumi.CustomResourceOptions) {
    super(stubProvider("provider/resources/storage.js", "storageLifecycle"), name, { ...args }, opts, "proxmox", "Storage");
  }
}
