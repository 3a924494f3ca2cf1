// Templating a linked clone (STORAGE Plugin.pm, ZFSPoolPlugin.pm, RBDPlugin.pm, LvmThinPlugin.pm
// create_base; clone_image of the new base), an explicit disk format the storage's alloc_image
// refuses (ZFSPoolPlugin.pm/LvmThinPlugin.pm alloc_image via QEMU create_disks), and a VM that
// pvestatd has not broadcast yet in /cluster/resources (MGR API2Tools.pm extract_vm_stats).
import { Api, createVm, startApi } from "./cluster-helpers";

const conf = (api: Api, vmid: number, node = "pve1") => api.ok("GET", `/nodes/${node}/qemu/${vmid}/config`);

describe("templating a linked clone", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 91, cluster: { sharedStorage: true } });
    await api.ok("POST", "/storage", { storage: "tank", type: "zfspool", pool: "tank/vmdata", sparse: 1 });
  });
  afterAll(() => api.stop());

  test.each([
    // dir/nfs: Plugin.pm create_base keeps `<basevmid>/<basename>/`; clone_image then names from the new base's own `<vmid>/<name>`
    ["shared-nfs", 9100, "shared-nfs:9100/base-9100-disk-0.raw/101/base-101-disk-0.qcow2", "shared-nfs:101/base-101-disk-0.qcow2/102/vm-102-disk-0.qcow2"],
    // zfs: `$basename ? "$basename/$newname"`; clone_image takes the base's own name
    ["tank", 9200, "tank:base-9200-disk-0/base-201-disk-0", "tank:base-201-disk-0/vm-202-disk-0"],
    // lvmthin: the clone is an ordinary LV, renamed like any other
    ["local-lvm", 9300, "local-lvm:base-301-disk-0", "local-lvm:vm-302-disk-0"],
  ] as const)("%s: template of a linked clone keeps its base prefix, and can itself be linked-cloned", async (sid, tpl, based, clone2) => {
    const id = tpl === 9100 ? 101 : tpl === 9200 ? 201 : 301;
    await createVm(api, tpl, { scsi0: `${sid}:1`, ide2: `${sid}:cloudinit` }, true);
    expect((await api.task("POST", `/nodes/pve1/qemu/${tpl}/clone`, { newid: id })).exitstatus).toBe("OK");
    const t = await api.task("POST", `/nodes/pve1/qemu/${id}/template`);
    expect(t.exitstatus).toBe("OK");
    expect((await conf(api, id)).scsi0).toBe(`${based},size=1G`);
    // the templated clone's disk is a base: a linked clone of it works
    expect((await api.task("POST", `/nodes/pve1/qemu/${id}/clone`, { newid: id + 1 })).exitstatus).toBe("OK");
    expect((await conf(api, id + 1)).scsi0).toBe(`${clone2},size=1G`);
    if (sid !== "local-lvm") {
      // the original base is still referenced by the templated clone's name
      const st = await api.task("DELETE", `/nodes/pve1/qemu/${tpl}`);
      expect(st.exitstatus).toMatch(/is still in use by linked cloned$/);
    }
  });
});

describe("an explicit format the storage's alloc_image refuses", () => {
  test.each([
    ["9.1", 292, 102],
    ["8.4", 239, 88],
  ] as const)("PVE %s: zfspool and lvmthin die `unsupported format` (Perl appends the place); rbd ignores the format", async (pveVersion, zfsLine, thinLine) => {
    const api = await startApi({ seed: 92, pveVersion, cluster: { ssh: false } });
    try {
      await api.ok("POST", "/storage", { storage: "tank", type: "zfspool", pool: "tank/vmdata", sparse: 1 });
      await api.ok("POST", "/storage", { storage: "ceph", type: "rbd", pool: "vm-pool" });
      let st = await api.task("POST", "/nodes/pve1/qemu", { vmid: 100, scsi0: "tank:1,format=qcow2" });
      expect(st.exitstatus).toBe(`unable to create VM 100 - unsupported format 'qcow2' at /usr/share/perl5/PVE/Storage/ZFSPoolPlugin.pm line ${zfsLine}.`);
      st = await api.task("POST", "/nodes/pve1/qemu", { vmid: 100, scsi0: "local-lvm:1,format=vmdk" });
      expect(st.exitstatus).toBe(`unable to create VM 100 - unsupported format 'vmdk' at /usr/share/perl5/PVE/Storage/LvmThinPlugin.pm line ${thinLine}.`);
      // nothing was left behind
      expect((await api.ok("GET", "/nodes/pve1/storage/tank/content")).length).toBe(0);
      st = await api.task("POST", "/nodes/pve1/qemu", { vmid: 100, scsi0: "ceph:1,format=qcow2" });
      expect(st.exitstatus).toBe("OK");
      expect((await conf(api, 100)).scsi0).toBe("ceph:vm-100-disk-0,size=1G");
      // a full clone's `format` is only a hint (resolve_format_hint): zfspool falls back to raw
      st = await api.task("POST", "/nodes/pve1/qemu/100/clone", { newid: 101, storage: "tank", format: "qcow2" });
      expect(st.exitstatus).toBe("OK");
      expect((await conf(api, 101)).scsi0).toBe("tank:vm-101-disk-0,size=1G");
    } finally {
      await api.stop();
    }
  });
});

describe("/cluster/resources before pvestatd's first broadcast of a VM", () => {
  test("`{id, vmid, node, type, status: unknown}` plus lock, tags, pool and hastate from the config; the full entry from the next cycle", async () => {
    const api = await startApi({ seed: 93, virtualTime: { startMs: Date.UTC(2026, 0, 5, 9, 0, 0) }, cluster: { ssh: false } });
    try {
      await api.ok("POST", "/pools", { poolid: "web" });
      await createVm(api, 100, { name: "fresh", tags: "a;b", pool: "web" });
      await api.ok("POST", "/cluster/ha/resources", { sid: "vm:100", state: "stopped" });
      const entry = async () => (await api.ok("GET", "/cluster/resources", { type: "vm" })).find((r: { vmid: number }) => r.vmid === 100);
      expect(await entry()).toEqual({ id: "qemu/100", vmid: 100, node: "pve1", type: "qemu", status: "unknown", tags: "a;b", pool: "web", hastate: "stopped" });
      // the pool's member list is built the same way (API2/Pool.pm)
      expect((await api.ok("GET", "/pools/web")).members.find((m: { vmid: number }) => m.vmid === 100)).toMatchObject({ status: "unknown" });
      // the node's own view is current
      expect((await api.ok("GET", "/nodes/pve1/qemu/100/status/current")).status).toBe("stopped");
      await api.s.sim.virtualClock().advance(10_000);
      expect(await entry()).toMatchObject({ status: "stopped", name: "fresh", template: 0, maxmem: 2048 * 1024 ** 2 });
      // the template flag is in the broadcast too (pvestatd.pm update_qemu_status): a conversion
      // shows from the next cycle on; the config says it at once
      await api.task("POST", "/nodes/pve1/qemu/100/template");
      expect((await conf(api, 100)).template).toBe(1);
      expect(await entry()).toMatchObject({ template: 0 });
      await api.s.sim.virtualClock().advance(10_000);
      expect(await entry()).toMatchObject({ template: 1 });
    } finally {
      await api.stop();
    }
  });
});
