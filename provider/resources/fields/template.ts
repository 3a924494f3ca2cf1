// The properties of a Template, declared once (../fields.ts explains what derives from this table).
// `image` is an object with its own check (../template/image.ts, checkImage): it stays beside
// the image handling, and template.ts's check() calls it.

import { codecs } from "../../proxmox";
import { pveNames, VMID_RANGE } from "../check";
import { normalize } from "../diff";
import { table } from "../fields";
import { cicustomField, ipConfigsField, tagsField } from "./vm-common";

/** The cloud image a {@link Template} is built from (downloaded by PVE into an import storage). */
export interface TemplateImage {
  /** http(s) URL of the cloud image. */
  url: string;
  /** Expected checksum (hex), verified by PVE. */
  checksum?: string;
  /** The algorithm of `checksum`. Default: PVE's (give it with `checksum`). */
  checksumAlgorithm?: "md5" | "sha1" | "sha224" | "sha256" | "sha384" | "sha512";
  /** File name in the import storage; default the URL's, `.img` stored as `.qcow2`. */
  fileName?: string;
  /** Storage with content `import` (a directory storage such as `local`). Default `local`. */
  storage?: string;
}

export const templateTable = table({
  resource: "Template",
  module: "template",
  summary: "A cloud-init VM template built from a cloud image, or an existing template adopted (see the top of provider/resources/template.ts).",
  argsDoc:
    "The inputs of a {@link Template}. The image, storages, node, vmid, hardware, ha and pool replace the template; name, description, tags, ipConfigs and cicustom are changed in place.",
  id: "`<node>/<vmid>` (`pve1/9000`)",
  imports: { "../fields/template": ["TemplateImage"], "../vm/vm-types": ["CiCustom", "IpConfigInput"] },
  fields: {
    node: { kind: "string", required: true, change: "replaces", pattern: pveNames.node, describe: "a node name", doc: "The node to build the template on (or the adopted template's node)." },
    storage: { kind: "string", default: "local-lvm", change: "replaces", pattern: pveNames.storageId, describe: "a storage id", doc: "Storage for the template's disks (and its cloud-init drive)." },
    image: { kind: "custom", type: "TemplateImage", change: "replaces", doc: "The cloud image to build from (required unless `adopt`)." },
    vmid: { kind: "integer", present: "state", change: "replaces", ...VMID_RANGE, defaultDoc: "allocated", doc: "Explicit VMID (required with `adopt`)." },
    adopt: { kind: "boolean", default: false, change: "replaces", doc: "Manage the existing template `vmid` instead of building one: its name, description and tags are managed." },
    destroyOnDelete: { kind: "boolean", default: false, change: "behaviour", doc: "For an adopted template: destroy it on delete anyway (a built one is always destroyed)." },
    removeImageOnDelete: {
      kind: "boolean",
      change: "behaviour",
      normalize: normalize.flag,
      defaultDoc: "true",
      doc: "On delete, also remove the downloaded cloud image from its import storage, so destroy leaves nothing behind; false keeps it as a cache for the next build.",
    },
    name: { kind: "string", present: true, pattern: pveNames.dnsName, describe: "a DNS name (letters, digits, hyphens, dots)", defaultDoc: "the resource name", doc: "VM name of the template." },
    description: { kind: "string", doc: "The template's notes (the provider's marker line is appended)." },
    tags: tagsField({ doc: "PVE tags." }),
    cores: { kind: "integer", default: 1, min: 1, max: 1024, change: "replaces", doc: "CPU cores." },
    memory: { kind: "integer", default: 2048, min: 16, unit: "MiB", change: "replaces", doc: "Memory." },
    bridge: { kind: "string", default: "vmbr0", change: "replaces", pattern: /^[\w.-]+$/, describe: "a bridge name such as vmbr0", doc: "Bridge of net0." },
    diskSize: {
      kind: "string",
      change: "replaces",
      pattern: /^\d+(\.\d+)?[KMGT]?$/,
      describe: "a size such as 10G",
      normalize: (v: string) => codecs.normalizeSize(v),
      normalizeDoc: "as a size (`10240M` is `10G`)",
      doc: "Grow the imported disk to this size (e.g. `10G`).",
    },
    ha: { kind: "boolean", default: false, change: "replaces", doc: "Add to HA with state=stopped (machine-controller: templates available on every node)." },
    pool: { kind: "string", change: "replaces", pattern: pveNames.poolid, describe: "a pool id", doc: "Resource pool to put the template in." },
    ipConfigs: ipConfigsField({ doc: "Cloud-init network config per NIC (`ipconfigN`), inherited by every clone: e.g. `[{ ip: \"dhcp\" }]`. Tools that clone the template themselves (GitLab's fleeting plugin) need it, since PVE's cloud-init config gives a NIC without one no address." }),
    cicustom: cicustomField({ doc: "Custom cloud-init data (snippet volume ids, e.g. a CloudInitSnippet's volumeId), inherited by every clone: e.g. user-data that installs the guest agent." }),
    resourceName: { kind: "string", role: "internal", doc: "The resource's name (set by the Template class): part of the marker." },
    imageVolume: { kind: "string", role: "output", doc: "The downloaded image's volume id (e.g. `local:import/noble.qcow2`); undefined for an adopted template." },
  },
});
