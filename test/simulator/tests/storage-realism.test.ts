// REALISM.md §3 (storage types: content, formats, volume names) and §4 (clone, migrate,
// resize constraints): each test pins one row, with the PVE source it follows.
import { Api, createVm, startApi } from "./cluster-helpers";

const ISO = "local:iso/debian.iso";
const putIso = (api: Api, node = "pve1") => api.admin("PUT", `/nodes/${node}/files`, { path: "/var/lib/vz/template/iso/debian.iso", content: "iso" });
const fmtOf = async (api: Api, storage: string) => (await api.ok("GET", "/nodes/pve1/storage", { format: 1, storage }))[0].formats;

describe("§3 storage types: content, formats, volume names", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 71, cluster: { sharedStorage: true } });
    await createVm(api, 100);
  });
  afterAll(() => api.stop());

  // STORAGE DirPlugin.pm plugindata; Plugin.pm parse_config (content->[1]), get_formats
  test("dir: default content images,rootdir; formats qcow2 raw subvol vmdk, default raw or the storage's format", async () => {
    await api.ok("POST", "/storage", { storage: "plain", type: "dir", path: "/srv/plain" });
    expect((await api.ok("GET", "/storage/plain")).content).toBe("images,rootdir");
    expect(await fmtOf(api, "plain")).toEqual({ default: "raw", supported: ["qcow2", "raw", "subvol", "vmdk"] });
    await api.ok("POST", "/storage", { storage: "qdir", type: "dir", path: "/srv/qdir", content: "images", format: "qcow2" });
    expect((await fmtOf(api, "qdir")).default).toBe("qcow2");
    await createVm(api, 101, { scsi0: "plain:1", scsi1: "qdir:1", ide2: "plain:cloudinit" });
    const conf = await api.ok("GET", "/nodes/pve1/qemu/101/config");
    expect([conf.scsi0, conf.scsi1, conf.ide2]).toEqual(["plain:101/vm-101-disk-0.raw,size=1G", "qdir:101/vm-101-disk-0.qcow2,size=1G", "plain:101/vm-101-cloudinit.qcow2,media=cdrom"]);
  });

  // STORAGE NFSPlugin.pm plugindata; SHARED_STORAGE
  test("nfs: default content images, always shared; formats qcow2 raw vmdk, default raw", async () => {
    await api.ok("POST", "/storage", { storage: "nas", type: "nfs", server: "10.0.0.9", export: "/export/nas" });
    expect(await api.ok("GET", "/storage/nas")).toMatchObject({ content: "images", shared: 1 });
    expect(await fmtOf(api, "nas")).toEqual({ default: "raw", supported: ["qcow2", "raw", "vmdk"] });
    await createVm(api, 102, { scsi0: "shared-nfs:1", ide2: "shared-nfs:cloudinit" });
    const conf = await api.ok("GET", "/nodes/pve1/qemu/102/config");
    expect([conf.scsi0, conf.ide2]).toEqual(["shared-nfs:102/vm-102-disk-0.raw,size=1G", "shared-nfs:102/vm-102-cloudinit.qcow2,media=cdrom"]);
  });

  // STORAGE LvmThinPlugin.pm plugindata (no format list: Plugin.pm get_formats raw only)
  test("lvmthin: content images rootdir (both default), raw only, not shared", async () => {
    await api.ok("POST", "/storage", { storage: "thin2", type: "lvmthin", vgname: "pve", thinpool: "data2" });
    expect(await api.ok("GET", "/storage/thin2")).toMatchObject({ content: "images,rootdir" });
    expect((await api.ok("GET", "/nodes/pve1/storage", { storage: "thin2" }))[0].shared).toBe(0);
    expect(await fmtOf(api, "thin2")).toEqual({ default: "raw", supported: ["raw"] });
    const r = await api.req("PUT", "/storage/thin2", { content: "images,iso" });
    expect([r.status, r.body.errors]).toEqual([400, { content: "storage does not support content type 'iso'" }]);
    // LvmThinPlugin.pm alloc_image: `die "unsupported format '$fmt'" if $fmt ne 'raw'` (no newline:
    // Perl appends the place; pve-storage 9.1.7)
    const bad = await api.task("POST", "/nodes/pve1/qemu", { vmid: 103, scsi0: "thin2:1,format=qcow2" });
    expect(bad.exitstatus).toBe("unable to create VM 103 - unsupported format 'qcow2' at /usr/share/perl5/PVE/Storage/LvmThinPlugin.pm line 102.");
    await createVm(api, 103, { scsi0: "thin2:1,format=raw", ide2: "thin2:cloudinit" });
    const conf = await api.ok("GET", "/nodes/pve1/qemu/103/config");
    expect([conf.scsi0, conf.ide2]).toEqual(["thin2:vm-103-disk-0,size=1G", "thin2:vm-103-cloudinit,media=cdrom"]);
    const vol = (await api.ok("GET", "/nodes/pve1/storage/thin2/content")).find((v: any) => v.volid === "thin2:vm-103-disk-0");
    expect(vol.format).toBe("raw");
  });

  // QEMU API2/Qemu.pm create_disks (has_cloudinit)
  test("a second cloud-init drive: `ide0 - cloud-init drive is already attached at 'ide2'`", async () => {
    let r = await api.req("PUT", "/nodes/pve1/qemu/100/config", { ide0: "local-lvm:cloudinit" });
    expect([r.status, r.reason]).toEqual([500, "ide0 - cloud-init drive is already attached at 'ide2'"]);
    expect((await api.ok("GET", "/nodes/pve1/qemu/100/config")).ide0).toBeUndefined();
    expect((await api.ok("GET", "/nodes/pve1/storage/local-lvm/content", { vmid: 100 })).map((v: any) => v.volid)).toEqual(["local-lvm:vm-100-cloudinit", "local-lvm:vm-100-disk-0"]);
    // attaching an existing cloud-init volume is checked too
    r = await api.req("PUT", "/nodes/pve1/qemu/100/config", { ide0: "local-lvm:vm-100-cloudinit,media=cdrom" });
    expect([r.status, r.reason]).toEqual([500, "ide0 - cloud-init drive is already attached at 'ide2'"]);
    // at creation ($conf is the request's parameters)
    const st = await api.task("POST", "/nodes/pve1/qemu", { vmid: 104, ide0: "local-lvm:cloudinit", ide2: "local-lvm:cloudinit" });
    expect(st.exitstatus).toMatch(/^unable to create VM 104 - ide[02] - cloud-init drive is already attached at 'ide[02]'$/);
    // at its own key the check lets it through, but create_disks allocates `vm-<id>-cloudinit`
    // while the old drive still holds that name (it is freed only when the change is applied):
    // LvmThinPlugin.pm alloc_image's lvcreate fails; removing the drive first, then adding it, works
    r = await api.req("PUT", "/nodes/pve1/qemu/100/config", { ide2: "local-lvm:cloudinit" });
    expect([r.status, r.reason]).toEqual([500, `lvcreate 'pve/vm-100-cloudinit' error:   Logical Volume "vm-100-cloudinit" already exists in volume group "pve"`]);
    expect((await api.req("PUT", "/nodes/pve1/qemu/100/config", { delete: "ide2" })).status).toBe(200);
    expect((await api.req("PUT", "/nodes/pve1/qemu/100/config", { ide2: "local-lvm:cloudinit" })).status).toBe(200);
  });

  // QEMU create_disks (existing volume branch)
  test("`format=` differing from an existing volume's format is refused", async () => {
    expect(await api.ok("POST", "/nodes/pve1/storage/local-lvm/content", { vmid: 100, filename: "vm-100-disk-7", size: "1G" })).toBe("local-lvm:vm-100-disk-7");
    const r = await api.req("PUT", "/nodes/pve1/qemu/100/config", { scsi1: "local-lvm:vm-100-disk-7,format=qcow2" });
    expect([r.status, r.reason]).toEqual([500, "drive 'scsi1' - volume 'local-lvm:vm-100-disk-7' - 'format=qcow2' option different from storage format 'raw'"]);
    expect((await api.ok("GET", "/nodes/pve1/qemu/100/config")).scsi1).toBeUndefined();
    expect((await api.req("PUT", "/nodes/pve1/qemu/100/config", { scsi1: "local-lvm:vm-100-disk-7,format=raw" })).status).toBe(200);
  });

  // STORAGE Plugin.pm / LvmThinPlugin.pm volume_has_feature (clone: base); QEMU clone_vm
  test("a linked clone needs a base volume (dir, nfs, lvmthin); else `Linked clone feature is not supported`", async () => {
    let r = await api.req("POST", "/nodes/pve1/qemu/101/clone", { newid: 110, full: 0 });
    expect([r.status, r.reason]).toEqual([500, "Linked clone feature is not supported for 'plain:101/vm-101-disk-0.raw' (scsi0)"]);
    r = await api.req("POST", "/nodes/pve1/qemu/102/clone", { newid: 110, full: 0 });
    expect(r.reason).toBe("Linked clone feature is not supported for 'shared-nfs:102/vm-102-disk-0.raw' (scsi0)");
    expect((await api.task("POST", "/nodes/pve1/qemu/102/template")).exitstatus).toBe("OK");
    expect((await api.task("POST", "/nodes/pve1/qemu/102/clone", { newid: 110 })).exitstatus).toBe("OK");
    expect((await api.ok("GET", "/nodes/pve1/qemu/110/config")).scsi0).toBe("shared-nfs:102/base-102-disk-0.raw/110/vm-110-disk-0.qcow2,size=1G");
    // a linked clone is no base: cloning it linked again is refused
    r = await api.req("POST", "/nodes/pve1/qemu/110/clone", { newid: 111, full: 0 });
    expect(r.reason).toBe("Linked clone feature is not supported for 'shared-nfs:102/base-102-disk-0.raw/110/vm-110-disk-0.qcow2' (scsi0)");
  });

  // STORAGE Storage.pm vdisk_free/volume_is_base_and_used; QEMU QemuServer.pm destroy_vm
  test("destroying a template with linked clones: refused on dir/nfs, allowed on lvmthin", async () => {
    const st = await api.task("DELETE", "/nodes/pve1/qemu/102");
    expect(st.exitstatus).toBe("base volume 'shared-nfs:102/base-102-disk-0.raw' is still in use by linked cloned");
    expect((await api.ok("GET", "/nodes/pve1/qemu/102/config")).lock).toBeUndefined();
    await createVm(api, 9000, {}, true);
    expect((await api.task("POST", "/nodes/pve1/qemu/9000/clone", { newid: 120 })).exitstatus).toBe("OK");
    expect((await api.task("DELETE", "/nodes/pve1/qemu/9000")).exitstatus).toBe("OK");
    const vols = (await api.ok("GET", "/nodes/pve1/storage/local-lvm/content")).map((v: any) => v.volid);
    expect(vols).not.toContain("local-lvm:base-9000-disk-0");
    expect(vols).toContain("local-lvm:vm-120-disk-0");
  });

  // QEMU destroy_vm $remove_owned_drive
  test("destroy: a disk that cannot be freed is a warning, the VM is still removed", async () => {
    await api.ok("POST", "/storage", { storage: "flaky", type: "dir", path: "/srv/flaky", content: "images" });
    await createVm(api, 130, { scsi1: "flaky:1" });
    await api.ok("PUT", "/storage/flaky", { disable: 1 });
    const upid = await api.ok("DELETE", "/nodes/pve1/qemu/130");
    expect((await api.waitTask("pve1", upid)).exitstatus).toBe("WARNINGS: 1");
    expect(await api.log("pve1", upid)).toContain("WARN: Could not remove disk 'flaky:130/vm-130-disk-0.raw', check manually: storage 'flaky' is disabled");
    expect((await api.req("GET", "/nodes/pve1/qemu/130/config")).status).toBe(500);
    expect((await api.ok("GET", "/nodes/pve1/storage/local-lvm/content", { vmid: 130 }))).toEqual([]);
  });
});

describe("§4 clone constraints", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 72, cluster: { sharedStorage: true } });
    await putIso(api);
    // all disks on shared storage
    await createVm(api, 200, { scsi0: "shared-nfs:2", ide2: "shared-nfs:cloudinit", ide0: "none,media=cdrom" });
  });
  afterAll(() => api.stop());

  // QEMU clone_vm $load_and_check
  test("`target` + `storage`: the storage must be enabled on the target and shared", async () => {
    let r = await api.req("POST", "/nodes/pve1/qemu/200/clone", { newid: 201, target: "pve2", storage: "local-lvm" });
    expect([r.status, r.reason]).toEqual([500, "can't clone to non-shared storage 'local-lvm'"]);
    await api.ok("POST", "/storage", { storage: "nas1", type: "nfs", server: "10.0.0.9", export: "/e", nodes: "pve1" });
    r = await api.req("POST", "/nodes/pve1/qemu/200/clone", { newid: 201, target: "pve2", storage: "nas1" });
    expect(r.reason).toBe("storage 'nas1' is not available on node 'pve2'");
    expect((await api.task("POST", "/nodes/pve1/qemu/200/clone", { newid: 201, target: "pve2", storage: "shared-nfs" })).exitstatus).toBe("OK");
    expect((await api.ok("GET", "/nodes/pve2/qemu/201/config")).scsi0).toBe("shared-nfs:201/vm-201-disk-0.raw,size=2G");
  });

  // QEMU $check_storage_access_clone
  test("`target` with an ISO cdrom on a local storage: `can't clone VM to node (VM uses local storage)`", async () => {
    await api.ok("PUT", "/nodes/pve1/qemu/200/config", { ide0: `${ISO},media=cdrom` });
    const r = await api.req("POST", "/nodes/pve1/qemu/200/clone", { newid: 202, target: "pve2" });
    expect([r.status, r.reason]).toEqual([500, "can't clone VM to node 'pve2' (VM uses local storage)"]);
    await api.ok("PUT", "/nodes/pve1/qemu/200/config", { ide0: "none,media=cdrom" });
    expect((await api.task("POST", "/nodes/pve1/qemu/200/clone", { newid: 202, target: "pve2" })).exitstatus).toBe("OK");
  });

  // QEMU clone_vm
  test("full clone of a running VM with tpmstate0: `cannot clone TPM state while VM is running`", async () => {
    await createVm(api, 210, { tpmstate0: "local-lvm:1,version=v2.0" });
    expect((await api.task("POST", "/nodes/pve1/qemu/210/status/start")).exitstatus).toBe("OK");
    const r = await api.req("POST", "/nodes/pve1/qemu/210/clone", { newid: 211 });
    expect([r.status, r.reason]).toEqual([500, "cannot clone TPM state while VM is running"]);
    expect((await api.task("POST", "/nodes/pve1/qemu/210/status/stop")).exitstatus).toBe("OK");
    expect((await api.task("POST", "/nodes/pve1/qemu/210/clone", { newid: 211 })).exitstatus).toBe("OK");
  });

  // QEMU QemuServer.pm resolve_dst_disk_format; STORAGE resolve_format_hint
  test("full clone format: `format`, else the source's, if the target supports it, else its default", async () => {
    await api.ok("POST", "/storage", { storage: "qdir", type: "dir", path: "/srv/qdir", content: "images", format: "qcow2" });
    await createVm(api, 220, { scsi0: "shared-nfs:1,format=qcow2", scsi1: "local-lvm:1" });
    const clone = async (newid: number, params: Record<string, string>) => {
      expect((await api.task("POST", "/nodes/pve1/qemu/220/clone", { newid, ...params })).exitstatus).toBe("OK");
      const conf = await api.ok("GET", `/nodes/pve1/qemu/${newid}/config`);
      return [conf.scsi0, conf.scsi1];
    };
    // no format: the source's (qcow2, raw), not the target's default (qcow2 on qdir)
    expect(await clone(221, { storage: "qdir" })).toEqual(["qdir:221/vm-221-disk-0.qcow2,size=1G", "qdir:221/vm-221-disk-1.raw,size=1G"]);
    expect(await clone(222, { storage: "qdir", format: "vmdk" })).toEqual(["qdir:222/vm-222-disk-0.vmdk,size=1G", "qdir:222/vm-222-disk-1.vmdk,size=1G"]);
    // lvmthin supports raw only
    expect(await clone(223, { storage: "local-lvm", format: "qcow2" })).toEqual(["local-lvm:vm-223-disk-0,size=1G", "local-lvm:vm-223-disk-1,size=1G"]);
    // no storage: each disk stays on its storage, in its format (disk numbers are per storage)
    expect(await clone(224, {})).toEqual(["shared-nfs:224/vm-224-disk-0.qcow2,size=1G", "local-lvm:vm-224-disk-0,size=1G"]);
  });
});

describe("§4 migrate constraints", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 73, cluster: { sharedStorage: true } });
    await putIso(api);
    await putIso(api, "pve2");
    await api.ok("POST", "/storage", { storage: "dirimg", type: "dir", path: "/mnt/dirimg", content: "images" });
  });
  afterAll(() => api.stop());

  const migrate = async (vmid: number, params: Record<string, string | number> = {}) => {
    const upid = await api.ok("POST", `/nodes/pve1/qemu/${vmid}/migrate`, { target: "pve2", ...params });
    const st = await api.waitTask("pve1", upid);
    return { exitstatus: st.exitstatus as string, log: await api.log("pve1", upid) };
  };

  // QEMU migrate_vm (checks before the HA branch)
  test("HA-managed VMs: running without `online` and a lock are refused synchronously", async () => {
    await createVm(api, 300);
    await api.ok("POST", "/cluster/ha/resources", { sid: "vm:300", state: "stopped" });
    api.s.sim.ext.cluster.vms.get(300).config.current.lock = "backup";
    let r = await api.req("POST", "/nodes/pve1/qemu/300/migrate", { target: "pve2" });
    expect([r.status, r.reason]).toEqual([500, "VM is locked (backup)"]);
    delete api.s.sim.ext.cluster.vms.get(300).config.current.lock;
    api.s.sim.ext.cluster.vms.get(300).running = true;
    r = await api.req("POST", "/nodes/pve1/qemu/300/migrate", { target: "pve2" });
    expect([r.status, r.reason]).toEqual([500, "can't migrate running VM without --online"]);
    api.s.sim.ext.cluster.vms.get(300).running = false;
  });

  // QEMU QemuServer.pm check_storage_availability
  test("every volume's storage must be available on the target, and hold its content type: checked before the fork", async () => {
    await api.ok("POST", "/storage", { storage: "only1", type: "dir", path: "/srv/only1", content: "images", nodes: "pve1" });
    await createVm(api, 310, { scsi1: "only1:1" });
    let r = await api.req("POST", "/nodes/pve1/qemu/310/migrate", { target: "pve2" });
    expect([r.status, r.reason]).toEqual([500, "storage 'only1' is not available on node 'pve2'"]);
    await createVm(api, 311, { scsi0: "shared-nfs:1", ide2: "shared-nfs:cloudinit", ide0: `${ISO},media=cdrom` });
    await api.ok("PUT", "/storage/local", { content: "vztmpl,backup,snippets,import" });
    r = await api.req("POST", "/nodes/pve1/qemu/311/migrate", { target: "pve2" });
    expect([r.status, r.reason]).toEqual([500, `${ISO}: content type 'iso' is not available on storage 'local'`]);
    await api.ok("PUT", "/storage/local", { content: "iso,vztmpl,backup,snippets,import" });
  });

  // QEMU QemuMigrate.pm scan_local_volumes ($test_volid); GUEST AbstractMigrate.pm migrate
  test("a local ISO cdrom: `local cdrom image`, the task ends `migration aborted`; a physical cdrom too", async () => {
    const { exitstatus, log } = await migrate(311);
    expect(exitstatus).toBe("migration aborted");
    expect(log).toEqual(expect.arrayContaining([
      `can't migrate local disk '${ISO}': local cdrom image`,
      "ERROR: Problem found while scanning volumes - can't migrate VM - check log",
      "ERROR: migration aborted (duration 00:00:00): Problem found while scanning volumes - can't migrate VM - check log",
    ]));
    expect(log.at(-1)).toBe("TASK ERROR: migration aborted");
    expect((await api.ok("GET", "/nodes/pve1/qemu/311/config")).lock).toBeUndefined();
    await api.ok("PUT", "/nodes/pve1/qemu/311/config", { ide0: "cdrom,media=cdrom" });
    const phys = await migrate(311);
    expect(phys.exitstatus).toBe("migration aborted");
    expect(phys.log).toContain("can't migrate local cdrom drive");
    // the cloud-init image on local storage is "generated": copied
    await api.ok("PUT", "/nodes/pve1/qemu/311/config", { ide0: "none,media=cdrom" });
    await createVm(api, 312);
    expect((await migrate(312)).exitstatus).toBe("OK");
    expect((await api.ok("GET", "/nodes/pve2/qemu/312/config")).ide2).toBe("local-lvm:vm-312-cloudinit,media=cdrom");
  });

  // QEMU QemuMigrate.pm scan_local_volumes
  test("live migration with attached local disks needs `with-local-disks`", async () => {
    await createVm(api, 320);
    expect((await api.task("POST", "/nodes/pve1/qemu/320/status/start")).exitstatus).toBe("OK");
    const { exitstatus, log } = await migrate(320, { online: 1 });
    expect(exitstatus).toBe("migration aborted");
    expect(log).toContain("can't migrate local disk 'local-lvm:vm-320-disk-0': can't live migrate attached local disks without with-local-disks option");
    expect(log).not.toContain("can't migrate local disk 'local-lvm:vm-320-cloudinit': can't live migrate attached local disks without with-local-disks option");
    expect((await migrate(320, { online: 1, "with-local-disks": 1 })).exitstatus).toBe("OK");
  });

  // QEMU QemuMigrate.pm scan_local_volumes ("additional checks for local storage", $test_volid)
  test("linked clones on local dir cannot move, nor their template; lvmthin ones can", async () => {
    await createVm(api, 9100, { scsi0: "dirimg:1", ide2: "dirimg:cloudinit" }, true);
    expect((await api.task("POST", "/nodes/pve1/qemu/9100/clone", { newid: 330 })).exitstatus).toBe("OK");
    const clone = await migrate(330);
    expect(clone.exitstatus).toBe("migration aborted");
    expect(clone.log).toContain(
      "ERROR: migration aborted (duration 00:00:00): Problem found while scanning volumes - can't migrate 'dirimg:9100/base-9100-disk-0.raw/330/vm-330-disk-0.qcow2' as it's a clone of 'base-9100-disk-0.raw' at /usr/share/perl5/PVE/QemuMigrate.pm line 586.",
    );
    const tpl = await migrate(9100);
    expect(tpl.exitstatus).toBe("migration aborted");
    expect(tpl.log).toContain("can't migrate local disk 'dirimg:9100/base-9100-disk-0.raw': referenced by linked clone(s)");
    expect(tpl.log).toContain("ERROR: Problem found while scanning volumes - can't migrate VM - check log");
    // lvmthin: the clone's name has no base, and the base does not count as used
    await createVm(api, 9200, {}, true);
    expect((await api.task("POST", "/nodes/pve1/qemu/9200/clone", { newid: 340 })).exitstatus).toBe("OK");
    expect((await migrate(340)).exitstatus).toBe("OK");
    expect((await migrate(9200)).exitstatus).toBe("OK");
  });
});
