// VM create defaults, config get/put/post/pending/digest, template, resize, power,
// status, destroy, migrate, cloud-init — over HTTPS against the running simulator.
import { Api, UPID_RE, createVm, startApi } from "./cluster-helpers";

let api: Api;
beforeAll(async () => {
  api = await startApi({ nodes: 3 });
});
afterAll(() => api.stop());

describe("create", () => {
  test("adds PVE's defaults and returns a qmcreate UPID", async () => {
    const upid = await api.ok("POST", "/nodes/pve1/qemu", { vmid: 100, name: "web", scsi0: "local-lvm:10", net0: "virtio,bridge=vmbr0", tags: "B,a;a c", ide2: "local-lvm:cloudinit" });
    expect(upid).toMatch(UPID_RE);
    expect(upid.split(":")[5]).toBe("qmcreate");
    expect(upid.split(":")[6]).toBe("100");
    expect((await api.waitTask("pve1", upid)).exitstatus).toBe("OK");
    const conf = await api.ok("GET", "/nodes/pve1/qemu/100/config");
    expect(conf.meta).toMatch(/^creation-qemu=[\d.]+,ctime=\d+$/);
    expect(conf.smbios1).toMatch(/^uuid=[0-9a-f-]{36}$/);
    expect(conf.vmgenid).toMatch(/^[0-9a-f-]{36}$/);
    expect(conf.net0).toMatch(/^virtio=BC:24:11:[0-9A-F]{2}:[0-9A-F]{2}:[0-9A-F]{2},bridge=vmbr0$/);
    expect(conf.scsi0).toBe("local-lvm:vm-100-disk-0,size=10G");
    expect(conf.ide2).toBe("local-lvm:vm-100-cloudinit,media=cdrom");
    expect(conf.boot).toBe("order=scsi0;net0");
    expect(conf.tags).toBe("a;b;c");
    expect(conf.digest).toMatch(/^[0-9a-f]{40}$/);
    expect(conf.lock).toBeUndefined();
  });

  test("an id taken cluster-wide fails synchronously with PVE's text", async () => {
    const r = await api.req("POST", "/nodes/pve2/qemu", { vmid: 100 });
    expect(r.status).toBe(500);
    expect(r.reason).toBe("unable to create VM 100 - VM 100 already exists on node 'pve1'");
  });

  test("nextid returns the lowest free id as a string; ?vmid of a taken id is 400", async () => {
    expect(await api.ok("GET", "/cluster/nextid")).toBe("101");
    const r = await api.req("GET", "/cluster/nextid", { vmid: 100 });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({ vmid: "VM 100 already exists" });
  });

  test("missing VM: 500 Configuration file ... does not exist", async () => {
    const r = await api.req("GET", "/nodes/pve1/qemu/999/config");
    expect(r.status).toBe(500);
    expect(r.reason).toBe("Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist");
    const r2 = await api.req("GET", "/nodes/pve2/qemu/100/config");
    expect(r2.reason).toBe("Configuration file 'nodes/pve2/qemu-server/100.conf' does not exist");
  });

  test("import-from a downloaded image", async () => {
    const dl = await api.task("POST", "/nodes/pve1/storage/local/download-url", { url: "https://example.com/noble.qcow2", content: "import", filename: "noble.qcow2" });
    expect(dl.exitstatus).toBe("OK");
    await createVm(api, 150, { scsi0: "local-lvm:0,import-from=local:import/noble.qcow2" });
    const conf = await api.ok("GET", "/nodes/pve1/qemu/150/config");
    expect(conf.scsi0).toBe("local-lvm:vm-150-disk-0,size=2G");
    const bad = await api.task("POST", "/nodes/pve1/qemu", { vmid: 151, scsi0: "local-lvm:0,import-from=local:import/nope.qcow2" });
    expect(bad.exitstatus).toBe("unable to create VM 151 - volume 'local:import/nope.qcow2' does not exist");
    const r = await api.req("GET", "/nodes/pve1/qemu/151/config");
    expect(r.status).toBe(500);
  });
});

describe("config", () => {
  test("PUT is synchronous, digest mismatch fails, delete works", async () => {
    const before = await api.ok("GET", "/nodes/pve1/qemu/100/config");
    expect(await api.ok("PUT", "/nodes/pve1/qemu/100/config", { memory: 4096, description: "hello", digest: before.digest })).toBeNull();
    const after = await api.ok("GET", "/nodes/pve1/qemu/100/config");
    expect(after.memory).toBe("4096");
    expect(after.description).toBe("hello");
    const r = await api.req("PUT", "/nodes/pve1/qemu/100/config", { memory: 1024, digest: before.digest });
    expect(r.status).toBe(500);
    expect(r.reason).toBe("checksum mismatch (file change by other user?)");
    await api.ok("PUT", "/nodes/pve1/qemu/100/config", { delete: "description" });
    expect((await api.ok("GET", "/nodes/pve1/qemu/100/config")).description).toBeUndefined();
  });

  test("POST is async (qmconfig) and skiplock is root-only", async () => {
    const st = await api.task("POST", "/nodes/pve1/qemu/100/config", { cores: 4 });
    expect(st.type).toBe("qmconfig");
    expect(st.exitstatus).toBe("OK");
    expect((await api.ok("GET", "/nodes/pve1/qemu/100/config")).cores).toBe(4);
  });

  test("running VM: hotpluggable options apply, others stay pending", async () => {
    expect((await api.task("POST", "/nodes/pve1/qemu/100/status/start")).exitstatus).toBe("OK");
    await api.ok("PUT", "/nodes/pve1/qemu/100/config", { name: "web2", memory: 8192, cores: 8 });
    const cur = await api.ok("GET", "/nodes/pve1/qemu/100/config", { current: 1 });
    expect(cur.name).toBe("web2");
    expect(cur.memory).toBe("4096");
    const merged = await api.ok("GET", "/nodes/pve1/qemu/100/config");
    expect(merged.memory).toBe("8192");
    const pending = await api.ok("GET", "/nodes/pve1/qemu/100/pending");
    expect(pending.find((e: any) => e.key === "memory")).toEqual({ key: "memory", value: "4096", pending: "8192" });
    expect(pending.find((e: any) => e.key === "cores")).toEqual({ key: "cores", value: 4, pending: 8 });
    expect(pending.find((e: any) => e.key === "name")).toEqual({ key: "name", value: "web2" });
  });

  test("start of a running VM fails in the task; stop then start applies pending", async () => {
    const st = await api.task("POST", "/nodes/pve1/qemu/100/status/start");
    expect(st.exitstatus).toBe("VM 100 already running");
    const log = await api.log("pve1", st.upid);
    expect(log[log.length - 1]).toBe("TASK ERROR: VM 100 already running");
    const r = await api.req("DELETE", "/nodes/pve1/qemu/100");
    expect(r.status).toBe(500);
    expect(r.reason).toBe("VM 100 is running - destroy failed");
    expect((await api.task("POST", "/nodes/pve1/qemu/100/status/stop")).exitstatus).toBe("OK");
    expect((await api.task("POST", "/nodes/pve1/qemu/100/status/stop")).exitstatus).toBe("OK");
    expect((await api.task("POST", "/nodes/pve1/qemu/100/status/start")).exitstatus).toBe("OK");
    const cur = await api.ok("GET", "/nodes/pve1/qemu/100/config", { current: 1 });
    expect(cur.memory).toBe("8192");
    expect(await api.ok("GET", "/nodes/pve1/qemu/100/pending")).not.toContainEqual(expect.objectContaining({ pending: expect.anything() }));
    const status = await api.ok("GET", "/nodes/pve1/qemu/100/status/current");
    expect(status).toMatchObject({ status: "running", qmpstatus: "running", vmid: 100, ha: { managed: 0 } });
    expect(typeof status.pid).toBe("number");
  });

  test("shutdown of a guest without ACPI times out", async () => {
    await api.ok("PUT", "/nodes/pve1/qemu/100/config", { acpi: 0, agent: "0" });
    // acpi is not hot-pluggable: pending until the next cold start
    expect((await api.ok("GET", "/nodes/pve1/qemu/100/config", { current: 1 })).acpi).toBeUndefined();
    expect((await api.task("POST", "/nodes/pve1/qemu/100/status/stop")).exitstatus).toBe("OK");
    expect((await api.task("POST", "/nodes/pve1/qemu/100/status/start")).exitstatus).toBe("OK");
    const st = await api.task("POST", "/nodes/pve1/qemu/100/status/shutdown", { timeout: 5 });
    expect(st.exitstatus).toBe("VM quit/powerdown failed - got timeout");
    const st2 = await api.task("POST", "/nodes/pve1/qemu/100/status/shutdown", { timeout: 5, forceStop: 1 });
    expect(st2.exitstatus).toBe("WARNINGS: 1");
    expect((await api.ok("GET", "/nodes/pve1/qemu/100/status/current")).status).toBe("stopped");
  });
});

describe("template, resize, migrate, destroy", () => {
  test("template renames disks to base-, refuses twice", async () => {
    await createVm(api, 9000, {}, true);
    const conf = await api.ok("GET", "/nodes/pve1/qemu/9000/config");
    expect(conf.template).toBe(1);
    expect(conf.scsi0).toBe("local-lvm:base-9000-disk-0,size=10G");
    const r = await api.req("POST", "/nodes/pve1/qemu/9000/template");
    expect(r.reason).toBe("you can't convert a template to a template");
  });

  test("resize grows, refuses to shrink", async () => {
    expect((await api.task("PUT", "/nodes/pve1/qemu/100/resize", { disk: "scsi0", size: "+2G" })).exitstatus).toBe("OK");
    expect((await api.ok("GET", "/nodes/pve1/qemu/100/config")).scsi0).toBe("local-lvm:vm-100-disk-0,size=12G");
    expect((await api.task("PUT", "/nodes/pve1/qemu/100/resize", { disk: "scsi0", size: "5G" })).exitstatus).toBe("shrinking disks is not supported");
    expect((await api.task("PUT", "/nodes/pve1/qemu/100/resize", { disk: "ide2", size: "5G" })).exitstatus).toBe("you can't resize a cdrom");
    expect((await api.task("PUT", "/nodes/pve1/qemu/100/resize", { disk: "scsi5", size: "5G" })).exitstatus).toBe("disk 'scsi5' does not exist");
  });

  test("migrate: local node refused, offline migration moves the VM", async () => {
    const r = await api.req("POST", "/nodes/pve1/qemu/100/migrate", { target: "pve1" });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({ target: "target is local node." });
    expect((await api.task("POST", "/nodes/pve1/qemu/100/migrate", { target: "pve2" })).exitstatus).toBe("OK");
    expect((await api.ok("GET", "/nodes/pve2/qemu/100/config")).scsi0).toBe("local-lvm:vm-100-disk-0,size=12G");
    expect((await api.req("GET", "/nodes/pve1/qemu/100/config")).status).toBe(500);
    expect((await api.task("POST", "/nodes/pve2/qemu/100/status/start")).exitstatus).toBe("OK");
    const r2 = await api.req("POST", "/nodes/pve2/qemu/100/migrate", { target: "pve3" });
    expect(r2.reason).toBe("can't migrate running VM without --online");
  });

  test("destroy removes disks, and HA needs purge", async () => {
    await createVm(api, 120);
    await api.ok("POST", "/cluster/ha/resources", { sid: "vm:120", state: "stopped" });
    const dup = await api.req("POST", "/cluster/ha/resources", { sid: "120" });
    expect(dup.reason).toBe("create resource failed: resource ID 'vm:120' already defined");
    const r = await api.req("DELETE", "/nodes/pve1/qemu/120");
    expect(r.reason).toBe("unable to remove VM 120 - used in HA resources and purge parameter not set.");
    expect((await api.task("DELETE", "/nodes/pve1/qemu/120", { purge: 1 })).exitstatus).toBe("OK");
    expect(await api.ok("GET", "/cluster/ha/resources")).toEqual([]);
    const content = await api.ok("GET", "/nodes/pve1/storage/local-lvm/content", { vmid: 120 });
    expect(content).toEqual([]);
  });
});
