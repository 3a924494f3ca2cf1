// How a VM was cloned (its template, linked or full, the storage), as the marker's origin
// records it, or as a linked clone's disk shows it: what tells an interrupted run's clone from
// the VM a replacement replaces, and what a read from an id reports.

import { codecs, type QemuConfig } from "../../proxmox";
import type { CloneInputs } from "./clone-shape";
import { markerOf } from "./config-map";

export type CloneMethod = Pick<CloneInputs, "templateVmid" | "full" | "storage">;

/** How cloning `inputs` makes a VM, as the marker records it: `<template>:linked`,
 *  `<template>:full` or `<template>:full:<storage>`. */
export function cloneOrigin(inputs: CloneMethod): string {
  return `${inputs.templateVmid}:${inputs.full ? `full${inputs.storage ? `:${inputs.storage}` : ""}` : "linked"}`;
}

/** The template a linked clone's disk names (dir/nfs `9000/base-9000-disk-0.qcow2/101/...`,
 *  rbd and zfs `base-9000-disk-0/vm-101-disk-0`); LVM-thin names none (`vm-101-disk-0`). */
function baseOfDisk(value: unknown): number | undefined {
  const m = /base-(\d+)-disk-\d+(?:\.\w+)?\//.exec(String(value));
  return m ? Number(m[1]) : undefined;
}

/** Whether a VM is what cloning `inputs` makes: by the origin its marker records; a marker of an
 *  older release has none, then by its disks (a linked clone's name its template, where the
 *  storage type puts it in the name; a full clone's name none, on the given storage). */
export function madeLike(config: QemuConfig, inputs: CloneMethod): boolean {
  const origin = markerOf(config).origin;
  if (origin !== undefined) return origin === cloneOrigin(inputs);
  const disks = Object.entries(config).filter(([k]) => codecs.DISK_KEY.test(k) && !/cloudinit|media=cdrom/.test(String(config[k])));
  const bases = disks.map(([, v]) => baseOfDisk(v)).filter((b): b is number => b !== undefined);
  if (!inputs.full) return bases.length > 0 && bases.every((b) => b === inputs.templateVmid);
  if (bases.length) return false;
  return inputs.storage === undefined || disks.every(([, v]) => String(v).startsWith(`${inputs.storage}:`));
}

/** How the VM was cloned, for a read from an id: the marker's origin; without one (another
 *  tool's VM, an older release's), a linked clone's disk may name its template (not on LVM-thin). */
export function clonedFrom(config: QemuConfig, origin: string | undefined): Partial<CloneMethod> {
  const m = /^(\d+):(linked|full)(?::(.+))?$/.exec(origin ?? "");
  if (m) return { templateVmid: Number(m[1]), full: m[2] === "full", ...(m[3] !== undefined ? { storage: m[3] } : {}) };
  const found: Partial<CloneMethod> = {};
  for (const [k, v] of Object.entries(config)) {
    const b = codecs.DISK_KEY.test(k) ? baseOfDisk(v) : undefined;
    if (b !== undefined) found.templateVmid = b;
  }
  return found;
}
