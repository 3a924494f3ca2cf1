// QEMU VM configuration as PVE stores it: `key: value` lines, description as leading `#`
// comments, a `[PENDING]` section and a `[special:cloudinit]` section; property strings;
// drives; sizes; tags. An independent reading of qemu-server (QemuServer.pm
// `write_vm_config`/`parse_vm_config`, Drive.pm, `vmconfig_hotplug_pending`) and
// pve-guest-common (GuestHelpers.pm `get_unique_tags`).
import { createHash } from "crypto";
import { ParamDefs } from "./types";

/** VM option parameters shared by create and config update (schema 9.1 `POST /nodes/{node}/qemu`
 *  minus the create-only ones). Indexed options keep the schema's `[n]` spelling. */
export const VM_OPTION_PARAMS: ParamDefs = {
  acpi: {type: "boolean", optional: true},
  affinity: {type: "string", optional: true},
  agent: {type: "string", optional: true},
  "allow-ksm": {type: "boolean", optional: true, sincePve9: true},
  "amd-sev": {type: "string", optional: true},
  arch: {type: "string", optional: true, enum: ["x86_64", "aarch64"]},
  args: {type: "string", optional: true},
  audio0: {type: "string", optional: true},
  autostart: {type: "boolean", optional: true},
  balloon: {type: "integer", optional: true, minimum: 0},
  bios: {type: "string", optional: true, enum: ["seabios", "ovmf"]},
  boot: {type: "string", optional: true},
  bootdisk: {type: "string", optional: true, pattern: "(ide|sata|scsi|virtio)\\d+"},
  cdrom: {type: "string", optional: true},
  cicustom: {type: "string", optional: true},
  cipassword: {type: "string", optional: true},
  citype: {type: "string", optional: true, enum: ["configdrive2", "nocloud", "opennebula"]},
  ciupgrade: {type: "boolean", optional: true},
  ciuser: {type: "string", optional: true},
  cores: {type: "integer", optional: true, minimum: 1},
  cpu: {type: "string", optional: true},
  cpulimit: {type: "number", optional: true, minimum: 0, maximum: 128},
  cpuunits: {type: "integer", optional: true, minimum: 1, maximum: 262144},
  description: {type: "string", optional: true, maxLength: 8192},
  efidisk0: {type: "string", optional: true},
  freeze: {type: "boolean", optional: true},
  hookscript: {type: "string", optional: true},
  "hostpci[n]": {type: "string", optional: true},
  hotplug: {type: "string", optional: true, format: "pve-hotplug-features"},
  hugepages: {type: "string", optional: true, enum: ["any", "2", "1024"]},
  "ide[n]": {type: "string", optional: true},
  "intel-tdx": {type: "string", optional: true, sincePve9: true},
  "ipconfig[n]": {type: "string", optional: true},
  ivshmem: {type: "string", optional: true},
  keephugepages: {type: "boolean", optional: true},
  keyboard: {type: "string", optional: true, enum: ["de", "de-ch", "da", "en-gb", "en-us", "es", "fi", "fr", "fr-be", "fr-ca", "fr-ch", "hu", "is", "it", "ja", "lt", "mk", "nl", "no", "pl", "pt", "pt-br", "sv", "sl", "tr"]},
  kvm: {type: "boolean", optional: true},
  localtime: {type: "boolean", optional: true},
  lock: {type: "string", optional: true, enum: ["backup", "clone", "create", "migrate", "rollback", "snapshot", "snapshot-delete", "suspending", "suspended"]},
  machine: {type: "string", optional: true},
  memory: {type: "string", optional: true},
  migrate_downtime: {type: "number", optional: true, minimum: 0},
  migrate_speed: {type: "integer", optional: true, minimum: 0},
  name: {type: "string", optional: true, format: "dns-name"},
  nameserver: {type: "string", optional: true},
  "net[n]": {type: "string", optional: true},
  numa: {type: "boolean", optional: true},
  "numa[n]": {type: "string", optional: true},
  onboot: {type: "boolean", optional: true},
  ostype: {type: "string", optional: true, enum: ["other", "wxp", "w2k", "w2k3", "w2k8", "wvista", "win7", "win8", "win10", "win11", "l24", "l26", "solaris"]},
  "parallel[n]": {type: "string", optional: true, pattern: "/dev/parport\\d+|/dev/usb/lp\\d+"},
  protection: {type: "boolean", optional: true},
  reboot: {type: "boolean", optional: true},
  rng0: {type: "string", optional: true},
  "sata[n]": {type: "string", optional: true},
  "scsi[n]": {type: "string", optional: true},
  scsihw: {type: "string", optional: true, enum: ["lsi", "lsi53c810", "virtio-scsi-pci", "virtio-scsi-single", "megasas", "pvscsi"]},
  searchdomain: {type: "string", optional: true},
  "serial[n]": {type: "string", optional: true, pattern: "(/dev/[^,]+|socket)"},
  shares: {type: "integer", optional: true, minimum: 0, maximum: 50000},
  smbios1: {type: "string", optional: true, maxLength: 512},
  smp: {type: "integer", optional: true, minimum: 1},
  sockets: {type: "integer", optional: true, minimum: 1},
  spice_enhancements: {type: "string", optional: true},
  sshkeys: {type: "string", optional: true, format: "urlencoded"},
  startdate: {type: "string", optional: true, pattern: "(now|\\d{4}-\\d{1,2}-\\d{1,2}(T\\d{1,2}:\\d{1,2}:\\d{1,2})?)"},
  startup: {type: "string", optional: true},
  tablet: {type: "boolean", optional: true},
  tags: {type: "string", optional: true, format: "pve-tag-list"},
  tdf: {type: "boolean", optional: true},
  template: {type: "boolean", optional: true},
  tpmstate0: {type: "string", optional: true},
  "unused[n]": {type: "string", optional: true},
  "usb[n]": {type: "string", optional: true},
  vcpus: {type: "integer", optional: true, minimum: 1},
  vga: {type: "string", optional: true},
  "virtio[n]": {type: "string", optional: true},
  "virtiofs[n]": {type: "string", optional: true},
  vmgenid: {type: "string", optional: true, pattern: "(?:[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}|[01])"},
  vmstatestorage: {type: "string", optional: true, format: "pve-storage-id"},
  watchdog: {type: "string", optional: true},
};

/** Option keys matching an indexed `name[n]` parameter (with PVE's index ranges). */
const INDEXED: Record<string, number> = {
  hostpci: 16, ide: 4, ipconfig: 32, net: 32, numa: 8, parallel: 3, sata: 6, scsi: 31, serial: 4,
  unused: 256, usb: 14, virtio: 16, virtiofs: 10,
};

/** The ParamDef for a concrete option key (`net0` → `net[n]`), or undefined. */
export function optionDef(key: string) {
  if (VM_OPTION_PARAMS[key]) return VM_OPTION_PARAMS[key];
  const m = /^([a-z]+)(\d+)$/.exec(key);
  if (m && INDEXED[m[1]] !== undefined && Number(m[2]) < INDEXED[m[1]]) return VM_OPTION_PARAMS[`${m[1]}[n]`];
  return undefined;
}

// --- property strings -------------------------------------------------------------------

export type Props = Record<string, string>;

/** Parses `a=1,b=2` (a value without `=` is the default key's). */
export function parseProps(value: string, defaultKey?: string): Props {
  const out: Props = {};
  for (const part of value.split(",")) {
    if (part === "") continue;
    const i = part.indexOf("=");
    if (i < 0) {
      if (defaultKey && out[defaultKey] === undefined) out[defaultKey] = part;
      else out[part] = "";
    } else out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

export function printProps(p: Props, defaultKey?: string): string {
  const parts: string[] = [];
  if (defaultKey && p[defaultKey] !== undefined) parts.push(p[defaultKey]);
  for (const [k, v] of Object.entries(p)) if (k !== defaultKey) parts.push(v === "" ? k : `${k}=${v}`);
  return parts.join(",");
}

export function parseBool(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (/^(1|on|yes|true)$/i.test(v)) return true;
  if (/^(0|off|no|false)$/i.test(v)) return false;
  return undefined;
}

/** Whether `agent` enables the guest agent (`[enabled=]<1|0>`). */
export function agentEnabled(agent: string | undefined): boolean {
  if (agent === undefined) return false;
  return parseBool(parseProps(agent, "enabled").enabled) === true;
}

// --- network ----------------------------------------------------------------------------

const NIC_MODELS = ["e1000", "e1000-82540em", "e1000-82544gc", "e1000-82545em", "e1000e", "i82551", "i82557b", "i82559er", "ne2k_isa", "ne2k_pci", "pcnet", "rtl8139", "virtio", "vmxnet3"];

export interface Nic {
  model: string;
  macaddr?: string;
  rest: Props;
}

/** `virtio=BC:24:11:..,bridge=vmbr0` or `model=virtio,macaddr=..` → model, MAC, the rest. */
export function parseNet(value: string): Nic {
  const p = parseProps(value);
  let model = p.model ?? "";
  let macaddr = p.macaddr;
  const rest: Props = {};
  for (const [k, v] of Object.entries(p)) {
    if (NIC_MODELS.includes(k)) {
      model = k;
      if (v) macaddr = v;
    } else if (k !== "model" && k !== "macaddr") rest[k] = v;
  }
  return { model, macaddr, rest };
}

export function printNet(n: Nic): string {
  return printProps({ [n.model]: n.macaddr ?? "", ...n.rest });
}

// --- drives -----------------------------------------------------------------------------

export const DRIVE_RE = /^(ide[0-3]|sata[0-5]|scsi([0-9]|[12][0-9]|30)|virtio([0-9]|1[0-5])|efidisk0|tpmstate0)$/;
export const isDriveKey = (k: string) => DRIVE_RE.test(k);

export type Drive = Props & { file: string };

export function parseDrive(value: string): Drive {
  const p = parseProps(value, "file");
  if (p.volume !== undefined && p.file === undefined) {
    p.file = p.volume;
    delete p.volume;
  }
  return p as Drive;
}

export function printDrive(d: Drive): string {
  return printProps(d, "file");
}

export function isCdrom(d: Drive): boolean {
  return d.media === "cdrom" || d.file === "none" || d.file === "cdrom";
}

export function isCloudinitVolume(file: string): boolean {
  return /vm-\d+-cloudinit(\.\w+)?$/.test(file);
}

// --- sizes ------------------------------------------------------------------------------

const UNIT: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** `32G`, `512M`, `1.5T`, `1024` (bytes) → bytes. */
export function parseSize(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)$/.exec(s);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNIT[m[2]]);
}

/** Size rendering used in drive strings (`size=32G`, `size=4M`). */
export function formatSize(bytes: number): string {
  for (const u of ["T", "G", "M", "K"]) if (bytes >= UNIT[u] && bytes % UNIT[u] === 0) return `${bytes / UNIT[u]}${u}`;
  return String(bytes);
}

// --- tags -------------------------------------------------------------------------------

/** `get_unique_tags`: split on `;`, `,` or space, lower-case, de-duplicate, sort, join `;`. */
export function normaliseTags(tags: string): string {
  const set = new Set(tags.split(/[;,\s]+/).filter((t) => t !== "").map((t) => t.toLowerCase()));
  return [...set].sort().join(";");
}

// --- config file ------------------------------------------------------------------------

export interface VmConfig {
  /** Current values, including `description`. */
  current: Record<string, string>;
  pending: Record<string, string>;
  /** Pending deletions: option → force flag. */
  pendingDelete: Record<string, boolean>;
  /** `[special:cloudinit]`: values as used in the current cloud-init image, recorded when a
   *  cloud-init option changes; absent when the image is up to date. */
  cloudinit?: Record<string, string>;
}

export function emptyConfig(): VmConfig {
  return { current: {}, pending: {}, pendingDelete: {} };
}

export function cloneConfig(c: VmConfig): VmConfig {
  return {
    current: { ...c.current },
    pending: { ...c.pending },
    pendingDelete: { ...c.pendingDelete },
    cloudinit: c.cloudinit ? { ...c.cloudinit } : undefined,
  };
}

function printSection(conf: Record<string, string>, raw: string[]): void {
  if (conf.description !== undefined) {
    if (conf.description === "") raw.push("#");
    else for (const l of conf.description.split("\n")) raw.push(`#${l.replace(/%/g, "%25")}`);
  }
  for (const k of Object.keys(conf).sort()) {
    if (k === "description") continue;
    raw.push(`${k}: ${conf[k]}`);
  }
}

/** The config file text as `write_vm_config` lays it out. */
export function printConfig(c: VmConfig): string {
  const raw: string[] = [];
  printSection(c.current, raw);
  const delKeys = Object.keys(c.pendingDelete);
  if (Object.keys(c.pending).length || delKeys.length) {
    raw.push("", "[PENDING]");
    const p: Record<string, string> = { ...c.pending };
    if (delKeys.length) p.delete = delKeys.map((k) => (c.pendingDelete[k] ? `!${k}` : k)).join(",");
    printSection(p, raw);
  }
  if (c.cloudinit) {
    raw.push("", "[special:cloudinit]");
    for (const k of Object.keys(c.cloudinit).sort()) raw.push(`${k}: ${c.cloudinit[k]}`);
  }
  return raw.join("\n") + "\n";
}

/** Parses a config file text (the back door's out-of-band edits). Snapshots are dropped. */
export function parseConfig(text: string): VmConfig {
  const c = emptyConfig();
  let section: Record<string, string> | undefined = c.current;
  let descr: string[] | undefined;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const sec = /^\[(.+)\]\s*$/.exec(line);
    if (sec) {
      if (sec[1] === "PENDING") section = c.pending;
      else if (sec[1] === "special:cloudinit") section = c.cloudinit = {};
      else section = undefined;
      continue;
    }
    if (!section) continue;
    if (line.startsWith("#")) {
      if (section === c.current) (descr ??= []).push(decodeURIComponent(line.slice(1)));
      continue;
    }
    const m = /^([a-z][a-z_\-0-9]*):\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    if (section === c.pending && m[1] === "delete") {
      for (const k of m[2].split(",")) if (k) c.pendingDelete[k.replace(/^!/, "")] = k.startsWith("!");
    } else section[m[1]] = m[2];
  }
  if (descr) c.current.description = descr.join("\n");
  return c;
}

export function configDigest(c: VmConfig): string {
  return createHash("sha1").update(printConfig(c)).digest("hex");
}

/** A config value as the API returns it: schema integers/numbers/booleans as JSON numbers. */
export function typedValue(key: string, value: string): string | number {
  const def = optionDef(key);
  if (def && (def.type === "integer" || def.type === "number" || def.type === "boolean") && value !== "" && !isNaN(Number(value))) {
    return Number(value);
  }
  return value;
}

// --- hotplug ----------------------------------------------------------------------------

const CLOUDINIT_OPTS = new Set(["ciuser", "cipassword", "sshkeys", "nameserver", "searchdomain", "cicustom", "citype", "ciupgrade"]);
export const isCloudinitOption = (k: string) => CLOUDINIT_OPTS.has(k) || /^ipconfig\d+$/.test(k);

/** `$fast_plug_option`: applied at once even on a running VM (QEMU QemuServer.pm). */
const FAST_PLUG = new Set([
  "name", "description", "onboot", "protection", "tags", "startup", "hookscript", "lock", "shares",
  "migrate_downtime", "migrate_speed", "vmstatestorage",
]);
/** `$fast_plug_option` plus every cloud-init option (`$confdesc_cloudinit`). */
export const isFastPlug = (k: string) => FAST_PLUG.has(k) || isCloudinitOption(k);

/** `parse_hotplug_features` (QEMU QemuServer.pm): `0` none, `1` the default `network,disk,usb`;
 *  any other feature dies `invalid hotplug feature 'x'`. */
export function parseHotplugFeatures(raw: string): Set<string> {
  if (raw === "0") return new Set();
  const feats = new Set<string>();
  for (const f of (raw === "1" ? "network,disk,usb" : raw).split(/[\s,;]+/).filter((x) => x !== "")) {
    if (!/^(network|disk|cpu|memory|usb|cloudinit)$/.test(f)) throw new Error(`invalid hotplug feature '${f}'`);
    feats.add(f);
  }
  return feats;
}

/** `windows_version` (QEMU Helpers.pm). */
export function windowsVersion(ostype: string | undefined): number {
  if (!ostype) return 0;
  if (/^(wxp|w2k3|w2k)$/.test(ostype)) return 5;
  if (/^(w2k8|wvista)$/.test(ostype)) return 6;
  const m = /^win(\d+)$/.exec(ostype);
  return m ? Number(m[1]) : 0;
}

/** `safe_num_ne`: both unset is equal, one unset differs. */
const numNe = (a: string | undefined, b: string | undefined) => (a === undefined || b === undefined ? a !== b : Number(a) !== Number(b));

/** Drive options `vmconfig_update_disk` cannot change on a running VM (same volume). */
const DRIVE_COLD_OPTS = ["aio", "discard", "iothread", "queues", "product", "cache", "ssd", "vendor", "ro"];

/** What `vmconfig_hotplug_pending` does with one pending change of a running VM: `true` applied
 *  now, `false` stays pending (PVE's `die "skip\n"`), `{error}` fails (`hotplug problem - <msg>`).
 *  `value` undefined is a pending delete; `cur` is the current config, `feats` its parsed `hotplug`
 *  (computed once per update, as PVE does); `qemuVersion` the running QEMU. */
export function hotplugChange(key: string, cur: Record<string, string>, value: string | undefined, feats: Set<string>, qemuVersion: string): boolean | { error: string } {
  // `$is_usb_hotplug_supported`: usb feature, machine version >= 7.1 (pinned `pc-*-X.Y` or the
  // running QEMU), ostype l26 or Windows > 7
  const usbOk = () => {
    const machine = (cur.machine ?? "").split(",")[0].replace(/^type=/, "");
    const m = /^pc(?:-i440fx|-q35)?-(\d+)\.(\d+)/.exec(machine) ?? /^(\d+)\.(\d+)/.exec(qemuVersion);
    const v = m ? Number(m[1]) * 1000 + Number(m[2]) : 0;
    return feats.has("usb") && v >= 7001 && (cur.ostype === "l26" || windowsVersion(cur.ostype) > 7);
  };
  // `vm_deviceunplug`: a drive in the boot order cannot be unplugged, nor an ide/sata one
  const unplug = (): true | { error: string } => {
    const boot = parseProps(cur.boot ?? "", "legacy");
    const bootdisks = boot.order !== undefined ? boot.order.split(/[\s,;]+/).filter(isDriveKey) : cur.bootdisk ? [cur.bootdisk] : [];
    if (bootdisks.includes(key)) return { error: `can't unplug bootdisk '${key}'` };
    if (!/^(scsi|virtio|net|usb)\d+$/.test(key)) return { error: `can't unplug device '${key}'` };
    return true;
  };
  if (key === "hotplug") {
    if (value !== undefined && /cpu|memory/.test(value)) return false;
    return !/cpu|memory/.test(cur.hotplug ?? "");
  }
  if (key === "tablet") return feats.has("usb");
  if (/^usb\d+$/.test(key)) return usbOk();
  if (key === "vcpus") return feats.has("cpu");
  if (key === "memory") return feats.has("memory");
  if (key === "cpuunits" || key === "cpulimit") return true; // cgroup change, no feature needed
  if (key === "balloon") {
    // enabling/disabling the balloon device is not hot-pluggable
    if (value === undefined) return !(cur.balloon !== undefined && Number(cur.balloon) === 0);
    return (cur.balloon === undefined || Number(cur.balloon) !== 0) === (Number(value) !== 0);
  }
  if (isFastPlug(key)) return true;
  if (/^net\d+$/.test(key)) {
    if (value === undefined || !cur[key]) return feats.has("network") && (value === undefined ? unplug() : true);
    // vmconfig_update_net: bridge/tag/trunks/firewall/rate/link_down change live, the rest needs
    // an unplug (network feature)
    const o = parseNet(cur[key]);
    const n = parseNet(value);
    if (o.model !== n.model || o.macaddr !== n.macaddr || numNe(o.rest.queues, n.rest.queues) || numNe(o.rest.mtu, n.rest.mtu) || !(o.rest.bridge && n.rest.bridge)) {
      return feats.has("network");
    }
    return true;
  }
  if (isDriveKey(key)) {
    if (value === undefined) {
      if (!feats.has("disk") || /^(efidisk|ide|sata|tpmstate)\d+$/.test(key)) return false;
      return unplug();
    }
    if (key === "efidisk0" || key === "tpmstate0") return false;
    // vmconfig_update_disk
    const n = parseDrive(value);
    if (cur[key] !== undefined) {
      const o = parseDrive(cur[key]);
      const media = (d: Drive) => d.media ?? (d.file === "none" || d.file === "cdrom" ? "cdrom" : "disk");
      if (media(n) !== media(o)) return { error: "unable to change media type" };
      if (media(o) === "cdrom") return true; // change_medium, on any bus, whatever `hotplug` says
      if (n.file !== o.file) return feats.has("disk") && unplug();
      if (DRIVE_COLD_OPTS.some((k) => n[k] !== o[k])) return false;
      return true; // same volume: throttling (mbps*, iops*) is applied live
    }
    return feats.has("disk") && !/^(ide|sata)\d+$/.test(key);
  }
  if (key === "agent") {
    // vmconfig_update_agent: live only if nothing but fstrim_cloned_disks changes
    if (value === undefined || !cur.agent) return false;
    const strip = (a: string) => { const p = parseProps(a, "enabled"); delete p.fstrim_cloned_disks; return p; };
    const o = strip(cur.agent);
    const n = strip(value);
    return [...new Set([...Object.keys(o), ...Object.keys(n)])].every((k) => o[k] === n[k]);
  }
  return false;
}

// --- privileges per option (QEMU API2/Qemu.pm `$check_vm_modify_config_perm`) -----------

const CPU_OPTS = ["cores", "cpu", "runningcpu", "cpulimit", "cpuunits", "numa", "smp", "sockets", "vcpus"];
const MEM_OPTS = ["memory", "balloon", "shares", "allow-ksm"];
const HWTYPE_OPTS = ["acpi", "hotplug", "kvm", "machine", "runningmachine", "scsihw", "smbios1", "tablet", "vga", "watchdog", "audio0", "rng0"];
const GENERAL_OPTS = [
  "agent", "autostart", "bios", "description", "keyboard", "localtime", "migrate_downtime", "migrate_speed", "name",
  "onboot", "ostype", "protection", "reboot", "startdate", "startup", "tdf", "template",
];
const DISK_OPTS = ["boot", "bootdisk", "vmstatestorage"];

/** What setting or deleting `key` requires: privileges on the VM (all, or `any` one of them),
 *  and for `startup` also `Sys.Modify` on `/`; `root` for keys only root@pam may set. */
export type KeyRequirement = { privs: string[]; any?: boolean; onRoot?: string[] } | "root";

export function keyRequirement(key: string, value?: string): KeyRequirement {
  // drives are checked by value (QEMU `$check_storage_access`, update_vm_api's drive branch):
  // a cloud-init drive needs both Cloudinit and CDROM
  if (isDriveKey(key)) {
    if (value === undefined) return { privs: ["VM.Config.Disk"] };
    const d = parseDrive(value);
    if (isCloudinitVolume(d.file)) return { privs: ["VM.Config.Cloudinit", "VM.Config.CDROM"] };
    return { privs: [isCdrom(d) ? "VM.Config.CDROM" : "VM.Config.Disk"] };
  }
  if (key === "cdrom") return { privs: ["VM.Config.CDROM"] };
  if (/^unused\d+$/.test(key)) return { privs: ["VM.Config.Disk"] };
  // `$check_vm_create_serial_perm`: a socket is HWType, a real device root's
  if (/^serial\d+$/.test(key)) return value === undefined || value === "socket" ? { privs: ["VM.Config.HWType"] } : "root";
  if (/^(usb|hostpci|virtiofs)\d+$/.test(key)) return { privs: ["VM.Config.HWType"] };
  if (key === "tags") return { privs: ["VM.Config.Options"] };
  if (CPU_OPTS.includes(key) || /^numa\d+$/.test(key)) return { privs: ["VM.Config.CPU"] };
  if (MEM_OPTS.includes(key)) return { privs: ["VM.Config.Memory"] };
  if (HWTYPE_OPTS.includes(key)) return { privs: ["VM.Config.HWType"] };
  if (GENERAL_OPTS.includes(key)) return { privs: ["VM.Config.Options"], ...(key === "startup" ? { onRoot: ["Sys.Modify"] } : {}) };
  if (key === "freeze") return { privs: ["VM.PowerMgmt"] };
  if (DISK_OPTS.includes(key)) return { privs: ["VM.Config.Disk"] };
  if (/^net\d+$/.test(key) || key === "running-nets-host-mtu") return { privs: ["VM.Config.Network"] };
  if (isCloudinitOption(key)) return { privs: ["VM.Config.Cloudinit", "VM.Config.Network"], any: true };
  if (key === "vmstate") return { privs: ["VM.Config.Disk", "VM.PowerMgmt"] };
  return "root"; // `die "only root can set '$opt' config\n"` (args, lock, hookscript, vmgenid, affinity, ...)
}

// --- cloud-init (QEMU Cloudinit.pm, nocloud format) -------------------------------------

/** Volids named by `cicustom` (`user=local:snippets/u.yaml,network=...`). */
export function snippetVolumes(cicustom: string): string[] {
  const p = parseProps(cicustom);
  return ["meta", "network", "user", "vendor"].map((k) => p[k]).filter((v): v is string => !!v);
}

/** The nodes' /etc/resolv.conf (search domain, dns1-3), as the installer wrote it. */
export const HOST_RESOLV_CONF = { search: "lan", dns: ["10.0.0.1"] };

/** QEMU Cloudinit.pm `get_cloudinit_format`: `citype`, else `configdrive2` for a Windows
 *  `ostype` (cloudbase-init reads only that), else `nocloud`. */
export function cloudinitFormat(conf: Record<string, string>): string {
  if (conf.citype !== undefined) return conf.citype;
  return windowsVersion(conf.ostype) ? "configdrive2" : "nocloud";
}

/** The static IPv4 netmask of a prefix length (`$PVE::Network::ipv4_reverse_mask`). */
function ipv4Mask(bits: number): string {
  return [0, 1, 2, 3].map((o) => (bits >= (o + 1) * 8 ? 255 : bits <= o * 8 ? 0 : (0xff << (8 - (bits - o * 8))) & 0xff)).join(".");
}

/** Cloudinit.pm `get_dns_conf`: unset nameserver/searchdomain come from the host's resolv.conf. */
function dnsConf(conf: Record<string, string>): { search: string[]; dns: string[] } {
  const search = (conf.searchdomain ?? HOST_RESOLV_CONF.search).split(/\s+/).filter((x) => x);
  const dns = conf.nameserver !== undefined ? conf.nameserver.split(/\s+/).filter((x) => x) : HOST_RESOLV_CONF.dns;
  return { search, dns };
}

/** Cloudinit.pm `configdrive2_network` (`cloudbase` true: `cloudbase_network_eni`, what a
 *  Windows guest's drive holds): ENI text, `auto eth<N>` + `iface eth<N> inet dhcp|static` for
 *  each NIC with an `ipconfigN`. */
function configdrive2Network(conf: Record<string, string>, cloudbase: boolean): string {
  const { search, dns } = dnsConf(conf);
  let out = "";
  if (!cloudbase) {
    out += "auto lo\niface lo inet loopback\n\n";
    if (dns.length) out += `        dns_nameservers ${dns.join(" ")}\n`;
    if (search.length) out += `        dns_search ${search.join(" ")}\n`;
  }
  const nsLine = cloudbase && dns.length ? `        dns-nameservers ${dns.join(" ")}\n` : "";
  for (const k of Object.keys(conf).filter((x) => /^net\d+$/.test(x)).sort()) {
    const i = k.slice(3);
    if (!conf[`ipconfig${i}`]) continue;
    const ip = parseProps(conf[`ipconfig${i}`]);
    const id = `eth${i}`;
    out += `auto ${id}\n`;
    if (ip.ip === "dhcp") out += `iface ${id} inet dhcp\n`;
    else if (ip.ip) {
      const [addr, prefix] = ip.ip.split("/");
      out += `iface ${id} inet static\n        address ${addr}\n        netmask ${ipv4Mask(Number(prefix))}\n`;
      if (ip.gw) out += `        gateway ${ip.gw}\n`;
      out += nsLine;
    }
    if (ip.ip6 === "auto" || ip.ip6 === "dhcp") out += `iface ${id} inet6 ${ip.ip6}\n`;
    else if (ip.ip6) {
      const [addr, prefix] = ip.ip6.split("/");
      out += `iface ${id} inet6 static\n        address ${addr}\n        netmask ${prefix}\n`;
      if (ip.gw6) out += `        gateway ${ip.gw6}\n`;
      out += nsLine;
    }
  }
  return out;
}

/** `GET .../cloudinit/dump`: the generated user/network/meta data (format as
 *  `cloudinitFormat` says: nocloud YAML, or configdrive2 ENI network data and JSON metadata). A
 *  `cicustom` snippet replaces the generated part; `readSnippet` reads it from the node. */
export function cloudinitDump(vmid: number, conf: Record<string, string>, _iface: string, type: string, readSnippet?: (volid: string) => string, maskPassword = true): string {
  // without `readSnippet`: PVE's own data, as `GET .../cloudinit/dump` shows it (Cloudinit.pm
  // dump_cloudinit_config ignores cicustom); with it, what the drive holds (generate_nocloud)
  const custom = conf.cicustom && readSnippet ? parseProps(conf.cicustom) : {};
  if (type === "user") {
    if (custom.user && readSnippet) return readSnippet(custom.user);
    // QEMU Cloudinit.pm get_hostname_fqdn, cloudinit_userdata
    const name = conf.name ?? `VM${vmid}`;
    const fqdn = name.includes(".") ? name : conf.searchdomain ? `${name}.${conf.searchdomain}` : name;
    const lines = ["#cloud-config", `hostname: ${name.replace(/\..*$/, "")}`, "manage_etc_hosts: true", `fqdn: ${fqdn}`];
    if (conf.ciuser !== undefined) lines.push(`user: ${conf.ciuser}`);
    if (conf.ciuser === "root") lines.push("disable_root: False");
    if (conf.cipassword !== undefined) lines.push(`password: ${maskPassword ? "**********" : conf.cipassword}`);
    if (conf.sshkeys) {
      lines.push("ssh_authorized_keys:");
      for (const k of decodeURIComponent(conf.sshkeys).split("\n").filter((x) => x.trim() !== "")) lines.push(`  - ${k}`);
    }
    lines.push("chpasswd:", "  expire: False");
    if (conf.ciuser !== "root") lines.push("users:", "  - default");
    if (parseBool(conf.ciupgrade) !== false) lines.push("package_upgrade: true");
    return lines.join("\n") + "\n";
  }
  if (type === "network") {
    if (custom.network && readSnippet) return readSnippet(custom.network);
    // Cloudinit.pm dump_cloudinit_config/generate_configdrive2: every format but nocloud gets
    // ENI network data; the drive of a Windows guest the cloudbase-init flavour
    if (cloudinitFormat(conf) !== "nocloud") return configdrive2Network(conf, !!readSnippet && windowsVersion(conf.ostype) > 0);
    // QEMU Cloudinit.pm nocloud_network: only NICs with an ipconfigN are listed (`next if
    // !$conf->{"ipconfig$id"}`), each renamed eth<N> by MAC; a static IPv4 as address + netmask
    const lines = ["version: 1", "config:"];
    for (const k of Object.keys(conf).filter((x) => /^net\d+$/.test(x)).sort()) {
      const i = k.slice(3);
      if (!conf[`ipconfig${i}`]) continue;
      const mac = (parseNet(conf[k]).macaddr ?? "").toLowerCase();
      lines.push("    - type: physical", `      name: eth${i}`, `      mac_address: '${mac}'`, "      subnets:");
      const ip = parseProps(conf[`ipconfig${i}`] ?? "");
      if (ip.ip === "dhcp") lines.push("      - type: dhcp4");
      else if (ip.ip) {
        const [addr, prefix] = ip.ip.split("/");
        const bits = Number(prefix ?? 32);
        const mask = [0, 1, 2, 3].map((o) => (bits >= (o + 1) * 8 ? 255 : bits <= o * 8 ? 0 : (0xff << (8 - (bits - o * 8))) & 0xff)).join(".");
        lines.push("      - type: static", `        address: '${addr}'`, `        netmask: '${mask}'`);
        if (ip.gw) lines.push(`        gateway: '${ip.gw}'`);
      }
      if (ip.ip6 === "dhcp") lines.push("      - type: dhcp6");
      else if (ip.ip6 === "auto") lines.push("      - type: ipv6_slaac");
      else if (ip.ip6) {
        lines.push("      - type: static6", `        address: '${ip.ip6}'`);
        if (ip.gw6) lines.push(`        gateway: '${ip.gw6}'`);
      }
    }
    // Cloudinit.pm get_dns_conf: unset nameserver/searchdomain come from the host's resolv.conf,
    // so the nameserver block is always written
    const search = (conf.searchdomain ?? HOST_RESOLV_CONF.search).split(/[ ,;]+/).filter((x) => x);
    const dns = conf.nameserver !== undefined ? conf.nameserver.split(/[ ,;]+/).filter((x) => x) : HOST_RESOLV_CONF.dns;
    lines.push("    - type: nameserver");
    if (dns.length) lines.push("      address:", ...dns.map((a) => `      - '${a}'`));
    if (search.length) lines.push("      search:", ...search.map((a) => `      - '${a}'`));
    return lines.join("\n") + "\n";
  }
  if (custom.meta && readSnippet) return readSnippet(custom.meta);
  // QEMU Cloudinit.pm nocloud_gen_metadata: the instance-id is the SHA-1 of user-data . network-data,
  // so new user-data or network config makes the next boot a new instance for cloud-init
  // (dump_cloudinit_config: "Don't mask password here to get correct uuid")
  const data = ["user", "network"].map((t) => cloudinitDump(vmid, conf, _iface, t, readSnippet, false)).join("");
  const uuid = createHash("sha1").update(data).digest("hex");
  if (cloudinitFormat(conf) !== "nocloud") {
    if (readSnippet && windowsVersion(conf.ostype)) {
      // Cloudinit.pm cloudbase_configdrive2_metadata (encode_json: key order not fixed)
      const meta: Record<string, unknown> = { uuid, network_config: { content_path: "/content/0000" } };
      if (conf.cipassword) meta.admin_pass = conf.cipassword;
      if (conf.sshkeys !== undefined) {
        const keys = decodeURIComponent(conf.sshkeys).split("\n").filter((x) => /\S/.test(x));
        if (keys.length) meta.public_keys = Object.fromEntries(keys.map((k, i) => [`key-${i}`, k]));
      }
      return JSON.stringify(meta);
    }
    // Cloudinit.pm configdrive2_metadata
    return `{\n     "uuid": "${uuid}",\n     "network_config": { "content_path": "/content/0000" }\n}\n`;
  }
  return `instance-id: ${uuid}\n`;
}
