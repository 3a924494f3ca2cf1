// /cluster/nextid, /cluster/resources, /cluster/ha/resources and the cluster-wide storage
// configuration (/storage). Registering this module creates the cluster state and makes
// it the simulator's ClusterView.

import type { Sim } from "../sim";
import { ParamDefs, PveError, paramError } from "../types";
import { Cluster, HaResource, STORAGE_CONTENT, StorageDef, StorageType, clusterOf } from "../state/cluster";
import { OPT_VMID, STORAGE } from "./common";
import { createHash } from "crypto";

const STORAGE_TYPES = ["btrfs", "cephfs", "cifs", "dir", "esxi", "iscsi", "iscsidirect", "lvm", "lvmthin", "nfs", "pbs", "rbd", "zfs", "zfspool"];
const SIMULATED_TYPES: StorageType[] = ["dir", "lvmthin", "nfs", "zfspool", "rbd", "btrfs"];
/** The config keys a type takes (STORAGE `options` of ZFSPoolPlugin.pm, RBDPlugin.pm, BTRFSPlugin.pm; `keyring`
 *  is a sensitive parameter, not stored); SectionConfig `check_config` dies `unexpected property
 *  '<k>'` on any other, `can't change value of fixed parameter '<k>'` on an update of a fixed one. */
const TYPE_OPTIONS: Partial<Record<StorageType, { options: string[]; fixed: string[]; required: string[] }>> = {
  zfspool: { options: ["pool", "blocksize", "sparse", "nodes", "disable", "content", "bwlimit", "mountpoint"], fixed: ["pool"], required: ["pool"] },
  rbd: { options: ["nodes", "disable", "monhost", "pool", "data-pool", "namespace", "username", "content", "krbd", "keyring", "bwlimit"], fixed: [], required: [] },
  btrfs: {
    options: ["path", "nodes", "shared", "disable", "prune-backups", "max-protected-backups", "content", "format", "is_mountpoint", "nocow", "mkdir", "create-base-path", "create-subdirs", "preallocation"],
    fixed: ["path"], required: ["path"],
  },
};
/** Type-specific keys of zfspool/rbd kept in `StorageDef.extra` (pool has its own field). */
const ZFS_RBD_KEYS = ["blocksize", "sparse", "mountpoint", "bwlimit", "monhost", "data-pool", "namespace", "username", "krbd", "max-protected-backups", "is_mountpoint", "nocow"];
const BOOLEAN_KEYS = ["sparse", "krbd", "nocow"];
const CONTENT_TYPES = ["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"];

/** `sid` as PVE parses it: `vm:100`, `ct:100` or a bare VMID. */
function parseSid(c: Cluster, sid: string): string {
  const m = /^(?:(vm|ct):)?(\d+)$/.exec(sid);
  if (!m) throw paramError({ sid: `invalid format - unable to parse HA resource id '${sid}'` });
  if (m[1] === "ct") return `ct:${m[2]}`;
  void c;
  return `vm:${m[2]}`;
}

function haDigest(c: Cluster): string {
  return createHash("sha1").update(JSON.stringify([...c.ha.values()])).digest("hex");
}

function haEntry(c: Cluster, r: HaResource): Record<string, unknown> {
  const e: Record<string, unknown> = { sid: r.sid, type: r.type, state: r.state, max_restart: r.max_restart, max_relocate: r.max_relocate, failback: r.failback, digest: haDigest(c) };
  if (r.comment !== undefined) e.comment = r.comment;
  return e;
}

function storageConfigEntry(s: StorageDef): Record<string, unknown> {
  const e: Record<string, unknown> = { storage: s.storage, type: s.type, content: [...s.content].sort().join(",") };
  if (s.path && (s.type === "dir" || s.type === "btrfs")) e.path = s.path;
  if (s.type === "nfs") Object.assign(e, { path: s.path, server: s.server, export: s.export });
  if (s.type === "lvmthin") Object.assign(e, { vgname: s.vgname, thinpool: s.thinpool });
  if ((s.type === "zfspool" || s.type === "rbd") && s.pool !== undefined) e.pool = s.pool;
  if (s.shared) e.shared = 1; // STORAGE Plugin.pm parse_config sets it for nfs, rbd (@SHARED_STORAGE)
  if (s.nodes) e.nodes = s.nodes.join(",");
  if (s.disable) e.disable = 1;
  Object.assign(e, s.extra);
  for (const k of BOOLEAN_KEYS) if (typeof e[k] === "string") e[k] = Number(e[k]);
  e.digest = createHash("sha1").update(JSON.stringify(s)).digest("hex");
  return e;
}

export function register(sim: Sim): void {
  const c = clusterOf(sim);
  sim.cluster = c;
  const api = c.opts.apiLatencyMs ?? { read: 5, write: 20 };
  // On the virtual clock a request takes no PVE time: the clock moves only when the test moves it.
  sim.latencyModel = (method) => (sim.clock.virtual ? 0 : method === "GET" ? api.read : api.write);

  sim.route({
    method: "GET",
    path: "/cluster/nextid",
    params: { vmid: OPT_VMID },
    permissions: { user: "all" },
    handler: (req) => {
      const vmid = req.params.vmid;
      if (vmid !== undefined) {
        if (c.vms.has(vmid)) throw paramError({ vmid: `VM ${vmid} already exists` });
        return String(vmid);
      }
      return String(c.nextId());
    },
  });

  sim.route({
    method: "GET",
    path: "/cluster/resources",
    params: { type: { type: "string", enum: ["vm", "storage", "node", "sdn"], optional: true } },
    permissions: { user: "all" },
    handler: (req) => {
      const type = req.params.type;
      const out: unknown[] = [];
      // MGR API2/Cluster.pm `resources`: pools first (those with Pool.Audit), then VMs (VM.Audit;
      // their `pool` field only with Pool.Audit on it), nodes, storage (Datastore.Audit only)
      if (!type) {
        for (const pool of sim.pools.all().map((p) => p.poolid).sort()) {
          if (sim.access.has(req.auth, `/pool/${pool}`, "Pool.Audit")) out.push({ id: `/pool/${pool}`, pool, type: "pool" });
        }
      }
      // a pool entry sums uptime (max), mem, maxmem, cpu (weighted), maxcpu of its members that
      // have an uptime, whether or not the user may audit those VMs
      const poolEntry = (pool: string) => out.find((x: any) => x.type === "pool" && x.pool === pool) as Record<string, any> | undefined;
      if (!type) {
        for (const vm of c.vms.values()) {
          const e = c.vmResource(vm.vmid)!;
          const pe = typeof e.pool === "string" ? poolEntry(e.pool) : undefined;
          if (!pe || !e.uptime) continue;
          const [up, mem, maxmem, cpu, maxcpu] = [e.uptime, e.mem, e.maxmem, e.cpu, e.maxcpu] as number[];
          if (!pe.uptime || up > pe.uptime) pe.uptime = up;
          pe.mem = (pe.mem ?? 0) + mem;
          pe.maxmem = (pe.maxmem ?? 0) + maxmem;
          pe.cpu ??= 0;
          pe.maxcpu ??= 0;
          pe.cpu = (pe.cpu * pe.maxcpu + cpu * maxcpu) / (pe.maxcpu + maxcpu);
          pe.maxcpu += maxcpu;
        }
      }
      if (!type || type === "vm") {
        for (const vm of [...c.vms.values()].sort((a, b) => a.vmid - b.vmid)) {
          if (!sim.access.has(req.auth, `/vms/${vm.vmid}`, "VM.Audit")) continue;
          const e = c.vmResource(vm.vmid)!;
          if (typeof e.pool === "string" && !sim.access.has(req.auth, `/pool/${e.pool}`, "Pool.Audit")) delete e.pool;
          out.push(e);
        }
      }
      if (!type || type === "node") {
        for (const n of c.nodeNames()) if (sim.access.has(req.auth, `/nodes/${n}`, "Sys.Audit")) out.push(c.nodeResource(n));
      }
      if (!type || type === "storage") {
        for (const s of c.storages.values()) {
          if (!sim.access.has(req.auth, `/storage/${s.storage}`, "Datastore.Audit")) continue;
          // only where storage_check_enabled (a disabled storage is left out); API2Tools.pm
          // extract_storage_stats: no `pool` field
          if (s.disable) continue;
          for (const e of c.storageResources(s.storage)) out.push(e);
        }
      }
      return out;
    },
  });

  // ---- HA -------------------------------------------------------------------------------

  const SID = { type: "string" as const };
  sim.route({
    method: "GET",
    path: "/cluster/ha/resources",
    params: { type: { type: "string", enum: ["ct", "vm"], optional: true } },
    permissions: { check: ["perm", "/", ["Sys.Audit"]] },
    handler: (req) => [...c.ha.values()].filter((r) => !req.params.type || r.type === req.params.type).map((r) => haEntry(c, r)),
  });

  const haParams: ParamDefs = {
    sid: SID,
    comment: { type: "string", maxLength: 4096, optional: true },
    failback: { type: "boolean", optional: true, sincePve9: true },
    group: { type: "string", format: "pve-configid", optional: true },
    max_relocate: { type: "integer", minimum: 0, optional: true },
    max_restart: { type: "integer", minimum: 0, optional: true },
    state: { type: "string", enum: ["started", "stopped", "enabled", "disabled", "ignored"], optional: true },
  };

  sim.route({
    method: "POST",
    path: "/cluster/ha/resources",
    params: { ...haParams, type: { type: "string", enum: ["ct", "vm"], optional: true } },
    permissions: { check: ["perm", "/", ["Sys.Console"]] },
    handler: (req) => {
      const p = req.params;
      const sid = parseSid(c, p.sid);
      if (p.group !== undefined && sim.options.pveVersion !== "8.4") throw new PveError(500, "invalid parameter 'group': ha groups have been migrated to rules");
      if (c.ha.has(sid)) throw new PveError(500, `create resource failed: resource ID '${sid}' already defined`);
      const vmid = Number(sid.split(":")[1]);
      if (sid.startsWith("ct:") || !c.vms.has(vmid)) throw new PveError(500, `resource '${sid}' does not exist in cluster`);
      const state = p.state === "enabled" ? "started" : (p.state ?? "started");
      c.ha.set(sid, {
        sid, type: "vm", state, max_restart: p.max_restart ?? 1, max_relocate: p.max_relocate ?? 1, failback: p.failback ?? 1,
        ...(p.comment !== undefined ? { comment: p.comment } : {}),
      });
      return null;
    },
  });

  sim.route({
    method: "GET",
    path: "/cluster/ha/resources/{sid}",
    params: { sid: SID },
    permissions: { check: ["perm", "/", ["Sys.Audit"]] },
    handler: (req) => {
      const sid = parseSid(c, req.params.sid);
      const r = c.ha.get(sid);
      if (!r) throw new PveError(500, `no such resource '${sid}'`);
      return haEntry(c, r);
    },
  });

  sim.route({
    method: "DELETE",
    path: "/cluster/ha/resources/{sid}",
    params: { sid: SID, purge: { type: "boolean", optional: true, sincePve9: true } },
    permissions: { check: ["perm", "/", ["Sys.Console"]] },
    handler: (req) => {
      const sid = parseSid(c, req.params.sid);
      if (!c.ha.has(sid)) throw new PveError(500, `cannot delete service '${sid}', not HA managed!`);
      c.ha.delete(sid);
      return null;
    },
  });

  // ---- /storage (cluster configuration) -------------------------------------------------

  sim.route({
    method: "GET",
    path: "/storage",
    params: { type: { type: "string", enum: STORAGE_TYPES, optional: true } },
    permissions: { user: "all" },
    handler: (req) =>
      [...c.storages.values()]
        .filter((s) => !req.params.type || s.type === req.params.type)
        .filter((s) => sim.access.has(req.auth, `/storage/${s.storage}`, "Datastore.Audit") || sim.access.has(req.auth, `/storage/${s.storage}`, "Datastore.AllocateSpace"))
        .map(storageConfigEntry),
  });

  sim.route({
    method: "GET",
    path: "/storage/{storage}",
    params: { storage: STORAGE },
    permissions: { check: ["perm", "/storage/{storage}", ["Datastore.Allocate"]] },
    handler: (req) => storageConfigEntry(c.storage(req.params.storage)),
  });

  const common: ParamDefs = {
    content: { type: "string", optional: true },
    nodes: { type: "string", optional: true },
    shared: { type: "boolean", optional: true },
    disable: { type: "boolean", optional: true },
    server: { type: "string", optional: true },
    options: { type: "string", optional: true },
    mkdir: { type: "boolean", optional: true },
    "create-base-path": { type: "boolean", optional: true },
    "create-subdirs": { type: "boolean", optional: true },
    "max-protected-backups": { type: "integer", optional: true },
    is_mountpoint: { type: "string", optional: true },
    nocow: { type: "boolean", optional: true },
    "prune-backups": { type: "string", optional: true },
    format: { type: "string", enum: ["raw", "qcow2", "subvol", "vmdk"], optional: true },
    preallocation: { type: "string", enum: ["off", "metadata", "falloc", "full"], optional: true },
    // zfspool (ZFSPoolPlugin.pm properties/options) and rbd (RBDPlugin.pm)
    pool: { type: "string", optional: true },
    blocksize: { type: "string", optional: true },
    sparse: { type: "boolean", optional: true },
    mountpoint: { type: "string", optional: true },
    bwlimit: { type: "string", optional: true },
    monhost: { type: "string", optional: true },
    krbd: { type: "boolean", optional: true },
    "data-pool": { type: "string", optional: true },
    namespace: { type: "string", optional: true },
    username: { type: "string", optional: true },
    keyring: { type: "string", optional: true },
  };

  /** SectionConfig check_config for the types with a TYPE_OPTIONS entry: the given keys against
   *  the type's options (create: required ones present; update: fixed ones untouched). */
  const checkTypeOptions = (type: StorageType, p: Record<string, unknown>, create: boolean, prefix: string) => {
    const t = TYPE_OPTIONS[type];
    if (!t) return;
    for (const k of Object.keys(p)) {
      if (k === "storage" || k === "type" || k === "delete" || k === "digest" || p[k] === undefined) continue;
      if (!create && t.fixed.includes(k)) throw new PveError(500, `${prefix}can't change value of fixed parameter '${k}'`);
      if (!t.options.includes(k)) throw new PveError(500, `${prefix}unexpected property '${k}'`);
    }
    if (create) for (const k of t.required) if (p[k] === undefined) throw new PveError(500, `missing value for required option '${k}'`);
  };

  const parseContent = (s: string | undefined, type: StorageType, prefix = ""): string[] => {
    const list = (s ?? "").split(/[,;\s]+/).filter((x) => x !== "");
    if (type === "zfspool" || type === "rbd") {
      for (const x of list) if (!CONTENT_TYPES.includes(x) && x !== "none") throw paramError({ content: `invalid format - invalid content type '${x}'` });
      // STORAGE Plugin.pm decode_value (in check_config): a type the plugin does not support is
      // only warned about and dropped; nothing left dies
      const kept = list.filter((x) => STORAGE_CONTENT[type].valid.includes(x));
      if (!kept.length) throw new PveError(500, `${prefix}storage does not support content type 'none'`);
      return [...new Set(kept)];
    }
    for (const x of list) {
      if (!CONTENT_TYPES.includes(x) && x !== "none") throw paramError({ content: `invalid format - invalid content type '${x}'` });
      const allowed = type === "lvmthin" ? ["images", "rootdir", "none"] : [...CONTENT_TYPES, "none"];
      if (!allowed.includes(x)) throw paramError({ content: `storage does not support content type '${x}'` });
    }
    return list.filter((x) => x !== "none");
  };

  const parseNodes = (s: string | undefined): string[] | undefined => {
    if (!s) return undefined;
    const list = s.split(/[,;\s]+/).filter((x) => x !== "");
    for (const n of list) if (!c.hasNode(n)) throw paramError({ nodes: `invalid format - value '${n}' does not look like a valid node name` });
    return list;
  };

  sim.route({
    method: "POST",
    path: "/storage",
    params: {
      ...common,
      storage: STORAGE,
      type: { type: "string", enum: STORAGE_TYPES },
      path: { type: "string", optional: true },
      vgname: { type: "string", optional: true },
      thinpool: { type: "string", optional: true },
      export: { type: "string", optional: true },
    },
    permissions: { check: ["perm", "/storage", ["Datastore.Allocate"]] },
    handler: (req) => {
      const p = req.params;
      const type = p.type as StorageType;
      if (!SIMULATED_TYPES.includes(type)) throw new PveError(501, `storage type '${p.type}' is not simulated (${SIMULATED_TYPES.join(", ")} are)`);
      // check_config runs before the config lock (no `create storage failed: ` prefix)
      checkTypeOptions(type, p, true, "");
      if (c.storages.has(p.storage)) throw new PveError(500, `create storage failed: storage ID '${p.storage}' already defined`);
      const missing = (k: string) => paramError({ [k]: "property is missing and it is not optional" });
      if (type === "dir" && !p.path) throw missing("path");
      if (type === "nfs" && !p.server) throw missing("server");
      if (type === "nfs" && !p.export) throw missing("export");
      if (type === "lvmthin" && !p.vgname) throw missing("vgname");
      if (type === "lvmthin" && !p.thinpool) throw missing("thinpool");
      // a storage without `content` gets the plugin's default (plugindata content->[1]; STORAGE
      // Plugin.pm parse_config): dir `images,rootdir` (DirPlugin.pm), lvmthin `images,rootdir`, nfs `images`
      // zfspool, rbd: `images,rootdir` / `images` (ZFSPoolPlugin.pm, RBDPlugin.pm plugindata)
      const content = p.content !== undefined ? parseContent(p.content, type) : [...STORAGE_CONTENT[type].default];
      const extra: Record<string, string> = {};
      for (const k of ["options", "prune-backups", "format", "preallocation", "mkdir", "create-base-path", "create-subdirs", ...ZFS_RBD_KEYS]) if (p[k] !== undefined) extra[k] = String(p[k]);
      // ZFSPoolPlugin.pm on_add_hook: `mountpoint` from `zfs get mountpoint <pool>` when not given
      if (type === "zfspool" && extra.mountpoint === undefined) extra.mountpoint = `/${p.pool}`;
      const def: StorageDef = {
        storage: p.storage, type, content,
        // Plugin.pm parse_config: nfs and rbd are in @SHARED_STORAGE; zfspool takes no `shared`
        shared: type === "nfs" || type === "rbd" ? true : !!p.shared,
        // btrfs: a path like dir (BTRFSPlugin.pm `path => { fixed => 1 }`)
        path: type === "nfs" ? `/mnt/pve/${p.storage}` : p.path,
        pool: p.pool,
        vgname: p.vgname, thinpool: p.thinpool, server: p.server, export: p.export,
        nodes: parseNodes(p.nodes), disable: !!p.disable, extra,
      };
      c.addStorage(def);
      const out: Record<string, unknown> = { storage: p.storage, type: p.type };
      return out;
    },
  });

  sim.route({
    method: "PUT",
    path: "/storage/{storage}",
    params: {
      ...common,
      storage: STORAGE,
      delete: { type: "string", format: "pve-configid-list", maxLength: 4096, optional: true },
      digest: { type: "string", maxLength: 64, optional: true },
    },
    permissions: { check: ["perm", "/storage", ["Datastore.Allocate"]] },
    handler: (req) => {
      const p = req.params;
      const s = c.storage(p.storage);
      if (p.digest && p.digest !== storageConfigEntry(s).digest) throw new PveError(500, "update storage failed: detected modified configuration - file changed by other user? Try again.");
      checkTypeOptions(s.type, p, false, "update storage failed: ");
      for (const k of (p.delete ?? "").split(/[,;\s]+/).filter((x: string) => x)) {
        const t = TYPE_OPTIONS[s.type];
        if (t) {
          // API2/Storage/Config.pm update: `no such option`, then `unable to delete required option`
          // (zfspool `pool` is fixed, hence not optional), then `cannot set and delete`
          if (!t.options.includes(k)) throw new PveError(500, `update storage failed: no such option '${k}'`);
          if (t.fixed.includes(k)) throw new PveError(500, `update storage failed: unable to delete required option '${k}'`);
          if (p[k] !== undefined) throw new PveError(500, `update storage failed: cannot set and delete property '${k}' at the same time!`);
          if (k === "pool") s.pool = undefined;
          else if (k === "content") s.content = [...STORAGE_CONTENT[s.type].default]; // parse_config: the plugin default
          else if (k === "nodes") s.nodes = undefined;
          else if (k === "disable") s.disable = false;
          else if (k === "shared") s.shared = false;
          else delete s.extra[k];
          continue;
        }
        if (k === "nodes") s.nodes = undefined;
        else if (k === "disable") s.disable = false;
        else if (k === "shared" && (s.type === "dir" || s.type === "btrfs")) s.shared = false;
        else if (k === "content") throw new PveError(500, "update storage failed: cannot delete required option 'content'");
        else delete s.extra[k];
      }
      if (p.content !== undefined) s.content = parseContent(p.content, s.type, "update storage failed: ");
      if (p.nodes !== undefined) s.nodes = parseNodes(p.nodes);
      if (p.disable !== undefined) s.disable = !!p.disable;
      if (p.shared !== undefined && (s.type === "dir" || s.type === "btrfs")) s.shared = !!p.shared;
      if (p.server !== undefined && s.type === "nfs") s.server = p.server;
      for (const k of ["options", "prune-backups", "format", "preallocation"]) if (p[k] !== undefined) s.extra[k] = String(p[k]);
      if (TYPE_OPTIONS[s.type]) for (const k of ZFS_RBD_KEYS) if (p[k] !== undefined) s.extra[k] = String(p[k]);
      if (p.pool !== undefined && s.type === "rbd") s.pool = p.pool;
      c.addStorage(s);
      return { storage: s.storage, type: s.type };
    },
  });

  sim.route({
    method: "DELETE",
    path: "/storage/{storage}",
    params: { storage: STORAGE },
    permissions: { check: ["perm", "/storage", ["Datastore.Allocate"]] },
    handler: (req) => {
      c.storage(req.params.storage);
      c.removeStorage(req.params.storage);
      sim.pools.poolOfStorage(req.params.storage);
      return null;
    },
  });

  // ---- back door ------------------------------------------------------------------------

  /** `{full: true|false, node?}` makes a storage full or gives it room again. */
  sim.backdoor("PUT", "/storage/{storage}/full", (p, pp) => {
    c.setStorageFull(pp.storage, p.full !== false, p.node);
    return c.storageResources(pp.storage);
  });
  sim.backdoor("GET", "/locks", () => c.locks.held());
  sim.backdoor("GET", "/ha", () => [...c.ha.values()]);
}
