// REALISM.md §1 "Permissions the provider's endpoints check": one test per row, each citing the
// PVE source the behaviour was read from (QEMU API2/Qemu.pm unless said otherwise).

import { Api, asToken, createVm, startApi, statusAndReason, tokenWith, waitUpid as waitUpidOf } from "./cluster-helpers";

let api: Api;

const userWith = (acls: Record<string, string>) => tokenWith(api, acls);

const as = (token: string) => asToken(api, token);
const refused = statusAndReason;
const waitUpid = (r: { status: number; body: any }) => waitUpidOf(api, r);

beforeAll(async () => {
  api = await startApi({ seed: 77, cluster: { ssh: false } });
  await createVm(api, 100);
  await api.ok("POST", "/pools", { poolid: "P" });
  await api.admin("PUT", "/nodes/pve1/files", { path: "/var/lib/vz/template/iso/a.iso", content: "iso" });
});
afterAll(() => api.stop());

describe("create", () => {
  test("VM.Allocate on /vms/{vmid}, or on /pool/{pool} with pool; else a bare 403; drives need no VM.Config.Disk", async () => {
    const tok = await userWith({ "/vms/200": "VM.Allocate", "/pool/P": "VM.Allocate", "/storage/local-lvm": "Datastore.AllocateSpace" });
    const req = as(tok);
    expect(await refused(req("POST", "/nodes/pve1/qemu", { vmid: 201 }))).toEqual([403, "Permission check failed"]);
    // `$check_vm_modify_config_perm` skips drives on create: VM.Allocate and AllocateSpace suffice
    expect((await waitUpid(await req("POST", "/nodes/pve1/qemu", { vmid: 200, scsi0: "local-lvm:1" }))).exitstatus).toBe("OK");
    expect((await waitUpid(await req("POST", "/nodes/pve1/qemu", { vmid: 202, pool: "P" }))).exitstatus).toBe("OK");
    expect(await refused(req("POST", "/nodes/pve1/qemu", { vmid: 203 }))).toEqual([403, "Permission check failed"]);
  });

  test("a pool that does not exist is a 403 (RPCEnvironment.pm check_pool_exist), for create and clone", async () => {
    expect(await refused(api.req("POST", "/nodes/pve1/qemu", { vmid: 210, pool: "nope" }))).toEqual([403, "Permission check failed (pool 'nope' does not exist)"]);
    expect(await refused(api.req("POST", "/nodes/pve1/qemu/100/clone", { newid: 211, pool: "nope" }))).toEqual([403, "Permission check failed (pool 'nope' does not exist)"]);
  });

  test("storage= needs AllocateSpace, ha-managed=1 Sys.Console on /, start=1 VM.PowerMgmt", async () => {
    const req = as(await userWith({ "/vms/220": "VM.Allocate" }));
    expect(await refused(req("POST", "/nodes/pve1/qemu", { vmid: 220, storage: "local-lvm" }))).toEqual([403, "Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)"]);
    expect(await refused(req("POST", "/nodes/pve1/qemu", { vmid: 220, "ha-managed": 1 }))).toEqual([403, "Permission check failed (/, Sys.Console)"]);
    expect(await refused(req("POST", "/nodes/pve1/qemu", { vmid: 220, start: 1 }))).toEqual([403, "Permission check failed (/vms/220, VM.PowerMgmt)"]);
  });
});

describe("drives ($check_storage_access, $check_drive_param)", () => {
  test("a new disk on a storage without images content fails the call with 400, not the task", async () => {
    const r = await api.req("POST", "/nodes/pve1/qemu", { vmid: 230, scsi0: "local:1" });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({ storage: "storage 'local' does not support vm images" });
    const u = await api.req("PUT", "/nodes/pve1/qemu/100/config", { scsi5: "local:1" });
    expect([u.status, u.body.errors]).toEqual([400, { storage: "storage 'local' does not support vm images" }]);
  });

  test("attaching an existing volume: Storage.pm check_volume_access, and images/iso content only", async () => {
    const req = as(await userWith({ "/vms/240": "VM.Allocate" }));
    const iso = { vmid: 240, ide2: "local:iso/a.iso,media=cdrom" };
    expect(await refused(req("POST", "/nodes/pve1/qemu", iso))).toEqual([403, "Permission check failed (/storage/local, Datastore.AllocateSpace|Datastore.Audit)"]);
    // another VM's image: Datastore.Audit on the storage, then VM.Config.Disk on the owner
    const other = { vmid: 240, scsi1: "local-lvm:vm-100-disk-0" };
    expect(await refused(req("POST", "/nodes/pve1/qemu", other))).toEqual([403, "Permission check failed (/storage/local-lvm, Datastore.Audit)"]);
    const req2 = as(await userWith({ "/vms/240": "VM.Allocate", "/storage": "Datastore.Audit" }));
    expect(await refused(req2("POST", "/nodes/pve1/qemu", other))).toEqual([403, "Permission check failed (/vms/100, VM.Config.Disk)"]);
    expect(await refused(req2("POST", "/nodes/pve1/qemu", { vmid: 240, scsi1: "local-lvm:foo" }))).toEqual([500, "missing privileges to access local-lvm:foo"]);
    expect((await waitUpid(await req2("POST", "/nodes/pve1/qemu", iso))).exitstatus).toBe("OK");
    const r = await api.req("PUT", "/nodes/pve1/qemu/100/config", { ide3: "local:snippets/u.yaml,media=cdrom" });
    expect([r.status, r.body.errors]).toEqual([400, { ide3: "content type needs to be 'images' or 'iso'" }]);
  });

  test("an ISO needs media=cdrom", async () => {
    const r = await api.req("PUT", "/nodes/pve1/qemu/100/config", { ide3: "local:iso/a.iso" });
    expect([r.status, r.body.errors]).toEqual([400, { ide3: "explicit 'media=cdrom' is required for iso images" }]);
  });

  test("import-from: images/import sources only; a VM disk needs VM.Clone on its owner, a file check_volume_access", async () => {
    const r = await api.req("POST", "/nodes/pve1/qemu", { vmid: 250, scsi0: "local-lvm:0,import-from=local:iso/a.iso" });
    expect([r.status, r.body.errors]).toEqual([400, { scsi0: "local:iso/a.iso has wrong type 'iso' - needs to be 'images' or 'import'" }]);
    const req = as(await userWith({ "/vms/250": "VM.Allocate", "/storage/local-lvm": "Datastore.AllocateSpace" }));
    expect(await refused(req("POST", "/nodes/pve1/qemu", { vmid: 250, scsi0: "local-lvm:0,import-from=local-lvm:vm-100-disk-0" }))).toEqual([403, "Permission check failed (/vms/100, VM.Clone)"]);
    expect(await refused(req("POST", "/nodes/pve1/qemu", { vmid: 250, scsi0: "local-lvm:0,import-from=local:import/d.qcow2" }))).toEqual([
      403, "Permission check failed (/storage/local, Datastore.AllocateSpace|Datastore.Audit)",
    ]);
  });

  test("a physical CD-ROM drive needs Sys.Console on /", async () => {
    const req = as(await userWith({ "/vms/100": "VM.Config.CDROM" }));
    expect(await refused(req("PUT", "/nodes/pve1/qemu/100/config", { ide3: "cdrom,media=cdrom" }))).toEqual([403, "Permission check failed (/, Sys.Console)"]);
  });
});

describe("config keys", () => {
  test("CPU, memory and network keys need VM.Config.CPU / Memory / Network", async () => {
    const req = as(await userWith({ "/vms/100": "VM.Config.Options" }));
    const put = (form: Record<string, string>) => refused(req("PUT", "/nodes/pve1/qemu/100/config", form));
    for (const k of ["cores", "sockets", "cpulimit", "numa"]) expect([k, ...(await put({ [k]: "1" }))]).toEqual([k, 403, "Permission check failed (/vms/100, VM.Config.CPU)"]);
    expect(await put({ numa0: "cpus=0,memory=512" })).toEqual([403, "Permission check failed (/vms/100, VM.Config.CPU)"]);
    for (const k of ["memory", "balloon"]) expect([k, ...(await put({ [k]: "1024" }))]).toEqual([k, 403, "Permission check failed (/vms/100, VM.Config.Memory)"]);
    expect(await put({ net1: "virtio,bridge=vmbr0" })).toEqual([403, "Permission check failed (/vms/100, VM.Config.Network)"]);
    const ok = as(await userWith({ "/vms/100": "VM.Config.CPU,VM.Config.Memory,VM.Config.Network", "/sdn": "SDN.Use" }));
    expect((await ok("PUT", "/nodes/pve1/qemu/100/config", { cores: "2", memory: "2048", net0: "virtio,bridge=vmbr0" })).status).toBe(200);
  });

  test("freeze needs VM.PowerMgmt", async () => {
    const req = as(await userWith({ "/vms/100": "VM.Config.Options" }));
    expect(await refused(req("PUT", "/nodes/pve1/qemu/100/config", { freeze: "1" }))).toEqual([403, "Permission check failed (/vms/100, VM.PowerMgmt)"]);
    // the route still wants one VM.Config.* privilege (`$vm_config_perm_list`, any)
    const power = as(await userWith({ "/vms/100": "VM.PowerMgmt" }));
    expect(await refused(power("PUT", "/nodes/pve1/qemu/100/config", { freeze: "0" }))).toEqual([
      403, "Permission check failed (/vms/100, VM.Config.Disk|VM.Config.CDROM|VM.Config.CPU|VM.Config.Memory|VM.Config.Network|VM.Config.HWType|VM.Config.Options|VM.Config.Cloudinit)",
    ]);
    const ok = as(await userWith({ "/vms/100": "VM.PowerMgmt,VM.Config.Options" }));
    expect((await ok("PUT", "/nodes/pve1/qemu/100/config", { freeze: "0" })).status).toBe(200);
  });

  test("tags need VM.Config.Options (GUEST assert_tag_permissions, datacenter defaults: any tag)", async () => {
    const req = as(await userWith({ "/vms/100": "VM.Config.Disk" }));
    expect(await refused(req("PUT", "/nodes/pve1/qemu/100/config", { tags: "a" }))).toEqual([403, "Permission check failed (/vms/100, VM.Config.Options)"]);
    const ok = as(await userWith({ "/vms/100": "VM.Config.Options" }));
    expect((await ok("PUT", "/nodes/pve1/qemu/100/config", { tags: "free-tag;x" })).status).toBe(200);
    expect((await api.ok("GET", "/nodes/pve1/qemu/100/config")).tags).toBe("free-tag;x");
  });

  test("drives by old and new value under the lock: a cloud-init drive needs Cloudinit AND CDROM", async () => {
    const disk = as(await userWith({ "/vms/100": "VM.Config.Disk" }));
    expect(await refused(disk("PUT", "/nodes/pve1/qemu/100/config", { ide3: "local-lvm:cloudinit" }))).toEqual([403, "Permission check failed (/vms/100, VM.Config.Cloudinit)"]);
    const ci = as(await userWith({ "/vms/100": "VM.Config.Cloudinit" }));
    expect(await refused(ci("PUT", "/nodes/pve1/qemu/100/config", { ide3: "local-lvm:cloudinit" }))).toEqual([403, "Permission check failed (/vms/100, VM.Config.CDROM)"]);
    // replacing a disk with a CD-ROM: the old value (a disk) needs VM.Config.Disk
    const cd = as(await userWith({ "/vms/100": "VM.Config.CDROM" }));
    expect(await refused(cd("PUT", "/nodes/pve1/qemu/100/config", { scsi0: "none,media=cdrom" }))).toEqual([403, "Permission check failed (/vms/100, VM.Config.Disk)"]);
    // the async variant checks in the worker: the task fails
    const st = await waitUpid(await cd("POST", "/nodes/pve1/qemu/100/config", { scsi0: "none,media=cdrom" }));
    expect(st.exitstatus).toBe("Permission check failed (/vms/100, VM.Config.Disk)");
  });

  test("deleting unusedN: protection, VM.Config.Disk + AllocateSpace, the volume freed at once", async () => {
    await createVm(api, 260);
    await api.ok("PUT", "/nodes/pve1/qemu/260/config", { scsi1: "local-lvm:1" });
    await api.ok("PUT", "/nodes/pve1/qemu/260/config", { scsi1: "local-lvm:2" });
    const conf = await api.ok("GET", "/nodes/pve1/qemu/260/config");
    const old = String(conf.unused0);
    expect(old).toMatch(/^local-lvm:vm-260-disk-\d+$/);
    await api.ok("PUT", "/nodes/pve1/qemu/260/config", { protection: 1 });
    expect(await refused(api.req("PUT", "/nodes/pve1/qemu/260/config", { delete: "unused0" }))).toEqual([500, `can't remove unused disk '${old}' - protection mode enabled`]);
    expect(await refused(api.req("PUT", "/nodes/pve1/qemu/260/config", { delete: "scsi1" }))).toEqual([500, "can't remove drive 'scsi1' - protection mode enabled"]);
    await api.ok("PUT", "/nodes/pve1/qemu/260/config", { protection: 0 });
    const req = as(await userWith({ "/vms/260": "VM.Config.Disk" }));
    expect(await refused(req("PUT", "/nodes/pve1/qemu/260/config", { delete: "unused0" }))).toEqual([403, "Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)"]);
    // a running VM too: unusedN is removed at once, never left pending
    await api.task("POST", "/nodes/pve1/qemu/260/status/start");
    const ok = as(await userWith({ "/vms/260": "VM.Config.Disk", "/storage/local-lvm": "Datastore.AllocateSpace" }));
    expect((await ok("PUT", "/nodes/pve1/qemu/260/config", { delete: "unused0" })).status).toBe(200);
    expect((await api.ok("GET", "/nodes/pve1/qemu/260/config")).unused0).toBeUndefined();
    const vols = (await api.ok("GET", "/nodes/pve1/storage/local-lvm/content")).map((v: any) => v.volid);
    expect(vols).not.toContain(old);
    await api.task("POST", "/nodes/pve1/qemu/260/status/stop");
  });

  test("netN: SDN.Use on the tag and every trunk VLAN, and on the old NIC's bridge", async () => {
    const req = as(await userWith({ "/vms/100": "VM.Config.Network", "/sdn/zones/localnetwork/vmbr0/10": "SDN.Use", "/sdn/zones/localnetwork/vmbr1": "SDN.Use" }));
    const put = (form: Record<string, string>) => refused(req("PUT", "/nodes/pve1/qemu/100/config", form));
    expect(await put({ net1: "virtio,bridge=vmbr0,tag=10" })).toEqual([200, "OK"]);
    expect(await put({ net2: "virtio,bridge=vmbr0,tag=10,trunks=10;20-21" })).toEqual([403, "Permission check failed (/sdn/zones/localnetwork/vmbr0/20, SDN.Use)"]);
    // net0 is on vmbr0 without a tag: moving it to vmbr1 needs vmbr0 as well
    expect(await put({ net0: "virtio,bridge=vmbr1" })).toEqual([403, "Permission check failed (/sdn/zones/localnetwork/vmbr0, SDN.Use)"]);
    expect(await put({ delete: "net0" })).toEqual([403, "Permission check failed (/sdn/zones/localnetwork/vmbr0, SDN.Use)"]);
  });
});

describe("other endpoints", () => {
  test("clone route check: VM.Clone on the source and VM.Allocate on newid or the pool", async () => {
    const audit = as(await userWith({ "/vms/100": "VM.Audit" }));
    expect(await refused(audit("POST", "/nodes/pve1/qemu/100/clone", { newid: 300 }))).toEqual([403, "Permission check failed (/vms/100, VM.Clone)"]);
    const clone = as(await userWith({ "/vms/100": "VM.Clone" }));
    expect(await refused(clone("POST", "/nodes/pve1/qemu/100/clone", { newid: 300 }))).toEqual([403, "Permission check failed"]);
    expect(await refused(clone("POST", "/nodes/pve1/qemu/100/clone", { newid: 300, pool: "P" }))).toEqual([403, "Permission check failed"]);
  });

  test("clone: AllocateSpace on each disk's target storage and on vmstatestorage, before the fork", async () => {
    const req = as(await userWith({ "/vms/100": "VM.Clone", "/vms/301": "VM.Allocate" }));
    expect(await refused(req("POST", "/nodes/pve1/qemu/100/clone", { newid: 301, full: 1 }))).toEqual([403, "Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)"]);
    await createVm(api, 302, { vmstatestorage: "local" });
    const req2 = as(await userWith({ "/vms/302": "VM.Clone", "/vms/303": "VM.Allocate", "/storage/local-lvm": "Datastore.AllocateSpace" }));
    expect(await refused(req2("POST", "/nodes/pve1/qemu/302/clone", { newid: 303, full: 1 }))).toEqual([403, "Permission check failed (/storage/local, Datastore.AllocateSpace)"]);
  });

  test("resize: VM.Config.Disk on the route, AllocateSpace on the disk's storage in the worker", async () => {
    const req = as(await userWith({ "/vms/100": "VM.Config.Disk" }));
    const st = await waitUpid(await req("PUT", "/nodes/pve1/qemu/100/resize", { disk: "scsi0", size: "+1G" }));
    expect(st.exitstatus).toBe("Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)");
    const audit = as(await userWith({ "/vms/100": "VM.Audit" }));
    expect(await refused(audit("PUT", "/nodes/pve1/qemu/100/resize", { disk: "scsi0", size: "+1G" }))).toEqual([403, "Permission check failed (/vms/100, VM.Config.Disk)"]);
  });

  test("migrate: root-only options; targetstorage needs VM.Config.Disk and AllocateSpace on the target storage", async () => {
    const req = as(await userWith({ "/vms/100": "VM.Migrate" }));
    for (const [k, v] of [["force", 1], ["migration_type", "secure"], ["migration_network", "10.0.0.0/24"]] as const) {
      const r = await req("POST", "/nodes/pve1/qemu/100/migrate", { target: "pve2", [k]: v });
      expect([k, r.status, r.body.errors]).toEqual([k, 400, { [k]: "Only root may use this option." }]);
    }
    expect(await refused(req("POST", "/nodes/pve1/qemu/100/migrate", { target: "pve2", targetstorage: "local-lvm" }))).toEqual([403, "Permission check failed (/vms/100, VM.Config.Disk)"]);
    const req2 = as(await userWith({ "/vms/100": "VM.Migrate,VM.Config.Disk" }));
    expect(await refused(req2("POST", "/nodes/pve1/qemu/100/migrate", { target: "pve2", targetstorage: "local-lvm" }))).toEqual([403, "Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)"]);
  });

  test("power: VM.PowerMgmt; root-only options; suspend to disk needs AllocateSpace on the state storage", async () => {
    await createVm(api, 310);
    const none = as(await userWith({ "/vms/310": "VM.Audit" }));
    for (const a of ["start", "stop", "shutdown", "reboot", "reset", "suspend", "resume"]) {
      expect([a, ...(await refused(none("POST", `/nodes/pve1/qemu/310/status/${a}`)))]).toEqual([a, 403, "Permission check failed (/vms/310, VM.PowerMgmt)"]);
    }
    const req = as(await userWith({ "/vms/310": "VM.PowerMgmt,VM.Config.Disk" }));
    for (const [a, k, v] of [["start", "migratedfrom", "pve2"], ["start", "stateuri", "tcp"], ["stop", "keepActive", 1], ["shutdown", "keepActive", 1], ["resume", "nocheck", 1]] as const) {
      const r = await req("POST", `/nodes/pve1/qemu/310/status/${a}`, { [k]: v });
      expect([a, k, r.status, r.body.errors]).toEqual([a, k, 400, { [k]: "Only root may use this option." }]);
    }
    await api.task("POST", "/nodes/pve1/qemu/310/status/start");
    expect(await refused(req("POST", "/nodes/pve1/qemu/310/status/suspend", { todisk: 1 }))).toEqual([403, "Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)"]);
    expect(await refused(req("POST", "/nodes/pve1/qemu/310/status/suspend", { todisk: 1, statestorage: "local" }))).toEqual([403, "Permission check failed (/storage/local, Datastore.AllocateSpace)"]);
    await api.task("POST", "/nodes/pve1/qemu/310/status/stop");
  });

  test("destroy and template need VM.Allocate", async () => {
    const req = as(await userWith({ "/vms/100": "VM.Audit,VM.Config.Disk" }));
    expect(await refused(req("DELETE", "/nodes/pve1/qemu/100"))).toEqual([403, "Permission check failed (/vms/100, VM.Allocate)"]);
    expect(await refused(req("POST", "/nodes/pve1/qemu/100/template"))).toEqual([403, "Permission check failed (/vms/100, VM.Allocate)"]);
  });

  test("HA resources: GET Sys.Audit on /, changes Sys.Console on /", async () => {
    const req = as(await userWith({ "/vms": "VM.Audit,VM.PowerMgmt,VM.Allocate" }));
    expect(await refused(req("GET", "/cluster/ha/resources"))).toEqual([403, "Permission check failed (/, Sys.Audit)"]);
    expect(await refused(req("POST", "/cluster/ha/resources", { sid: "vm:100" }))).toEqual([403, "Permission check failed (/, Sys.Console)"]);
    const audit = as(await userWith({ "/": "Sys.Audit" }));
    expect((await audit("GET", "/cluster/ha/resources")).status).toBe(200);
    expect(await refused(audit("POST", "/cluster/ha/resources", { sid: "vm:100" }))).toEqual([403, "Permission check failed (/, Sys.Console)"]);
  });

  test("cloudinit dump masks cipassword only for a caller without VM.Config.Cloudinit", async () => {
    await createVm(api, 320, { cipassword: "s3cret", ciuser: "u" });
    // GET config masks it (vm_config); the stored value is what the dump prints
    expect((await api.ok("GET", "/nodes/pve1/qemu/320/config")).cipassword).toBe("**********");
    const stored = String(api.s.sim.ext.cluster.vms.get(320).config.current.cipassword);
    const audit = as(await userWith({ "/vms/320": "VM.Audit" }));
    const masked = await audit("GET", "/nodes/pve1/qemu/320/cloudinit/dump", { type: "user" });
    expect(masked.body.data).toMatch(/^password: \*{10}$/m);
    const ci = as(await userWith({ "/vms/320": "VM.Audit,VM.Config.Cloudinit" }));
    const clear = await ci("GET", "/nodes/pve1/qemu/320/cloudinit/dump", { type: "user" });
    expect(clear.body.data.split("\n")).toContain(`password: ${stored}`);
    expect(clear.body.data).not.toMatch(/\*{10}/);
  });

  test("download-url: AllocateTemplate on the storage and (Sys.Audit+Sys.Modify on / or Sys.AccessNetwork on the node)", async () => {
    const params = { url: "https://x/b.iso", content: "iso", filename: "b.iso" };
    const tmpl = as(await userWith({ "/storage/local": "Datastore.AllocateTemplate" }));
    expect(await refused(tmpl("POST", "/nodes/pve1/storage/local/download-url", params))).toEqual([403, "Permission check failed"]);
    const net = as(await userWith({ "/nodes/pve1": "Sys.AccessNetwork" }));
    expect(await refused(net("POST", "/nodes/pve1/storage/local/download-url", params))).toEqual([403, "Permission check failed (/storage/local, Datastore.AllocateTemplate)"]);
    const both = as(await userWith({ "/storage/local": "Datastore.AllocateTemplate", "/nodes/pve1": "Sys.AccessNetwork" }));
    expect((await waitUpid(await both("POST", "/nodes/pve1/storage/local/download-url", params))).exitstatus).toBe("OK");
  });

  test("/cluster/resources: storage needs Datastore.Audit; pool entries and a VM's pool field need Pool.Audit", async () => {
    await createVm(api, 330, { pool: "P" });
    const space = as(await userWith({ "/storage": "Datastore.AllocateSpace", "/vms/330": "VM.Audit" }));
    const rows = (await space("GET", "/cluster/resources")).body.data;
    expect(rows.filter((r: any) => r.type === "storage")).toEqual([]);
    expect(rows.filter((r: any) => r.type === "pool")).toEqual([]);
    expect(rows.find((r: any) => r.vmid === 330)).toEqual(expect.not.objectContaining({ pool: expect.anything() }));
    const pool = as(await userWith({ "/storage/local": "Datastore.Audit", "/pool/P": "Pool.Audit", "/vms/330": "VM.Audit" }));
    const rows2 = (await pool("GET", "/cluster/resources")).body.data;
    expect(rows2.filter((r: any) => r.type === "pool")).toEqual([{ id: "/pool/P", pool: "P", type: "pool" }]);
    expect(rows2.find((r: any) => r.vmid === 330)?.pool).toBe("P");
    expect([...new Set(rows2.filter((r: any) => r.type === "storage").map((r: any) => r.storage))]).toEqual(["local"]);
  });
});
