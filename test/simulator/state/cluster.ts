// The cluster part's state: nodes, storages (config, capacity, volumes, per-node file
// trees), VMs (config text, run state), HA resources, plus the flock manager, the task
// manager and the latency model. Endpoint modules (endpoints/{cluster,nodes,qemu,storage,
// tasks}.ts) implement PVE's behaviour on top of it. Implements the core's ClusterView.

import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Latency, LatencyOptions } from "../latency";
import { LockManager } from "../locks";
import { StorageLocks } from "../storage-locks";
import { Task, TaskManager } from "../tasks";
import type { Sim } from "../sim";
import { Rng } from "../rng";
import { ClusterView, PveError, ResourceEntry } from "../types";
import type { GuestBoot, GuestDisk, GuestOptions } from "../guest";
import type { RemoteFile } from "../remote";
import {
  VmConfig, agentEnabled, configDigest, formatSize, isCdrom, isDriveKey, parseDrive, parseSize, printConfig,
} from "../qemu-config";

export type StorageType = "dir" | "lvmthin" | "nfs" | "zfspool" | "rbd" | "btrfs";

/** Content types a storage type accepts and its default content (STORAGE `plugindata` content
 *  [valid, default]: DirPlugin, NFSPlugin, LvmThinPlugin, ZFSPoolPlugin, RBDPlugin, BTRFSPlugin). */
export const STORAGE_CONTENT: Record<StorageType, { valid: string[]; default: string[] }> = {
  dir: { valid: ["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import", "none"], default: ["images", "rootdir"] },
  nfs: { valid: ["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"], default: ["images"] },
  lvmthin: { valid: ["images", "rootdir"], default: ["images", "rootdir"] },
  zfspool: { valid: ["images", "rootdir"], default: ["images", "rootdir"] },
  rbd: { valid: ["images", "rootdir"], default: ["images"] },
  btrfs: { valid: ["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import", "none"], default: ["images", "rootdir"] },
};

/** STORAGE Plugin.pm `get_formats`: the default and the valid formats (sorted as storage_info
 *  lists them). zfspool `[{raw, subvol}, raw]`; types without `format` plugindata (lvmthin, rbd)
 *  raw only; dir/nfs default raw unless the storage sets `format`. */
export function storageFormats(s: StorageDef): { default: string; supported: string[] } {
  switch (s.type) {
    case "dir": return { default: s.extra.format ?? "raw", supported: ["qcow2", "raw", "subvol", "vmdk"] };
    case "nfs": return { default: s.extra.format ?? "raw", supported: ["qcow2", "raw", "vmdk"] };
    case "zfspool": return { default: "raw", supported: ["raw", "subvol"] };
    // BTRFSPlugin.pm plugindata `format => [{ raw => 1, subvol => 1 }, 'raw']` (a `format` option may change the default)
    case "btrfs": return { default: s.extra.format ?? "raw", supported: ["raw", "subvol"] };
    default: return { default: "raw", supported: ["raw"] };
  }
}

/** Block storages whose volume names carry no `<vmid>/` directory and no format suffix. */
export function isBlockStorage(s: StorageDef): boolean {
  return s.type === "lvmthin" || s.type === "zfspool" || s.type === "rbd";
}

export interface StorageDef {
  storage: string;
  type: StorageType;
  content: string[];
  shared: boolean;
  /** dir/nfs: mount path on the node. */
  path?: string;
  /** lvmthin */
  vgname?: string;
  thinpool?: string;
  /** nfs */
  server?: string;
  /** zfspool (`pool`, fixed), rbd (`pool`, default `rbd`); their other keys (`sparse`, `blocksize`,
   *  `mountpoint`, `monhost`, `krbd`, `namespace`, …) are in `extra`. */
  pool?: string;
  export?: string;
  nodes?: string[];
  disable?: boolean;
  /** Other config keys as given (e.g. `prune-backups`, `options`). */
  extra: Record<string, string>;
}

export interface Volume {
  volid: string;
  volname: string;
  storage: string;
  vmid?: number;
  size: number;
  format: string;
  ctime: number;
  parent?: string;
  /** File name of the image the volume was imported from (clones inherit it): the guest OS. */
  image?: string;
}

export interface Vm {
  vmid: number;
  node: string;
  config: VmConfig;
  running: boolean;
  /** sim.now() when the config file appeared (create_and_lock_config, clone's temp config):
   *  pvestatd broadcasts nothing of the VM before its next cycle (`Cluster.vmResource`). */
  createdAt?: number;
  /** The power state pvestatd broadcast before the last change (`Cluster.reportedRunning`). */
  reported?: { running: boolean; uptime: number; until: number };
  /** sim.now() of the conversion to a template: pvestatd broadcast `template: 0` before it
   *  (`Cluster.reportedTemplate`). */
  templatedAt?: number;
  /** Paused by `status/suspend` (qmpstatus `paused`; the guest and its agent do not answer). */
  paused?: boolean;
  startedAt?: number;
  /** sim.now() from which the guest agent answers (undefined: not this boot). */
  agentReadyAt?: number;
  /** The guest as it booted (guest.ts): NIC names and addresses, why the agent answers or not. */
  guest?: GuestBoot;
  /** What persists on the guest's disk across boots (packages, cloud-init instances). */
  guestDisk?: GuestDisk;
  pid?: number;
  /** `# qmclone temporary file` config (only `lock: clone`) until the clone writes the new
   *  config after its first drive. */
  tempClone?: boolean;
}

export interface HaResource {
  sid: string;
  type: "vm";
  state: string;
  max_restart: number;
  max_relocate: number;
  failback: number;
  comment?: string;
  /** The CRM's service state (`request_stop`, `error`, …) while it differs from what `state`
   *  implies (HA Manager.pm); shown as `hastate`. */
  serviceState?: string;
}

export interface SshUser {
  /** OpenSSH public key lines accepted for this user. */
  keys: string[];
}

export interface ClusterOptions {
  latency?: Partial<LatencyOptions>;
  /** Add a shared NFS storage for images (id `shared-nfs` or the given id). Default false. */
  sharedStorage?: boolean | string;
  /** Capacity in bytes per storage (per node for local ones). */
  capacity?: Record<string, number>;
  /** Name udev gives the first NIC inside the guest when cloud-init does not rename it
   *  (default `ens18`, i440fx slot 18); NICs cloud-init's network config lists are eth<N>. */
  agentInterface?: string;
  /** The guest model (guest.ts): which images ship the agent, package install time. */
  guest?: GuestOptions;
  /** PVE time an agent call waits for guest-ping before `QEMU guest agent is not running`
   *  (qemu-server Agent.pm qga_check_running: 3 s), holding a pvedaemon worker. */
  agentPingTimeoutMs?: number;
  /** QEMU version reported in `meta` and `running-qemu`. Default `10.0.2`. */
  qemuVersion?: string;
  /** pvestatd's broadcast cycle (PVE ms, default 10000): `/cluster/resources` shows a VM's power
   *  state as of the last cycle. 0 = always current. */
  statsIntervalMs?: number;
  /** Content of `local`. Default: a fresh install's (`stockLocalContent`: no snippets; import
   *  only on 9.x); `PREPARED_LOCAL_CONTENT` is a cluster whose admin enabled both. */
  localContent?: string[];
  /** The fresh install's storage layout (pve-installer Proxmox/Install/StorageConfig.pm):
   *  `lvm` (default, ext4/xfs: `get_lvm_thin_config`, `local` + `lvmthin: local-lvm`), `zfs`
   *  (`get_zfs_config`: `local` + `zfspool: local-zfs` pool `rpool/data`, `sparse`, content
   *  `images,rootdir`; no `local-lvm`), `btrfs` (`get_btrfs_config`: `local` disabled, content
   *  `iso,vztmpl,backup`; `btrfs: local-btrfs` `/var/lib/pve/local-btrfs`, content
   *  `iso,vztmpl,backup,images,rootdir` + `import` on 9.x) or `local` (ext4/xfs on a disk too small
   *  for the thin pool, `get_local_config`: only `local`, content `iso,vztmpl,backup,rootdir,images`
   *  + `import` on 9.x). `localContent` sets `local`'s content on every layout but btrfs. */
  installer?: "lvm" | "zfs" | "btrfs" | "local";
  /** Temp directory holding each node's file tree. Default: a fresh mkdtemp. */
  rootDir?: string;
  /** Start per-node SSH/SFTP servers. Default true. */
  ssh?: boolean;
  /** Public keys per SSH user (`root` and others). */
  sshUsers?: Record<string, SshUser>;
  /** Per-request API latency (ms before timeFactor) for GET and other methods. */
  apiLatencyMs?: { read: number; write: number };
  /** What URLs serve to `download-url` (remote.ts), by exact URL; other URLs are described by
   *  their file name (`remoteFileFor`). */
  remoteFiles?: Record<string, RemoteFile>;
}

const GiB = 1024 ** 3;

/** `local`'s content on a fresh install (pve-installer Proxmox/Install/StorageConfig.pm): no
 *  `snippets` on any layout; `import` since proxmox-installer 9.0.7 (commit ec1d5ee), so on 9.x
 *  installs only. */
export function stockLocalContent(pveVersion: string | undefined): string[] {
  return pveVersion === "8.4" ? ["iso", "vztmpl", "backup"] : ["iso", "vztmpl", "backup", "import"];
}

/** `local` as an admin prepares it for cloud-init snippets and image imports
 *  (`pvesm set local --content iso,vztmpl,backup,import,snippets`). */
export const PREPARED_LOCAL_CONTENT = ["iso", "vztmpl", "import", "snippets", "backup"];
const DEFAULT_CAPACITY: Record<string, number> = { local: 100 * GiB, "local-lvm": 400 * GiB, "local-zfs": 400 * GiB, "local-btrfs": 400 * GiB, "shared-nfs": 2048 * GiB };

/** Directory per content type in a dir-like storage (STORAGE Plugin.pm `get_subdir`). */
export const CONTENT_SUBDIR: Record<string, string> = {
  images: "images", rootdir: "private", iso: "template/iso", vztmpl: "template/cache",
  backup: "dump", snippets: "snippets", import: "import",
};

export function parseVolid(volid: string): { storage: string; volname: string } | undefined {
  const m = /^([a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]):(.+)$/.exec(volid);
  return m ? { storage: m[1], volname: m[2] } : undefined;
}

/**
 * A named allocation (a cloud-init drive, a volume by name) where a volume of that name is: each
 * plugin's alloc_image fails (a failed clone's clean-up that timed out on the storage lock leaves
 * such a volume, and a second clone to the same VMID then fails on it). STORAGE LvmThinPlugin.pm
 * (`lvcreate` through COMMON Cmd.pm run_command `errmsg`: `<errmsg>: <last stderr line>`),
 * Plugin.pm (`disk image '<path>' already exists`), ZFSPoolPlugin.pm (`zfs error: <stderr>`),
 * RBDPlugin.pm (`rbd create` through run_rbd_command's `errmsg`).
 */
function alreadyExists(s: StorageDef, volname: string, name: string): string {
  switch (s.type) {
    case "lvmthin":
      return `lvcreate '${s.vgname}/${name}' error:   Logical Volume "${name}" already exists in volume group "${s.vgname}"`;
    case "zfspool":
      return `zfs error: cannot create '${s.pool}/${name}': dataset already exists`;
    case "rbd":
      return `rbd create '${name}' error: rbd: create error: (17) File exists`;
    default:
      return `disk image '${s.path}/images/${volname}' already exists`;
  }
}

export class Cluster implements ClusterView {
  readonly opts: ClusterOptions;
  readonly latency: Latency;
  readonly locks: LockManager;
  readonly storageLocks: StorageLocks;
  readonly tasks: TaskManager;
  readonly rootDir: string;
  readonly nodes: string[];
  readonly storages = new Map<string, StorageDef>();
  /** `storage` (shared) or `storage@node` → volname → volume. */
  private readonly volumes = new Map<string, Map<string, Volume>>();
  /** Capacity per `storage` / `storage@node`. */
  readonly capacity = new Map<string, { total: number; baseUsed: number }>();
  readonly vms = new Map<number, Vm>();
  readonly ha = new Map<string, HaResource>();
  /** Virtual sizes of importable images (volid@node → bytes). */
  readonly importSizes = new Map<string, number>();
  /** What URLs serve (remote.ts), by exact URL: the `remoteFiles` option and the back door. */
  readonly remoteFiles = new Map<string, RemoteFile>();
  private readonly rng: Rng;
  private readonly ownRoot: boolean;
  readonly nodeStart = new Map<string, number>();

  constructor(readonly sim: Sim) {
    this.opts = (sim.options.cluster ?? {}) as ClusterOptions;
    this.nodes = sim.nodeNames();
    this.rng = sim.rngFor("cluster");
    this.latency = new Latency(this.opts.latency, sim.clock);
    this.locks = new LockManager(
      (ms, fn) => {
        // with timeFactor 0 time does not flow: wait 5 s real rather than time out at once
        if (sim.clock.virtual || sim.clock.span(ms) > 0) return sim.clock.after(ms, fn);
        const t = setTimeout(fn, 5000);
        return () => clearTimeout(t);
      },
      (vmid) => sim.faults.lockContention(vmid),
    );
    this.storageLocks = new StorageLocks(
      sim.clock,
      (ms, fn) => {
        if (sim.clock.virtual || sim.clock.span(ms) > 0) return sim.clock.after(ms, fn);
        const t = setTimeout(fn, 5000);
        return () => clearTimeout(t);
      },
      this.latency.opts.storageLockTimeoutMs,
    );
    this.tasks = new TaskManager(
      this.latency,
      {
        nowSeconds: () => sim.nowSeconds(),
        nowMs: () => sim.now(),
        slowFactor: (t) => sim.faults.taskSlowFactor(t),
        failure: (t) => sim.faults.taskFailure(t),
      },
      sim.rngFor("tasks"),
    );
    for (const [url, f] of Object.entries(this.opts.remoteFiles ?? {})) this.remoteFiles.set(url, f);
    this.ownRoot = !this.opts.rootDir;
    this.rootDir = this.opts.rootDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "pve-sim-"));
    for (const n of this.nodes) this.nodeStart.set(n, sim.nowSeconds() - 86400 - Math.floor(this.rng() * 864000));

    const v8 = sim.options.pveVersion === "8.4";
    if (this.opts.installer === "btrfs") {
      // INST StorageConfig.pm get_btrfs_config: `local` is written disabled; the btrfs storage holds
      // everything (`import` since installer 9.0.7, commit ec1d5ee)
      this.addStorage({ storage: "local", type: "dir", path: "/var/lib/vz", content: ["iso", "vztmpl", "backup"], shared: false, disable: true, extra: {} });
      this.addStorage({ storage: "local-btrfs", type: "btrfs", path: "/var/lib/pve/local-btrfs", content: ["iso", "vztmpl", "backup", "images", "rootdir", ...(v8 ? [] : ["import"])], shared: false, extra: {} });
    } else if (this.opts.installer === "local") {
      // INST get_local_config (Install.pm: no `$datadev`, the disk too small for the thin pool)
      this.addStorage({ storage: "local", type: "dir", path: "/var/lib/vz", content: this.opts.localContent ?? ["iso", "vztmpl", "backup", "rootdir", "images", ...(v8 ? [] : ["import"])], shared: false, extra: {} });
    } else {
      this.addStorage({ storage: "local", type: "dir", path: "/var/lib/vz", content: this.opts.localContent ?? stockLocalContent(sim.options.pveVersion), shared: false, extra: {} });
    }
    if (this.opts.installer === "btrfs" || this.opts.installer === "local") {
      // no local-lvm
    } else if (this.opts.installer === "zfs") {
      // INST StorageConfig.pm get_zfs_config: `zfspool: local-zfs` / `pool rpool/data` / `sparse` / `content images,rootdir`
      this.addStorage({ storage: "local-zfs", type: "zfspool", pool: "rpool/data", content: ["images", "rootdir"], shared: false, extra: { sparse: "1" } });
    } else {
      this.addStorage({ storage: "local-lvm", type: "lvmthin", vgname: "pve", thinpool: "data", content: ["images", "rootdir"], shared: false, extra: {} });
    }
    if (this.opts.sharedStorage) {
      const id = typeof this.opts.sharedStorage === "string" ? this.opts.sharedStorage : "shared-nfs";
      this.addStorage({ storage: id, type: "nfs", path: `/mnt/pve/${id}`, server: "10.0.0.5", export: `/export/${id}`, content: ["images", "snippets", "iso", "import"], shared: true, extra: {} });
    }
  }

  /** Whether `task` ends within `baseMs` of PVE time: the `delay` / `background_delay` waits.
   *  With timeFactor 0 (instant tasks) it allows `baseMs` real, so that an instant task gets
   *  the event-loop turns it needs. */
  finishedWithin(task: Task, baseMs: number): Promise<boolean> {
    const clock = this.sim.clock;
    return new Promise((resolve) => {
      const cancel = clock.virtual
        ? clock.after(baseMs, () => resolve(false))
        : ((t) => () => clearTimeout(t))(setTimeout(() => resolve(false), Math.max(1, clock.span(baseMs) || baseMs)));
      void task.done.then(() => {
        cancel();
        resolve(true);
      });
    });
  }

  /** Removes the temp file trees (when this instance created them). */
  cleanup(): void {
    if (this.ownRoot) fs.rmSync(this.rootDir, { recursive: true, force: true });
  }

  // ---- nodes and file trees -------------------------------------------------------------

  nodeNames(): string[] {
    return [...this.nodes];
  }

  hasNode(node: string): boolean {
    return this.nodes.includes(node);
  }

  /** The host path of a node's absolute path (`/var/lib/vz/x` → `<root>/<node>/var/lib/vz/x`).
   *  Refuses paths escaping the node's tree. */
  hostPath(node: string, abs: string): string {
    const norm = path.posix.normalize("/" + abs);
    // shared storages are mounted into every node
    for (const s of this.storages.values()) {
      if (s.shared && s.path && (norm === s.path || norm.startsWith(s.path + "/"))) {
        return path.join(this.rootDir, "_shared", s.storage, norm.slice(s.path.length));
      }
    }
    return path.join(this.rootDir, node, norm);
  }

  // ---- storages -------------------------------------------------------------------------

  addStorage(def: StorageDef): void {
    this.storages.set(def.storage, def);
    const total = this.opts.capacity?.[def.storage] ?? DEFAULT_CAPACITY[def.storage] ?? 200 * GiB;
    const keys = def.shared ? [def.storage] : this.nodes.map((n) => `${def.storage}@${n}`);
    for (const k of keys) {
      if (!this.capacity.has(k)) this.capacity.set(k, { total, baseUsed: def.type === "dir" ? Math.floor(total * 0.05) : 0 });
      if (!this.volumes.has(k)) this.volumes.set(k, new Map());
    }
    if (def.path) {
      for (const n of def.shared ? [this.nodes[0]] : this.nodes) {
        for (const c of def.content) {
          const sub = CONTENT_SUBDIR[c];
          if (sub && c !== "images" && c !== "rootdir") fs.mkdirSync(this.hostPath(n, `${def.path}/${sub}`), { recursive: true });
        }
      }
    }
  }

  removeStorage(storage: string): void {
    this.storages.delete(storage);
  }

  storageExists(storage: string): boolean {
    return this.storages.has(storage);
  }

  /** The storage config or PVE's error (`storage 'x' does not exist`). */
  storage(storage: string): StorageDef {
    const s = this.storages.get(storage);
    if (!s) throw new PveError(500, `storage '${storage}' does not exist`);
    return s;
  }

  storageOnNode(s: StorageDef, node: string): boolean {
    return !s.nodes || s.nodes.includes(node);
  }

  /** `storage_check_enabled`. */
  checkStorageEnabled(storage: string, node: string): StorageDef {
    const s = this.storage(storage);
    if (s.disable) throw new PveError(500, `storage '${storage}' is disabled`);
    if (!this.storageOnNode(s, node)) throw new PveError(500, `storage '${storage}' is not available on node '${node}'`);
    return s;
  }

  /** Runs `fn` under `cluster_lock_storage` of `storage` as taken on `node` (storage-locks.ts);
   *  `log` is the task log that shows a wait. */
  withStorageLock<T>(storage: string, node: string, fn: () => Promise<T> | T, log?: (line: string) => void): Promise<T> {
    return this.storageLocks.with(this.storage(storage), node, fn, log);
  }

  storageKey(storage: string, node: string): string {
    const s = this.storage(storage);
    return s.shared ? storage : `${storage}@${node}`;
  }

  volumeMap(storage: string, node: string): Map<string, Volume> {
    const k = this.storageKey(storage, node);
    let m = this.volumes.get(k);
    if (!m) {
      m = new Map();
      this.volumes.set(k, m);
    }
    return m;
  }

  /** Sum of the bytes of files under a dir storage's tree on a node. */
  private fileBytes(s: StorageDef, node: string): number {
    if (!s.path) return 0;
    let total = 0;
    const walk = (p: string) => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(p, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const f = path.join(p, e.name);
        if (e.isDirectory()) walk(f);
        else if (e.isFile()) total += fs.statSync(f).size;
      }
    };
    walk(this.hostPath(node, s.path));
    return total;
  }

  usage(storage: string, node: string): { total: number; used: number; avail: number } {
    const s = this.storage(storage);
    const k = this.storageKey(storage, node);
    const cap = this.capacity.get(k) ?? { total: 0, baseUsed: 0 };
    let used = cap.baseUsed + this.fileBytes(s, node);
    for (const v of this.volumeMap(storage, node).values()) used += v.parent ? Math.floor(v.size / 10) : v.size;
    used = Math.min(used, cap.total);
    return { total: cap.total, used, avail: cap.total - used };
  }

  /** Back door: make a storage full (or give it room again). */
  setStorageFull(storage: string, full: boolean, node?: string): void {
    const s = this.storage(storage);
    for (const n of s.shared ? [this.nodes[0]] : node ? [node] : this.nodes) {
      const k = this.storageKey(storage, n);
      const cap = this.capacity.get(k)!;
      if (full) {
        const { used } = this.usage(storage, n);
        cap.baseUsed += cap.total - used;
      } else cap.baseUsed = s.type === "dir" ? Math.floor(cap.total * 0.05) : 0;
    }
  }

  private checkSpace(storage: string, node: string, bytes: number, name?: string): void {
    const { avail } = this.usage(storage, node);
    if (bytes > avail) {
      const s = this.storage(storage);
      // rbd images are thin (`rbd create` reserves nothing), so are zvols of a `sparse` zfspool
      // (`zfs create -s`); a non-sparse zvol gets a refreservation of its full size
      if (s.type === "rbd" || (s.type === "zfspool" && s.extra.sparse === "1")) return;
      // BTRFSPlugin.pm alloc_image: a raw image is `truncate`d (sparse), a subvolume unsized
      if (s.type === "btrfs") return;
      if (s.type === "zfspool") throw new Error(`zfs error: cannot create '${s.pool}/${name ?? "vm-disk"}': out of space`);
      if (s.type === "lvmthin") {
        throw new Error(`lvcreate 'pve/vm-disk' error:   Insufficient free space: ${Math.ceil(bytes / 4194304)} extents needed, but only ${Math.floor(avail / 4194304)} available`);
      }
      throw new Error(`unable to create image: qemu-img: Could not create image: No space left on device`);
    }
  }

  /**
   * Allocates `vm-<vmid>-disk-N` (or the given name) on a storage with `images` content.
   * `format` is a hint (QemuServer.pm resolve_dst_disk_format → Storage.pm resolve_format_hint:
   * a format the storage does not list falls back to its default) unless `strict`: the format
   * create_disks passes to vdisk_alloc as given, which each plugin's alloc_image takes or refuses.
   */
  allocVolume(storage: string, node: string, vmid: number, size: number, opts: { name?: string; format?: string; parent?: string; image?: string; strict?: boolean } = {}): Volume {
    const s = this.checkStorageEnabled(storage, node);
    if (!s.content.includes("images")) throw new Error(`storage '${storage}' does not support vm images`);
    const vols = this.volumeMap(storage, node);
    const block = isBlockStorage(s);
    const formats = storageFormats(s);
    const parentVol = opts.parent ? this.findVolume(opts.parent, node) : undefined;
    // Plugin.pm get_formats: lvmthin and rbd are raw only, zfspool and btrfs raw or subvol; dir and
    // nfs default to raw (or the storage's `format`); a linked clone on dir/nfs is always a qcow2
    // overlay on its base (Plugin.pm clone_image), on zfspool a `zfs clone` in the base's format,
    // on btrfs a subvolume snapshot of a raw/subvol volume (BTRFSPlugin.pm clone_image; its qcow2
    // and vmdk volumes go through DirPlugin's)
    const btrfsSnapshot = s.type === "btrfs" && !!parentVol && (parentVol.format === "raw" || parentVol.format === "subvol");
    const wanted = opts.parent ? (block || btrfsSnapshot ? parentVol?.format : "qcow2") : opts.format;
    let fmt = wanted && formats.supported.includes(wanted) ? wanted : formats.default;
    if (opts.parent && !block && !btrfsSnapshot) fmt = "qcow2"; // Plugin.pm clone_image: a qcow2 overlay, whatever the storage lists
    if (opts.strict && opts.format) fmt = this.allocFormat(s, opts.format, size) ?? fmt;
    const ext = block ? "" : `.${fmt}`;
    const base = (name: string) => (block ? name : `${vmid}/${name}`);
    // Plugin.pm get_next_vm_diskname: `subvol-<vmid>-disk-<n>` for the subvol format (zfspool)
    const prefix = fmt === "subvol" && s.type === "zfspool" ? "subvol" : "vm";
    let name = opts.name;
    if (name && s.type === "zfspool" && !new RegExp(`^${prefix}-${vmid}-`).test(name)) {
      throw new Error(`illegal name '${name}' - should be '${prefix}-${vmid}-*'`); // ZFSPoolPlugin.pm alloc_image
    }
    if (!name) {
      for (let i = 0; ; i++) {
        const cand = `${prefix}-${vmid}-disk-${i}`;
        // Plugin.pm get_next_vm_diskname: a number is taken by `(vm|base)-<vmid>-disk-<n>` whatever
        // the existing file's format
        if (![...vols.values()].some((v) => new RegExp(`(^|/)(vm|base|subvol|basevol)-${vmid}-disk-${i}(\\.\\w+)?$`).test(v.volname))) {
          name = cand;
          break;
        }
      }
    }
    // a thin rbd image or a sparse zvol takes no space up front, others their full size
    this.checkSpace(storage, node, opts.parent ? 0 : size, name);
    let volname = base(name + (name.endsWith(ext) ? "" : ext));
    if (opts.parent) {
      const parentName = parseVolid(opts.parent)!.volname;
      // pve-storage LvmThinPlugin.pm clone_image: the thin snapshot of the base is an ordinary
      // `vm-<id>-disk-<n>` LV (nothing in its name points at the template); BTRFSPlugin.pm
      // clone_image of a raw/subvol volume: `<id>/vm-<id>-disk-<n>.raw` ("we don't actually need
      // the link"); Plugin.pm clone_image (dir, nfs: qcow2 backing file) names it
      // `<basevmid>/<basename>/<id>/vm-<id>-disk-<n>.qcow2`, from the base's own
      // `<vmid>/<name>` (the last two parts of a templated linked clone's name);
      // ZFSPoolPlugin.pm/RBDPlugin.pm clone_image of a base: `<base name>/vm-<id>-disk-<n>` (the base's
      // own name: parse_volname's second value, the part after any `<base>/`). RBD's clone of a
      // snapshot (`snapname`) is a plain `vm-<id>-disk-<n>`, but the simulator has no VM snapshots.
      volname = s.type === "lvmthin" ? name
        : btrfsSnapshot ? volname
        : block ? `${parentName.split("/").pop()}/${name}`
        : `${parentName.split("/").slice(-2).join("/")}/${vmid}/${name}${ext}`;
    }
    if (opts.name && vols.has(volname)) throw new Error(alreadyExists(s, volname, name));
    const vol: Volume = {
      volid: `${storage}:${volname}`, volname, storage, vmid, size, format: fmt, ctime: this.sim.nowSeconds(), parent: opts.parent,
      ...(opts.image !== undefined ? { image: opts.image } : {}),
    };
    vols.set(volname, vol);
    return vol;
  }

  /** The format a plugin's alloc_image makes of an explicit `fmt`, or its error. Line numbers are
   *  pve-storage 9.1.7's (9.1) and 8.3.6's (8.4): the dies have no newline, so Perl appends them. */
  private allocFormat(s: StorageDef, fmt: string, size: number): string | undefined {
    const v8 = this.sim.options.pveVersion === "8.4";
    switch (s.type) {
      case "lvmthin": // LvmThinPlugin.pm alloc_image
        if (fmt !== "raw") throw new Error(`unsupported format '${fmt}' at /usr/share/perl5/PVE/Storage/LvmThinPlugin.pm line ${v8 ? 88 : 102}.`);
        return "raw";
      case "zfspool": // ZFSPoolPlugin.pm alloc_image: raw (zvol) or subvol (dataset)
        if (fmt !== "raw" && fmt !== "subvol") throw new Error(`unsupported format '${fmt}' at /usr/share/perl5/PVE/Storage/ZFSPoolPlugin.pm line ${v8 ? 239 : 292}.`);
        return fmt;
      case "rbd": // RBDPlugin.pm alloc_image ignores the format: an rbd image is raw
        return "raw";
      case "btrfs": // BTRFSPlugin.pm alloc_image: raw/subvol its own way, others via Plugin.pm
        if (fmt === "subvol" && size) throw new Error("btrfs quotas are currently not supported, use an unsized subvolume or a raw file");
        return ["raw", "subvol", "qcow2", "vmdk"].includes(fmt) ? fmt : undefined;
      default: // Plugin.pm alloc_image: qemu-img create -f <fmt>; subvol only unsized
        if (fmt === "subvol" && size) throw new Error("storage does not support subvol quotas");
        return ["raw", "qcow2", "vmdk"].includes(fmt) ? fmt : undefined;
    }
  }

  findVolume(volid: string, node: string): Volume | undefined {
    const p = parseVolid(volid);
    if (!p || !this.storages.has(p.storage)) return undefined;
    return this.volumeMap(p.storage, node).get(p.volname);
  }

  /** STORAGE `volume_has_feature($cfg, 'clone', …)` without a snapshot: a base volume (its own
   *  name `base-…`, parse_volname `$isBase`) on every type — dir/nfs in qcow2, raw or vmdk
   *  (Plugin.pm), btrfs also subvol — and on btrfs a current raw volume too (BTRFSPlugin.pm
   *  `clone => { current => { raw => 1 } }`). */
  volumeHasCloneFeature(vol: Volume): boolean {
    const s = this.storages.get(vol.storage);
    if (!s) return false;
    const name = vol.volname.split("/").pop() ?? "";
    const isBase = /^(base|basevol)-\d+-/.test(name);
    if (s.type === "btrfs") return isBase ? ["qcow2", "raw", "subvol", "vmdk"].includes(vol.format) : vol.format === "raw";
    if (s.type === "dir" || s.type === "nfs") return isBase && ["qcow2", "raw", "vmdk"].includes(vol.format);
    return isBase;
  }

  /** STORAGE Storage.pm `volume_is_base_and_used`: some volume's name points at this base (its
   *  parse_volname basename). LvmThinPlugin clone names carry no base, so an lvmthin base never
   *  counts as used ("LVM-thin allows deletion of still referenced base volumes!", vdisk_free);
   *  nor do BTRFSPlugin.pm's raw/subvol clones (`<id>/vm-<id>-disk-<n>.raw`, a subvolume snapshot). */
  volumeIsBaseAndUsed(volid: string, node: string): boolean {
    const p = parseVolid(volid);
    const s = p && this.storages.get(p.storage);
    if (!p || !s || s.type === "lvmthin") return false;
    // only a clone whose NAME carries the base counts (btrfs subvolume snapshots do not)
    return this.volumesOf(p.storage, node).some((v) => v.parent === volid && this.volumeBasename(v.volid) !== undefined);
  }

  /** The base a volume's name points at (STORAGE Plugin.pm parse_volname `$basename`: dir/nfs
   *  (and btrfs qcow2/vmdk) linked clones `<tpl>/<base>/<vmid>/vm-…`; ZFSPoolPlugin.pm/RBDPlugin.pm
   *  `<base>/vm-…`); undefined for lvmthin and btrfs raw clones and other volumes. */
  volumeBasename(volid: string): string | undefined {
    const p = parseVolid(volid);
    const s = p && this.storages.get(p.storage);
    if (!p || !s || s.type === "lvmthin") return undefined;
    if (s.type === "zfspool" || s.type === "rbd") return /^((?:base|basevol)-\d+-[^/]+)\/[^/]+$/.exec(p.volname)?.[1];
    return /^\d+\/(\S+)\/\d+\/\S+$/.exec(p.volname)?.[1];
  }

  freeVolume(volid: string, node: string): void {
    const p = parseVolid(volid);
    if (!p || !this.storages.has(p.storage)) return;
    this.volumeMap(p.storage, node).delete(p.volname);
  }

  renameVolume(vol: Volume, node: string, newVolname: string): Volume {
    const m = this.volumeMap(vol.storage, node);
    m.delete(vol.volname);
    const nv = { ...vol, volname: newVolname, volid: `${vol.storage}:${newVolname}` };
    m.set(newVolname, nv);
    return nv;
  }

  volumesOf(storage: string, node: string): Volume[] {
    return [...this.volumeMap(storage, node).values()];
  }

  /** Moves a VM's local volumes to another node (migration). */
  moveVolumes(vmid: number, from: string, to: string): void {
    for (const s of this.storages.values()) {
      if (s.shared) continue;
      const src = this.volumeMap(s.storage, from);
      const dst = this.volumeMap(s.storage, to);
      for (const [k, v] of [...src.entries()]) {
        if (v.vmid === vmid) {
          src.delete(k);
          dst.set(k, v);
        }
      }
    }
  }

  // ---- VMs ------------------------------------------------------------------------------

  vmExists(vmid: number): boolean {
    return this.vms.has(vmid);
  }

  /** `load_config` as the node `node` sees it. */
  loadVm(node: string, vmid: number): Vm {
    const vm = this.vms.get(vmid);
    if (!vm || vm.node !== node) throw new PveError(500, `Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`);
    return vm;
  }

  /** Lowest free VMID ≥ 100 (datacenter.cfg next-id defaults). */
  nextId(): number {
    for (let id = 100; id < 1000000; id++) if (!this.vms.has(id)) return id;
    throw new PveError(500, "unable to get any free VMID in range [100, 1000000)");
  }

  configText(vm: Vm): string {
    return vm.tempClone ? "# qmclone temporary file\nlock: clone\n" : printConfig(vm.config);
  }

  digest(vm: Vm): string {
    return configDigest(vm.config);
  }

  isTemplate(vm: Vm): boolean {
    return vm.config.current.template === "1";
  }

  haManaged(vmid: number): HaResource | undefined {
    return this.ha.get(`vm:${vmid}`);
  }

  /** The HA manager's state of the VM's service (MGR API2/Cluster.pm `resources` `hastate`,
   *  QEMU `vm_status` `ha.state`): `starting` until a requested start has happened. */
  haState(vmid: number): string | undefined {
    const ha = this.haManaged(vmid);
    if (!ha) return undefined;
    if (ha.serviceState) return ha.serviceState;
    return ha.state === "started" && !this.vms.get(vmid)?.running ? "starting" : ha.state;
  }

  /** Root disk size in bytes: the boot disk or the first non-cdrom disk. */
  maxdisk(vm: Vm): number {
    const c = vm.config.current;
    for (const k of Object.keys(c).sort()) {
      if (!isDriveKey(k) || k === "efidisk0" || k === "tpmstate0") continue;
      const d = parseDrive(c[k]);
      if (isCdrom(d)) continue;
      return d.size ? (parseSize(d.size) ?? 0) : 0;
    }
    return 0;
  }

  maxmem(vm: Vm): number {
    const m = vm.config.current.memory;
    const mib = m ? Number(m.split(",")[0].replace(/^current=/, "")) : 512;
    return mib * 1024 * 1024;
  }

  cpus(vm: Vm): number {
    const c = vm.config.current;
    return Number(c.vcpus ?? Number(c.sockets ?? 1) * Number(c.cores ?? 1));
  }

  uptime(vm: Vm): number {
    return vm.running && vm.startedAt ? Math.floor((this.sim.now() - vm.startedAt) / 1000) : 0;
  }

  agentRunning(vm: Vm): boolean {
    return vm.running && !vm.paused && agentEnabled(vm.config.current.agent) && vm.agentReadyAt !== undefined && this.sim.now() >= vm.agentReadyAt;
  }

  /** Records a power change for the stats pvestatd broadcasts (`reportedRunning`). */
  notePower(vm: Vm, running: boolean): void {
    if (vm.running === running) return;
    vm.reported = { running: this.reportedRunning(vm), uptime: this.reportedRunning(vm) ? this.uptime(vm) : 0, until: this.sim.now() };
  }

  /**
   * The power state `/cluster/resources` shows: what pvestatd last broadcast. It runs every 10 s
   * (pve-manager PVE/Service/pvestatd.pm, `$updatetime`), and API2Tools.pm extract_vm_stats
   * reads that RRD data, so a start or stop shows only from the next cycle on. `statsIntervalMs`
   * (PVE time; 0 = always current) sets the cycle.
   */
  reportedRunning(vm: Vm): boolean {
    const cycle = this.latency.real(this.opts.statsIntervalMs ?? 10_000);
    if (!vm.reported || cycle <= 0) return vm.running;
    const lastCycle = Math.floor(this.sim.now() / cycle) * cycle;
    return vm.reported.until > lastCycle ? vm.reported.running : vm.running;
  }

  /**
   * The template flag `/cluster/resources` shows: pvestatd's RRD entry carries it
   * (pve-manager PVE/Service/pvestatd.pm `update_qemu_status` puts `$d->{template}` from the
   * config in the broadcast; API2Tools.pm extract_vm_stats reads `$d->[3]`), so a VM converted
   * since the last cycle is still listed as `template: 0`.
   */
  reportedTemplate(vm: Vm): 0 | 1 {
    if (vm.config.current.template !== "1") return 0;
    const cycle = this.latency.real(this.opts.statsIntervalMs ?? 10_000);
    if (vm.templatedAt === undefined || cycle <= 0) return 1;
    return vm.templatedAt > Math.floor(this.sim.now() / cycle) * cycle ? 0 : 1;
  }

  /** The VM's entry as `GET /cluster/resources` shows it (`live`: as the node's own status/current does). */
  vmResource(vmid: number, live = false): ResourceEntry | undefined {
    const vm = this.vms.get(vmid);
    if (!vm) return undefined;
    const c = vm.config.current;
    const cycle = this.latency.real(this.opts.statsIntervalMs ?? 10_000);
    if (!live && cycle > 0 && vm.createdAt !== undefined && Math.floor(vm.createdAt / cycle) === Math.floor(this.sim.now() / cycle)) {
      // MGR API2Tools.pm extract_vm_stats: a VM in the vmlist without RRD data yet (pvestatd has
      // not broadcast since its config appeared) is `{id, vmid, node, type, status: 'unknown'}`;
      // API2/Cluster.pm resources adds `lock`/`tags` from the config, `pool` and `hastate`
      const e: ResourceEntry = { id: `qemu/${vmid}`, vmid, node: vm.node, type: "qemu", status: "unknown" };
      const lock = vm.tempClone ? "clone" : c.lock;
      if (c.tags && !vm.tempClone) e.tags = c.tags;
      if (lock) e.lock = lock;
      const pool = this.sim.pools.poolOfVm(vmid);
      if (pool) e.pool = pool;
      const hastate = this.haState(vmid);
      if (hastate) e.hastate = hastate;
      return e;
    }
    const running = live ? vm.running : this.reportedRunning(vm);
    const stale = running !== vm.running;
    const e: ResourceEntry = {
      id: `qemu/${vmid}`, type: "qemu", vmid, node: vm.node,
      name: c.name ?? `VM ${vmid}`, status: running ? "running" : "stopped",
      template: live ? (c.template === "1" ? 1 : 0) : this.reportedTemplate(vm),
      maxcpu: this.cpus(vm), maxmem: this.maxmem(vm), maxdisk: this.maxdisk(vm),
      cpu: running ? 0.01 : 0, mem: running ? Math.floor(this.maxmem(vm) * 0.4) : 0, disk: 0,
      diskread: 0, diskwrite: 0, netin: 0, netout: 0, uptime: stale ? (vm.reported?.uptime ?? 0) : this.uptime(vm),
    };
    // API2Tools.pm extract_vm_stats: `memhost` from the 9.x RRD format (`pve-vm-9.0` keys) only
    if (this.sim.options.pveVersion !== "8.4") e.memhost = e.mem;
    if (vm.tempClone) e.name = `VM ${vmid}`;
    if (c.tags) e.tags = c.tags;
    if (c.lock) e.lock = c.lock;
    const pool = this.sim.pools.poolOfVm(vmid);
    if (pool) e.pool = pool;
    const hastate = this.haState(vmid);
    if (hastate) e.hastate = hastate;
    return e;
  }

  storageResource(storage: string, node: string): ResourceEntry {
    const s = this.storage(storage);
    const u = this.usage(storage, node);
    const e: ResourceEntry = {
      id: `storage/${node}/${storage}`, type: "storage", storage, node,
      status: s.disable ? "unknown" : "available", plugintype: s.type,
      content: [...s.content].sort().join(","), disk: u.used, maxdisk: u.total, shared: s.shared ? 1 : 0,
    };
    return e;
  }

  storageResources(storage: string): ResourceEntry[] {
    const s = this.storages.get(storage);
    if (!s) return [];
    return this.nodes.filter((n) => this.storageOnNode(s, n)).map((n) => this.storageResource(storage, n));
  }

  nodeResource(node: string): ResourceEntry {
    const idx = this.nodes.indexOf(node);
    const running = [...this.vms.values()].filter((v) => v.node === node && v.running);
    const maxmem = 64 * GiB + idx * 1024 ** 2;
    return {
      id: `node/${node}`, type: "node", node, status: "online", level: "", "cgroup-mode": 2,
      maxcpu: 16, cpu: 0.02 + 0.01 * running.length, maxmem,
      mem: 4 * GiB + running.reduce((a, v) => a + Math.floor(this.maxmem(v) * 0.4), 0),
      maxdisk: 100 * GiB, disk: 10 * GiB, uptime: this.sim.nowSeconds() - this.nodeStart.get(node)!,
    };
  }

  // ---- random values --------------------------------------------------------------------

  uuid(): string {
    return this.sim.uuid(this.rng);
  }

  /** `random_ether_addr` with the datacenter `mac_prefix` default `BC:24:11`. */
  randomMac(): string {
    const b = [0, 0, 0].map(() => Math.floor(this.rng() * 256).toString(16).toUpperCase().padStart(2, "0"));
    return `BC:24:11:${b.join(":")}`;
  }

  randomPid(): number {
    return 1000 + Math.floor(this.rng() * 3000000);
  }

  formatSize = formatSize;
}

/** The cluster state of a simulator (created on first use; sets `sim.cluster`). */
export function clusterOf(sim: Sim): Cluster {
  if (!sim.ext.cluster) {
    const c = new Cluster(sim);
    sim.ext.cluster = c;
    sim.cluster = c;
    sim.onStop(() => c.cleanup());
  }
  return sim.ext.cluster as Cluster;
}
