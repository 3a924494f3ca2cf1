// The properties of a Storage, declared once (../fields.ts explains what derives from this table).
// What depends on the type (the content it can hold, the properties it needs or refuses) is
// checked by the resource's check().

import * as path from "path";
import { adoptionFields } from "../adoption";
import { pveNames } from "../check";
import { normalize } from "../diff";
import { table } from "../fields";

/** A storage type this provider manages: a directory (`dir`), an LVM thin pool (`lvmthin`) or an NFS share (`nfs`). */
export type StorageType = "dir" | "lvmthin" | "nfs";
export const STORAGE_TYPES: readonly StorageType[] = ["dir", "lvmthin", "nfs"];
export const CONTENT_TYPES = ["images", "rootdir", "iso", "vztmpl", "snippets", "import", "backup"] as const;

function absolutePath(v: string): string | undefined {
  if (!v.startsWith("/")) return "it must be an absolute path";
  if (v !== "/" && (path.posix.normalize(v) !== v || v.endsWith("/"))) return "it must be normalised (no '.', '..', doubled or trailing '/')";
  if (v === "/") return "it must not be '/'";
  if (/[\s,;=]/.test(v)) return "it must not contain whitespace, ',', ';' or '='";
  return undefined;
}

const LVM_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/;

export const storageTable = table({
  resource: "Storage",
  module: "storage",
  summary:
    "A storage definition the stack owns (`/etc/pve/storage.cfg`): `dir`, `lvmthin` or `nfs`. Delete refuses while volumes live on it unless `removeVolumesOnDelete`; `adopt: true` takes an existing definition under management.",
  argsDoc:
    "The inputs of a {@link Storage}. The id, type, path and backing (vgname/thinpool, server/export) replace the storage; content, shared, options, nodes and enabled are changed in place.",
  id: "the storage id (`snippets`)",
  imports: { "../fields/storage": ["StorageType"] },
  fields: {
    storage: {
      kind: "string",
      required: true,
      change: "replaces",
      pattern: pveNames.storageId,
      describe: "a storage id: letters, digits, '-', '_', '.', starting with a letter and not ending with '-', '_' or '.'",
      pve: "storage",
      doc: "The storage id (`pve-storage-id`); under a new id, the new storage is created before the old one is deleted.",
    },
    type: { kind: "string", type: "StorageType", required: true, change: "replaces", oneOf: STORAGE_TYPES, pve: "type", doc: "The storage type: `dir`, `lvmthin` or `nfs`." },
    content: {
      kind: "list",
      of: "string",
      required: true,
      item: (v: unknown) => (typeof v !== "string" || !(CONTENT_TYPES as readonly string[]).includes(v) ? `unknown content type '${String(v)}'; known: ${CONTENT_TYPES.join(", ")}` : undefined),
      normalize: normalize.stringSet,
      normalizeDoc: "as a set (order and repeats do not matter)",
      doc: "What it holds: images, rootdir, iso, vztmpl, snippets, import, backup (an adopted storage may leave it out to keep its own).",
    },
    path: { kind: "string", change: "replaces", rule: absolutePath, pve: "path", defaultDoc: "`/mnt/pve/<storage>` for nfs", doc: "dir (required there): the absolute directory; nfs: the mount point." },
    shared: { kind: "boolean", normalize: normalize.flag, defaultDoc: "false (an adopted storage keeps its own)", doc: "dir: the directory is the same on every node (e.g. a mounted network file system)." },
    vgname: { kind: "string", change: "replaces", pattern: LVM_NAME, describe: "an LVM volume group name", pve: "vgname", doc: "lvmthin (required there): the LVM volume group." },
    thinpool: { kind: "string", change: "replaces", pattern: LVM_NAME, describe: "an LVM thin pool name", pve: "thinpool", doc: "lvmthin (required there): the thin pool in `vgname`." },
    server: {
      kind: "string",
      change: "replaces",
      pattern: /^[A-Za-z0-9.:\-[\]]+$/,
      describe: "a host name or IP address",
      pve: "server",
      doc: "nfs (required there): the NFS server's host name or IP address.",
    },
    export: { kind: "string", change: "replaces", rule: absolutePath, pve: "export", doc: "nfs (required there): the exported absolute path on the server." },
    options: { kind: "string", pattern: /^[^\s]+$/, describe: "mount options without spaces, e.g. vers=4.2,soft", pve: "options", doc: "nfs mount options, e.g. `vers=4.2`." },
    nodes: {
      kind: "list",
      of: "string",
      nonEmpty: true,
      item: (n: unknown) => (typeof n !== "string" || !pveNames.node.test(n) ? `'${String(n)}' is not a node name` : undefined),
      normalize: normalize.stringSet,
      normalizeDoc: "as a set (order and repeats do not matter)",
      defaultDoc: "all nodes",
      doc: "The nodes it is available on.",
    },
    enabled: { kind: "boolean", present: "state", normalize: normalize.flag, defaultDoc: "true (an adopted storage keeps its own)", doc: "Whether the storage is enabled." },
    removeVolumesOnDelete: { kind: "boolean", change: "behaviour", normalize: normalize.flag, defaultDoc: "false", doc: "On delete, remove the volumes stored on it instead of refusing." },
    ...adoptionFields("the existing storage `storage`"),
  },
});
