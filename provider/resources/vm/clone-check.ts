// VmClone's check(): each input's rule, the references that must exist on the cluster, and the
// defaults and canonical forms check() returns (config-map.ts).

import { codecs } from "../../proxmox";
import { type InputChecker, checkTags, checkVmName, known, pveNames, VMID_RANGE } from "../check";
import { isUnknown, sameValue } from "../diff";
import type { CloneState } from "./clone-shape";
import { checkCicustom, checkIpConfigs } from "./cloud-init-inputs";
import { SETTINGS_KEYS, normalizeSettings, type NetworkDevice, type VmSettings } from "./config-map";
import { checkCloneReferences } from "./references";

const MAC = /^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/;

/** What the rest of check() needs from the per-input checks. */
export interface CheckedClone {
  /** A clone, not an adoption (or `adopt` is unknown in a preview). */
  cloning: boolean;
  templateVmid?: number;
  templateNode?: string;
  started?: boolean;
}

/** Every input's own rule (and the rules between inputs). `n`: the inputs as given. */
export function checkCloneInputs(c: InputChecker, n: Record<string, any>, olds: Partial<CloneState> | undefined): CheckedClone {
  checkVmName(c);
  const adopt = c.boolean("adopt");
  c.boolean("destroyOnDelete");
  // an unknown `adopt` (preview) lets the template fields pass; up checks again with it known
  const cloning = adopt !== true && !isUnknown(n.adopt);
  const templateVmid = c.integer("templateVmid", { required: cloning, ...VMID_RANGE });
  const templateNode = c.string("templateNode", { pattern: pveNames.node, describe: "a node name" });
  c.string("node", { pattern: pveNames.node, describe: "a node name" });
  if (adopt === true) {
    if (n.vmid === undefined) c.fail("vmid", "adopt needs the vmid of the existing VM to take under management.");
    if (n.node === undefined) c.fail("node", "adopt needs the node the existing VM is on (e.g. node: \"pve1\").");
    if (n.vmidRange !== undefined) c.fail("vmidRange", "an adopted VM keeps its vmid: remove vmidRange, or set adopt: false.");
    if (n.full !== undefined) c.fail("full", "an adopted VM is not cloned: remove full, or set adopt: false.");
    if (n.storage !== undefined) c.fail("storage", "an adopted VM is not cloned: remove storage, or set adopt: false.");
  }
  const full = c.boolean("full");
  const storage = c.string("storage", { pattern: pveNames.storageId, describe: "a storage id" });
  if (storage !== undefined && full !== true && known(n.full)) c.fail("storage", "storage is only used by full clones (PVE: parameter 'storage' not allowed for linked clones); set full: true or remove storage.");
  if (storage !== undefined && n.full === undefined && adopt !== true) c.fail("storage", "storage is only used by full clones; set full: true.");
  c.string("pool", { pattern: pveNames.poolid, describe: "a pool id" });
  c.exclusive(["vmid", "vmidRange"]);
  c.integer("vmid", VMID_RANGE);
  if (known(n.vmidRange)) {
    const r = n.vmidRange;
    if (!Number.isInteger(r.min) || !Number.isInteger(r.max) || r.min < 100 || r.max < r.min) {
      c.fail("vmidRange", `vmidRange must be { min, max } with 100 <= min <= max; got ${JSON.stringify(r)}.`);
    }
  }
  c.integer("cores", { min: 1, max: 1024 });
  c.integer("sockets", { min: 1, max: 16 });
  c.integer("memory", { min: 16 });
  c.integer("balloon", { min: 0 });
  c.string("disk", { pattern: codecs.DISK_KEY, describe: "a disk key such as scsi0 or virtio0" });
  checkDiskSize(c, olds);
  c.list<NetworkDevice>("networks", {
    item: (d) => {
      if (!d || typeof d !== "object") return "each network must be an object { bridge, model?, vlanTag?, firewall?, macAddress?, mtu? }.";
      if (!known(d.bridge)) return isUnknown(d.bridge) ? undefined : "bridge is required (e.g. vmbr0).";
      if (known(d.model) && !codecs.NET_MODELS.has(d.model)) return `model '${d.model}' is not a PVE NIC model (${[...codecs.NET_MODELS].join(", ")}).`;
      if (known(d.vlanTag) && (!Number.isInteger(d.vlanTag) || d.vlanTag < 1 || d.vlanTag > 4094)) return `vlanTag must be 1-4094, got ${d.vlanTag}.`;
      if (known(d.macAddress) && !MAC.test(d.macAddress)) return `macAddress '${d.macAddress}' is not a MAC address (XX:XX:XX:XX:XX:XX).`;
      return undefined;
    },
  });
  checkIpConfigs(c);
  c.string("nameserver");
  c.string("searchdomain");
  c.string("stack", { pattern: /^[^\s/]+\/[^\s/]+$/, describe: "<project>/<stack>" });
  c.string("ciuser");
  c.list<string>("sshKeys", { item: (k) => (typeof k === "string" && /^\S+ \S+/.test(k.trim()) ? undefined : "each SSH key must be an OpenSSH public key line ('ssh-ed25519 AAAA... comment').") });
  checkCicustom(c, n.cicustom);
  checkTags(c);
  c.string("description", { maxLength: 8000 });
  c.boolean("onBoot");
  const started = c.boolean("started");
  c.boolean("allowReboot");
  c.boolean("waitForIp");
  c.string("agentInterface", { pattern: /^[\w.\-@]+$/, describe: "an interface name such as ens18 or eth0" });
  c.integer("agentTimeoutSeconds", { min: 1, max: 86_400 });
  c.integer("shutdownTimeoutSeconds", { min: 0, max: 3_600 });
  return { cloning, templateVmid, templateNode, started };
}

/** `diskSize`: a size PVE takes, and no smaller than before (PVE does not shrink disks). */
function checkDiskSize(c: InputChecker, olds: Partial<CloneState> | undefined): void {
  const diskSize = c.string("diskSize", {
    rule: (v) => {
      try {
        codecs.parseSize(v);
        return undefined;
      } catch (e) {
        return (e as Error).message;
      }
    },
  });
  if (diskSize !== undefined && known(olds?.diskSize)) {
    try {
      if (codecs.parseSize(diskSize) < codecs.parseSize(String(olds.diskSize))) {
        c.fail("diskSize", `diskSize cannot shrink from ${olds.diskSize} to ${diskSize}: PVE does not shrink disks. Keep the size, or replace the VM.`);
      }
    } catch {
      /* reported above */
    }
  }
}

/** The template, nodes and storage must exist: one cached cluster view per process, and only
 *  for references that changed (a preview of an unchanged VM asks PVE nothing). */
export async function checkChangedReferences(c: InputChecker, n: Record<string, any>, olds: Partial<CloneState> | undefined): Promise<void> {
  const refs = { templateVmid: n.templateVmid, templateNode: n.templateNode, node: n.node, storage: n.storage };
  for (const k of Object.keys(refs) as (keyof typeof refs)[]) if (!known(refs[k])) delete refs[k];
  const previous = (olds ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(refs) as (keyof typeof refs)[]) if (sameValue(previous[k], refs[k])) delete refs[k];
  await checkCloneReferences(c, refs, { cloneNode: known(n.templateNode) ? n.templateNode : undefined });
}

/** The checked inputs with their defaults, in the canonical form (once every input passed). */
export function withCloneDefaults(c: InputChecker, n: Record<string, any>, checked: CheckedClone): Record<string, any> {
  const out: Record<string, any> = { ...n };
  out.node = n.node ?? checked.templateNode ?? n.templateNode;
  out.full = n.full ?? false;
  out.started = n.started ?? true;
  out.allowReboot = n.allowReboot ?? false;
  out.waitForIp = n.waitForIp ?? (checked.started ?? true);
  out.agentTimeoutSeconds = n.agentTimeoutSeconds ?? 300;
  out.shutdownTimeoutSeconds = n.shutdownTimeoutSeconds ?? 60;
  if (known(n.diskSize) && c.failures.length === 0) out.disk = n.disk ?? "scsi0";
  if (c.failures.length === 0) {
    const settings: Record<string, unknown> = {};
    for (const k of SETTINGS_KEYS) if (known(n[k])) settings[k] = n[k];
    Object.assign(out, normalizeSettings(settings as VmSettings));
    if (known(n.diskSize)) out.diskSize = codecs.normalizeSize(n.diskSize);
    if (known(n.vmid)) out.vmid = Number(n.vmid);
  }
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}
