// /nodes/{node}/qemu/...: VM create, config (sync/async, pending, digest, hotplug), clone,
// template, resize, start/stop/shutdown, status, destroy, migrate, guest agent, cloud-init.
// Behaviour from BEHAVIOURS.md §2-§5 (QEMU API2/Qemu.pm, QemuServer.pm, Agent.pm,
// Cloudinit.pm; GUEST AbstractConfig.pm). The sync/async split follows PVE: checks made
// before `fork_worker` fail the HTTP call, the rest fails the task.

import * as fs from "fs";
import type { Sim } from "../sim";
import { AuthContext, ParamDefs, PveError, RouteDef, SimRequest, paramError } from "../types";
import { Cluster, Vm, Volume, clusterOf, parseVolid } from "../state/cluster";
import { TaskContext } from "../tasks";
import {
  Drive, VM_OPTION_PARAMS, VmConfig, agentEnabled, cloneConfig, emptyConfig, formatSize, isCdrom,
  isCloudinitOption, isCloudinitVolume, isDriveKey, hotplugChange, isFastPlug, parseHotplugFeatures, normaliseTags, optionDef, parseBool,
  parseConfig, parseDrive, parseNet, parseProps, parseSize, printDrive, printNet, typedValue,
  configDigest, cloudinitDump, snippetVolumes, windowsVersion,
} from "../qemu-config";
import { checkConfigKeys, checkNode, checkSkiplock, checkVmPerm, DIGEST, NODE, SKIPLOCK, VMID } from "./common";
import { QgaError, QgaGuest, isQgaError, networkInterfaces, qgaExecute, qgaReadFile, qgaWriteFile } from "../agent";
import { bootGuest, newGuestDisk } from "../guest";
import { validateSshPublicKeys } from "../ssh-pubkey";
import { encryptPw, isCryptHash } from "../sha-crypt";


const GiB = 1024 ** 3;
const VMS_AUDIT = ["perm", "/vms/{vmid}", ["VM.Audit"]] as ["perm", string, string[]];
const CONFIG_ANY = [
  "perm", "/vms/{vmid}",
  ["VM.Config.Disk", "VM.Config.CDROM", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Network", "VM.Config.HWType", "VM.Config.Options", "VM.Config.Cloudinit"],
  "any", 1,
] as ["perm", string, string[], "any", 1];
const DISK_ENUM = [
  ...[0, 1, 2, 3].map((i) => `ide${i}`), ...Array.from({ length: 31 }, (_, i) => `scsi${i}`),
  ...Array.from({ length: 16 }, (_, i) => `virtio${i}`), ...Array.from({ length: 6 }, (_, i) => `sata${i}`), "efidisk0", "tpmstate0",
];

/** Keys of a request's params that are VM options (`net0`, `scsi1`, `memory`...). */
function optionKeys(params: Record<string, any>, exclude: string[]): string[] {
  return Object.keys(params).filter((k) => !exclude.includes(k) && optionDef(k) !== undefined);
}

function checkLock(vm: Vm): void {
  const lock = vm.config.current.lock;
  if (lock) throw new PveError(500, `VM is locked (${lock})`);
}

/** QEMU QemuServer.pm `check_bridge_access` → GUEST GuestHelpers.pm `check_vnet_access`: SDN.Use
 *  on `/sdn/zones/localnetwork/<bridge>/<tag>` for the tag and for every trunk VLAN, on the bridge
 *  itself only when neither is set; root@pam (not its tokens) skips it. */
function checkBridges(sim: Sim, auth: AuthContext, values: Record<string, string>): void {
  if (auth.principal === "root@pam") return;
  for (const [k, v] of Object.entries(values)) {
    if (!/^net\d+$/.test(k)) continue;
    const n = parseNet(v);
    if (!n.rest.bridge) continue;
    const base = `/sdn/zones/localnetwork/${n.rest.bridge}`;
    const { tag, trunks } = n.rest;
    if (tag) sim.access.check(auth, `${base}/${tag}`, ["SDN.Use"]);
    if (trunks) {
      // get_tags_from_trunk: `10;20-22` → 10, 20, 21, 22 (sorted as strings, like Perl's `sort keys`)
      const tags = new Set<string>();
      for (const part of trunks.split(";")) {
        const [a, b] = part.split("-");
        if (b !== undefined && Number(b) > Number(a)) for (let i = Number(a); i <= Number(b); i++) tags.add(String(i));
        else tags.add(a);
      }
      for (const t of [...tags].sort()) sim.access.check(auth, `${base}/${t}`, ["SDN.Use"]);
    }
    if (!tag && !trunks) sim.access.check(auth, base, ["SDN.Use"]);
  }
}

/** Keys `$check_vm_modify_config_perm` skips because their privilege depends on the value
 *  (checked by `checkDevicePerm`) or, for `tags`, on the change (`assert_tag_permissions`). */
const isValueCheckedKey = (k: string) => /^(serial|usb|hostpci|virtiofs)\d+$/.test(k);

/** QEMU API2/Qemu.pm `$check_vm_create_serial_perm` and the serial branches of update_vm_api,
 *  `check_usb_perm`, `check_hostpci_perm`, `check_dir_perm` for one device value. `verb` is the
 *  message's: `set` (create), `modify`/`delete` (update; usb/hostpci always say `set`). `old` is
 *  the current value on a serial update (socket → socket needs only HWType). root@pam passes. */
function checkDevicePerm(sim: Sim, auth: AuthContext, vmid: number, pool: string | undefined, key: string, value: string, verb: string, old?: string): void {
  if (auth.userid === "root@pam" && auth.tokenid === undefined) return;
  if (/^serial\d+$/.test(key)) {
    if (value === "socket" && (old === undefined || old === "socket")) checkVmPerm(sim, auth, vmid, pool, ["VM.Config.HWType"]);
    else throw new PveError(500, `only root can ${verb} '${key}' config for real devices`);
  } else if (/^usb\d+$/.test(key)) {
    checkVmPerm(sim, auth, vmid, pool, ["VM.Config.HWType"]);
    const d = parseProps(value, "host");
    if (d.host) {
      if (!/^spice$/i.test(d.host)) throw new PveError(500, `only root can set '${key}' config for real devices`);
    } else if (d.mapping) sim.access.check(auth, `/mapping/usb/${d.mapping}`, ["Mapping.Use"]);
    else throw new PveError(500, "either 'host' or 'mapping' must be set.");
  } else if (/^hostpci\d+$/.test(key)) {
    const d = parseProps(value, "host");
    if (d.host) throw new PveError(500, `only root can set '${key}' config for non-mapped devices`);
    else if (d.mapping) {
      sim.access.check(auth, `/mapping/pci/${d.mapping}`, ["Mapping.Use"]);
      checkVmPerm(sim, auth, vmid, pool, ["VM.Config.HWType"]);
    } else throw new PveError(500, "either 'host' or 'mapping' must be set.");
    if (d.romfile !== undefined) throw paramError({ [key]: "only root@pam can set 'romfile' option" });
  } else if (/^virtiofs\d+$/.test(key)) {
    checkVmPerm(sim, auth, vmid, pool, ["VM.Config.Disk"]);
    sim.access.check(auth, `/mapping/dir/${parseProps(value, "dirid").dirid}`, ["Mapping.Use"]);
  }
}

/** QEMU create_vm/update_vm_api: `uri_unescape` the keys, then COMMON validate_ssh_public_keys
 *  (`ssh-keygen -l` per line), a plain `die`: 500. */
function checkSshKeys(raw: string): void {
  const bytes = Buffer.from(raw.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), "latin1");
  try {
    validateSshPublicKeys(bytes.toString("utf8"));
  } catch (e: any) {
    throw new PveError(500, e.message);
  }
}

/** Storages a drive value allocates on (`STORAGE:SIZE`, `STORAGE:cloudinit`, import). */
function newDiskStorage(value: string): string | undefined {
  const d = parseDrive(value);
  const m = /^([a-zA-Z][\w\-.]*):(\d+(\.\d+)?|cloudinit)$/.exec(d.file);
  return m ? m[1] : undefined;
}

/** STORAGE Plugin.pm/LvmThinPlugin.pm `parse_volname`, as far as permissions need it: the
 *  content type, the owning VMID, whether an import needs extraction (an OVA member). */
function volnameInfo(volname: string): { vtype: string; owner?: number; extract?: boolean } {
  const f = /^(iso|vztmpl|snippets|import|backup)\/(.+)$/.exec(volname);
  if (f) {
    const owner = f[1] === "backup" ? /^vzdump-(?:qemu|lxc|openvz)-(\d+)-/.exec(f[2])?.[1] : undefined;
    return { vtype: f[1], ...(owner ? { owner: Number(owner) } : {}), ...(f[1] === "import" && /\.ova\/.+/.test(f[2]) ? { extract: true } : {}) };
  }
  // dir: `100/vm-100-disk-0.qcow2`, linked `100/base-100-disk-0.qcow2/101/vm-101-disk-0.qcow2`; lvm: `vm-100-disk-0`
  const m = /(?:^|\/)(?:vm|base)-(\d+)-[^/]+$/.exec(volname);
  return m ? { vtype: "images", owner: Number(m[1]) } : { vtype: "images" };
}

/** STORAGE Storage.pm `check_volume_access`. */
function checkVolumeAccess(sim: Sim, c: Cluster, auth: AuthContext, vmid: number, volid: string, type?: string): void {
  const pv = parseVolid(volid);
  if (!pv) {
    if (auth.principal !== "root@pam") throw new PveError(500, "Only root can pass arbitrary filesystem paths.");
    return;
  }
  c.storage(pv.storage);
  const { vtype, owner } = volnameInfo(pv.volname);
  if (type !== undefined && vtype !== type) throw new PveError(500, `unable to use volume ${volid} - content type needs to be '${type}'`);
  const path = `/storage/${pv.storage}`;
  if (sim.access.has(auth, path, "Datastore.Allocate")) return;
  if (["iso", "vztmpl", "import"].includes(vtype)) sim.access.check(auth, path, ["Datastore.AllocateSpace", "Datastore.Audit"], true);
  else if (owner !== undefined && owner === vmid) return;
  else if (vtype === "backup" && owner) {
    sim.access.check(auth, path, ["Datastore.AllocateSpace"]);
    sim.access.check(auth, `/vms/${owner}`, ["VM.Backup"]);
  } else if (vtype === "images" && owner) {
    sim.access.check(auth, path, ["Datastore.Audit"]);
    sim.access.check(auth, `/vms/${owner}`, ["VM.Config.Disk"]);
  } else throw new PveError(500, `missing privileges to access ${volid}`);
}

const NEW_DISK_RE = /^(([^/:\s]+):)?(\d+(\.\d+)?)$/;

/** QEMU API2/Qemu.pm `$check_storage_access` (create and config update, before the fork). */
function checkStorageAccess(sim: Sim, c: Cluster, auth: AuthContext, vmid: number, values: Record<string, string>, defaultStorage?: string, extractionStorage?: string): void {
  for (const [k, v] of Object.entries(values).sort(([a], [b]) => a.localeCompare(b))) {
    if (!isDriveKey(k)) continue;
    const d = parseDrive(v);
    const volid = d.file;
    const pv = parseVolid(volid);
    const cdrom = d.media === "cdrom";
    if (!volid || volid === "none" || volid === "cloudinit" || pv?.volname === "cloudinit") {
      // nothing to check
    } else if (cdrom && volid === "cdrom") {
      sim.access.check(auth, "/", ["Sys.Console"]); // a physical drive of the host
    } else if (!cdrom && NEW_DISK_RE.test(volid)) {
      const sid = NEW_DISK_RE.exec(volid)![2] ?? defaultStorage;
      if (!sid) throw new PveError(500, "no storage ID specified (and no default storage)");
      sim.access.check(auth, `/storage/${sid}`, ["Datastore.AllocateSpace"]);
      if (!c.storage(sid).content.includes("images")) throw paramError({ storage: `storage '${sid}' does not support vm images` });
    } else {
      checkVolumeAccess(sim, c, auth, vmid, volid);
      if (pv) {
        const { vtype } = volnameInfo(pv.volname);
        if (vtype !== "images" && vtype !== "iso") throw paramError({ [k]: "content type needs to be 'images' or 'iso'" });
      }
    }
    const src = d["import-from"];
    if (src) {
      const ps = parseVolid(src);
      let srcOwner: number | undefined;
      if (ps) {
        const s = c.storage(ps.storage);
        const info = volnameInfo(ps.volname);
        srcOwner = info.owner;
        if (info.vtype !== "images" && info.vtype !== "import") {
          throw paramError({ [k]: `${src} has wrong type '${info.vtype}' - needs to be 'images' or 'import'` });
        }
        if (info.extract) {
          const xs = extractionStorage !== undefined ? c.storage(extractionStorage) : s;
          const xid = extractionStorage ?? ps.storage;
          if (!xs.content.includes("images") || !xs.path) {
            throw paramError({ [extractionStorage !== undefined ? "import-working-storage" : k]: `import working storage '${xid}' does not support 'images' content type or is not file based.` });
          }
          sim.access.check(auth, `/storage/${xid}`, ["Datastore.AllocateSpace"]);
        }
      }
      // a VM disk may be in use by its VM and is copied via clone_disk
      if (srcOwner) sim.access.check(auth, `/vms/${srcOwner}`, ["VM.Clone"]);
      else checkVolumeAccess(sim, c, auth, vmid, src);
    }
  }
  for (const [k, v] of Object.entries(values).sort(([a], [b]) => a.localeCompare(b))) {
    if (!/^unused\d+$/.test(k)) continue;
    const volid = parseProps(v, "file").file;
    if (!volid || !parseVolid(volid)) throw paramError({ [k]: `not a valid volid: ${volid}` });
    checkVolumeAccess(sim, c, auth, vmid, volid, "images");
  }
  if (values.vmstatestorage !== undefined) sim.access.check(auth, `/storage/${values.vmstatestorage}`, ["Datastore.AllocateSpace"]);
}

/** Validates drive syntax as `check_drive_param`/`parse_drive` would. */
function checkDriveParams(values: Record<string, string>, c?: Cluster): void {
  for (const [k, v] of Object.entries(values)) {
    if (!isDriveKey(k)) continue;
    const d = parseDrive(v);
    if (!d.file) throw paramError({ [k]: "invalid format - format error\n" });
    if (d.size !== undefined && parseSize(d.size) === undefined) throw paramError({ [k]: `invalid format - unable to parse size '${d.size}'` });
    if (d["import-from"] && !/^[a-zA-Z][\w\-.]*:0$/.test(d.file)) {
      throw paramError({ [k]: "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>" });
    }
    // QEMU `$check_drive_param`: an existing ISO volume must be attached as a CD-ROM
    const pv = parseVolid(d.file);
    if (c && pv && c.storages.has(pv.storage) && !NEW_DISK_RE.test(d.file) && pv.volname !== "cloudinit"
      && volnameInfo(pv.volname).vtype === "iso" && d.media !== "cdrom") {
      throw paramError({ [k]: "explicit 'media=cdrom' is required for iso images" });
    }
  }
}

/** Path of a file-based volume on a node, or undefined for block/virtual volumes. */
function fileVolumePath(c: Cluster, node: string, volid: string): string | undefined {
  const p = parseVolid(volid);
  if (!p) return undefined;
  const s = c.storages.get(p.storage);
  if (!s?.path) return undefined;
  const m = /^(iso|vztmpl|snippets|import)\/(.+)$/.exec(p.volname);
  if (!m) return undefined;
  const sub = { iso: "template/iso", vztmpl: "template/cache", snippets: "snippets", import: "import" }[m[1]]!;
  return c.hostPath(node, `${s.path}/${sub}/${m[2]}`);
}

export function register(sim: Sim): void {
  const c = clusterOf(sim);
  const route = (def: RouteDef) => sim.route(def);
  const opts = c.latency.opts;

  /** Runs `fn` as a task on `node` for the caller. */
  const fork = (req: SimRequest, node: string, type: string, id: string, fn: (ctx: TaskContext) => Promise<void> | void) =>
    c.tasks.start(node, type, id, req.auth.principal, fn);

  // ---- drive allocation -----------------------------------------------------------------

  /** Allocates/attaches the drive `key=value` of a VM being created/updated on `node`;
   *  returns the final drive string and the volids created. */
  /** QEMU create_disks: one cloud-init drive per VM (has_cloudinit over the config as it will be,
   *  pending included, skipping this key; drive_is_cloudinit also matches `<sid>:cloudinit`). */
  function checkOneCloudinit(key: string, siblings: Record<string, string>): void {
    const other = Object.keys(siblings).sort().find((k) => k !== key && isDriveKey(k) && /[:/](vm-\d+-)?cloudinit(\.\w+)?$/.test(parseDrive(siblings[k]).file));
    if (other) throw new Error(`${key} - cloud-init drive is already attached at '${other}'`);
  }

  /** QEMU create_disks, the branch for an existing volume: `format=` must be the volume's own
   *  (file volumes: raw), and a cloud-init volume must be the only one. */
  function checkExistingDrive(vm: Vm, key: string, d: Drive, siblings: Record<string, string>): void {
    const pv = parseVolid(d.file);
    if (!pv || !c.storages.has(pv.storage)) return;
    const fmt = c.findVolume(d.file, vm.node)?.format ?? (fileVolumePath(c, vm.node, d.file) ? "raw" : undefined);
    if (d.format && fmt && d.format !== fmt) {
      throw new Error(`drive '${key}' - volume '${d.file}' - 'format=${d.format}' option different from storage format '${fmt}'`);
    }
    if (isCloudinitVolume(d.file)) checkOneCloudinit(key, siblings);
  }

  /** STORAGE Storage.pm vdisk_alloc: `alloc_image` under the storage lock (storage-locks.ts). */
  function allocLocked(ctx: TaskContext | undefined, storage: string, node: string, alloc: () => Volume): Promise<Volume> {
    return c.withStorageLock(storage, node, async () => {
      if (ctx) await ctx.sleep(opts.allocateDiskMs);
      return alloc();
    }, ctx ? (l) => ctx.log(l) : undefined);
  }

  /** STORAGE Storage.pm vdisk_free: `free_image` under the storage lock. `cleanup`: a worker's
   *  clean-up after its error, which runs to its end even when the worker was signalled. */
  function freeLocked(ctx: TaskContext | undefined, volid: string, node: string, cleanup = false): Promise<void> {
    const storage = parseVolid(volid)?.storage ?? "";
    return c.withStorageLock(storage, node, async () => {
      if (ctx) await (cleanup ? c.latency.sleep(opts.freeDiskMs) : ctx.sleep(opts.freeDiskMs));
      c.freeVolume(volid, node);
    }, ctx ? (l) => ctx.log(l) : undefined);
  }

  async function createDrive(
    ctx: TaskContext | undefined, vm: Vm, key: string, value: string, defaultStorage: string | undefined,
    siblings: Record<string, string> = { ...vm.config.current, ...vm.config.pending },
  ): Promise<{ value: string; created: string[] }> {
    const d = parseDrive(value);
    const node = vm.node;
    const m = /^(?:([a-zA-Z][\w\-.]*):)?(\d+(?:\.\d+)?|cloudinit)$/.exec(d.file);
    if (!m) {
      checkExistingDrive(vm, key, d, siblings);
      if (isCdrom(d) || d.file === "none") {
        if (d.file !== "none" && d.file !== "cdrom") {
          const path = fileVolumePath(c, node, d.file);
          if (path && !fs.existsSync(path)) throw new Error(`volume '${d.file}' does not exist`);
        }
        return { value, created: [] };
      }
      if (!c.findVolume(d.file, node) && !fileVolumePath(c, node, d.file)) throw new Error(`volume '${d.file}' does not exist`);
      return { value, created: [] };
    }
    const storage = m[1] ?? defaultStorage;
    if (!storage) throw new Error(`unable to parse drive options for '${key}' - no storage given`);
    if (m[2] === "cloudinit") {
      checkOneCloudinit(key, siblings);
      // QEMU create_disks: the cloud-init image is qcow2 on path storages, raw on block ones
      const vol = await allocLocked(ctx, storage, node, () => c.allocVolume(storage, node, vm.vmid, 4 * 1024 * 1024, { name: `vm-${vm.vmid}-cloudinit`, format: d.format ?? (c.storage(storage).path ? "qcow2" : "raw"), strict: true }));
      ctx?.log(`${key}: successfully created disk '${vol.volid},media=cdrom'`);
      return { value: `${vol.volid},media=cdrom`, created: [vol.volid] };
    }
    const { file: _file, ...rest } = d as Record<string, string>;
    const importFrom = rest["import-from"];
    delete rest["import-from"];
    delete rest.size;
    const format = rest.format;
    delete rest.format; // create_disks: "no longer needed" once the volume is allocated
    let size = Math.round(Number(m[2]) * GiB);
    if (importFrom) {
      let srcSize: number | undefined;
      const path = fileVolumePath(c, node, importFrom);
      if (path) {
        if (!fs.existsSync(path)) throw new Error(`volume '${importFrom}' does not exist`);
        srcSize = c.importSizes.get(`${importFrom}@${node}`) ?? Math.max(fs.statSync(path).size, opts.importVirtualSize);
      } else {
        const src = c.findVolume(importFrom, node);
        if (!src) throw new Error(`volume '${importFrom}' does not exist`);
        srcSize = src.size;
      }
      size = srcSize;
      const image = path ? importFrom.replace(/^.*[/:]/, "") : c.findVolume(importFrom, node)?.image;
      const vol = await allocLocked(ctx, storage, node, () => c.allocVolume(storage, node, vm.vmid, size, { format, image }));
      ctx?.log(`importing disk '${importFrom}' to VM ${vm.vmid} ...`);
      ctx?.log(`transferred ${formatSize(size)} of ${formatSize(size)} (100.00%)`);
      if (ctx) await ctx.transfer(c.storageKey(storage, node), size);
      ctx?.log(`${key}: successfully created disk '${vol.volid},size=${formatSize(size)}'`);
      return { value: printDrive({ ...rest, file: vol.volid, size: formatSize(size) } as Drive), created: [vol.volid] };
    }
    // create_disks: `$disk->{format} || $defformat` straight to vdisk_alloc (the plugin's alloc_image
    // takes it or dies: lvmthin/zfspool `unsupported format`)
    const vol = await allocLocked(ctx, storage, node, () => c.allocVolume(storage, node, vm.vmid, size, { format, strict: true }));
    ctx?.log(`${key}: successfully created disk '${vol.volid},size=${formatSize(size)}'`);
    return { value: printDrive({ ...rest, file: vol.volid, size: formatSize(size) } as Drive), created: [vol.volid] };
  }

  /** Volids a config references (drives except cdroms/none, unusedN). */
  function referencedVolumes(conf: Record<string, string>): string[] {
    const out: string[] = [];
    for (const [k, v] of Object.entries(conf)) {
      if (isDriveKey(k)) {
        const d = parseDrive(v);
        if (isCdrom(d) && !isCloudinitVolume(d.file)) continue;
        out.push(d.file);
      } else if (/^unused\d+$/.test(k)) out.push(parseProps(v, "file").file);
    }
    return out;
  }

  function freeUnusedSlot(conf: Record<string, string>): string {
    for (let i = 0; ; i++) if (conf[`unused${i}`] === undefined) return `unused${i}`;
  }

  /** `vmconfig_apply_pending` for one key (or `vmconfig_hotplug_pending` when hotplugging). */
  async function applyOne(ctx: TaskContext | undefined, vm: Vm, key: string): Promise<void> {
    const conf = vm.config;
    const cur = conf.current;
    if (key in conf.pendingDelete) {
      const force = conf.pendingDelete[key];
      delete conf.pendingDelete[key];
      const old = cur[key];
      if (old === undefined) return;
      if (/^unused\d+$/.test(key)) c.freeVolume(parseProps(old, "file").file, vm.node);
      else if (isDriveKey(key)) {
        const d = parseDrive(old);
        if (isCloudinitVolume(d.file)) {
          c.freeVolume(d.file, vm.node);
          delete conf.cloudinit; // vmconfig_register_unused_drive drops the special section
        } else if (!isCdrom(d)) {
          if (force) c.freeVolume(d.file, vm.node);
          else cur[freeUnusedSlot(cur)] = d.file;
        }
      }
      delete cur[key];
      return;
    }
    if (!(key in conf.pending)) return;
    let value = conf.pending[key];
    delete conf.pending[key];
    if (isDriveKey(key)) {
      const old = cur[key];
      if (newDiskStorage(value) || parseDrive(value)["import-from"]) {
        value = (await createDrive(ctx, vm, key, value, undefined)).value;
      } else checkExistingDrive(vm, key, parseDrive(value), { ...cur, ...conf.pending });
      if (old !== undefined) {
        const od = parseDrive(old);
        const nd = parseDrive(value);
        // vmconfig_register_unused_drive: a replaced cloud-init drive is freed
        if (od.file !== nd.file && isCloudinitVolume(od.file)) {
          c.freeVolume(od.file, vm.node);
          delete conf.cloudinit;
        } else if (od.file !== nd.file && !isCdrom(od)) cur[freeUnusedSlot(cur)] = od.file;
      }
    }
    cur[key] = value;
  }

  /** Stopped VM (`onlyHotplug` false): `vmconfig_apply_pending`, everything. Running VM:
   *  `vmconfig_hotplug_pending` — fast-plug values always, then of the keys this update touched
   *  (`selection`; all when undefined) the deletes, then the values, each as `hotplugChange`
   *  decides. Returns the hot-plug errors (`hotplug problem - <msg>`) by key. */
  async function applyPending(ctx: TaskContext | undefined, vm: Vm, onlyHotplug: boolean, selection?: Set<string>): Promise<Record<string, string>> {
    const conf = vm.config;
    const errors: Record<string, string> = {};
    if (!onlyHotplug) {
      // vmconfig_apply_pending records nothing in `[special:cloudinit]`; only a newly applied
      // cloud-init drive is generated at once, which drops the section
      const newCi = Object.entries(conf.pending).some(([k, v]) => isDriveKey(k) && /[:/](vm-\d+-)?cloudinit(\.\w+)?$/.test(parseDrive(v).file));
      for (const k of [...new Set([...Object.keys(conf.pendingDelete), ...Object.keys(conf.pending)])]) await applyOne(ctx, vm, k);
      if (newCi) delete conf.cloudinit;
      return errors;
    }
    // QEMU vmconfig_hotplug_pending `$cloudinit_record_changed`: what the cloud-init image was
    // made with, for the keys `cloudinit_pending_properties` lists (cloud-init ones, name, netN);
    // "" marks a key the image did not have (PVE's `added`)
    const record = (k: string, old: string | undefined) => {
      if (!(isCloudinitOption(k) || k === "name" || /^net\d+$/.test(k))) return;
      const nw = conf.current[k];
      const ci = (conf.cloudinit ??= {});
      const recorded = ci[k];
      if (nw !== undefined) {
        if (recorded !== undefined && recorded !== "" && nw === recorded) delete ci[k];
        else if (recorded === undefined) ci[k] = old ?? "";
      } else if (old !== undefined) {
        if (recorded === "") delete ci[k];
        else if (recorded === undefined) ci[k] = old;
      }
      if (Object.keys(ci).length === 0) delete conf.cloudinit;
    };
    const apply = async (k: string) => {
      const old = conf.current[k];
      await applyOne(ctx, vm, k);
      record(k, old);
    };
    for (const k of Object.keys(conf.pending)) if (isFastPlug(k)) await apply(k);
    const feats = parseHotplugFeatures(conf.current.hotplug ?? "1");
    const qemu = c.opts.qemuVersion ?? "10.0.2";
    const keys = [...Object.keys(conf.pendingDelete).sort(), ...Object.keys(conf.pending).filter((k) => !(k in conf.pendingDelete))];
    for (const k of keys) {
      if (selection && !selection.has(k)) continue;
      const r = hotplugChange(k, conf.current, k in conf.pendingDelete ? undefined : conf.pending[k], feats, qemu);
      if (r === true) await apply(k);
      else if (r !== false) errors[k] = `hotplug problem - ${r.error}`;
    }
    // `$hotplug_features->{cloudinit}`: the cloud-init drive is regenerated now (QEMU
    // vmconfig_update_cloudinit_drive); otherwise at the next start or `PUT .../cloudinit`
    const hasCi = Object.entries(conf.current).some(([k, v]) => isDriveKey(k) && isCloudinitVolume(parseDrive(v).file));
    if (feats.has("cloudinit") && conf.cloudinit && hasCi) {
      checkSnippets(vm);
      delete conf.cloudinit;
    }
    return errors;
  }

  // ---- list / create --------------------------------------------------------------------

  const vmListEntry = (vm: Vm, full: boolean) => {
    const r = c.vmResource(vm.vmid, true)!; // QemuServer vmstatus: the node's own, current view
    const e: Record<string, unknown> = {
      vmid: vm.vmid, name: r.name, status: r.status, cpus: r.maxcpu, maxmem: r.maxmem, maxdisk: r.maxdisk,
      mem: r.mem, cpu: r.cpu, disk: 0, diskread: 0, diskwrite: 0, netin: 0, netout: 0, uptime: r.uptime,
    };
    if (r.template) e.template = 1;
    if (r.tags) e.tags = r.tags;
    if (r.lock) e.lock = r.lock;
    if (vm.running) e.pid = vm.pid;
    if (full && vm.running) e.qmpstatus = "running";
    return e;
  };

  route({
    method: "GET",
    path: "/nodes/{node}/qemu",
    params: { node: NODE, full: { type: "boolean", optional: true } },
    permissions: { user: "all" },
    handler: (req) => {
      checkNode(c, req.params.node);
      return [...c.vms.values()]
        .filter((vm) => vm.node === req.params.node && sim.access.has(req.auth, `/vms/${vm.vmid}`, "VM.Audit"))
        .sort((a, b) => a.vmid - b.vmid)
        .map((vm) => vmListEntry(vm, !!req.params.full));
    },
  });

  const createParams: ParamDefs = {
    ...VM_OPTION_PARAMS,
    node: NODE,
    vmid: VMID,
    archive: { type: "string", maxLength: 255, optional: true },
    bwlimit: { type: "integer", minimum: 0, optional: true },
    force: { type: "boolean", optional: true },
    "ha-managed": { type: "boolean", optional: true, sincePve9: true },
    "import-working-storage": { type: "string", format: "pve-storage-id", optional: true },
    "live-restore": { type: "boolean", optional: true },
    pool: { type: "string", format: "pve-poolid", optional: true },
    start: { type: "boolean", optional: true },
    storage: { type: "string", format: "pve-storage-id", optional: true },
    unique: { type: "boolean", optional: true },
  };
  const CREATE_NON_OPTIONS = ["node", "vmid", "archive", "bwlimit", "force", "ha-managed", "import-working-storage", "live-restore", "pool", "start", "storage", "unique"];

  /** `get_default_bootdevices`: first disk, first cdrom, first NIC. */
  function defaultBoot(conf: Record<string, string>): string {
    const order = (k: string) => {
      const m = /^(ide|sata|scsi|virtio)(\d+)$/.exec(k)!;
      return ["ide", "sata", "scsi", "virtio"].indexOf(m[1]) * 100 + Number(m[2]);
    };
    const drives = Object.keys(conf).filter((k) => /^(ide|sata|scsi|virtio)\d+$/.test(k)).sort((a, b) => order(a) - order(b));
    const devs: string[] = [];
    const disk = drives.find((k) => !isCdrom(parseDrive(conf[k])));
    if (disk) devs.push(disk);
    const cd = drives.find((k) => isCdrom(parseDrive(conf[k])) && !isCloudinitVolume(parseDrive(conf[k]).file));
    if (cd) devs.push(cd);
    const net = Object.keys(conf).filter((k) => /^net\d+$/.test(k)).sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)))[0];
    if (net) devs.push(net);
    return `order=${devs.join(";")}`;
  }

  route({
    method: "POST",
    path: "/nodes/{node}/qemu",
    params: createParams,
    permissions: { user: "all", handlerChecks: true },
    handler: async (req) => {
      const p = req.params;
      const node: string = p.node;
      const vmid: number = p.vmid;
      checkNode(c, node);
      if (p.archive) throw new PveError(501, "restore from backup archives is not simulated");
      // create_vm: the keys are URL-decoded and checked (COMMON validate_ssh_public_keys) first
      if (p.sshkeys !== undefined) checkSshKeys(String(p.sshkeys));
      const pool: string | undefined = p.pool;
      // ACCESS RPCEnvironment.pm check_pool_exist: raise_perm_exc, a 403
      if (pool !== undefined && !sim.pools.exists(pool)) throw new PveError(403, `Permission check failed (pool '${pool}' does not exist)`);
      if (p.storage) sim.access.check(req.auth, `/storage/${p.storage}`, ["Datastore.AllocateSpace"]);
      if (p["ha-managed"]) sim.access.check(req.auth, "/", ["Sys.Console"]);
      if (p.start) checkVmPerm(sim, req.auth, vmid, pool, ["VM.PowerMgmt"]);
      if (!sim.access.has(req.auth, `/vms/${vmid}`, "VM.Allocate") && !(pool && sim.access.has(req.auth, `/pool/${pool}`, "VM.Allocate"))) {
        throw new PveError(403, "Permission check failed");
      }
      const values: Record<string, string> = {};
      for (const k of optionKeys(p, CREATE_NON_OPTIONS)) values[k] = String(p[k]);
      if (values.cdrom !== undefined) {
        values.ide2 = values.cdrom.includes("media=") ? values.cdrom : `${values.cdrom},media=cdrom`;
        delete values.cdrom;
      }
      checkStorageAccess(sim, c, req.auth, vmid, values, p.storage, p["import-working-storage"]);
      // create_vm: `$check_vm_modify_config_perm` skips drives and unusedN (VM.Allocate covers
      // them), devices checked by value and `tags` (checked in the worker, on /vms/{vmid} only)
      checkConfigKeys(sim, req.auth, vmid, pool, Object.entries(values).filter(([k]) => !isDriveKey(k) && !/^unused\d+$/.test(k) && !isValueCheckedKey(k) && k !== "tags"));
      // $check_vm_create_serial_perm, check_vm_create_usb_perm, _hostpci_perm, _dir_perm
      for (const re of [/^serial\d+$/, /^usb\d+$/, /^hostpci\d+$/, /^virtiofs\d+$/]) {
        for (const [k, v] of Object.entries(values)) if (re.test(k)) checkDevicePerm(sim, req.auth, vmid, pool, k, v, "set");
      }
      checkBridges(sim, req.auth, values);
      checkDriveParams(values, c);
      if (values.sshkeys !== undefined) values.sshkeys = values.sshkeys; // stored URL-encoded
      for (const k of Object.keys(values)) {
        if (/^net\d+$/.test(k)) {
          const n = parseNet(values[k]);
          if (!n.model) throw paramError({ [k]: "invalid format - format error\nmodel: property is missing and it is not optional\n" });
          n.macaddr ??= c.randomMac();
          values[k] = printNet(n);
        }
      }
      // create_and_lock_config: flock, check_vmid_unused, write `lock: create`
      const release = await c.locks.acquire(vmid, "exclusive", 5000, "create");
      try {
        const other = c.vms.get(vmid);
        if (other) throw new PveError(500, `unable to create VM ${vmid} - VM ${vmid} already exists on node '${other.node}'`);
        const vm: Vm = { vmid, node, config: emptyConfig(), running: false, createdAt: sim.now() };
        vm.config.current.lock = "create";
        c.vms.set(vmid, vm);
      } finally {
        release();
      }
      return fork(req, node, "qmcreate", String(vmid), async (ctx) => {
        const vm = c.vms.get(vmid)!;
        const created: string[] = [];
        try {
          await c.locks.with(vmid, "exclusive", opts.workerLockTimeoutMs, async () => {
            await ctx.sleep(opts.createMs);
            const conf: Record<string, string> = {};
            for (const [k, v] of Object.entries(values)) {
              if (isDriveKey(k)) {
                const r = await createDrive(ctx, vm, k, v, p.storage, values); // create_vm: $conf is $param
                created.push(...r.created);
                conf[k] = r.value;
              } else conf[k] = v;
            }
            conf.meta = `creation-qemu=${c.opts.qemuVersion ?? "10.0.2"},ctime=${sim.nowSeconds()}`;
            if (!conf.boot) conf.boot = defaultBoot(conf);
            if (!conf.smbios1) conf.smbios1 = `uuid=${c.uuid()}`;
            if ((conf.vmgenid === undefined || conf.vmgenid === "1") && conf.arch !== "aarch64") conf.vmgenid = c.uuid();
            if (conf.tags !== undefined) {
              // create_vm worker: assert_tag_permissions($vmid, ...) checks /vms/{vmid}, never the pool
              sim.access.check(req.auth, `/vms/${vmid}`, ["VM.Config.Options"]);
              conf.tags = normaliseTags(conf.tags);
            }
            vm.config = { current: conf, pending: {}, pendingDelete: {} };
            if (pool) sim.pools.addVm(pool, vmid);
          });
        } catch (e: any) {
          // API2/Qemu.pm create_vm / create_disks: each allocated volume freed under the storage
          // lock, a failure only printed (`warn $@`): the volume stays, in no config
          for (const v of created) {
            try {
              await freeLocked(ctx, v, node, true);
            } catch (fe: any) {
              ctx.log(fe.message);
            }
          }
          if (c.vms.get(vmid) === vm) c.vms.delete(vmid);
          throw new Error(`unable to create VM ${vmid} - ${e.message}`);
        }
        if (p["ha-managed"]) {
          ctx.log("Add as HA resource");
          c.ha.set(`vm:${vmid}`, { sid: `vm:${vmid}`, type: "vm", state: p.start ? "started" : "stopped", max_restart: 1, max_relocate: 1, failback: 1 });
        }
        if (p.start) {
          ctx.log("Execute autostart");
          try {
            await startVm(ctx, vm, false);
          } catch (e: any) {
            ctx.warn(e.message);
          }
        }
      });
    },
  });

  route({
    method: "GET",
    path: "/nodes/{node}/qemu/{vmid}",
    params: { node: NODE, vmid: VMID },
    permissions: { user: "all" },
    handler: (req) => {
      c.loadVm(req.params.node, req.params.vmid);
      return ["config", "pending", "status", "unlink", "vncproxy", "termproxy", "migrate", "resize", "move", "rrd", "rrddata", "monitor", "agent", "snapshot", "spiceproxy", "sendkey", "firewall", "mtunnel", "remote_migrate"].map((subdir) => ({ subdir }));
    },
  });

  // ---- config ---------------------------------------------------------------------------

  route({
    method: "GET",
    path: "/nodes/{node}/qemu/{vmid}/config",
    params: {
      node: NODE, vmid: VMID,
      current: { type: "boolean", optional: true },
      snapshot: { type: "string", format: "pve-configid", maxLength: 40, optional: true },
    },
    permissions: { check: VMS_AUDIT },
    handler: (req) => {
      const vm = c.loadVm(req.params.node, req.params.vmid);
      if (req.params.snapshot) throw new PveError(500, `snapshot '${req.params.snapshot}' does not exist`);
      const src: Record<string, string> = vm.tempClone ? { lock: "clone" } : { ...vm.config.current };
      if (!req.params.current && !vm.tempClone) {
        Object.assign(src, vm.config.pending);
        for (const k of Object.keys(vm.config.pendingDelete)) delete src[k];
      }
      // QEMU vm_config: `$conf->{cipassword} = '**********' if $conf->{cipassword}`
      if (src.cipassword && src.cipassword !== "0") src.cipassword = "**********";
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(src)) out[k] = typedValue(k, v);
      out.digest = vm.tempClone ? configDigest({ current: { lock: "clone" }, pending: {}, pendingDelete: {} }) : c.digest(vm);
      return out;
    },
  });

  const updateParams = (async: boolean): ParamDefs => ({
    ...VM_OPTION_PARAMS,
    node: NODE,
    vmid: VMID,
    delete: { type: "string", format: "pve-configid-list", optional: true },
    revert: { type: "string", format: "pve-configid-list", optional: true },
    digest: DIGEST,
    force: { type: "boolean", optional: true },
    skiplock: SKIPLOCK,
    ...(async
      ? { background_delay: { type: "integer", minimum: 1, maximum: 30, optional: true }, "import-working-storage": { type: "string", format: "pve-storage-id", optional: true } }
      : {}),
  });
  const UPDATE_NON_OPTIONS = ["node", "vmid", "delete", "revert", "digest", "force", "skiplock", "background_delay", "import-working-storage"];

  /** `update_vm_api`: sync checks, then `updatefn` (in the caller or a qmconfig worker). */
  async function updateVm(req: SimRequest, async: boolean): Promise<unknown> {
    const p = req.params;
    const node: string = p.node;
    const vmid: number = p.vmid;
    checkNode(c, node);
    const skiplock = checkSkiplock(sim, req.auth, p.skiplock);
    if (p.sshkeys !== undefined) checkSshKeys(String(p.sshkeys));
    const split = (s: string | undefined) => (s ?? "").split(/[,;\s]+/).filter((x) => x !== "");
    const del = split(p.delete);
    const revert = split(p.revert);
    const values: Record<string, string> = {};
    for (const k of optionKeys(p, UPDATE_NON_OPTIONS)) values[k] = String(p[k]);
    if (values.cdrom !== undefined) {
      values.ide2 = values.cdrom.includes("media=") ? values.cdrom : `${values.cdrom},media=cdrom`;
      delete values.cdrom;
    }
    if (p.force && !p.delete) throw paramError({ force: "parameter 'force' requires parameter 'delete'" });
    if (Object.keys(values).length === 0 && del.length === 0 && revert.length === 0) {
      throw new PveError(400, "no options specified");
    }
    for (const k of del) {
      if (values[k] !== undefined) throw paramError({ delete: `you can't use '-${k}' and -delete ${k}' at the same time` });
      // QEMU update_vm_api: `option_exists` or `unknown option`
      if (!optionDef(k) && k !== "meta") throw paramError({ delete: `unknown option '${k}'` });
    }
    for (const k of revert) {
      if (!optionDef(k) && k !== "meta") throw paramError({ revert: `unknown option '${k}'` });
      if (values[k] !== undefined || del.includes(k)) throw paramError({ revert: `you can't use '-${k}' and '-revert ${k}' at the same time` });
    }
    if (values.tags !== undefined) values.tags = normaliseTags(values.tags);
    for (const k of Object.keys(values)) {
      if (/^net\d+$/.test(k)) {
        const n = parseNet(values[k]);
        n.macaddr ??= c.randomMac();
        values[k] = printNet(n);
      } else if (k === "vmgenid" && values[k] === "1") values[k] = c.uuid();
    }
    checkDriveParams(values, c);
    // drives and unusedN are checked by value under the lock (`$updatefn` below)
    const byValue = ([k]: [string, string | undefined]) => !isDriveKey(k) && !/^unused\d+$/.test(k) && !isValueCheckedKey(k);
    checkConfigKeys(sim, req.auth, vmid, undefined, [
      ...del.map((k): [string, string | undefined] => [k, undefined]),
      ...Object.entries(values),
      ...revert.map((k): [string, string | undefined] => [k, undefined]),
    ].filter(byValue));
    checkStorageAccess(sim, c, req.auth, vmid, values, undefined, p["import-working-storage"]);
    checkBridges(sim, req.auth, values);
    c.loadVm(node, vmid);

    const checkConfig = (): Vm => {
      const vm = c.loadVm(node, vmid);
      if (p.digest && p.digest !== c.digest(vm)) throw new PveError(500, "checksum mismatch (file change by other user?)");
      if (!skiplock) checkLock(vm);
      // `$load_and_check_config`: balloon against the (new or pending or current) memory
      if (values.memory !== undefined || values.balloon !== undefined) {
        const memory = values.memory ?? vm.config.pending.memory ?? vm.config.current.memory ?? "512";
        const maxmem = Number(parseProps(memory, "current").current);
        const balloon = Number(values.balloon ?? vm.config.pending.balloon ?? vm.config.current.balloon ?? 0);
        if (balloon && balloon > maxmem) throw new PveError(500, "balloon value too large (must be smaller than assigned memory)");
      }
      return vm;
    };
    /** QEMU API2/Qemu.pm update_vm_api `$updatefn` (under the lock, so a task error for POST):
     *  `$check_drive_perms` on a drive's old and new value, protection for removed drives and
     *  unusedN, AllocateSpace to free an owned unused volume (QemuServer.pm try_deallocate_drive),
     *  and the bridge of a NIC being changed or removed. */
    const checkLockedPerms = (vm: Vm) => {
      const conf = vm.config;
      const drivePerms = (val: string) => {
        const d = parseDrive(val);
        const privs = /[:/](?:vm-\d+-)?cloudinit(?:\.(?:raw|qcow2|vmdk))?$/.test(d.file) ? ["VM.Config.Cloudinit", "VM.Config.CDROM"]
          : d.media === "cdrom" ? ["VM.Config.CDROM"] : ["VM.Config.Disk"];
        checkVmPerm(sim, req.auth, vmid, undefined, privs);
      };
      const protectedVm = parseBool(conf.current.protection) === true;
      for (const k of del) {
        const val = conf.current[k] ?? conf.pending[k];
        if (val === undefined) continue;
        if (/^unused\d+$/.test(k)) {
          const file = parseProps(val, "file").file;
          if (protectedVm) throw new PveError(500, `can't remove unused disk '${file}' - protection mode enabled`);
          checkVmPerm(sim, req.auth, vmid, undefined, ["VM.Config.Disk"]);
          const pv = parseVolid(file);
          if (pv && volnameInfo(pv.volname).owner === vmid) sim.access.check(req.auth, `/storage/${pv.storage}`, ["Datastore.AllocateSpace"]);
        } else if (isDriveKey(k)) {
          if (protectedVm) throw new PveError(500, `can't remove drive '${k}' - protection mode enabled`);
          drivePerms(val);
        } else if (/^net\d+$/.test(k) && conf.current[k]) checkBridges(sim, req.auth, { [k]: conf.current[k] });
        else if (isValueCheckedKey(k)) checkDevicePerm(sim, req.auth, vmid, undefined, k, val, "delete");
      }
      for (const [k, v] of Object.entries(values)) {
        if (conf.pending[k] === v) continue;
        if (isDriveKey(k)) {
          if (conf.current[k]) drivePerms(conf.current[k]);
          drivePerms(v);
        } else if (/^net\d+$/.test(k) && conf.current[k]) checkBridges(sim, req.auth, { [k]: conf.current[k] });
        else if (/^serial\d+$/.test(k)) checkDevicePerm(sim, req.auth, vmid, undefined, k, v, "modify", conf.current[k]);
        else if (isValueCheckedKey(k)) {
          // the old device too (`if (my $oldvalue = $conf->{$opt})`)
          if (conf.current[k]) checkDevicePerm(sim, req.auth, vmid, undefined, k, conf.current[k], "set");
          checkDevicePerm(sim, req.auth, vmid, undefined, k, v, "set");
        }
      }
    };
    const writeAndApply = async (vm: Vm, ctx?: TaskContext) => {
      checkLockedPerms(vm);
      const conf = vm.config;
      for (const k of revert) {
        delete conf.pending[k];
        delete conf.pendingDelete[k];
      }
      // QEMU update_vm_api `@bootorder`: the current `boot` order; a deleted device leaves it, a
      // new CD-ROM joins it (print_bootorder: `order=a;b`, "" when empty)
      const bootorder = (parseProps(conf.current.boot ?? "", "legacy").order ?? "").split(/[,;\s]+/).filter((x) => x !== "");
      const setBootorder = () => {
        conf.pending.boot = bootorder.length ? `order=${bootorder.join(";")}` : "";
        delete conf.pendingDelete.boot;
      };
      for (const k of del) {
        if (conf.current[k] === undefined && conf.pending[k] === undefined) {
          // QEMU update_vm_api: a `warn` (the worker's task ends `WARNINGS: n`)
          ctx?.warn(`cannot delete '${k}' - not set in current configuration!`);
          continue;
        }
        if (bootorder.includes(k)) {
          bootorder.splice(bootorder.indexOf(k), 1);
          setBootorder();
        }
        if (k in conf.pending && conf.current[k] === undefined) {
          delete conf.pending[k];
          continue;
        }
        if (/^unused\d+$/.test(k)) {
          // removed at once, never pending; the volume is freed if this VM owns it (try_deallocate_drive)
          const file = parseProps(conf.current[k], "file").file;
          const pv = parseVolid(file);
          if (pv && volnameInfo(pv.volname).owner === vmid) c.freeVolume(file, vm.node);
          delete conf.current[k];
          delete conf.pending[k];
          continue;
        }
        delete conf.pending[k];
        conf.pendingDelete[k] = !!p.force;
      }
      for (const [k, v] of Object.entries(values)) {
        if (isDriveKey(k) && conf.pending[k] !== v && bootorder.length && !bootorder.includes(k)) {
          // "append new CD drives to bootorder to mark them bootable" (drive_is_cdrom($drive, 1):
          // not a cloud-init drive)
          const d = parseDrive(v);
          if (isCdrom(d) && !isCloudinitVolume(d.file) && !/^([^:]+:)?cloudinit$/.test(d.file)) {
            bootorder.push(k);
            setBootorder();
          }
        }
        if (k === "cipassword") {
          // not pending: into the current config at once, crypt-hashed (COMMON encrypt_pw, `$5$`)
          // unless already a crypt hash or the (current) ostype is Windows
          conf.current.cipassword = windowsVersion(conf.current.ostype) || isCryptHash(v) ? v : encryptPw(v);
          delete conf.pending[k];
          delete conf.pendingDelete[k];
          continue;
        }
        if (k === "boot") {
          const order = parseProps(v, "legacy").order;
          if (order) {
            const devs = order.split(/[,;\s]+/).filter((x) => x !== "");
            for (const dev of devs) {
              const exists = conf.current[dev] || conf.pending[dev] || values[dev];
              if (!exists || del.includes(dev)) throw new PveError(500, `invalid bootorder: device '${dev}' does not exist'`);
            }
            // the legacy `bootdisk` goes with a new order
            delete conf.pendingDelete.boot;
            conf.pending.boot = `order=${devs.join(";")}`;
            if (conf.current.bootdisk) conf.pendingDelete.bootdisk = false;
            if (conf.current.boot === conf.pending.boot) delete conf.pending.boot;
            continue;
          }
        }
        delete conf.pendingDelete[k];
        if (conf.current[k] === v) {
          delete conf.pending[k];
          continue;
        }
        conf.pending[k] = v;
      }
      // QEMU cleanup_pending: a pending value equal to the current one is dropped
      if (conf.pending.boot !== undefined && conf.pending.boot === conf.current.boot) delete conf.pending.boot;
      if (ctx) await ctx.sleep(opts.configMs);
      // `vmconfig_hotplug_pending` gets `$modified`: only the keys of this update (but fast-plug ones)
      const errors = await applyPending(ctx, vm, vm.running, new Set([...del, ...Object.keys(values), ...revert, "boot"]));
      if (Object.keys(errors).length) throw paramError(errors);
    };

    // Before qemu-server 9.2.0 (797ab238 "fork before locking"), so in PVE 8.4 and 9.1, the
    // API process takes the flock and checks the config (digest, lock) before it forks; the
    // qmconfig worker inherits the flock. Contention and `VM is locked` are the call's 500.
    const release = await c.locks.acquire(vmid, "exclusive", opts.lockTimeoutMs, async ? "qmconfig" : "api");
    if (!async) {
      try {
        await writeAndApply(checkConfig());
      } finally {
        release();
      }
      return null;
    }
    let vm: Vm;
    try {
      vm = checkConfig();
    } catch (e) {
      release();
      throw e;
    }
    const upid = fork(req, node, "qmconfig", String(vmid), async (ctx) => {
      try {
        await writeAndApply(vm, ctx);
      } catch (e: any) {
        // a raise_param_exc in the worker: PVE::Exception stringify, newlines → spaces
        if (e instanceof PveError && e.errors) throw new Error(`${e.status} ${e.message} ${Object.entries(e.errors).map(([k, v]) => `${k}: ${v}`).join(" ")}`);
        throw new Error(e.message);
      }
    });
    const t = c.tasks.get(upid)!;
    void t.done.then(release);
    if (p.background_delay) {
      if (await c.finishedWithin(t, p.background_delay * 1000)) {
        if (t.exitstatus === "OK" || t.exitstatus?.startsWith("WARNINGS")) return null;
        throw new PveError(500, `failed to update VM ${vmid}: ${t.exitstatus ?? "unexpected status"}`);
      }
    }
    return upid;
  }

  route({
    method: "POST", path: "/nodes/{node}/qemu/{vmid}/config", params: updateParams(true),
    permissions: { check: CONFIG_ANY }, handler: (req) => updateVm(req, true),
  });
  route({
    method: "PUT", path: "/nodes/{node}/qemu/{vmid}/config", params: updateParams(false),
    permissions: { check: CONFIG_ANY }, handler: (req) => updateVm(req, false),
  });

  route({
    method: "GET",
    path: "/nodes/{node}/qemu/{vmid}/pending",
    params: { node: NODE, vmid: VMID },
    permissions: { check: VMS_AUDIT },
    handler: (req) => {
      const vm = c.loadVm(req.params.node, req.params.vmid);
      const conf = vm.config;
      const keys = [...new Set([...Object.keys(conf.current), ...Object.keys(conf.pending), ...Object.keys(conf.pendingDelete)])].sort();
      return keys.map((key) => {
        const e: Record<string, unknown> = { key };
        // QEMU vm_pending: a set password is masked, a pending one with a trailing space
        const masked = (v: string, m: string) => (key === "cipassword" ? m : typedValue(key, v));
        if (conf.current[key] !== undefined) e.value = masked(conf.current[key], "**********");
        if (conf.pending[key] !== undefined) e.pending = masked(conf.pending[key], "********** ");
        if (key in conf.pendingDelete) e.delete = conf.pendingDelete[key] ? 2 : 1;
        return e;
      });
    },
  });

  // ---- clone ----------------------------------------------------------------------------

  route({
    method: "POST",
    path: "/nodes/{node}/qemu/{vmid}/clone",
    params: {
      node: NODE, vmid: VMID, newid: VMID,
      name: { type: "string", format: "dns-name", optional: true },
      description: { type: "string", optional: true },
      pool: { type: "string", format: "pve-poolid", optional: true },
      snapname: { type: "string", format: "pve-configid", maxLength: 40, optional: true },
      storage: { type: "string", format: "pve-storage-id", optional: true },
      format: { type: "string", enum: ["raw", "qcow2", "vmdk"], optional: true },
      full: { type: "boolean", optional: true },
      target: { type: "string", format: "pve-node", optional: true },
      bwlimit: { type: "integer", minimum: 0, optional: true },
    },
    permissions: {
      check: ["and", ["perm", "/vms/{vmid}", ["VM.Clone"]], ["or", ["perm", "/vms/{newid}", ["VM.Allocate"]], ["perm", "/pool/{pool}", ["VM.Allocate"], "require_param", "pool"]]],
    },
    handler: (req) => {
      const p = req.params;
      const node: string = p.node;
      const vmid: number = p.vmid;
      const newid: number = p.newid;
      const pool: string | undefined = p.pool;
      const storage: string | undefined = p.storage;
      checkNode(c, node);
      let target: string | undefined = p.target;
      if (target === node || target === "localhost") target = undefined;
      const running = c.vms.get(vmid)?.running ?? false;

      const loadAndCheck = () => {
        // ACCESS RPCEnvironment.pm check_pool_exist: raise_perm_exc, a 403
        if (pool !== undefined && !sim.pools.exists(pool)) throw new PveError(403, `Permission check failed (pool '${pool}' does not exist)`);
        if (target && !c.hasNode(target)) throw new PveError(500, `no such cluster node '${target}'`);
        if (storage) {
          const s = c.checkStorageEnabled(storage, node);
          if (!s.content.includes("images")) throw paramError({ storage: `storage '${storage}' does not support vm images` });
          if (target) {
            c.checkStorageEnabled(storage, target);
            if (!s.shared) throw new PveError(500, `can't clone to non-shared storage '${storage}'`);
          }
        }
        const src = c.loadVm(node, vmid);
        if (src.tempClone) throw new PveError(500, "VM is locked (clone)");
        checkLock(src);
        if (src.running !== running) throw new PveError(500, "unexpected state change");
        if (p.snapname) throw new PveError(500, `snapshot '${p.snapname}' does not exist`);
        const full = p.full !== undefined ? !!p.full : !c.isTemplate(src);
        if (storage !== undefined && !full) throw new PveError(500, "parameter 'storage' not allowed for linked clones");
        if (p.format !== undefined && !full) throw new PveError(500, "parameter 'format' not allowed for linked clones");
        const old = src.config.current;
        // check_storage_access_clone: AllocateSpace on targets, shared-ness
        let sharedvm = true;
        const drives: Record<string, Drive> = {};
        const newconf: Record<string, string> = { lock: "clone" };
        for (const k of Object.keys(old).sort()) {
          const v = old[k];
          if (/^unused\d+$/.test(k) || ["parent", "snaptime", "vmstate", "runningcpu", "runningmachine", "running-nets-host-mtu"].includes(k)) continue;
          if (full && running && k === "tpmstate0") throw new PveError(500, "cannot clone TPM state while VM is running");
          if (/^net\d+$/.test(k)) {
            newconf[k] = v; // MAC regenerated in the worker
          } else if (isDriveKey(k)) {
            const d = parseDrive(v);
            if (isCdrom(d) && !isCloudinitVolume(d.file)) {
              // $check_storage_access_clone: an ISO on a non-shared storage makes the VM local too
              const iso = parseVolid(d.file);
              if (d.file === "cdrom") sim.access.check(req.auth, "/", ["Sys.Console"]);
              else if (iso && !c.storage(iso.storage).shared) sharedvm = false;
              newconf[k] = v;
              continue;
            }
            const sid = parseVolid(d.file)?.storage ?? "";
            const s = c.storage(sid);
            if (!s.shared) sharedvm = false;
            const tgt = storage ?? sid;
            const cloudinit = isCloudinitVolume(d.file);
            // a cloud-init drive has media=cdrom, which `$check_storage_access_clone` lets through
            if (!cloudinit) sim.access.check(req.auth, `/storage/${tgt}`, ["Datastore.AllocateSpace"]);
            if (!full && !cloudinit && k !== "tpmstate0") {
              const vol = c.findVolume(d.file, node);
              if (!vol || !c.volumeHasCloneFeature(vol)) throw new PveError(500, `Linked clone feature is not supported for '${d.file}' (${k})`);
            }
            drives[k] = d;
          } else newconf[k] = v;
        }
        if (old.vmstatestorage !== undefined) sim.access.check(req.auth, `/storage/${old.vmstatestorage}`, ["Datastore.AllocateSpace"]);
        checkBridges(sim, req.auth, old);
        if (target && !sharedvm) throw new PveError(500, `can't clone VM to node '${target}' (VM uses local storage)`);
        if (c.vms.has(newid)) throw new PveError(500, `unable to create VM ${newid}: config file already exists`);
        return { src, full, newconf, drives };
      };

      loadAndCheck(); // early checks before forking/locking

      return fork(req, node, "qmclone", String(vmid), async (ctx) => {
        const releaseSrc = await c.locks.acquire(vmid, running ? "exclusive" : "shared", opts.workerLockTimeoutMs, `qmclone ${vmid}->${newid}`);
        try {
          const releaseTgt = await c.locks.acquire(newid, "exclusive", opts.workerLockTimeoutMs, `qmclone ${vmid}->${newid}`);
          try {
            const { src, full, newconf, drives } = loadAndCheck();
            ctx.log(`create ${full ? "full" : "linked"} clone of drive${Object.keys(drives).length > 1 ? "s" : ""} ...`);
            ctx.log(`creating a clone of VM ${vmid} with ID ${newid}`);
            const smb = parseProps(newconf.smbios1 ?? "");
            smb.uuid = c.uuid();
            newconf.smbios1 = Object.entries(smb).map(([k, v]) => `${k}=${v}`).join(",");
            if (newconf.vmgenid) newconf.vmgenid = c.uuid();
            for (const k of Object.keys(newconf)) {
              if (/^net\d+$/.test(k)) {
                const n = parseNet(newconf[k]);
                n.macaddr = c.randomMac();
                newconf[k] = printNet(n);
              }
            }
            delete newconf.template;
            newconf.name = p.name ? p.name : `Copy-of-VM-${src.config.current.name ?? vmid}`;
            if (p.description) newconf.description = p.description;
            // create empty/temp config - fails if VM already exists on another node
            if (c.vms.has(newid)) throw new Error(`unable to create VM ${newid}: config file already exists`);
            const vm: Vm = { vmid: newid, node, config: { current: { lock: "clone" }, pending: {}, pendingDelete: {} }, running: false, tempClone: true, createdAt: sim.now() };
            c.vms.set(newid, vm);
            const created: string[] = [];
            try {
              await ctx.sleep(opts.cloneBaseMs);
              for (const k of Object.keys(drives).sort()) {
                const d = drives[k];
                const srcVol = c.findVolume(d.file, node);
                if (!srcVol) throw new Error(`volume '${d.file}' does not exist`);
                const sid = srcVol.storage;
                const cloudinit = isCloudinitVolume(d.file);
                const tgtStorage = cloudinit ? sid : (storage ?? sid);
                const rest: Drive = { ...d };
                delete rest.format; // clone_disk: the new volume's format is its own
                let vol;
                if (cloudinit) {
                  vol = await allocLocked(ctx, tgtStorage, node, () => c.allocVolume(tgtStorage, node, newid, srcVol.size, { name: `vm-${newid}-cloudinit`, format: srcVol.format }));
                  created.push(vol.volid);
                } else if (full) {
                  ctx.log(`create full clone of drive ${k} (${d.file})`);
                  // QemuServer.pm resolve_dst_disk_format: `format`, else the source's format, if the
                  // target supports it (allocVolume: lvmthin raw only), else the target's default
                  vol = await allocLocked(ctx, tgtStorage, node, () => c.allocVolume(tgtStorage, node, newid, srcVol.size, { format: p.format ?? srcVol.format, image: srcVol.image }));
                  // freed on failure from here on, like $newvollist in clone_disk
                  created.push(vol.volid);
                  // read from the source storage, write to the target: the slower shared channel
                  await ctx.transfer(c.storageKey(sid, node), srcVol.size);
                  ctx.log(`transferred ${formatSize(srcVol.size)} of ${formatSize(srcVol.size)} (100.00%)`);
                } else {
                  ctx.log(`create linked clone of drive ${k} (${d.file})`);
                  // Storage.pm vdisk_clone: the whole thin snapshot runs under the storage lock
                  vol = await c.withStorageLock(tgtStorage, node, async () => {
                    await ctx.sleep(opts.linkedCloneMs);
                    return c.allocVolume(tgtStorage, node, newid, srcVol.size, { parent: srcVol.volid, image: srcVol.image });
                  }, (l) => ctx.log(l));
                  created.push(vol.volid);
                }
                rest.file = vol.volid;
                if (!cloudinit) rest.size = formatSize(vol.size);
                newconf[k] = printDrive(rest);
                // written after each drive, still with `lock: clone` (QEMU clone_vm)
                vm.config = { current: { ...newconf }, pending: {}, pendingDelete: {} };
                vm.tempClone = false;
              }
              delete newconf.lock;
              vm.config = { current: newconf, pending: {}, pendingDelete: {} };
              vm.tempClone = false;
              if (Object.keys(src.config.pending).length) ctx.warn(`found pending changes for '${Object.keys(src.config.pending).join(",")}', discarding for clone`);
              if (target) {
                vm.node = target;
              }
              if (pool) sim.pools.addVm(pool, newid);
            } catch (e: any) {
              // API2/Qemu.pm clone_vm: `sleep 1`, then each new volume freed under the storage lock, a
              // failure only printed (`warn $@`: a plain STDERR line of the task log, not one of
              // log_warn's counted `WARN:` lines): the volume stays, owned by no config
              await c.latency.sleep(1000);
              for (const v of created) {
                try {
                  await freeLocked(ctx, v, node, true);
                } catch (fe: any) {
                  ctx.log(fe.message);
                }
              }
              if (c.vms.get(newid) === vm) c.vms.delete(newid);
              throw new Error(`clone failed: ${e.message}`);
            }
          } finally {
            releaseTgt();
          }
        } finally {
          releaseSrc();
        }
      });
    },
  });

  // ---- template / resize ----------------------------------------------------------------

  route({
    method: "POST",
    path: "/nodes/{node}/qemu/{vmid}/template",
    params: { node: NODE, vmid: VMID, disk: { type: "string", enum: DISK_ENUM, optional: true } },
    permissions: { check: ["perm", "/vms/{vmid}", ["VM.Allocate"]] },
    handler: (req) => {
      const { node, vmid } = req.params;
      checkNode(c, node);
      const check = () => {
        const vm = c.loadVm(node, vmid);
        checkLock(vm);
        if (c.isTemplate(vm)) throw new PveError(500, "you can't convert a template to a template");
        if (vm.running) throw new PveError(500, "you can't convert a VM to template if VM is running");
        return vm;
      };
      check();
      return fork(req, node, "qmtemplate", String(vmid), async (ctx) => {
        await c.locks.with(vmid, "exclusive", opts.lockTimeoutMs, async () => {
          const vm = check();
          await ctx.sleep(opts.templateMs);
          const cur = vm.config.current;
          for (const k of Object.keys(cur)) {
            if (!isDriveKey(k) || (req.params.disk && k !== req.params.disk)) continue;
            const d = parseDrive(cur[k]);
            if (isCdrom(d) || isCloudinitVolume(d.file)) continue;
            const vol = c.findVolume(d.file, vm.node);
            if (!vol) continue;
            // create_base renames the volume's own name (the last part), a linked clone's base
            // prefix stays: dir `<tpl>/base-<tpl>-disk-<n>.qcow2/<id>/base-<id>-disk-<n>.qcow2`,
            // zfs/rbd `base-<tpl>-disk-<n>/base-<id>-disk-<n>` (Plugin.pm, ZFSPoolPlugin.pm,
            // RBDPlugin.pm create_base `$basename ? … : …`); lvmthin and btrfs raw clones carry no base
            // Storage.pm vdisk_create_base: under the storage lock
            const nv = await c.withStorageLock(vol.storage, vm.node, () => c.renameVolume(vol, vm.node, vol.volname.replace(/(^|\/)(vm|subvol)-(\d+)-disk-(\d+)((?:\.\w+)?)$/, (_m, pre, kind, id, n, ext) => `${pre}${kind === "subvol" ? "basevol" : "base"}-${id}-disk-${n}${ext}`)), (l) => ctx.log(l));
            ctx.log(`renaming '${vol.volid}' to '${nv.volid}'`);
            d.file = nv.volid;
            cur[k] = printDrive(d);
          }
          cur.template = "1";
          vm.templatedAt = sim.now();
        });
      });
    },
  });

  route({
    method: "PUT",
    path: "/nodes/{node}/qemu/{vmid}/resize",
    params: {
      node: NODE, vmid: VMID, disk: { type: "string", enum: DISK_ENUM },
      size: { type: "string", pattern: "\\+?\\d+(\\.\\d+)?[KMGT]?" }, digest: DIGEST, skiplock: SKIPLOCK,
    },
    permissions: { check: ["perm", "/vms/{vmid}", ["VM.Config.Disk"]] },
    handler: (req) => {
      const { node, vmid, disk, size: sizestr, digest } = req.params;
      checkNode(c, node);
      const skiplock = checkSkiplock(sim, req.auth, req.params.skiplock);
      c.loadVm(node, vmid);
      return fork(req, node, "resize", String(vmid), async (ctx) => {
        await c.locks.with(vmid, "exclusive", opts.lockTimeoutMs, async () => {
          const vm = c.loadVm(node, vmid);
          if (digest && digest !== c.digest(vm)) throw new Error("checksum mismatch (file change by other user?)");
          if (!skiplock) checkLock(vm);
          const value = vm.config.current[disk];
          if (!value) throw new Error(`disk '${disk}' does not exist`);
          const d = parseDrive(value);
          if (isCdrom(d)) throw new Error("you can't resize a cdrom");
          // QEMU resize_vm: the storage privilege is checked in the worker, so it fails the task
          const rpv = parseVolid(d.file);
          if (rpv) sim.access.check(req.auth, `/storage/${rpv.storage}`, ["Datastore.AllocateSpace"]);
          const vol = c.findVolume(d.file, vm.node);
          if (!vol) throw new Error(`Could not determine current size of volume '${d.file}'`);
          const m = /^(\+)?(\d+(?:\.\d+)?)([KMGT])?$/.exec(sizestr)!;
          const amount = parseSize(`${m[2]}${m[3] ?? ""}`)!;
          const newsize = m[1] ? vol.size + amount : amount;
          if (newsize < vol.size) throw new Error("shrinking disks is not supported");
          await ctx.sleep(opts.resizeMs);
          if (newsize > vol.size) {
            const { avail } = c.usage(vol.storage, vm.node);
            if (newsize - vol.size > avail && !vol.parent) throw new Error(`lvextend failed: insufficient free space on storage '${vol.storage}'`);
          }
          ctx.log(`Image resized.`);
          vol.size = newsize;
          d.size = formatSize(newsize);
          vm.config.current[disk] = printDrive(d);
        });
      });
    },
  });

  // ---- power ----------------------------------------------------------------------------

  /** Missing snippets named by `cicustom` (checked when the cloud-init image is generated). */
  function checkSnippets(vm: Vm): void {
    const cur = vm.config.current;
    const hasCi = Object.entries(cur).some(([k, v]) => isDriveKey(k) && isCloudinitVolume(parseDrive(v).file));
    if (!hasCi || !cur.cicustom) return;
    for (const volid of snippetVolumes(cur.cicustom)) {
      const p = parseVolid(volid);
      const s = p && c.storages.get(p.storage);
      if (!p || !s) throw new Error(`storage '${p?.storage ?? volid}' does not exist`);
      if (!s.path) throw new Error(`unable to parse ${s.type === "lvmthin" ? "lvm" : s.type === "zfspool" ? "zfs" : s.type} volume name '${p.volname}'`);
      if (!/^snippets\//.test(p.volname)) throw new Error(`${volid} is not in the snippets directory`);
      const path = fileVolumePath(c, vm.node, volid)!;
      if (!fs.existsSync(path)) throw new Error(`volume '${volid}' does not exist`);
    }
  }

  async function startVm(ctx: TaskContext, vm: Vm, skiplock: boolean): Promise<void> {
    await c.locks.with(vm.vmid, "exclusive", opts.lockTimeoutMs, async () => {
      const cur = c.loadVm(vm.node, vm.vmid);
      if (c.isTemplate(cur)) throw new Error("you can't start a vm if it's a template");
      if (!skiplock) checkLock(cur);
      if (cur.running) throw new Error(`VM ${vm.vmid} already running`);
      await applyPending(ctx, cur, false);
      checkSnippets(cur);
      delete cur.config.cloudinit;
      await ctx.sleep(opts.startMs);
      bootNow(cur);
    });
  }

  /** The guest starts: it reads the cloud-init data PVE generates now (QEMU vm_start regenerates
   *  the drive), and keeps what it made of it until the next start (guest.ts). */
  function bootNow(vm: Vm, agentReady = false): void {
    const conf = vm.config.current;
    const hasCi = Object.entries(conf).some(([k, v]) => isDriveKey(k) && isCloudinitVolume(parseDrive(v).file));
    const read = (volid: string) => {
      const path = fileVolumePath(c, vm.node, volid);
      return path && fs.existsSync(path) ? fs.readFileSync(path, "utf8") : "";
    };
    const dump = (type: string) => cloudinitDump(vm.vmid, conf, c.opts.agentInterface ?? "ens18", type, read);
    vm.guestDisk ??= newGuestDisk();
    vm.guest = bootGuest({
      vmid: vm.vmid,
      config: { ...conf },
      image: bootImage(vm),
      cloudinit: hasCi ? { user: dump("user"), network: dump("network"), meta: dump("meta") } : undefined,
      disk: vm.guestDisk,
      bootToAgentMs: opts.bootToAgentMs,
      agentChannel: agentEnabled(conf.agent),
      firstNicName: c.opts.agentInterface,
    }, c.opts.guest);
    c.notePower(vm, true);
    vm.running = true;
    vm.startedAt = sim.now();
    vm.pid = c.randomPid();
    const after = agentReady && vm.guest.agentAfterMs !== undefined ? 0 : vm.guest.agentAfterMs;
    vm.agentReadyAt = after === undefined ? undefined : sim.now() + c.latency.real(after);
  }

  /** The image of the boot disk (the first disk in `boot: order=`, else the first non-cdrom disk). */
  function bootImage(vm: Vm): string | undefined {
    const first = bootDiskKey(vm);
    return first === undefined ? undefined : c.findVolume(parseDrive(vm.config.current[first]).file, vm.node)?.image;
  }

  /** The boot disk's drive key: the first disk in `boot: order=`, else the first non-cdrom disk. */
  function bootDiskKey(vm: Vm): string | undefined {
    const conf = vm.config.current;
    const order = /order=([^,]+)/.exec(conf.boot ?? "")?.[1]?.split(";") ?? [];
    return [...order, ...Object.keys(conf).sort()].find((k) => isDriveKey(k) && conf[k] !== undefined && !isCdrom(parseDrive(conf[k])));
  }

  function stopNow(vm: Vm): void {
    c.notePower(vm, false);
    vm.running = false;
    vm.startedAt = undefined;
    vm.pid = undefined;
    vm.agentReadyAt = undefined;
    vm.guest = undefined;
    vm.paused = false;
  }

  /** QEMU vm_start/vm_stop/vm_shutdown/vm_resume: options only root@pam may pass. */
  const rootOnly = (req: SimRequest, keys: string[]) => {
    for (const k of keys) if (req.params[k] && req.auth.principal !== "root@pam") throw paramError({ [k]: "Only root may use this option." });
  };
  const powerParams = (extra: ParamDefs): ParamDefs => ({ node: NODE, vmid: VMID, skiplock: SKIPLOCK, ...extra });

  /** `ha-manager <cmd>` as the hastart/hastop task runs it: refused while the service is in
   *  the error state (HA API2/HA/Resources.pm check_service_state, also CLI/ha_manager.pm `stop`). */
  const haCommand = (ctx: TaskContext, vmid: number, cmd: string) => {
    if (c.haManaged(vmid)?.serviceState === "error") {
      ctx.log(`service 'vm:${vmid}' in error state, must be disabled and fixed first`);
      throw new Error(`command 'ha-manager ${cmd}' failed: exit code 255`);
    }
  };

  /** After `crm-command stop vm:<id> <timeout>` the task is done; the CRM acts at its next round
   *  (~10 s): request state `stopped` in resources.cfg, service `request_stop`; the LRM then stops
   *  (timeout 0) or shuts down with forceStop (HA Manager.pm `stop`, Resources/PVEVM.pm `shutdown`). */
  const haStop = (ctx: TaskContext, vmid: number, timeout: number) => {
    const ha = c.haManaged(vmid)!;
    void (async () => {
      await ctx.sleep(10_000);
      const vm = c.vms.get(vmid);
      if (c.haManaged(vmid) !== ha || !vm) return;
      // next_state_stopped: a service already stopped ignores the command
      if (!vm.running && ha.state !== "started") return;
      ha.state = "stopped";
      ha.serviceState = "request_stop";
      try {
        await c.locks.with(vmid, "exclusive", opts.lockTimeoutMs, async () => {
          if (!vm.running) return;
          checkLock(vm);
          const reacts = !vm.paused && (parseBool(vm.config.current.acpi) !== false || c.agentRunning(vm));
          const waitMs = timeout === 0 || vm.paused ? opts.stopMs : reacts ? Math.min(opts.shutdownMs, timeout * 1000) : timeout * 1000;
          await ctx.sleep(waitMs);
          stopNow(vm);
        });
        if (ha.serviceState === "request_stop") delete ha.serviceState;
      } catch {
        // next_state_request_stop: a failed stop puts the service in the error state
        if (ha.serviceState === "request_stop") ha.serviceState = "error";
      }
    })();
  };

  route({
    method: "POST",
    path: "/nodes/{node}/qemu/{vmid}/status/start",
    params: powerParams({
      "force-cpu": { type: "string", optional: true },
      machine: { type: "string", optional: true },
      migratedfrom: { type: "string", format: "pve-node", optional: true },
      migration_network: { type: "string", optional: true },
      migration_type: { type: "string", enum: ["secure", "insecure"], optional: true },
      "nets-host-mtu": { type: "string", pattern: "net\\d+=\\d+(,net\\d+=\\d+)*", optional: true, sincePve9: true },
      stateuri: { type: "string", maxLength: 128, optional: true },
      targetstorage: { type: "string", optional: true },
      timeout: { type: "integer", minimum: 0, optional: true },
      "with-conntrack-state": { type: "boolean", optional: true, sincePve9: true },
    }),
    permissions: { check: ["perm", "/vms/{vmid}", ["VM.PowerMgmt"]] },
    handler: (req) => {
      const { node, vmid } = req.params;
      checkNode(c, node);
      const skiplock = checkSkiplock(sim, req.auth, req.params.skiplock);
      rootOnly(req, ["stateuri", "migratedfrom", "migration_type", "migration_network", "targetstorage", "force-cpu", "with-conntrack-state", "nets-host-mtu"]);
      const vm = c.loadVm(node, vmid);
      const ha = c.haManaged(vmid);
      if (ha) {
        return fork(req, node, "hastart", String(vmid), async (ctx) => {
          ctx.log(`Requesting HA start for VM ${vmid}`);
          haCommand(ctx, vmid, `set vm:${vmid} --state started`);
          ha.state = "started";
          void (async () => {
            try {
              await startVm({ ...ctx, log: () => undefined, warn: () => undefined }, vm, false);
            } catch {
              // the LRM retries (max_restart), then relocates (max_relocate), then the CRM puts the
              // service in the error state (HA Manager.pm); modelled as error at once
              if (c.haManaged(vmid) === ha) ha.serviceState = "error";
            }
          })();
        });
      }
      return fork(req, node, "qmstart", String(vmid), (ctx) => startVm(ctx, vm, skiplock));
    },
  });

  route({
    method: "POST",
    path: "/nodes/{node}/qemu/{vmid}/status/stop",
    params: powerParams({
      keepActive: { type: "boolean", optional: true },
      migratedfrom: { type: "string", format: "pve-node", optional: true },
      "overrule-shutdown": { type: "boolean", optional: true },
      timeout: { type: "integer", minimum: 0, optional: true },
    }),
    permissions: { check: ["perm", "/vms/{vmid}", ["VM.PowerMgmt"]] },
    handler: (req) => {
      const { node, vmid } = req.params;
      checkNode(c, node);
      const skiplock = checkSkiplock(sim, req.auth, req.params.skiplock);
      rootOnly(req, ["keepActive", "migratedfrom"]);
      c.loadVm(node, vmid);
      const ha = c.haManaged(vmid);
      // QEMU vm_stop: for an HA resource (not a migration's stop) the task only queues a CRM command
      if (ha && req.params.migratedfrom === undefined) {
        if (req.params["overrule-shutdown"]) throw paramError({ "overrule-shutdown": "Not applicable for HA resources." });
        return fork(req, node, "hastop", String(vmid), (ctx) => {
          ctx.log(`Requesting HA stop for VM ${vmid}`);
          haCommand(ctx, vmid, `crm-command stop vm:${vmid} 0`);
          haStop(ctx, vmid, 0);
        });
      }
      return fork(req, node, "qmstop", String(vmid), async (ctx) => {
        if (req.params["overrule-shutdown"]) {
          // GUEST GuestHelpers.pm abort_guest_tasks: this node's active qmshutdown tasks of the VM,
          // all of them with Sys.Modify on /nodes/<node>, else those of the caller (a token's
          // also for its owner); each gets SIGTERM (its lock is released as it dies)
          const all = sim.access.has(req.auth, `/nodes/${node}`, "Sys.Modify");
          const mine = (t: { principal: string }) => {
            const owner = t.principal.split("!")[0];
            return t.principal.includes("!") ? req.auth.principal === owner || req.auth.principal === t.principal : req.auth.principal === t.principal;
          };
          const aborted = c.tasks.all().filter((t) => t.node === node && t.status === "running" && t.type === "qmshutdown" && t.id === String(vmid) && (all || mine(t)));
          for (const t of aborted) c.tasks.stop(t);
          if (aborted.length) ctx.log(`overruled qmshutdown tasks: ${aborted.map((t) => t.upid).join(", ")}`);
        }
        await c.locks.with(vmid, "exclusive", opts.lockTimeoutMs, async () => {
          const vm = c.loadVm(node, vmid);
          // QemuServer.pm _do_vm_stop: `return if !$pid` comes before check_lock
          if (!vm.running) return;
          if (!skiplock) checkLock(vm);
          // QMP `quit`, then a 1 s poll while the process lives, at most `timeout` (default 60)
          // times; `if ($count >= $timeout)` (so always for timeout 0 or 1) warns and sends SIGTERM
          const timeout: number = req.params.timeout ?? 60;
          await ctx.sleep(Math.min(opts.stopMs, timeout * 1000));
          if (Math.ceil(opts.stopMs / 1000) >= timeout) ctx.warn("VM still running - terminating now with SIGTERM");
          stopNow(vm);
        });
      });
    },
  });

  route({
    method: "POST",
    path: "/nodes/{node}/qemu/{vmid}/status/shutdown",
    params: powerParams({
      forceStop: { type: "boolean", optional: true },
      keepActive: { type: "boolean", optional: true },
      timeout: { type: "integer", minimum: 0, optional: true },
    }),
    permissions: { check: ["perm", "/vms/{vmid}", ["VM.PowerMgmt"]] },
    handler: (req) => {
      const { node, vmid, timeout, forceStop } = req.params;
      checkNode(c, node);
      const skiplock = checkSkiplock(sim, req.auth, req.params.skiplock);
      rootOnly(req, ["keepActive"]);
      const target = c.loadVm(node, vmid);
      const ha = c.haManaged(vmid);
      // QEMU vm_shutdown: a paused guest cannot react (forceStop stops it instead)
      if (target.paused && !forceStop) throw new PveError(500, "VM is paused - cannot shutdown");
      if (ha) {
        // QEMU vm_shutdown: `crm-command stop vm:<id> <timeout // 60>`; forceStop is not passed on
        const t = timeout ?? 60;
        return fork(req, node, "hastop", String(vmid), (ctx) => {
          ctx.log(`Requesting HA stop for VM ${vmid}`);
          haCommand(ctx, vmid, `crm-command stop vm:${vmid} ${t}`);
          haStop(ctx, vmid, t);
        });
      }
      return fork(req, node, "qmshutdown", String(vmid), async (ctx) => {
        await c.locks.with(vmid, "exclusive", opts.lockTimeoutMs, async () => {
          const vm = c.loadVm(node, vmid);
          if (!vm.running) return;
          if (!skiplock) checkLock(vm);
          if (vm.paused) {
            ctx.warn("VM is paused - stop instead of shutdown");
            await ctx.sleep(opts.stopMs);
            stopNow(vm);
            return;
          }
          const cur = vm.config.current;
          // the guest reacts to ACPI, or to the agent's guest-shutdown when the agent runs
          const reacts = parseBool(cur.acpi) !== false || c.agentRunning(vm);
          // QemuServer.pm _do_vm_stop: the timeout param, else the `startup` property's `down=`, else 60 s
          const down = cur.startup ? Number(parseProps(cur.startup).down) || undefined : undefined;
          const limitMs = timeout !== undefined ? timeout * 1000 : down !== undefined ? down * 1000 : opts.shutdownTimeoutMs;
          if (reacts && opts.shutdownMs <= limitMs) {
            await ctx.sleep(opts.shutdownMs);
            stopNow(vm);
            return;
          }
          await ctx.sleep(limitMs);
          if (forceStop) {
            ctx.warn("VM still running - terminating now with SIGTERM");
            stopNow(vm);
            return;
          }
          throw new Error("VM quit/powerdown failed - got timeout");
        });
      });
    },
  });

  // ---- reboot, reset, suspend, resume (QEMU API2/Qemu.pm vm_reboot, vm_reset, vm_suspend,
  // vm_resume): refused synchronously when the VM does not run ---------------------------

  const mustRun = (vm: Vm) => {
    if (!vm.running) throw new PveError(500, `VM ${vm.vmid} not running`);
  };

  route({
    method: "POST",
    path: "/nodes/{node}/qemu/{vmid}/status/reboot",
    params: { node: NODE, vmid: VMID, timeout: { type: "integer", minimum: 0, optional: true } },
    permissions: { check: ["perm", "/vms/{vmid}", ["VM.PowerMgmt"]] },
    protected: true,
    handler: (req) => {
      const { node, vmid, timeout } = req.params;
      checkNode(c, node);
      const vm = c.loadVm(node, vmid);
      if (vm.paused) throw new PveError(500, "VM is paused - cannot shutdown");
      mustRun(vm);
      // QemuServer.pm vm_reboot: a shutdown, then qmeventd's `qm cleanup` starts it again through
      // vm_start, which applies pending changes and regenerates the cloud-init drive
      return fork(req, node, "qmreboot", String(vmid), async (ctx) => {
        await c.locks.with(vmid, "exclusive", opts.lockTimeoutMs, async () => {
          const cur = c.loadVm(node, vmid);
          checkLock(cur);
          if (!cur.running) return;
          const limitMs = timeout !== undefined ? timeout * 1000 : opts.shutdownTimeoutMs;
          const reacts = parseBool(cur.config.current.acpi) !== false || c.agentRunning(cur);
          if (!reacts || opts.shutdownMs > limitMs) {
            await ctx.sleep(limitMs);
            throw new Error("VM quit/powerdown failed - got timeout");
          }
          await ctx.sleep(opts.shutdownMs);
          stopNow(cur);
        });
        await startVm(ctx, vm, false);
      });
    },
  });

  route({
    method: "POST",
    path: "/nodes/{node}/qemu/{vmid}/status/reset",
    params: powerParams({}),
    permissions: { check: ["perm", "/vms/{vmid}", ["VM.PowerMgmt"]] },
    protected: true,
    handler: (req) => {
      const { node, vmid } = req.params;
      checkNode(c, node);
      const skiplock = checkSkiplock(sim, req.auth, req.params.skiplock);
      mustRun(c.loadVm(node, vmid));
      return fork(req, node, "qmreset", String(vmid), async () => {
        const vm = c.loadVm(node, vmid);
        if (!skiplock) checkLock(vm);
        // a hardware reset: the same QEMU process and cloud-init drive; the guest boots again
        // with the data it had, so only its agent goes away until it is back up
        if (vm.agentReadyAt !== undefined) vm.agentReadyAt = sim.now() + c.latency.real(opts.bootToAgentMs);
        vm.paused = false;
      });
    },
  });

  route({
    method: "POST",
    path: "/nodes/{node}/qemu/{vmid}/status/suspend",
    params: powerParams({
      statestorage: { type: "string", format: "pve-storage-id", optional: true },
      todisk: { type: "boolean", optional: true, default: 0 },
    }),
    permissions: { check: ["perm", "/vms/{vmid}", ["VM.PowerMgmt"]] },
    protected: true,
    handler: (req) => {
      const { node, vmid, todisk } = req.params;
      checkNode(c, node);
      const skiplock = checkSkiplock(sim, req.auth, req.params.skiplock);
      mustRun(c.loadVm(node, vmid));
      if (todisk && c.haManaged(vmid)) throw new PveError(500, "Cannot suspend HA managed VM to disk");
      if (todisk) {
        sim.access.check(req.auth, `/vms/${vmid}`, ["VM.Config.Disk"]);
        // QEMU vm_suspend: AllocateSpace on the state storage, by default QemuConfig.pm
        // find_vmstate_storage (vmstatestorage, else a shared then a local storage of a disk, else `local`)
        const cur = c.loadVm(node, vmid).config.current;
        let statestorage: string | undefined = req.params.statestorage ?? cur.vmstatestorage;
        if (!statestorage) {
          let shared: string | undefined;
          let local: string | undefined;
          for (const [k, v] of Object.entries(cur)) {
            if (!isDriveKey(k) && !/^unused\d+$/.test(k)) continue;
            const sid = parseVolid(parseProps(v, "file").file)?.storage;
            const s = sid ? c.storages.get(sid) : undefined;
            if (!s) continue;
            if (s.shared) { if (!shared || s.path) shared = sid; } else if (!local || s.path) local = sid;
          }
          statestorage = shared ?? local ?? "local";
        }
        sim.access.check(req.auth, `/storage/${statestorage}`, ["Datastore.AllocateSpace"]);
      }
      return fork(req, node, todisk ? "qmsuspend" : "qmpause", String(vmid), async (ctx) => {
        await c.locks.with(vmid, "exclusive", opts.lockTimeoutMs, async () => {
          const vm = c.loadVm(node, vmid);
          if (!skiplock) checkLock(vm);
          if (todisk) {
            // lock `suspending` while the state is saved, `suspended` once the VM is off
            vm.config.current.lock = "suspending";
            await ctx.sleep(opts.stopMs);
            stopNow(vm);
            vm.config.current.lock = "suspended";
          } else vm.paused = true;
        });
      });
    },
  });

  route({
    method: "POST",
    path: "/nodes/{node}/qemu/{vmid}/status/resume",
    params: powerParams({ nocheck: { type: "boolean", optional: true } }),
    permissions: { check: ["perm", "/vms/{vmid}", ["VM.PowerMgmt"]] },
    protected: true,
    handler: (req) => {
      const { node, vmid } = req.params;
      checkNode(c, node);
      const skiplock = checkSkiplock(sim, req.auth, req.params.skiplock);
      rootOnly(req, ["nocheck"]);
      const vm = c.loadVm(node, vmid);
      const fromDisk = vm.config.current.lock === "suspended";
      if (!fromDisk) mustRun(vm);
      return fork(req, node, "qmresume", String(vmid), async (ctx) => {
        if (fromDisk) {
          // resuming a VM suspended to disk is a start from its saved state
          delete vm.config.current.lock;
          await startVm(ctx, vm, true);
          return;
        }
        if (!skiplock) checkLock(vm);
        vm.paused = false;
      });
    },
  });

  route({
    method: "GET",
    path: "/nodes/{node}/qemu/{vmid}/status/current",
    params: { node: NODE, vmid: VMID },
    permissions: { check: VMS_AUDIT },
    handler: (req) => {
      const vm = c.loadVm(req.params.node, req.params.vmid);
      const r = c.vmResource(vm.vmid, true)!; // the node's own, current answer
      const cur = vm.config.current;
      const ha = c.haManaged(vm.vmid);
      const out: Record<string, unknown> = {
        vmid: vm.vmid, name: r.name, status: r.status, qmpstatus: vm.running ? (vm.paused ? "paused" : "running") : "stopped",
        cpus: r.maxcpu, maxmem: r.maxmem, maxdisk: r.maxdisk, mem: r.mem, cpu: r.cpu, disk: 0,
        diskread: 0, diskwrite: 0, netin: 0, netout: 0, uptime: r.uptime,
        ha: ha ? { managed: 1, state: c.haState(vm.vmid), group: undefined } : { managed: 0 },
      };
      if (ha) out.ha = { managed: 1, state: c.haState(vm.vmid) };
      if (agentEnabled(cur.agent)) out.agent = 1;
      if (r.lock) out.lock = r.lock;
      if (r.tags) out.tags = r.tags;
      if (r.template) out.template = 1;
      if (cur.serial0) out.serial = 1;
      if (vm.running) {
        out.pid = vm.pid;
        out["running-qemu"] = c.opts.qemuVersion ?? "10.0.2";
        out["running-machine"] = "pc-i440fx-10.0+pve0";
        out.balloon = r.maxmem;
        out.freemem = Math.floor((r.maxmem as number) * 0.5);
        out.shares = Number(cur.shares ?? 1000);
      }
      return out;
    },
  });

  // ---- destroy --------------------------------------------------------------------------

  route({
    method: "DELETE",
    path: "/nodes/{node}/qemu/{vmid}",
    params: {
      node: NODE, vmid: VMID, skiplock: SKIPLOCK,
      purge: { type: "boolean", optional: true },
      "destroy-unreferenced-disks": { type: "boolean", optional: true },
    },
    permissions: { check: ["perm", "/vms/{vmid}", ["VM.Allocate"]] },
    handler: (req) => {
      const { node, vmid, purge } = req.params;
      checkNode(c, node);
      const skiplock = checkSkiplock(sim, req.auth, req.params.skiplock);
      // the lock is checked by destroy_vm in the worker, under the flock, not before the fork
      const earlyChecks = () => {
        const vm = c.loadVm(node, vmid);
        if (parseBool(vm.config.current.protection)) throw new PveError(500, `can't remove VM ${vmid} - protection mode enabled`);
        if (c.haManaged(vmid) && !purge) throw new PveError(500, `unable to remove VM ${vmid} - used in HA resources and purge parameter not set.`);
        if (vm.running) throw new PveError(500, `VM ${vmid} is running - destroy failed`);
        return vm;
      };
      earlyChecks();
      return fork(req, node, "qmdestroy", String(vmid), async (ctx) => {
        await c.locks.with(vmid, "exclusive", opts.lockTimeoutMs, async () => {
          const vm = earlyChecks();
          if (!skiplock && vm.config.current.lock !== "suspended") checkLock(vm);
          // QemuServer.pm destroy_vm: a template whose base volume is still used by linked clones
          // is refused before anything is freed (volume_is_base_and_used: never true on lvmthin)
          if (c.isTemplate(vm)) {
            for (const v of referencedVolumes(vm.config.current)) {
              if (c.volumeIsBaseAndUsed(v, node)) throw new Error(`base volume '${v}' is still in use by linked cloned`);
            }
          }
          vm.config.current.lock = "destroyed";
          await ctx.sleep(opts.destroyMs);
          const vols = referencedVolumes({ ...vm.config.current, ...vm.config.pending });
          for (const v of [...new Set(vols)]) {
            const vol = c.findVolume(v, node);
            if (!vol || vol.vmid !== vmid) continue; // not owned by this VM (e.g. a linked clone's base)
            // destroy_vm $remove_owned_drive: vdisk_free failing is only a warning, the config still goes
            // (a storage lock timed out included: the disk stays, owned by no config)
            try {
              c.checkStorageEnabled(vol.storage, node); // vdisk_free -> activate_storage
              await c.withStorageLock(vol.storage, node, async () => {
                if (c.volumeIsBaseAndUsed(v, node)) throw new Error(`base volume '${vol.volname}' is still in use by linked clones`);
                await ctx.sleep(opts.freeDiskMs);
                c.freeVolume(v, node);
              }, (l) => ctx.log(l));
            } catch (e: any) {
              ctx.warn(`Could not remove disk '${v}', check manually: ${e.message}`);
              continue;
            }
            ctx.log(`  Logical volume "${vol.volname}" successfully removed.`);
          }
          if (req.params["destroy-unreferenced-disks"]) {
            // destroy_vm $purge_unreferenced: vdisk_list of every enabled storage, each volume of the
            // VMID freed (under its lock), a failure only `log_warn`ed
            for (const s of c.storages.values()) {
              for (const v of c.volumesOf(s.storage, node)) {
                if (v.vmid !== vmid) continue;
                try {
                  await freeLocked(ctx, v.volid, node);
                } catch (e: any) {
                  ctx.warn(e.message);
                }
              }
            }
          }
          sim.access.removeVmAcls(vmid);
          sim.pools.removeVm(vmid);
          if (purge) c.ha.delete(`vm:${vmid}`);
          c.vms.delete(vmid);
        });
      });
    },
  });

  // ---- migrate --------------------------------------------------------------------------

  /** GUEST AbstractMigrate.pm migrate: an error is logged `migration aborted (duration …): <err>`
   *  and the task ends `migration aborted` (not for the simulated HA path, which migrates inline). */
  async function migrationTask(ctx: TaskContext, ha: boolean, run: () => Promise<void>): Promise<void> {
    const startedAt = sim.nowSeconds();
    try {
      await run();
    } catch (e: any) {
      if (ha) throw e;
      const d = sim.nowSeconds() - startedAt;
      const hms = [Math.floor(d / 3600), Math.floor(d / 60) % 60, d % 60].map((x) => String(x).padStart(2, "0")).join(":");
      ctx.log(`ERROR: migration aborted (duration ${hms}): ${e.message}`);
      throw new Error("migration aborted");
    }
  }

  /** QemuServer.pm check_storage_availability (migrate_vm, before the fork): every volume's
   *  storage enabled on this node and the target, and configured for the volume's content type. */
  function checkStorageAvailability(vm: Vm, target: string): void {
    for (const [k, v] of Object.entries(vm.config.current)) {
      if (!isDriveKey(k)) continue;
      const file = parseDrive(v).file;
      const p = parseVolid(file);
      if (!p) continue; // `cdrom`, `none`, absolute paths
      const s = c.checkStorageEnabled(p.storage, vm.node);
      c.checkStorageEnabled(p.storage, target);
      const vtype = /^(iso|vztmpl|snippets|import|backup)\//.exec(p.volname)?.[1] ?? "images";
      if (!s.content.includes(vtype)) throw new PveError(500, `${file}: content type '${vtype}' is not available on storage '${p.storage}'`);
    }
  }

  /** The volumes a VM's config names: drives (cdroms flagged) and unusedN. */
  function volumeRefs(vm: Vm): { key: string; file: string; cdrom: boolean }[] {
    const out: { key: string; file: string; cdrom: boolean }[] = [];
    for (const [key, v] of Object.entries(vm.config.current)) {
      if (isDriveKey(key)) {
        const d = parseDrive(v);
        out.push({ key, file: d.file, cdrom: isCdrom(d) });
      } else if (/^unused\d+$/.test(key)) out.push({ key, file: parseProps(v, "file").file, cdrom: false });
    }
    return out;
  }

  /** QemuMigrate.pm scan_local_volumes: each local volume's problem is logged (`can't migrate
   *  local disk '<volid>': <why>`), then one error; returns that error (phase1's message) or
   *  undefined. The log lines lack PVE's timestamp prefix, like the simulator's other ones. */
  function scanLocalVolumes(ctx: TaskContext, vm: Vm, target: string, withLocalDisks: boolean, storageMapped: boolean): string | undefined {
    const errors = new Map<string, string>();
    const other: string[] = [];
    const local: string[] = [];
    for (const { key: k, file, cdrom } of volumeRefs(vm)) {
      if (cdrom && file === "cdrom") {
        other.push("can't migrate local cdrom drive");
        continue;
      }
      const p = parseVolid(file);
      const s = p && c.storages.get(p.storage);
      if (!s || s.shared) continue;
      // $test_volid: target_storage_check_available (a mapped volume's target is checked by the API)
      if (!storageMapped && (s.disable || !c.storageOnNode(s, target))) {
        errors.set(file, s.disable ? `storage '${s.storage}' is disabled` : `storage '${s.storage}' is not available on node '${target}'`);
        continue;
      }
      if (cdrom) {
        // the cloud-init image is "generated" (copied offline); any other local image is refused
        if (!isCloudinitVolume(file)) errors.set(file, "local cdrom image");
        continue;
      }
      local.push(file);
      const owner = c.findVolume(file, vm.node)?.vmid;
      if (owner !== undefined && owner !== vm.vmid) errors.set(file, `owned by other VM (owner = VM ${owner})`);
      else if (c.volumeIsBaseAndUsed(file, vm.node)) errors.set(file, "referenced by linked clone(s)");
      else if (vm.running && !withLocalDisks && isDriveKey(k) && k !== "tpmstate0") {
        errors.set(file, "can't live migrate attached local disks without with-local-disks option");
      }
    }
    for (const volid of [...errors.keys()].sort()) ctx.log(`can't migrate local disk '${volid}': ${errors.get(volid)}`);
    for (const e of other) ctx.log(e);
    if (errors.size || other.length) return "Problem found while scanning volumes - can't migrate VM - check log";
    // "additional checks for local storage": the simulated local types (dir, lvmthin) qualify; a
    // linked clone whose name has a base cannot move (lvmthin clone names have none). That die
    // lacks a newline, so Perl appends where it died (line as of qemu-server e6352be6).
    for (const volid of local) {
      const base = c.volumeBasename(volid);
      if (base) return `Problem found while scanning volumes - can't migrate '${volid}' as it's a clone of '${base}' at /usr/share/perl5/PVE/QemuMigrate.pm line 586.`;
    }
    return undefined;
  }

  function localDisks(vm: Vm): { volid: string; size: number; cdrom: boolean; is_unused: boolean; key: string }[] {
    const out = [];
    for (const { key: k, file, cdrom } of volumeRefs(vm)) {
      const p = parseVolid(file);
      const s = p && c.storages.get(p.storage);
      if (!s || s.shared) continue;
      const vol = c.findVolume(file, vm.node);
      out.push({ key: k, volid: file, size: vol?.size ?? 0, cdrom: cdrom && !isCloudinitVolume(file), is_unused: /^unused/.test(k) });
    }
    return out;
  }

  route({
    method: "GET",
    path: "/nodes/{node}/qemu/{vmid}/migrate",
    params: { node: NODE, vmid: VMID, target: { type: "string", format: "pve-node", optional: true } },
    permissions: { check: ["perm", "/vms/{vmid}", ["VM.Migrate"]] },
    handler: (req) => {
      const vm = c.loadVm(req.params.node, req.params.vmid);
      const disks = localDisks(vm);
      const others = c.nodeNames().filter((n) => n !== vm.node);
      return {
        running: vm.running ? 1 : 0,
        allowed_nodes: others,
        not_allowed_nodes: {},
        local_disks: disks.map(({ volid, size, cdrom, is_unused }) => ({ volid, size, cdrom: cdrom ? 1 : 0, is_unused: is_unused ? 1 : 0 })),
        local_resources: [],
        "mapped-resources": [],
        "mapped-resource-info": {},
        "has-dbus-vmstate": 0,
      };
    },
  });

  route({
    method: "POST",
    path: "/nodes/{node}/qemu/{vmid}/migrate",
    params: {
      node: NODE, vmid: VMID, target: { type: "string", format: "pve-node" },
      bwlimit: { type: "integer", minimum: 0, optional: true },
      force: { type: "boolean", optional: true },
      migration_network: { type: "string", optional: true },
      migration_type: { type: "string", enum: ["secure", "insecure"], optional: true },
      online: { type: "boolean", optional: true },
      targetstorage: { type: "string", optional: true },
      "with-conntrack-state": { type: "boolean", optional: true, sincePve9: true },
      "with-local-disks": { type: "boolean", optional: true },
    },
    permissions: { check: ["perm", "/vms/{vmid}", ["VM.Migrate"]] },
    handler: (req) => {
      const { node, vmid, target, online } = req.params;
      checkNode(c, node);
      if (target === node) throw paramError({ target: "target is local node." });
      if (!c.hasNode(target)) throw new PveError(500, `no such cluster node '${target}'`);
      for (const k of ["force", "migration_type", "migration_network"]) {
        if (req.params[k] && req.auth.principal !== "root@pam") throw paramError({ [k]: "Only root may use this option." });
      }
      const vm = c.loadVm(node, vmid);
      const ha = c.haManaged(vmid);
      // QEMU migrate_vm: the lock, running and storage checks come before the HA branch, so they
      // hold for HA-managed VMs too; check_storage_availability unless a storage map (not `1`) is given
      checkLock(vm);
      if (vm.running && !online) throw new PveError(500, "can't migrate running VM without --online");
      const storageMapped = !!req.params.targetstorage && !String(req.params.targetstorage).split(/[,;\s]+/).includes("1");
      if (!storageMapped) checkStorageAvailability(vm, target);
      if (req.params.targetstorage) {
        // QEMU migrate_vm: parse_idmap, VM.Config.Disk unless `1` (identity), then
        // `$check_storage_access_migrate` on every target storage (enabled on the target node,
        // AllocateSpace, images content)
        const entries: string[] = [];
        let identity = false;
        for (const e of String(req.params.targetstorage).split(/[,;\s]+/).filter(Boolean)) {
          if (e === "1") identity = true;
          else entries.push(/^[^:]+:([^:]+)$/.exec(e)?.[1] ?? e);
        }
        if (!identity) checkVmPerm(sim, req.auth, vmid, undefined, ["VM.Config.Disk"]);
        for (const sid of entries) {
          const s = c.checkStorageEnabled(sid, target);
          sim.access.check(req.auth, `/storage/${sid}`, ["Datastore.AllocateSpace"]);
          if (!s.content.includes("images")) throw new PveError(500, `storage '${sid}' does not support vm images`);
        }
      }
      return fork(req, node, ha ? "hamigrate" : "qmigrate", String(vmid), async (ctx) => {
        await migrationTask(ctx, !!ha, () => c.locks.with(vmid, "exclusive", opts.lockTimeoutMs, async () => {
          const cur = c.loadVm(node, vmid);
          checkLock(cur);
          if (cur.running && !online && !ha) throw new Error("can't migrate running VM without --online");
          const disks = localDisks(cur);
          const problem = scanLocalVolumes(ctx, cur, target, !!req.params["with-local-disks"], storageMapped);
          if (problem) {
            ctx.log(`ERROR: ${problem}`); // phase1's error, logged before the abort
            throw new Error(problem);
          }
          ctx.log(`starting migration of VM ${vmid} to node '${target}'`);
          cur.config.current.lock = "migrate";
          try {
            await ctx.sleep(opts.migrateMs);
            for (const d of disks) {
              ctx.log(`copying local disk '${d.volid}' to node '${target}'`);
              await ctx.transfer(`${parseVolid(d.volid)!.storage}@${node}`, d.size);
            }
          } catch (e) {
            delete cur.config.current.lock;
            throw e;
          }
          c.moveVolumes(vmid, node, target);
          cur.node = target;
          delete cur.config.current.lock;
          ctx.log("migration finished successfully");
        }));
      });
    },
  });

  // ---- guest agent ----------------------------------------------------------------------

  // QEMU API2/Qemu/Agent.pm: one endpoint per `$guest_agent_commands` entry (`register_command`),
  // `protected => 1` (pvedaemon runs it, one of its workers each). 9.x: the command's privilege or
  // VM.GuestAgent.Unrestricted; 8.4: VM.Monitor (schema-pve-8.4.json).
  const v84 = sim.options.pveVersion === "8.4";
  const AUDIT = "VM.GuestAgent.Audit";
  const FSMGMT = "VM.GuestAgent.FileSystemMgmt";
  const agentPerm = (privs: string[]): RouteDef["permissions"] => ({
    check: v84 ? ["perm", "/vms/{vmid}", ["VM.Monitor"]] : ["perm", "/vms/{vmid}", [...privs, "VM.GuestAgent.Unrestricted"], "any", 1],
  });
  const AGENT_COMMANDS: Record<string, { method: "GET" | "POST"; privs: string[] }> = {
    ping: { method: "POST", privs: [AUDIT] },
    "get-time": { method: "GET", privs: [AUDIT] },
    info: { method: "GET", privs: [AUDIT] },
    "fsfreeze-status": { method: "POST", privs: [AUDIT, FSMGMT] },
    "fsfreeze-freeze": { method: "POST", privs: [FSMGMT] },
    "fsfreeze-thaw": { method: "POST", privs: [FSMGMT] },
    fstrim: { method: "POST", privs: [FSMGMT] },
    "network-get-interfaces": { method: "GET", privs: [AUDIT] },
    "get-vcpus": { method: "GET", privs: [AUDIT] },
    "get-fsinfo": { method: "GET", privs: [AUDIT] },
    "get-memory-blocks": { method: "GET", privs: [AUDIT] },
    "get-memory-block-info": { method: "GET", privs: [AUDIT] },
    shutdown: { method: "POST", privs: ["VM.PowerMgmt"] },
    "get-host-name": { method: "GET", privs: [AUDIT] },
    "get-osinfo": { method: "GET", privs: [AUDIT] },
    "get-users": { method: "GET", privs: [AUDIT] },
    "get-timezone": { method: "GET", privs: [AUDIT] },
    // suspend-disk, suspend-ram, suspend-hybrid: not simulated
  };

  /** Agent.pm assert_agent_available, with the guest-ping wait of qga_check_running. */
  const assertAgentAvailable = async (vm: Vm): Promise<void> => {
    // only an absent `agent` key; `agent: 0` goes on to guest-ping
    if (vm.config.current.agent === undefined) throw new PveError(500, "No QEMU guest agent configured");
    if (!vm.running) throw new PveError(500, `VM ${vm.vmid} is not running`);
    if (!c.agentRunning(vm)) {
      // guest-ping with a 3 s timeout, the worker waiting throughout
      await sim.delay(c.opts.agentPingTimeoutMs ?? 3000);
      throw new PveError(500, "QEMU guest agent is not running");
    }
  };

  const qgaGuest = (vm: Vm): QgaGuest => {
    const conf = vm.config.current;
    const key = bootDiskKey(vm);
    const bytes = key ? parseSize(parseDrive(conf[key]).size ?? "0") ?? 0 : 0;
    const started = vm.startedAt;
    return {
      vm, nowMs: sim.now(), ...(key ? { bootDisk: { key, bytes } } : {}),
      // guest-shutdown: the guest powers off on its own (no task, no lock)
      powerOff: () => void sim.delay(opts.shutdownMs).then(() => {
        if (vm.running && vm.startedAt === started) stopNow(vm);
      }),
    };
  };

  /** register_command's handler: `mon_cmd($vmid, "guest-$cmd")` returned as `{result}`, a QGA
   *  error included (200). */
  const runAgentCommand = async (req: SimRequest, cmd: string) => {
    const vm = c.loadVm(req.params.node, req.params.vmid);
    await assertAgentAvailable(vm);
    if (cmd === "network-get-interfaces" && !vm.guest?.frozen) return { result: networkInterfaces(vm, c.opts.agentInterface ?? "ens18") };
    const res = qgaExecute(qgaGuest(vm), `guest-${cmd}`);
    return { result: res === undefined ? null : res };
  };

  for (const [cmd, def] of Object.entries(AGENT_COMMANDS)) {
    route({
      method: def.method,
      path: `/nodes/{node}/qemu/{vmid}/agent/${cmd}`,
      params: { node: NODE, vmid: VMID },
      permissions: agentPerm(def.privs),
      protected: true,
      handler: (req) => runAgentCommand(req, cmd),
    });
  }
  // the old `{vmid}/agent` POST endpoint: `command` from the same list
  route({
    method: "POST",
    path: "/nodes/{node}/qemu/{vmid}/agent",
    params: {
      node: NODE, vmid: VMID,
      command: { type: "string", enum: [...Object.keys(AGENT_COMMANDS), "suspend-disk", "suspend-hybrid", "suspend-ram"].sort() },
    },
    permissions: agentPerm(["VM.GuestAgent.Unrestricted"]),
    protected: true,
    handler: (req) => {
      if (!AGENT_COMMANDS[req.params.command]) throw new PveError(501, `agent command '${req.params.command}' is not simulated`);
      return runAgentCommand(req, req.params.command);
    },
  });
  route({
    method: "GET",
    path: "/nodes/{node}/qemu/{vmid}/agent",
    params: { node: NODE, vmid: VMID },
    permissions: { user: "all" },
    handler: () => [...Object.keys(AGENT_COMMANDS), "suspend-disk", "suspend-hybrid", "suspend-ram", "exec", "exec-status", "file-read", "file-write", "set-user-password"]
      .sort().map((name) => ({ name })),
  });

  /** Agent.pm agent_cmd + check_agent_error: a QGA error dies `Agent error: <desc>`. */
  const checkAgentError = <T>(res: T | QgaError): T => {
    if (isQgaError(res)) throw new PveError(500, `Agent error: ${res.error.desc}`);
    return res;
  };

  const MAX_READ_SIZE = 16 * 1024 * 1024;
  route({
    method: "GET",
    path: "/nodes/{node}/qemu/{vmid}/agent/file-read",
    params: {
      node: NODE, vmid: VMID, file: { type: "string" },
      ...(v84 ? {} : {
        count: { type: "integer", minimum: 1, maximum: MAX_READ_SIZE, optional: true },
        decode: { type: "boolean", optional: true },
        offset: { type: "integer", minimum: 0, optional: true },
      }),
    },
    permissions: v84 ? { check: ["perm", "/vms/{vmid}", ["VM.Monitor"]] } : { check: ["perm", "/vms/{vmid}", ["VM.GuestAgent.FileRead", "VM.GuestAgent.Unrestricted"], "any", 1] },
    protected: true,
    handler: async (req) => {
      const vm = c.loadVm(req.params.node, req.params.vmid);
      await assertAgentAvailable(vm);
      const data = checkAgentError(qgaReadFile(qgaGuest(vm), req.params.file));
      const offset = req.params.offset ?? 0;
      const count = req.params.count ?? MAX_READ_SIZE;
      const part = data.subarray(offset, offset + count);
      const eof = offset + part.length >= data.length;
      const decode = req.params.decode === undefined ? true : !!req.params.decode;
      const out: Record<string, unknown> = { content: decode ? part.toString("utf8") : part.toString("base64"), "bytes-read": part.length };
      if (!eof) out.truncated = 1;
      return out;
    },
  });
  route({
    method: "POST",
    path: "/nodes/{node}/qemu/{vmid}/agent/file-write",
    params: {
      node: NODE, vmid: VMID, file: { type: "string" },
      content: { type: "string", maxLength: 60 * 1024 },
      encode: { type: "boolean", optional: true },
    },
    permissions: v84 ? { check: ["perm", "/vms/{vmid}", ["VM.Monitor"]] } : { check: ["perm", "/vms/{vmid}", ["VM.GuestAgent.FileWrite", "VM.GuestAgent.Unrestricted"], "any", 1] },
    protected: true,
    handler: async (req) => {
      const vm = c.loadVm(req.params.node, req.params.vmid);
      await assertAgentAvailable(vm);
      const encode = req.params.encode === undefined ? true : !!req.params.encode;
      const data = encode ? Buffer.from(String(req.params.content), "utf8") : Buffer.from(String(req.params.content), "base64");
      const err = qgaWriteFile(qgaGuest(vm), req.params.file, data);
      if (err) checkAgentError(err);
      return null;
    },
  });

  // ---- cloud-init -----------------------------------------------------------------------

  route({
    method: "GET",
    path: "/nodes/{node}/qemu/{vmid}/cloudinit",
    params: { node: NODE, vmid: VMID },
    permissions: { check: VMS_AUDIT },
    handler: (req) => {
      const vm = c.loadVm(req.params.node, req.params.vmid);
      const cur = vm.config.current;
      const image = vm.config.cloudinit ?? {};
      // QEMU cloudinit_pending: unchanged keys only from `$cloudinitoptions` (no ipconfigN) and
      // only when Perl-true (`next if !$conf->{$opt}`); recorded keys whose value is false are `delete`
      const perlTrue = (v: string | undefined) => v !== undefined && v !== "" && v !== "0";
      const keys = new Set([...Object.keys(cur).filter((k) => isCloudinitOption(k) && !/^ipconfig\d+$/.test(k) && perlTrue(cur[k])), ...Object.keys(image)]);
      // QEMU cloudinit_pending: added keys have only `pending`, deleted ones only `delete`
      const mask = (k: string, v: string) => (k === "cipassword" ? "**********" : v);
      const out: Record<string, unknown>[] = [];
      for (const key of [...keys].sort()) {
        if (image[key] === "" && cur[key] !== undefined) out.push({ key, pending: mask(key, cur[key]) });
        else if (!perlTrue(cur[key])) out.push({ key, delete: 1 });
        else if (!(key in image)) out.push({ key, value: mask(key, cur[key]) });
        // a changed ipconfigN is recorded, but neither loop lists it
        else if (isCloudinitOption(key) && !/^ipconfig\d+$/.test(key)) out.push({ key, value: mask(key, image[key]), pending: mask(key, cur[key]) });
      }
      return out;
    },
  });

  route({
    method: "PUT",
    path: "/nodes/{node}/qemu/{vmid}/cloudinit",
    params: { node: NODE, vmid: VMID },
    permissions: { check: ["perm", "/vms/{vmid}", ["VM.Config.Cloudinit"]] },
    handler: async (req) => {
      const { node, vmid } = req.params;
      await c.locks.with(vmid, "exclusive", opts.lockTimeoutMs, () => {
        const vm = c.loadVm(node, vmid);
        checkLock(vm);
        checkSnippets(vm);
        delete vm.config.cloudinit;
      });
      return null;
    },
  });

  route({
    method: "GET",
    path: "/nodes/{node}/qemu/{vmid}/cloudinit/dump",
    params: { node: NODE, vmid: VMID, type: { type: "string", enum: ["user", "network", "meta"] } },
    permissions: { check: VMS_AUDIT },
    handler: (req) => {
      const vm = c.loadVm(req.params.node, req.params.vmid);
      // Cloudinit.pm dump_cloudinit_config: PVE's generated data, whatever cicustom says
      // QEMU cloudinit_generated_config_dump: the password is masked only for a caller without
      // VM.Config.Cloudinit (cloudinit_userdata prints the stored value otherwise)
      const mask = !sim.access.has(req.auth, `/vms/${vm.vmid}`, "VM.Config.Cloudinit");
      return cloudinitDump(vm.vmid, vm.config.current, c.opts.agentInterface ?? "ens18", req.params.type, undefined, mask);
    },
  });

  // ---- back door ------------------------------------------------------------------------

  const vmInfo = (vm: Vm) => ({
    vmid: vm.vmid, node: vm.node, status: vm.running ? "running" : "stopped", lock: vm.tempClone ? "clone" : vm.config.current.lock,
    template: c.isTemplate(vm), config: c.configText(vm), digest: c.digest(vm), agentRunning: c.agentRunning(vm),
    ...(vm.guest ? { guest: { agent: vm.guest.agent, nics: [...vm.guest.nics.values()] } } : {}),
  });
  const bdVm = (vmid: string) => {
    const vm = c.vms.get(Number(vmid));
    if (!vm) throw new PveError(404, `no VM ${vmid}`);
    return vm;
  };
  sim.backdoor("GET", "/vms", () => [...c.vms.values()].sort((a, b) => a.vmid - b.vmid).map(vmInfo));
  sim.backdoor("GET", "/vms/{vmid}", (_p, pp) => vmInfo(bdVm(pp.vmid)));
  /** Drift: `{config: "<full text>"}` replaces the config file; `{set: {k: v}, delete: [k]}` edits it. */
  sim.backdoor("PUT", "/vms/{vmid}/config", (p, pp) => {
    const vm = bdVm(pp.vmid);
    if (typeof p.config === "string") vm.config = parseConfig(p.config);
    else {
      const conf: VmConfig = cloneConfig(vm.config);
      for (const [k, v] of Object.entries(p.set ?? {})) conf.current[k] = String(v);
      for (const k of p.delete ?? []) delete conf.current[k];
      vm.config = conf;
    }
    return vmInfo(vm);
  });
  /** Out-of-band power: `{action: "start"|"stop"}`; `agentReady: true` skips the boot delay. */
  sim.backdoor("POST", "/vms/{vmid}/power", (p, pp) => {
    const vm = bdVm(pp.vmid);
    if (p.action === "stop") stopNow(vm);
    else if (p.action === "start") bootNow(vm, p.agentReady === true);
    else throw new PveError(400, "action must be start or stop");
    return vmInfo(vm);
  });
}
