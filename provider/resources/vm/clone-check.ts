// VmClone's check(): each input's rule (../fields/vm-clone.ts) and the rules between inputs, the references that must exist on the cluster, and the
// defaults and canonical forms check() returns (config-map.ts).

import { codecs } from "../../proxmox";
import { type InputChecker, known } from "../check";
import { isUnknown, sameValue } from "../diff";
import { checkFields, withDefaults } from "../fields";
import { GROWN_DISK, vmCloneTable } from "../fields/vm-clone";
import type { CloneInputs, CloneState } from "./clone-shape";
import { SETTINGS_KEYS, normalizeSettings, type VmSettings } from "./config-map";
import { checkCloneReferences } from "./references";

/** What the rest of check() needs from the per-input checks. */
export interface CheckedClone {
  /** A clone, not an adoption (or `adopt` is unknown in a preview). */
  cloning: boolean;
  templateVmid?: number;
  templateNode?: string;
  started?: boolean;
}

/** Every input's own rule (the field table) and the rules between inputs. `n`: the inputs as given. */
export function checkCloneInputs(c: InputChecker, n: Record<string, any>, olds: Partial<CloneState> | undefined): CheckedClone {
  const v = checkFields(c, vmCloneTable) as Partial<CloneInputs>;
  if (n.name === undefined || n.name === null) c.fail("name", "name is required."); // the class sets it
  // an unknown `adopt` (preview) lets the template fields pass; up checks again with it known
  const cloning = v.adopt !== true && !isUnknown(n.adopt);
  if (cloning && (n.templateVmid === undefined || n.templateVmid === null)) c.fail("templateVmid", "templateVmid is required.");
  if (v.adopt === true) {
    if (n.vmid === undefined) c.fail("vmid", "adopt needs the vmid of the existing VM to take under management.");
    if (n.node === undefined) c.fail("node", "adopt needs the node the existing VM is on (e.g. node: \"pve1\").");
    if (n.vmidRange !== undefined) c.fail("vmidRange", "an adopted VM keeps its vmid: remove vmidRange, or set adopt: false.");
    if (n.full !== undefined) c.fail("full", "an adopted VM is not cloned: remove full, or set adopt: false.");
    if (n.storage !== undefined) c.fail("storage", "an adopted VM is not cloned: remove storage, or set adopt: false.");
  }
  if (v.storage !== undefined && v.full !== true && known(n.full)) c.fail("storage", "storage is only used by full clones (PVE: parameter 'storage' not allowed for linked clones); set full: true or remove storage.");
  if (v.storage !== undefined && n.full === undefined && v.adopt !== true) c.fail("storage", "storage is only used by full clones; set full: true.");
  c.exclusive(["vmid", "vmidRange"]);
  checkNoShrink(c, v.diskSize, olds);
  return { cloning, templateVmid: v.templateVmid, templateNode: v.templateNode, started: v.started };
}

/** PVE does not shrink disks: `diskSize` no smaller than before. */
function checkNoShrink(c: InputChecker, diskSize: string | undefined, olds: Partial<CloneState> | undefined): void {
  if (diskSize !== undefined && known(olds?.diskSize)) {
    try {
      if (codecs.parseSize(diskSize) < codecs.parseSize(String(olds.diskSize))) {
        c.fail("diskSize", `diskSize cannot shrink from ${olds.diskSize} to ${diskSize}: PVE does not shrink disks. Keep the size, or replace the VM.`);
      }
    } catch {
      /* reported by the field's rule */
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
  const out: Record<string, any> = withDefaults(vmCloneTable, { ...n });
  out.node = n.node ?? checked.templateNode ?? n.templateNode;
  out.waitForIp = n.waitForIp ?? (checked.started ?? true);
  if (known(n.diskSize) && c.failures.length === 0) out.disk = n.disk ?? GROWN_DISK;
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
