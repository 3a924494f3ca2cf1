// The btrfs storage type (STORAGE BTRFSPlugin.pm: plugindata, options, alloc_image, create_base,
// clone_image, filesystem_path, list_images, volume_has_feature; QEMU create_disks, clone_disk)
// and the BTRFS and "no thin pool" install layouts (pve-installer Proxmox/Install/StorageConfig.pm
// get_btrfs_config, get_local_config; Install.pm).
import { Api, createVm, startApi } from "./cluster-helpers";

async function contentOf(api: Api, storage: string, node = "pve1"): Promise<Array<Record<string, unknown>>> {
  return api.ok("GET", `/nodes/${node}/storage/${storage}/content`);
}

describe("BTRFS install (cluster option installer: btrfs)", () => {
  test.each([
    ["9.1", "backup,images,import,iso,rootdir,vztmpl"],
    ["8.4", "backup,images,iso,rootdir,vztmpl"],
  ] as const)("PVE %s: `local` disabled; `btrfs: local-btrfs` /var/lib/pve/local-btrfs holds everything; no local-lvm", async (pveVersion, content) => {
    const api = await startApi({ seed: 81, pveVersion, cluster: { installer: "btrfs", localContent: undefined, ssh: false } });
    try {
      const storages = await api.ok("GET", "/storage");
      expect(storages.map((s: { storage: string }) => s.storage).sort()).toEqual(["local", "local-btrfs"]);
      const byId = Object.fromEntries(storages.map((s: { storage: string }) => [s.storage, s]));
      expect(byId.local).toMatchObject({ type: "dir", path: "/var/lib/vz", content: "backup,iso,vztmpl", disable: 1 });
      expect(byId["local-btrfs"]).toMatchObject({ type: "btrfs", path: "/var/lib/pve/local-btrfs", content });
      expect(byId["local-btrfs"].shared).toBeUndefined();
      // a disabled storage is left out of /cluster/resources
      const res = await api.ok("GET", "/cluster/resources", { type: "storage" });
      expect([...new Set(res.map((e: { storage: string }) => e.storage))]).toEqual(["local-btrfs"]);
      expect((await api.ok("GET", "/nodes/pve1/storage", { storage: "local-btrfs", format: 1 }))[0]).toMatchObject({ type: "btrfs", formats: { default: "raw", supported: ["raw", "subvol"] } });
      const r = await api.req("POST", "/nodes/pve1/qemu", { vmid: 100, scsi0: "local:1" });
      expect([r.status, r.body.errors]).toEqual([400, { storage: "storage 'local' does not support vm images" }]);
    } finally {
      await api.stop();
    }
  });
});

describe("btrfs volumes", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 82, cluster: { installer: "btrfs", localContent: undefined } });
  });
  afterAll(() => api.stop());

  test("disks `<id>/vm-<id>-disk-<n>.raw` (a `disk.raw` in a subvolume), cloud-init `<id>/vm-<id>-cloudinit.qcow2`, `format=qcow2` a plain qcow2 file", async () => {
    await createVm(api, 100, { scsi0: "local-btrfs:2", scsi1: "local-btrfs:1,format=qcow2", ide2: "local-btrfs:cloudinit" });
    const conf = await api.ok("GET", "/nodes/pve1/qemu/100/config");
    expect([conf.scsi0, conf.scsi1, conf.ide2]).toEqual([
      "local-btrfs:100/vm-100-disk-0.raw,size=2G", "local-btrfs:100/vm-100-disk-1.qcow2,size=1G", "local-btrfs:100/vm-100-cloudinit.qcow2,media=cdrom",
    ]);
    expect((await api.ok("GET", "/nodes/pve1/storage/local-btrfs/content/local-btrfs:100%2Fvm-100-disk-0.raw")).path).toBe("/var/lib/pve/local-btrfs/images/100/vm-100-disk-0/disk.raw");
    expect((await api.ok("GET", "/nodes/pve1/storage/local-btrfs/content/local-btrfs:100%2Fvm-100-disk-1.qcow2")).path).toBe("/var/lib/pve/local-btrfs/images/100/vm-100-disk-1.qcow2");
    // BTRFSPlugin.pm alloc_image: a sized subvolume is refused
    const st = await api.task("POST", "/nodes/pve1/qemu", { vmid: 101, scsi0: "local-btrfs:1,format=subvol" });
    expect(st.exitstatus).toBe("unable to create VM 101 - btrfs quotas are currently not supported, use an unsized subvolume or a raw file");
  });

  test("template `base-<id>-disk-<n>.raw`; a linked clone is a subvolume snapshot `<new>/vm-<new>-disk-<n>.raw` (no base in its name), its cloud-init drive raw", async () => {
    await createVm(api, 9000, { scsi0: "local-btrfs:2", ide2: "local-btrfs:cloudinit" }, true);
    expect((await api.ok("GET", "/nodes/pve1/qemu/9000/config")).scsi0).toBe("local-btrfs:9000/base-9000-disk-0.raw,size=2G");
    expect((await api.task("POST", "/nodes/pve1/qemu/9000/clone", { newid: 110 })).exitstatus).toBe("OK");
    const conf = await api.ok("GET", "/nodes/pve1/qemu/110/config");
    // clone_disk: the cloud-init format is resolve_format_hint(qcow2) on btrfs: raw
    expect([conf.scsi0, conf.ide2]).toEqual(["local-btrfs:110/vm-110-disk-0.raw,size=2G", "local-btrfs:110/vm-110-cloudinit.raw,media=cdrom"]);
    // list_images: no backing file, so no parent
    const vol = (await contentOf(api, "local-btrfs")).find((v) => v.volid === "local-btrfs:110/vm-110-disk-0.raw");
    expect(vol).toMatchObject({ format: "raw", vmid: 110 });
    expect(vol!.parent).toBeUndefined();
    // nothing in the clone's name points at the base: the template can go first (vdisk_free
    // volume_is_base_and_used is false), and the clone can migrate
    expect((await api.task("POST", "/nodes/pve1/qemu/110/migrate", { target: "pve2" })).exitstatus).toBe("OK");
    expect((await api.task("DELETE", "/nodes/pve1/qemu/9000")).exitstatus).toBe("OK");
    expect((await api.ok("GET", "/nodes/pve2/qemu/110/config")).scsi0).toBe("local-btrfs:110/vm-110-disk-0.raw,size=2G");
  });

  test("linked clone feature: a current raw volume clones (not only a base); a current qcow2 does not; a qcow2 base clones as a qcow2 overlay", async () => {
    await createVm(api, 120, { scsi0: "local-btrfs:1", ide2: "local-btrfs:cloudinit" });
    expect((await api.task("POST", "/nodes/pve1/qemu/120/clone", { newid: 121, full: 0 })).exitstatus).toBe("OK");
    expect((await api.ok("GET", "/nodes/pve1/qemu/121/config")).scsi0).toBe("local-btrfs:121/vm-121-disk-0.raw,size=1G");
    await createVm(api, 130, { scsi0: "local-btrfs:1,format=qcow2", ide2: "local-btrfs:cloudinit" });
    const r = await api.req("POST", "/nodes/pve1/qemu/130/clone", { newid: 131, full: 0 });
    expect([r.status, r.reason]).toEqual([500, "Linked clone feature is not supported for 'local-btrfs:130/vm-130-disk-0.qcow2' (scsi0)"]);
    expect((await api.task("POST", "/nodes/pve1/qemu/130/template")).exitstatus).toBe("OK");
    expect((await api.task("POST", "/nodes/pve1/qemu/130/clone", { newid: 131 })).exitstatus).toBe("OK");
    // DirPlugin clone_image for qcow2: the base is in the name, and it is used
    expect((await api.ok("GET", "/nodes/pve1/qemu/131/config")).scsi0).toBe("local-btrfs:130/base-130-disk-0.qcow2/131/vm-131-disk-0.qcow2,size=1G");
    const st = await api.task("DELETE", "/nodes/pve1/storage/local-btrfs/content/local-btrfs:130%2Fbase-130-disk-0.qcow2");
    expect(st.exitstatus).toBe("base volume '130/base-130-disk-0.qcow2' is still in use by linked clones");
  });

  test("download into local-btrfs import content, then import-from: a raw disk", async () => {
    const dl = await api.task("POST", "/nodes/pve1/storage/local-btrfs/download-url", { url: "https://img.example/debian-12-genericcloud-amd64.qcow2", content: "import", filename: "deb.qcow2" });
    expect(dl.exitstatus).toBe("OK");
    expect((await api.log("pve1", dl.upid))[0]).toBe("downloading https://img.example/debian-12-genericcloud-amd64.qcow2 to /var/lib/pve/local-btrfs/import/deb.qcow2");
    expect((await api.task("POST", "/nodes/pve1/qemu", { vmid: 140, scsi0: "local-btrfs:0,import-from=local-btrfs:import/deb.qcow2" })).exitstatus).toBe("OK");
    expect((await api.ok("GET", "/nodes/pve1/qemu/140/config")).scsi0).toBe("local-btrfs:140/vm-140-disk-0.raw,size=2G");
  });

  test("POST /storage type=btrfs: `path` required and fixed; BTRFSPlugin options only; default content images,rootdir", async () => {
    let r = await api.req("POST", "/storage", { storage: "b2", type: "btrfs" });
    expect([r.status, r.reason]).toEqual([500, "missing value for required option 'path'"]);
    r = await api.req("POST", "/storage", { storage: "b2", type: "btrfs", path: "/mnt/b2", pool: "x" });
    expect([r.status, r.reason]).toEqual([500, "unexpected property 'pool'"]);
    await api.ok("POST", "/storage", { storage: "b2", type: "btrfs", path: "/mnt/b2", nocow: 1 });
    expect(await api.ok("GET", "/storage/b2")).toMatchObject({ type: "btrfs", path: "/mnt/b2", content: "images,rootdir", nocow: 1 });
    r = await api.req("PUT", "/storage/b2", { path: "/mnt/other" });
    expect(r.status).toBe(400); // `path` is not an update parameter (fixed)
  });
});

describe("no thin pool (cluster option installer: local)", () => {
  test("a disk too small for the LVM thin pool: only `local`, with images and rootdir; disks are raw files on it", async () => {
    const api = await startApi({ seed: 83, cluster: { installer: "local", localContent: undefined, ssh: false } });
    try {
      const storages = await api.ok("GET", "/storage");
      expect(storages.map((s: { storage: string; type: string; content: string }) => [s.storage, s.type, s.content])).toEqual([["local", "dir", "backup,images,import,iso,rootdir,vztmpl"]]);
      await createVm(api, 100, { scsi0: "local:2", ide2: "local:cloudinit" }, true);
      expect((await api.ok("GET", "/nodes/pve1/qemu/100/config")).scsi0).toBe("local:100/base-100-disk-0.raw,size=2G");
    } finally {
      await api.stop();
    }
  });
});
