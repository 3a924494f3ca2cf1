// The zfspool and rbd storage types (STORAGE ZFSPoolPlugin.pm, RBDPlugin.pm: plugindata,
// options, alloc_image, create_base, clone_image, volume_has_feature; Plugin.pm parse_config
// @SHARED_STORAGE, get_formats; SectionConfig.pm check_config) and the ZFS install's storages
// (pve-installer Proxmox/Install/StorageConfig.pm get_zfs_config).
import { Api, createVm, startApi } from "./cluster-helpers";

const GiB = 1024 ** 3;

async function fmtOf(api: Api, storage: string, node = "pve1"): Promise<unknown> {
  return (await api.ok("GET", `/nodes/${node}/storage`, { storage, format: 1 }))[0].formats;
}

async function contentOf(api: Api, storage: string, node = "pve1"): Promise<Array<Record<string, unknown>>> {
  return api.ok("GET", `/nodes/${node}/storage/${storage}/content`);
}

describe("zfspool and rbd storages", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 8, cluster: { capacity: { tank: 10 * GiB, ceph: 10 * GiB } } });
    await api.ok("POST", "/storage", { storage: "tank", type: "zfspool", pool: "tank/vmdata" });
    await api.ok("POST", "/storage", { storage: "ceph", type: "rbd", pool: "vm-pool" });
  });
  afterAll(() => api.stop());

  test("zfspool: content images,rootdir (both default), formats raw subvol (default raw), not shared; `pool` required and fixed", async () => {
    const conf = await api.ok("GET", "/storage/tank");
    // on_add_hook records the pool's mount point; no `shared` (zfspool is not in @SHARED_STORAGE)
    expect(conf).toMatchObject({ storage: "tank", type: "zfspool", pool: "tank/vmdata", content: "images,rootdir", mountpoint: "/tank/vmdata" });
    expect(conf.shared).toBeUndefined();
    expect((await api.ok("GET", "/nodes/pve1/storage", { storage: "tank" }))[0]).toMatchObject({ type: "zfspool", shared: 0, content: "images,rootdir" });
    expect(await fmtOf(api, "tank")).toEqual({ default: "raw", supported: ["raw", "subvol"] });

    // SectionConfig check_config against ZFSPoolPlugin.pm options (before the config lock)
    let r = await api.req("POST", "/storage", { storage: "tank2", type: "zfspool" });
    expect([r.status, r.reason]).toEqual([500, "missing value for required option 'pool'"]);
    r = await api.req("POST", "/storage", { storage: "tank2", type: "zfspool", pool: "tank/x", shared: 1 });
    expect([r.status, r.reason]).toEqual([500, "unexpected property 'shared'"]);
    r = await api.req("POST", "/storage", { storage: "tank2", type: "zfspool", pool: "tank/x", format: "qcow2" });
    expect([r.status, r.reason]).toEqual([500, "unexpected property 'format'"]);
    // `pool` is fixed: set only on creation
    r = await api.req("PUT", "/storage/tank", { pool: "tank/other" });
    expect([r.status, r.reason]).toEqual([500, "update storage failed: can't change value of fixed parameter 'pool'"]);
    r = await api.req("PUT", "/storage/tank", { delete: "pool" });
    expect([r.status, r.reason]).toEqual([500, "update storage failed: unable to delete required option 'pool'"]);
    // Plugin.pm decode_value: an unsupported content type is dropped with a warning; none left dies
    r = await api.req("PUT", "/storage/tank", { content: "iso" });
    expect([r.status, r.reason]).toEqual([500, "update storage failed: storage does not support content type 'none'"]);
    await api.ok("PUT", "/storage/tank", { content: "images,iso", sparse: 1, blocksize: "16k" });
    expect(await api.ok("GET", "/storage/tank")).toMatchObject({ content: "images", sparse: 1, blocksize: "16k", pool: "tank/vmdata" });
    await api.ok("PUT", "/storage/tank", { content: "images,rootdir", delete: "sparse,blocksize" });
    const after = await api.ok("GET", "/storage/tank");
    expect([after.content, after.sparse, after.blocksize]).toEqual(["images,rootdir", undefined, undefined]);
  });

  test("rbd: content images,rootdir (default images), raw only, always shared; `pool` may change", async () => {
    const conf = await api.ok("GET", "/storage/ceph");
    expect(conf).toMatchObject({ storage: "ceph", type: "rbd", pool: "vm-pool", content: "images", shared: 1 });
    for (const node of ["pve1", "pve2"]) {
      expect((await api.ok("GET", `/nodes/${node}/storage`, { storage: "ceph" }))[0]).toMatchObject({ type: "rbd", shared: 1 });
      expect(await fmtOf(api, "ceph", node)).toEqual({ default: "raw", supported: ["raw"] });
    }
    let r = await api.req("POST", "/storage", { storage: "ceph2", type: "rbd", sparse: 1 });
    expect([r.status, r.reason]).toEqual([500, "unexpected property 'sparse'"]);
    r = await api.req("POST", "/storage", { storage: "ceph2", type: "rbd", path: "/mnt/x" });
    expect([r.status, r.reason]).toEqual([500, "unexpected property 'path'"]);
    // an external cluster: monhost, krbd, namespace are rbd options; no `pool` needed (default `rbd`)
    await api.ok("POST", "/storage", { storage: "ceph-ext", type: "rbd", monhost: "10.0.0.1 10.0.0.2", krbd: 1, content: "rootdir,images" });
    expect(await api.ok("GET", "/storage/ceph-ext")).toMatchObject({ type: "rbd", monhost: "10.0.0.1 10.0.0.2", krbd: 1, content: "images,rootdir", shared: 1 });
    await api.ok("PUT", "/storage/ceph-ext", { pool: "other", delete: "krbd" });
    const ext = await api.ok("GET", "/storage/ceph-ext");
    expect([ext.pool, ext.krbd]).toEqual(["other", undefined]);
    await api.ok("DELETE", "/storage/ceph-ext");
  });

  test("volume names: vm-<id>-disk-<n>, cloud-init vm-<id>-cloudinit (raw), template base-<id>-disk-<n>, linked clone base-<tpl>-disk-<n>/vm-<id>-disk-<n>", async () => {
    await api.ok("PUT", "/storage/ceph", { content: "images,rootdir" });
    for (const [sid, tpl, clone] of [["tank", 9200, 250], ["ceph", 9300, 350]] as const) {
      await createVm(api, tpl, { scsi0: `${sid}:2`, scsi1: `${sid}:1`, ide2: `${sid}:cloudinit` });
      let conf = await api.ok("GET", `/nodes/pve1/qemu/${tpl}/config`);
      // no `<vmid>/` directory, no format suffix; the cloud-init volume is raw (no `path`: QEMU create_disks)
      expect([conf.scsi0, conf.scsi1, conf.ide2]).toEqual([`${sid}:vm-${tpl}-disk-0,size=2G`, `${sid}:vm-${tpl}-disk-1,size=1G`, `${sid}:vm-${tpl}-cloudinit,media=cdrom`]);
      expect((await contentOf(api, sid)).find((v) => v.volid === `${sid}:vm-${tpl}-cloudinit`)).toMatchObject({ format: "raw", vmid: tpl });
      expect((await api.task("POST", `/nodes/pve1/qemu/${tpl}/template`)).exitstatus).toBe("OK");
      conf = await api.ok("GET", `/nodes/pve1/qemu/${tpl}/config`);
      expect([conf.scsi0, conf.scsi1, conf.ide2]).toEqual([`${sid}:base-${tpl}-disk-0,size=2G`, `${sid}:base-${tpl}-disk-1,size=1G`, `${sid}:vm-${tpl}-cloudinit,media=cdrom`]);

      expect((await api.task("POST", `/nodes/pve1/qemu/${tpl}/clone`, { newid: clone })).exitstatus).toBe("OK");
      conf = await api.ok("GET", `/nodes/pve1/qemu/${clone}/config`);
      expect([conf.scsi0, conf.scsi1, conf.ide2]).toEqual([
        `${sid}:base-${tpl}-disk-0/vm-${clone}-disk-0,size=2G`,
        `${sid}:base-${tpl}-disk-1/vm-${clone}-disk-1,size=1G`,
        `${sid}:vm-${clone}-cloudinit,media=cdrom`, // cloud-init drives are copied, not cloned
      ]);
      // zfs_list_zvol / rbd_ls: raw, owned by the clone, origin `<base>@__base__`
      expect((await contentOf(api, sid)).find((v) => v.volid === `${sid}:base-${tpl}-disk-0/vm-${clone}-disk-0`))
        .toMatchObject({ format: "raw", vmid: clone, parent: `base-${tpl}-disk-0@__base__` });
      // a new disk of the clone takes the next free number
      await api.ok("PUT", `/nodes/pve1/qemu/${clone}/config`, { scsi2: `${sid}:1` });
      expect((await api.ok("GET", `/nodes/pve1/qemu/${clone}/config`)).scsi2).toBe(`${sid}:vm-${clone}-disk-2,size=1G`);
    }
    // STORAGE path: a zvol device; an rbd: URL with the pveceph-managed cluster's options
    expect((await api.ok("GET", "/nodes/pve1/storage/tank/content/tank:base-9200-disk-0%2Fvm-250-disk-0")).path).toBe("/dev/zvol/tank/vmdata/vm-250-disk-0");
    expect((await api.ok("GET", "/nodes/pve1/storage/ceph/content/ceph:vm-9300-cloudinit")).path)
      .toBe("rbd:vm-pool/vm-9300-cloudinit:conf=/etc/pve/ceph.conf:id=admin:keyring=/etc/pve/priv/ceph/ceph.keyring");
  });

  test("linked clone feature: zfspool and rbd clone a base volume, not a current one", async () => {
    for (const [sid, vmid] of [["tank", 210], ["ceph", 310]] as const) {
      await createVm(api, vmid, { scsi0: `${sid}:1`, ide2: `${sid}:cloudinit` });
      const r = await api.req("POST", `/nodes/pve1/qemu/${vmid}/clone`, { newid: vmid + 1, full: 0 });
      expect([r.status, r.reason]).toEqual([500, `Linked clone feature is not supported for '${sid}:vm-${vmid}-disk-0' (scsi0)`]);
      // a full clone copies: plain names, raw whatever the source format was
      expect((await api.task("POST", `/nodes/pve1/qemu/${vmid}/clone`, { newid: vmid + 1 })).exitstatus).toBe("OK");
      expect((await api.ok("GET", `/nodes/pve1/qemu/${vmid + 1}/config`)).scsi0).toBe(`${sid}:vm-${vmid + 1}-disk-0,size=1G`);
    }
    // a qcow2 disk on a dir storage fully cloned to zfspool/rbd becomes raw (resolve_dst_disk_format)
    await api.ok("POST", "/storage", { storage: "dirimg", type: "dir", path: "/mnt/dirimg", content: "images" });
    await createVm(api, 220, { scsi0: "dirimg:1,format=qcow2", ide2: "dirimg:cloudinit" });
    expect((await api.ok("GET", "/nodes/pve1/qemu/220/config")).scsi0).toBe("dirimg:220/vm-220-disk-0.qcow2,size=1G");
    expect((await api.task("POST", "/nodes/pve1/qemu/220/clone", { newid: 221, storage: "tank" })).exitstatus).toBe("OK");
    expect((await api.ok("GET", "/nodes/pve1/qemu/221/config")).scsi0).toBe("tank:vm-221-disk-0,size=1G");
    expect((await contentOf(api, "tank")).find((v) => v.volid === "tank:vm-221-disk-0")).toMatchObject({ format: "raw" });
  });

  test("a base used by a linked clone cannot be freed (zfspool, rbd)", async () => {
    for (const [sid, tpl, clone] of [["tank", 9200, 250], ["ceph", 9300, 350]] as const) {
      const st = await api.task("DELETE", `/nodes/pve1/storage/${sid}/content/${sid}:base-${tpl}-disk-0`);
      expect(st.exitstatus).toBe(`base volume 'base-${tpl}-disk-0' is still in use by linked clones`);
      const d = await api.task("DELETE", `/nodes/pve1/qemu/${tpl}`);
      expect(d.exitstatus).toBe(`base volume '${sid}:base-${tpl}-disk-0' is still in use by linked cloned`);
      expect((await api.task("DELETE", `/nodes/pve1/qemu/${clone}`)).exitstatus).toBe("OK");
      expect((await api.task("DELETE", `/nodes/pve1/qemu/${tpl}`)).exitstatus).toBe("OK");
      expect((await contentOf(api, sid)).filter((v) => ([tpl, clone] as number[]).includes(v.vmid as number))).toEqual([]);
    }
  });

  test("shared-ness: a VM on rbd clones to another node, one on zfspool does not", async () => {
    await createVm(api, 320, { scsi0: "ceph:1", ide2: "ceph:cloudinit" });
    expect((await api.task("POST", "/nodes/pve1/qemu/320/clone", { newid: 321, target: "pve2" })).exitstatus).toBe("OK");
    expect((await api.ok("GET", "/nodes/pve2/qemu/321/config")).scsi0).toBe("ceph:vm-321-disk-0,size=1G");
    expect((await contentOf(api, "ceph", "pve2")).map((v) => v.volid)).toContain("ceph:vm-321-disk-0");
    await createVm(api, 230, { scsi0: "tank:1", ide2: "tank:cloudinit" });
    const r = await api.req("POST", "/nodes/pve1/qemu/230/clone", { newid: 231, target: "pve2" });
    expect([r.status, r.reason]).toEqual([500, "can't clone VM to node 'pve2' (VM uses local storage)"]);
  });

  test("offline migration: a zfspool disk is copied to the target; a zfs linked clone cannot move (its name has a base)", async () => {
    expect((await api.task("POST", "/nodes/pve1/qemu/230/migrate", { target: "pve2" })).exitstatus).toBe("OK");
    expect((await contentOf(api, "tank", "pve2")).map((v) => v.volid)).toEqual(expect.arrayContaining(["tank:vm-230-disk-0", "tank:vm-230-cloudinit"]));
    expect((await contentOf(api, "tank", "pve1")).map((v) => v.volid)).not.toContain("tank:vm-230-disk-0");
    await createVm(api, 9400, { scsi0: "tank:1" }, true);
    expect((await api.task("POST", "/nodes/pve1/qemu/9400/clone", { newid: 401 })).exitstatus).toBe("OK");
    const upid = await api.ok("POST", "/nodes/pve1/qemu/401/migrate", { target: "pve2" });
    expect((await api.waitTask("pve1", upid)).exitstatus).toBe("migration aborted");
    expect((await api.log("pve1", upid)).join("\n")).toMatch(/ERROR: migration aborted \(duration [\d:]+\): Problem found while scanning volumes - can't migrate 'tank:base-9400-disk-0\/vm-401-disk-0' as it's a clone of 'base-9400-disk-0'/);
  });

  test("space: a non-sparse zvol reserves its size, a sparse zvol and an rbd image do not", async () => {
    let st = await api.task("POST", "/nodes/pve1/qemu", { vmid: 240, scsi0: "tank:20" });
    expect(st.exitstatus).toMatch(/zfs error: cannot create 'tank\/vmdata\/vm-240-disk-0': out of space/);
    await api.ok("PUT", "/storage/tank", { sparse: 1 });
    st = await api.task("POST", "/nodes/pve1/qemu", { vmid: 240, scsi0: "tank:20" });
    expect(st.exitstatus).toBe("OK");
    st = await api.task("POST", "/nodes/pve1/qemu", { vmid: 340, scsi0: "ceph:20" });
    expect(st.exitstatus).toBe("OK");
  });
});

describe("ZFS install (cluster option installer: zfs)", () => {
  test.each([
    ["9.1", "backup,import,iso,vztmpl"],
    ["8.4", "backup,iso,vztmpl"],
  ] as const)("PVE %s: `local` dir + `zfspool: local-zfs` pool rpool/data sparse, content images,rootdir; no local-lvm", async (pveVersion, localContent) => {
    const api = await startApi({ seed: 9, pveVersion, cluster: { installer: "zfs", localContent: undefined, ssh: false } });
    try {
      const storages = await api.ok("GET", "/storage");
      expect(storages.map((s: { storage: string }) => s.storage).sort()).toEqual(["local", "local-zfs"]);
      const byId = Object.fromEntries(storages.map((s: { storage: string }) => [s.storage, s]));
      expect(byId.local).toMatchObject({ type: "dir", path: "/var/lib/vz", content: localContent });
      expect(byId["local-zfs"]).toMatchObject({ type: "zfspool", pool: "rpool/data", sparse: 1, content: "images,rootdir" });
      expect(byId["local-zfs"].shared).toBeUndefined();
      expect(byId["local-zfs"].mountpoint).toBeUndefined(); // written by the installer, not through on_add_hook
      const r = await api.req("GET", "/storage/local-lvm");
      expect([r.status, r.reason]).toEqual([500, "storage 'local-lvm' does not exist"]);
      await createVm(api, 100, { scsi0: "local-zfs:4", ide2: "local-zfs:cloudinit" }, true);
      expect((await api.task("POST", "/nodes/pve1/qemu/100/clone", { newid: 101 })).exitstatus).toBe("OK");
      const conf = await api.ok("GET", "/nodes/pve1/qemu/101/config");
      expect([conf.scsi0, conf.ide2]).toEqual(["local-zfs:base-100-disk-0/vm-101-disk-0,size=4G", "local-zfs:vm-101-cloudinit,media=cdrom"]);
      expect((await api.ok("GET", "/nodes/pve1/storage/local-zfs/content/local-zfs:vm-101-cloudinit")).path).toBe("/dev/zvol/rpool/data/vm-101-cloudinit");
    } finally {
      await api.stop();
    }
  });
});
