// /nodes/{node}/storage...: status, content (file-based content types are REAL files in
// the node's file tree, so snippets written over SFTP appear here), volume info/delete,
// download-url (simulated: no network; the file appears after the latency model's time).
// STORAGE API2/Storage/{Status,Content}.pm, Plugin.pm `list_volumes`/`get_subdir_files`.

import * as fs from "fs";
import * as path from "path";
import { createHash } from "crypto";
import type { Sim } from "../sim";
import { PveError, paramError } from "../types";
import { CONTENT_SUBDIR, Cluster, StorageDef, clusterOf, parseVolid, storageFormats } from "../state/cluster";
import { NODE, OPT_STORAGE, OPT_VMID, STORAGE, VMID, checkNode } from "./common";
import { RemoteFile, assertOvaContents, remoteFileFor, untrustedFileSizeInfo, wgetOutcome } from "../remote";

const FILE_CONTENT: Record<string, string> = { iso: "iso", vztmpl: "vztmpl", snippets: "snippets", import: "import" };
const EXT_RE: Record<string, RegExp> = {
  iso: /\.(iso|img)$/i,
  vztmpl: /\.tar\.([gx]z|zst|bz2)$/i,
  import: /\.(ova|ovf|qcow2|raw|vmdk)$/i,
};
// What download-url accepts (STORAGE API2/Storage/Status.pm `download_url`; Storage.pm
// `$ISO_EXT_RE_0`, `$VZTMPL_EXT_RE_1` (plain `.tar` too), `$UPLOAD_IMPORT_EXT_RE_1`: no `.ovf`,
// case-sensitive, after `$SAFE_CHAR_CLASS_RE` characters).
const DOWNLOAD_EXT_RE: Record<string, RegExp> = {
  iso: /[^/]+\.(?:iso|img)$/i,
  vztmpl: /[^/]+\.(?:tar(?!\.)|tar\.(?:gz|xz|zst|bz2))$/i,
  import: /[a-zA-Z0-9\-.+=_]+\.(ova|qcow2|raw|vmdk)$/,
};

function fileFormat(content: string, name: string): string {
  if (content === "iso") return "iso";
  if (content === "snippets") return "snippet";
  if (content === "vztmpl") {
    const m = /\.tar\.(gz|xz|zst|bz2)$/.exec(name);
    return m ? `t${m[1] === "zst" ? "zst" : m[1] === "bz2" ? "bz2" : m[1]}` : "tgz";
  }
  const m = /\.(ova|ovf|qcow2|raw|vmdk)$/.exec(name);
  return m ? m[1] : "raw";
}

/** The volume list of a storage on a node, as `GET .../content` returns it. */
function listContent(c: Cluster, s: StorageDef, node: string, content?: string, vmid?: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  if (s.path) {
    for (const ct of s.content) {
      if (!FILE_CONTENT[ct] || (content && content !== ct)) continue;
      const dir = c.hostPath(node, `${s.path}/${CONTENT_SUBDIR[ct]}`);
      let names: string[] = [];
      try {
        names = fs.readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        const st = fs.statSync(path.join(dir, name));
        if (!st.isFile()) continue;
        if (ct !== "snippets" && EXT_RE[ct] && !EXT_RE[ct].test(name)) continue;
        if (vmid !== undefined) continue;
        out.push({ volid: `${s.storage}:${ct}/${name}`, content: ct, format: fileFormat(ct, name), size: st.size, ctime: Math.floor(st.ctimeMs / 1000) });
      }
    }
  }
  if (!content || content === "images") {
    if (s.content.includes("images") || c.volumesOf(s.storage, node).length) {
      for (const v of c.volumesOf(s.storage, node)) {
        if (vmid !== undefined && v.vmid !== vmid) continue;
        const e: Record<string, unknown> = { volid: v.volid, content: "images", format: v.format, size: v.size, ctime: v.ctime, used: v.parent ? 0 : v.size };
        if (v.vmid !== undefined) e.vmid = v.vmid;
        // ZFSPoolPlugin.pm zfs_list_zvol / RBDPlugin.pm rbd_ls: the clone's origin, `<base>@__base__`
        // (BTRFSPlugin.pm list_images: a raw volume's parent is qemu-img's backing file, and a
        // subvolume snapshot has none)
        if (v.parent && !(s.type === "btrfs" && (v.format === "raw" || v.format === "subvol"))) {
          e.parent = s.type === "zfspool" || s.type === "rbd" ? `${v.parent.replace(/^[^:]+:/, "").split("/").pop()}@__base__` : v.parent.replace(/^[^:]+:/, "");
        }
        out.push(e);
      }
    }
  }
  return out.sort((a, b) => String(a.volid).toLowerCase().localeCompare(String(b.volid).toLowerCase()));
}

/** STORAGE `path` of an image volume: LvmThinPlugin `/dev/<vg>/<lv>`; ZFSPoolPlugin a zvol
 *  `/dev/zvol/<pool>/<name>` (subvol: `<mountpoint>/<name>`); RBDPlugin `rbd:<pool>[/<ns>]/<name>`
 *  with the ceph connect options (CephConfig.pm ceph_connect_option: pveceph-managed without
 *  `monhost`) or with `krbd` the mapped device `/dev/rbd-pve/<fsid>/<pool>/<name>`; BTRFSPlugin.pm
 *  filesystem_path: a raw image is `disk.raw` in a subvolume named after it
 *  (`images/<vmid>/vm-<vmid>-disk-<n>/disk.raw`); dir-like the file. */
function volumePath(s: StorageDef, volname: string): string {
  const name = volname.split("/").pop()!;
  if (s.type === "lvmthin") return `/dev/${s.vgname}/${name}`;
  if (s.type === "zfspool") return /^(subvol|basevol)-/.test(name) ? `${s.extra.mountpoint ?? `/${s.pool}`}/${name}` : `/dev/zvol/${s.pool}/${name}`;
  if (s.type === "rbd") {
    const rbdPath = `${s.pool || "rbd"}${s.extra.namespace !== undefined ? `/${s.extra.namespace}` : ""}/${name}`;
    if (s.extra.krbd === "1") return `/dev/rbd-pve/${RBD_FSID}/${rbdPath}`;
    const keyring = `/etc/pve/priv/ceph/${s.storage}.keyring`;
    const user = s.extra.username || "admin";
    if (s.extra.monhost === undefined) return `rbd:${rbdPath}:conf=/etc/pve/ceph.conf:id=${user}:keyring=${keyring}`;
    const mon = s.extra.monhost.split(/[\s,;]+/).filter((x) => x).join(";").replace(/:/g, "\\:");
    return `rbd:${rbdPath}:conf=/etc/pve/priv/ceph/${s.storage}.conf:mon_host=${mon}:auth_supported=cephx:id=${user}:keyring=${keyring}`;
  }
  // Plugin.pm filesystem_path: `images/<vmid>/<name>` of the volume's own name (a linked clone's
  // `<tpl>/<base>/` prefix is not part of its path)
  const own = volname.split("/").slice(-2).join("/");
  if (s.type === "btrfs" && /\.raw$/.test(name)) return `${s.path}/images/${own.replace(/\.raw$/, "")}/disk.raw`;
  return `${s.path}/images/${own}`;
}

/** The simulated Ceph cluster's fsid (ceph.conf `[global] fsid`). */
const RBD_FSID = "5f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

export function register(sim: Sim): void {
  const c = clusterOf(sim);
  const opts = c.latency.opts;

  const storageOn = (node: string, storage: string): StorageDef => {
    checkNode(c, node);
    const s = c.storage(storage);
    if (!c.storageOnNode(s, node)) throw new PveError(500, `storage '${storage}' is not available on node '${node}'`);
    return s;
  };

  const statusEntry = (s: StorageDef, node: string, withFormats: boolean) => {
    const u = c.usage(s.storage, node);
    const e: Record<string, unknown> = {
      storage: s.storage, type: s.type, content: [...s.content].sort().join(","), shared: s.shared ? 1 : 0,
      active: s.disable ? 0 : 1, enabled: s.disable ? 0 : 1, total: u.total, used: u.used, avail: u.avail,
      used_fraction: u.total ? u.used / u.total : 0,
    };
    if (withFormats) {
      // STORAGE Plugin.pm get_formats (storage_info sorts `supported`): default raw or the storage's `format`
      e.formats = storageFormats(s);
      e.select_existing = 0;
    }
    return e;
  };

  sim.route({
    method: "GET",
    path: "/nodes/{node}/storage",
    params: {
      node: NODE,
      content: { type: "string", optional: true },
      enabled: { type: "boolean", optional: true },
      format: { type: "boolean", optional: true },
      storage: OPT_STORAGE,
      target: { type: "string", format: "pve-node", optional: true },
    },
    permissions: { user: "all" },
    handler: (req) => {
      const p = req.params;
      checkNode(c, p.node);
      const wanted = p.content ? String(p.content).split(/[,;\s]+/) : [];
      return [...c.storages.values()]
        .filter((s) => c.storageOnNode(s, p.node))
        .filter((s) => !p.storage || s.storage === p.storage)
        .filter((s) => !p.enabled || !s.disable)
        .filter((s) => wanted.every((w) => s.content.includes(w)))
        .filter((s) => !p.target || p.target === p.node || (s.shared && c.storageOnNode(s, p.target)))
        .filter((s) => sim.access.has(req.auth, `/storage/${s.storage}`, "Datastore.Audit") || sim.access.has(req.auth, `/storage/${s.storage}`, "Datastore.AllocateSpace"))
        .map((s) => statusEntry(s, p.node, !!p.format));
    },
  });

  const AUDIT_ANY = ["perm", "/storage/{storage}", ["Datastore.Audit", "Datastore.AllocateSpace"], "any", 1] as ["perm", string, string[], "any", 1];

  sim.route({
    method: "GET",
    path: "/nodes/{node}/storage/{storage}/status",
    params: { node: NODE, storage: STORAGE },
    permissions: { check: AUDIT_ANY },
    handler: (req) => {
      const s = storageOn(req.params.node, req.params.storage);
      const e = statusEntry(s, req.params.node, false);
      delete e.used_fraction;
      delete e.storage;
      return e;
    },
  });

  sim.route({
    method: "GET",
    path: "/nodes/{node}/storage/{storage}/content",
    params: { node: NODE, storage: STORAGE, content: { type: "string", optional: true }, vmid: OPT_VMID },
    permissions: { check: AUDIT_ANY },
    handler: (req) => {
      const s = storageOn(req.params.node, req.params.storage);
      return listContent(c, s, req.params.node, req.params.content, req.params.vmid);
    },
  });

  sim.route({
    method: "POST",
    path: "/nodes/{node}/storage/{storage}/content",
    params: {
      node: NODE, storage: STORAGE, vmid: VMID,
      filename: { type: "string" },
      size: { type: "string", pattern: "\\d+[MG]?" },
      format: { type: "string", enum: ["raw", "qcow2", "subvol", "vmdk"], optional: true },
    },
    permissions: { check: ["perm", "/storage/{storage}", ["Datastore.AllocateSpace"]] },
    handler: async (req) => {
      const p = req.params;
      const s = storageOn(p.node, p.storage);
      const m = /^(\d+)([MG]?)$/.exec(p.size)!;
      const bytes = Number(m[1]) * 1024 * (m[2] === "G" ? 1024 * 1024 : m[2] === "M" ? 1024 : 1);
      // (ZFSPoolPlugin.pm alloc_image checks the name per format: allocVolume)
      if (s.type !== "zfspool" && !new RegExp(`^vm-${p.vmid}-`).test(p.filename)) throw new PveError(500, `illegal name '${p.filename}' - should be 'vm-${p.vmid}-*'`);
      const name = p.filename.replace(/\.(raw|qcow2|vmdk)$/, "");
      // Storage.pm vdisk_alloc, in the API process: under the storage lock (storage-locks.ts)
      const vol = await c.withStorageLock(p.storage, p.node, () => c.allocVolume(p.storage, p.node, p.vmid, bytes, { name, format: p.format, strict: p.format !== undefined }));
      return vol.volid;
    },
  });

  /** A volume on a node: a VM image or a file. */
  const resolveVolume = (node: string, storage: string | undefined, volume: string) => {
    const volid = volume.includes(":") ? volume : `${storage}:${volume}`;
    const pv = parseVolid(volid);
    if (!pv) throw new PveError(500, `unable to parse volume ID '${volume}'`);
    const s = storageOn(node, pv.storage);
    const m = /^(iso|vztmpl|snippets|import)\/(.+)$/.exec(pv.volname);
    if (m && s.path) {
      const file = c.hostPath(node, `${s.path}/${CONTENT_SUBDIR[m[1]]}/${m[2]}`);
      if (!fs.existsSync(file)) throw new PveError(500, `volume '${volid}' does not exist`);
      return { volid, s, file, content: m[1], name: m[2] };
    }
    const vol = c.findVolume(volid, node);
    if (!vol) throw new PveError(500, `no such volume '${volid}'`);
    return { volid, s, vol };
  };

  sim.route({
    method: "GET",
    path: "/nodes/{node}/storage/{storage}/content/{volume}",
    params: { node: NODE, storage: OPT_STORAGE, volume: { type: "string" } },
    permissions: { user: "all", handlerChecks: true },
    handler: (req) => {
      const r = resolveVolume(req.params.node, req.params.storage, req.params.volume);
      sim.access.check(req.auth, `/storage/${r.s.storage}`, ["Datastore.Audit", "Datastore.AllocateSpace"], true);
      if (r.file) {
        const st = fs.statSync(r.file);
        return { format: fileFormat(r.content!, r.name!), path: `${r.s.path}/${CONTENT_SUBDIR[r.content!]}/${r.name}`, size: st.size, used: st.size };
      }
      const v = r.vol!;
      const devpath = volumePath(r.s, v.volname);
      return { format: v.format, path: devpath, size: v.size, used: v.parent ? 0 : v.size };
    },
  });

  sim.route({
    method: "DELETE",
    path: "/nodes/{node}/storage/{storage}/content/{volume}",
    params: { node: NODE, storage: OPT_STORAGE, volume: { type: "string" }, delay: { type: "integer", minimum: 1, maximum: 30, optional: true } },
    permissions: { user: "all", handlerChecks: true },
    handler: async (req) => {
      const { node } = req.params;
      const r = resolveVolume(node, req.params.storage, req.params.volume);
      sim.access.check(req.auth, `/storage/${r.s.storage}`, ["Datastore.Allocate"]);
      // PVE does not look at VM configs here (a disk still attached goes); only a base volume
      // with linked clones is refused, in the worker (STORAGE Storage.pm vdisk_free).
      const id = r.vol?.vmid !== undefined ? `${r.vol.vmid}@${r.s.storage}` : r.s.storage;
      const upid = c.tasks.start(node, "imgdel", id, req.auth.principal, async (ctx) => {
        // Storage.pm vdisk_free: under the storage lock (storage-locks.ts)
        await c.withStorageLock(r.s.storage, node, async () => {
          await ctx.sleep(r.file ? 100 : c.latency.opts.freeDiskMs);
          if (r.file) fs.rmSync(r.file, { force: true });
          else {
            if (c.volumeIsBaseAndUsed(r.volid, node)) {
              throw new Error(`base volume '${r.vol!.volname}' is still in use by linked clones`);
            }
            c.freeVolume(r.volid, node);
          }
        }, (l) => ctx.log(l));
        ctx.log(`Removed volume '${r.volid}'`);
      });
      if (req.params.delay) {
        const t = c.tasks.get(upid)!;
        const done = await c.finishedWithin(t, req.params.delay * 1000);
        if (done) {
          if (t.exitstatus === "OK" || t.exitstatus?.startsWith("WARNINGS")) return null;
          throw new PveError(500, t.exitstatus ?? "unexpected status");
        }
      }
      return upid;
    },
  });

  sim.route({
    method: "POST",
    path: "/nodes/{node}/storage/{storage}/download-url",
    params: {
      node: NODE, storage: STORAGE,
      url: { type: "string", pattern: "https?://.*" },
      content: { type: "string", enum: ["iso", "vztmpl", "import"] },
      filename: { type: "string", maxLength: 255 },
      checksum: { type: "string", optional: true },
      "checksum-algorithm": { type: "string", enum: ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"], optional: true },
      compression: { type: "string", enum: ["gz", "lzo", "zst", "bz2"], optional: true },
      "verify-certificates": { type: "boolean", optional: true },
    },
    permissions: {
      check: ["and", ["perm", "/storage/{storage}", ["Datastore.AllocateTemplate"]], ["or", ["perm", "/", ["Sys.Audit", "Sys.Modify"]], ["perm", "/nodes/{node}", ["Sys.AccessNetwork"]]]],
    },
    handler: (req) => {
      const p = req.params;
      if (p.checksum !== undefined && p["checksum-algorithm"] === undefined) throw paramError({ checksum: "parameter 'checksum' requires parameter 'checksum-algorithm'" });
      if (p["checksum-algorithm"] !== undefined && p.checksum === undefined) throw paramError({ "checksum-algorithm": "parameter 'checksum-algorithm' requires parameter 'checksum'" });
      const s = storageOn(p.node, p.storage);
      // STORAGE Status.pm download_url: the file-based check comes before the content check
      if (!s.path) throw new PveError(500, `can't upload to storage type '${s.type}', not a file based storage!`);
      if (!s.content.includes(p.content)) throw new PveError(500, `storage '${p.storage}' is not configured for content-type '${p.content}'`);
      // Storage.pm normalize_content_filename: the path part is stripped, then unsafe characters replaced
      const filename = String(p.filename).replace(/\n$/, "").replace(/^.*[/\\]/, "").replace(/[^-a-zA-Z0-9_.]/g, "_");
      if (!DOWNLOAD_EXT_RE[p.content].test(filename)) {
        throw paramError({ filename: p.content === "import" ? "invalid filename or wrong extension" : "wrong file extension" });
      }
      const target = c.hostPath(p.node, `${s.path}/${CONTENT_SUBDIR[p.content]}/${filename}`);
      const volid = `${s.storage}:${p.content}/${filename}`;
      // Status.pm download_url: an import file's format is its extension (`ova` is extracted)
      const imageFormat = p.content === "import" ? /\.(ova|qcow2|raw|vmdk)$/.exec(filename)![1] : undefined;
      const verify = p["verify-certificates"] === undefined ? true : !!p["verify-certificates"];
      return c.tasks.start(p.node, "download", filename, req.auth.principal, async (ctx) => {
        if (p.compression && p.content !== "iso") throw new Error(`decompression not supported for ${p.content}`);
        const dest = path.posix.join(s.path!, CONTENT_SUBDIR[p.content], filename);
        ctx.log(`downloading ${p.url} to ${dest}`);
        // COMMON Tools.pm download_file_from_url: an existing file is kept only when its checksum matches
        if (fs.existsSync(target)) {
          if (!p.checksum) throw new Error(`refusing to override existing file '${dest}'`);
          const have = createHash(p["checksum-algorithm"]).update(fs.readFileSync(target)).digest("hex");
          if (have.toLowerCase() === String(p.checksum).toLowerCase()) {
            ctx.log("calculating checksum of existing file...OK, got correct file already, no need to download");
            return;
          }
          ctx.log("calculating checksum of existing file...");
          throw new Error(`checksum mismatch: got '${have}' != expect '${p.checksum}', aborting`);
        }
        // wget into `<dest>.tmp_dwnl.<pid>` (the worker's PID), checksum, decompression, then the
        // content checks of `assert_file_validity` (remote.ts)
        const tmp = `${dest}.tmp_dwnl.${ctx.task.pid}`;
        const remote = remoteFileFor(p.url, c.remoteFiles.get(p.url));
        const wget = wgetOutcome(p.url, tmp, remote, verify, sim.now());
        if (wget.error) {
          await ctx.sleep(200);
          ctx.log(wget.lines.join("\n"));
          throw new Error(wget.error);
        }
        ctx.log(wget.lines.join("\n"));
        await ctx.transfer(`download@${p.node}`, opts.downloadSize, opts.downloadBandwidth);
        const data = Buffer.from(`pve-sim download: ${p.url}\n`);
        if (p.checksum) {
          const got = createHash(p["checksum-algorithm"]).update(data).digest("hex");
          if (got.toLowerCase() !== String(p.checksum).toLowerCase()) {
            ctx.log("calculating checksum...");
            throw new Error(`checksum mismatch: got '${got}' != expect '${p.checksum}'`);
          }
          ctx.log("calculating checksum...OK, checksum verified");
        }
        let file = remote;
        let checked = tmp;
        if (p.compression) {
          // the decompressed file is what the archive held
          checked = `${dest}.tmp_dcom.${ctx.task.pid}`;
          ctx.log(`decompressing ${tmp} to ${checked}`);
          file = { ...remote, format: remote.format === "compressed" ? remote.inner : remote.format };
        }
        const checks = [];
        if (p.content === "iso") checks.push(untrustedFileSizeInfo(checked, file, undefined)); // assert_iso_content
        if (imageFormat === "ova") checks.push(assertOvaContents(checked, file));
        else if (imageFormat) checks.push(untrustedFileSizeInfo(checked, file, imageFormat));
        for (const r of checks) {
          if (r.lines.length) ctx.log(r.lines.join("\n"));
          if (r.error) throw new Error(`failed to verify file: ${r.error}`);
        }
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(target, data);
        if (p.content === "import") c.importSizes.set(`${volid}@${p.node}`, remote.virtualSize ?? opts.importVirtualSize);
        ctx.log(`download of '${p.url}' to '${target.slice(c.hostPath(p.node, "/").length - 1)}' finished`);
      });
    },
  });

  /** What a URL serves (remote.ts `RemoteFile`): `{url, ...fields}`; `{url}` alone forgets it. */
  sim.backdoor("PUT", "/remote", (p) => {
    const { url, ...file } = p as { url?: string } & RemoteFile;
    if (!url) throw new PveError(400, "url is required");
    if (Object.keys(file).length) c.remoteFiles.set(url, file);
    else c.remoteFiles.delete(url);
    return remoteFileFor(url, c.remoteFiles.get(url));
  });

  // ---- back door: files on a node ---------------------------------------------------------

  /** `{path}` absolute on the node. PUT `{path, content}` writes, DELETE removes. */
  sim.backdoor("GET", "/nodes/{node}/files", (p, pp) => {
    const file = c.hostPath(pp.node, p.path);
    if (!fs.existsSync(file)) throw new PveError(404, `no such file ${p.path}`);
    const st = fs.statSync(file);
    return st.isDirectory() ? fs.readdirSync(file) : { path: p.path, content: fs.readFileSync(file, "utf8"), mode: st.mode & 0o7777, size: st.size };
  });
  sim.backdoor("PUT", "/nodes/{node}/files", (p, pp) => {
    const file = c.hostPath(pp.node, p.path);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, String(p.content ?? ""));
    return null;
  });
  sim.backdoor("DELETE", "/nodes/{node}/files", (p, pp) => {
    fs.rmSync(c.hostPath(pp.node, p.path), { force: true });
    return null;
  });
}
