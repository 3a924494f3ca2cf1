import { formatWithSpec, joinPropertyString, parseWithSpec, splitPropertyString, type PropertyExtras, type PropertySpec } from "./propertyString";

/**
 * `scsiN`, `virtioN`, `sataN`, `ideN`, `efidisk0`, `tpmstate0`:
 * `local-lvm:vm-100-disk-0,size=32G,discard=on,ssd=1,iothread=1`, `local-lvm:cloudinit`,
 * `local-lvm:vm-100-cloudinit,media=cdrom`, `local-lvm:0,import-from=local:import/x.qcow2`, `none,media=cdrom`.
 */
export interface Drive extends PropertyExtras {
  /** The volume: `storage:volume`, `storage:<GiB>` to allocate, `storage:cloudinit`, `none`, or a path. */
  file?: string;
  media?: "disk" | "cdrom" | string;
  /** As PVE writes it (`32G`); compare with normalizeSize. */
  size?: string;
  format?: string;
  cache?: string;
  discard?: "on" | "ignore" | string;
  ssd?: boolean;
  iothread?: boolean;
  backup?: boolean;
  replicate?: boolean;
  ro?: boolean;
  shared?: boolean;
  snapshot?: boolean;
  aio?: string;
  serial?: string;
  "import-from"?: string;
}

const SPEC: PropertySpec = {
  defaultKey: "file",
  fields: {
    file: "string",
    media: "string",
    size: "string",
    format: "string",
    cache: "string",
    discard: "string",
    ssd: "boolean",
    iothread: "boolean",
    backup: "boolean",
    replicate: "boolean",
    ro: "boolean",
    shared: "boolean",
    snapshot: "boolean",
    aio: "string",
    serial: "string",
    "import-from": "string",
  },
};

export const DISK_KEY = /^(ide|sata|scsi|virtio)\d+$/;

export function isDiskKey(key: string): boolean {
  return DISK_KEY.test(key) || key === "efidisk0" || key === "tpmstate0";
}

export function parseDrive(text: string): Drive {
  return parseWithSpec(splitPropertyString(text), SPEC) as Drive;
}

export function formatDrive(drive: Drive): string {
  return joinPropertyString(formatWithSpec(drive, SPEC));
}

export interface VolumeRef {
  /** `none` (empty CD-ROM drive) and absolute paths have no storage. */
  storage?: string;
  /** `vm-100-disk-0`, `iso/x.iso`, `cloudinit`... */
  volume?: string;
  /** `storage:32`: allocate a new 32 GiB volume. */
  allocateGiB?: number;
  none?: boolean;
}

export function parseVolume(file: string): VolumeRef {
  if (file === "none") return { none: true };
  if (file.startsWith("/")) return { volume: file };
  const colon = file.indexOf(":");
  if (colon < 0) return { volume: file };
  const storage = file.slice(0, colon);
  const volume = file.slice(colon + 1);
  if (/^\d+(\.\d+)?$/.test(volume)) return { storage, allocateGiB: Number(volume) };
  return { storage, volume };
}

/** A cloud-init drive, as requested (`storage:cloudinit`) or as stored (`storage:vm-100-cloudinit`). */
export function isCloudInitDrive(drive: Drive): boolean {
  const file = drive.file ?? "";
  return /:cloudinit$/.test(file) || /(^|[:/])(vm|base)-\d+-cloudinit(\.\w+)?$/.test(file);
}

export function isCdrom(drive: Drive): boolean {
  return drive.media === "cdrom";
}
