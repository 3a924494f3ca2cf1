// REALISM.md sections 5-11: HA-managed VMs (QEMU vm_start/vm_stop/vm_shutdown/migrate_vm, HA
// Manager.pm, API2/HA/Resources.pm), download-url (STORAGE Status.pm, COMMON Tools.pm
// download_file_from_url), generated cloud-init data (QEMU Cloudinit.pm, cloudinit_pending),
// shutdown timeouts (QemuServer.pm _do_vm_stop), /cluster/resources (MGR API2/Cluster.pm,
// API2Tools.pm) and agent calls holding pvedaemon workers.
import { Api, createVm, startApi } from "./cluster-helpers";

const START = Date.UTC(2026, 0, 5, 9, 0, 0);

describe("HA-managed VMs (virtual clock)", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 51, virtualTime: { startMs: START } });
  });
  afterAll(() => api.stop());
  const clock = () => api.s.sim.virtualClock();
  const hastate = async (vmid: number) => (await api.ok("GET", "/cluster/resources", { type: "vm" })).find((r: any) => r.vmid === vmid)?.hastate;
  const vmStatus = async (vmid: number) => (await api.ok("GET", `/nodes/pve1/qemu/${vmid}/status/current`)).status;

  test("create ha-managed=1 adds the resource (state stopped); hastart only requests the start", async () => {
    await createVm(api, 100, { "ha-managed": 1 });
    expect(await api.ok("GET", "/cluster/ha/resources/vm:100")).toMatchObject({ sid: "vm:100", state: "stopped" });
    expect(await hastate(100)).toBe("stopped");
    const st = await api.task("POST", "/nodes/pve1/qemu/100/status/start");
    expect([st.type, st.exitstatus]).toEqual(["hastart", "OK"]);
    expect(await api.log("pve1", st.upid)).toContain("Requesting HA start for VM 100");
    await clock().runUntilIdle(60_000);
    expect(await vmStatus(100)).toBe("running");
    expect(await hastate(100)).toBe("started");
    expect((await api.ok("GET", "/nodes/pve1/qemu/100/status/current")).ha).toEqual({ managed: 1, state: "started" });
  });

  test("ha-managed=1 at create needs Sys.Console on /", async () => {
    await api.ok("POST", "/access/users", { userid: "ops@pve" });
    await api.ok("PUT", "/access/acl", { path: "/vms", roles: "PVEVMAdmin", users: "ops@pve" });
    await api.ok("PUT", "/access/acl", { path: "/storage", roles: "PVEDatastoreAdmin", users: "ops@pve" });
    const tok = (await api.ok("POST", "/access/users/ops@pve/token/ops1", { privsep: 0 })).value;
    const r = await api.req("POST", "/nodes/pve1/qemu", { vmid: 150, "ha-managed": 1 }, `ops@pve!ops1=${tok}`);
    expect(r.status).toBe(403);
  });

  test("status/stop: overrule-shutdown is refused; hastop ends at once, the CRM stops the VM on its next round", async () => {
    const r = await api.req("POST", "/nodes/pve1/qemu/100/status/stop", { "overrule-shutdown": 1 });
    expect([r.status, r.body.errors]).toEqual([400, { "overrule-shutdown": "Not applicable for HA resources." }]);
    const upid = await api.ok("POST", "/nodes/pve1/qemu/100/status/stop");
    const st = await api.waitTask("pve1", upid);
    expect([st.type, st.exitstatus]).toEqual(["hastop", "OK"]);
    expect(await api.log("pve1", upid)).toContain("Requesting HA stop for VM 100");
    // the task did not wait for the VM: it still runs and the request state is unchanged
    expect(await vmStatus(100)).toBe("running");
    expect((await api.ok("GET", "/cluster/ha/resources/vm:100")).state).toBe("started");
    await clock().advance(10_000);
    expect(await hastate(100)).toBe("request_stop");
    expect((await api.ok("GET", "/cluster/ha/resources/vm:100")).state).toBe("stopped");
    await clock().runUntilIdle(60_000);
    expect(await vmStatus(100)).toBe("stopped");
    expect(await hastate(100)).toBe("stopped");
  });

  test("status/shutdown of an HA VM: hastop too (graceful), the resource requested stopped", async () => {
    await api.task("POST", "/nodes/pve1/qemu/100/status/start");
    await clock().runUntilIdle(60_000);
    expect(await vmStatus(100)).toBe("running");
    const st = await api.task("POST", "/nodes/pve1/qemu/100/status/shutdown", { timeout: 30 });
    expect([st.type, st.exitstatus]).toEqual(["hastop", "OK"]);
    expect(await vmStatus(100)).toBe("running");
    await clock().runUntilIdle(120_000);
    expect(await vmStatus(100)).toBe("stopped");
    expect((await api.ok("GET", "/cluster/ha/resources/vm:100")).state).toBe("stopped");
  });

  test("migrate of an HA VM: lock and --online are checked before the hamigrate task", async () => {
    await api.admin("PUT", "/vms/100/config", { set: { lock: "backup" } });
    let r = await api.req("POST", "/nodes/pve1/qemu/100/migrate", { target: "pve2" });
    expect([r.status, r.reason]).toEqual([500, "VM is locked (backup)"]);
    await api.admin("PUT", "/vms/100/config", { delete: ["lock"] });
    await api.task("POST", "/nodes/pve1/qemu/100/status/start");
    await clock().runUntilIdle(60_000);
    r = await api.req("POST", "/nodes/pve1/qemu/100/migrate", { target: "pve2" });
    expect([r.status, r.reason]).toEqual([500, "can't migrate running VM without --online"]);
  });

  test("suspend to disk is refused for an HA VM", async () => {
    const r = await api.req("POST", "/nodes/pve1/qemu/100/status/suspend", { todisk: 1 });
    expect([r.status, r.reason]).toEqual([500, "Cannot suspend HA managed VM to disk"]);
  });

  test("a service whose start fails ends in the error state; hastart and hastop then fail", async () => {
    await createVm(api, 101, { cicustom: "user=local:snippets/missing.yaml" });
    await api.ok("POST", "/cluster/ha/resources", { sid: "vm:101", state: "stopped" });
    const st = await api.task("POST", "/nodes/pve1/qemu/101/status/start");
    expect(st.exitstatus).toBe("OK"); // the request itself succeeds
    await clock().runUntilIdle(60_000);
    expect(await hastate(101)).toBe("error");
    const again = await api.task("POST", "/nodes/pve1/qemu/101/status/start");
    expect([again.type, again.exitstatus]).toEqual(["hastart", "command 'ha-manager set vm:101 --state started' failed: exit code 255"]);
    expect(await api.log("pve1", again.upid)).toContain("service 'vm:101' in error state, must be disabled and fixed first");
    const stop = await api.task("POST", "/nodes/pve1/qemu/101/status/stop");
    expect([stop.type, stop.exitstatus]).toEqual(["hastop", "command 'ha-manager crm-command stop vm:101 0' failed: exit code 255"]);
  });
});

describe("download-url", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 52 });
  });
  afterAll(() => api.stop());
  const dl = (params: Record<string, string | number>, storage = "local") => api.req("POST", `/nodes/pve1/storage/${storage}/download-url`, { url: "https://example.com/x", ...params });

  test("a storage without a path is refused before its content is checked; content not enabled", async () => {
    let r = await dl({ content: "iso", filename: "a.iso" }, "local-lvm");
    expect([r.status, r.reason]).toEqual([500, "can't upload to storage type 'lvmthin', not a file based storage!"]);
    await api.ok("PUT", "/storage/local", { content: "iso,backup" });
    r = await dl({ content: "import", filename: "a.qcow2" });
    expect([r.status, r.reason]).toEqual([500, "storage 'local' is not configured for content-type 'import'"]);
    await api.ok("PUT", "/storage/local", { content: "iso,vztmpl,import,snippets,backup" });
  });

  test("checksum and checksum-algorithm require each other; compression is an enum", async () => {
    let r = await dl({ content: "iso", filename: "a.iso", checksum: "00" });
    expect([r.status, r.body.errors]).toEqual([400, { checksum: "parameter 'checksum' requires parameter 'checksum-algorithm'" }]);
    r = await dl({ content: "iso", filename: "a.iso", "checksum-algorithm": "sha256" });
    expect([r.status, r.body.errors]).toEqual([400, { "checksum-algorithm": "parameter 'checksum-algorithm' requires parameter 'checksum'" }]);
    r = await dl({ content: "iso", filename: "a.iso", compression: "xz" });
    expect(r.status).toBe(400);
    expect(Object.keys(r.body.errors)).toEqual(["compression"]);
  });

  test("extensions: iso/img any case, vztmpl .tar and .tar.<gz|xz|zst|bz2>, import without .ovf", async () => {
    for (const f of ["a.ISO", "b.img"]) expect((await api.task("POST", "/nodes/pve1/storage/local/download-url", { url: "https://e/x", content: "iso", filename: f })).exitstatus).toBe("OK");
    for (const f of ["c.tar", "d.tar.zst"]) expect((await api.task("POST", "/nodes/pve1/storage/local/download-url", { url: "https://e/x", content: "vztmpl", filename: f })).exitstatus).toBe("OK");
    let r = await dl({ content: "vztmpl", filename: "e.tgz" });
    expect(r.body.errors).toEqual({ filename: "wrong file extension" });
    r = await dl({ content: "import", filename: "f.ovf" });
    expect(r.body.errors).toEqual({ filename: "invalid filename or wrong extension" });
    r = await dl({ content: "import", filename: "g.QCOW2" });
    expect(r.body.errors).toEqual({ filename: "invalid filename or wrong extension" });
  });

  test("the filename's path part is stripped; the task is `download`, its id the filename", async () => {
    const st = await api.task("POST", "/nodes/pve1/storage/local/download-url", { url: "https://e/img", content: "iso", filename: "../sub dir/my image.iso" });
    expect([st.type, st.id, st.exitstatus]).toEqual(["download", "my_image.iso", "OK"]);
    const log = await api.log("pve1", st.upid);
    expect(log[0]).toBe("downloading https://e/img to /var/lib/vz/template/iso/my_image.iso");
    expect(log).toContain("download of 'https://e/img' to '/var/lib/vz/template/iso/my_image.iso' finished");
    const vols = (await api.ok("GET", "/nodes/pve1/storage/local/content", { content: "iso" })).map((v: any) => v.volid);
    expect(vols).toContain("local:iso/my_image.iso");
  });

  test("an existing file: refused without checksum, kept when it matches, an error when it does not", async () => {
    const p = { url: "https://e/k", content: "iso", filename: "k.iso" };
    expect((await api.task("POST", "/nodes/pve1/storage/local/download-url", p)).exitstatus).toBe("OK");
    let st = await api.task("POST", "/nodes/pve1/storage/local/download-url", p);
    expect(st.exitstatus).toBe("refusing to override existing file '/var/lib/vz/template/iso/k.iso'");
    const { createHash } = await import("crypto");
    const sum = createHash("sha256").update("pve-sim download: https://e/k\n").digest("hex");
    st = await api.task("POST", "/nodes/pve1/storage/local/download-url", { ...p, checksum: sum, "checksum-algorithm": "sha256" });
    expect(st.exitstatus).toBe("OK");
    expect(await api.log("pve1", st.upid)).toContain("calculating checksum of existing file...OK, got correct file already, no need to download");
    st = await api.task("POST", "/nodes/pve1/storage/local/download-url", { ...p, checksum: "ab", "checksum-algorithm": "sha256" });
    expect(st.exitstatus).toBe(`checksum mismatch: got '${sum}' != expect 'ab', aborting`);
  });

  test("compression is only for iso: `decompression not supported for vztmpl` in the task", async () => {
    const st = await api.task("POST", "/nodes/pve1/storage/local/download-url", { url: "https://e/t", content: "vztmpl", filename: "t.tar", compression: "gz" });
    expect(st.exitstatus).toBe("decompression not supported for vztmpl");
  });
});

describe("generated cloud-init data", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 53 });
  });
  afterAll(() => api.stop());
  const dump = (vmid: number, type: string) => api.ok("GET", `/nodes/pve1/qemu/${vmid}/cloudinit/dump`, { type });

  test("user-data: fqdn with searchdomain, users: - default, no package_upgrade line with ciupgrade=0", async () => {
    await createVm(api, 100, { name: "web", searchdomain: "example.org", ciuser: "alice", ciupgrade: 0 });
    expect(await dump(100, "user")).toBe(
      "#cloud-config\nhostname: web\nmanage_etc_hosts: true\nfqdn: web.example.org\nuser: alice\nchpasswd:\n  expire: False\nusers:\n  - default\n",
    );
  });

  test("user-data for root: disable_root: False, no users: entry; a dotted name is the fqdn", async () => {
    await createVm(api, 101, { name: "db.lab.local", ciuser: "root" });
    expect(await dump(101, "user")).toBe(
      "#cloud-config\nhostname: db\nmanage_etc_hosts: true\nfqdn: db.lab.local\nuser: root\ndisable_root: False\nchpasswd:\n  expire: False\npackage_upgrade: true\n",
    );
  });

  test("network-config: static6 with gateway; the nameserver block comes from the host when unset", async () => {
    await createVm(api, 102, { ipconfig0: "ip6=2001:db8::5/64,gw6=2001:db8::1" });
    const net = await dump(102, "network");
    expect(net).toContain("      - type: static6\n        address: '2001:db8::5/64'\n        gateway: '2001:db8::1'\n");
    expect(net).toMatch(/    - type: nameserver\n      address:\n      - '[0-9.]+'\n      search:\n      - '[a-z.]+'\n$/);
  });

  test("GET cloudinit lists neither an unchanged nor a changed ipconfigN, only an added one", async () => {
    await createVm(api, 103, { ipconfig0: "ip=dhcp", ciuser: "bob", net1: "virtio,bridge=vmbr0" });
    const pending = () => api.ok("GET", "/nodes/pve1/qemu/103/cloudinit");
    expect(await pending()).toEqual([{ key: "ciuser", value: "bob" }]);
    // only a running VM records changes in [special:cloudinit] (vmconfig_hotplug_pending)
    await api.task("POST", "/nodes/pve1/qemu/103/status/start");
    await api.ok("PUT", "/nodes/pve1/qemu/103/config", { ipconfig0: "ip=10.0.0.9/24", ipconfig1: "ip=dhcp" });
    expect(await pending()).toEqual([{ key: "ciuser", value: "bob" }, { key: "ipconfig1", pending: "ip=dhcp" }]);
  });
});

describe("shutdown timeout (virtual clock)", () => {
  test("startup down= is the default timeout; forceStop warns `VM still running - terminating now with SIGTERM`", async () => {
    const api = await startApi({ seed: 54, virtualTime: { startMs: START }, cluster: { latency: { shutdownMs: 300_000 } } });
    try {
      await createVm(api, 100, { startup: "order=1,down=20" });
      await api.task("POST", "/nodes/pve1/qemu/100/status/start");
      const t0 = api.s.sim.virtualClock().elapsed();
      const st = await api.task("POST", "/nodes/pve1/qemu/100/status/shutdown", { forceStop: 1 });
      expect(st.exitstatus).toBe("WARNINGS: 1");
      // down=20 rather than the default: the guest (300 s to shut down) is terminated after ~20 s
      expect(api.s.sim.virtualClock().elapsed() - t0).toBeLessThan(60_000);
      expect(await api.log("pve1", st.upid)).toContain("WARN: VM still running - terminating now with SIGTERM");
    } finally {
      await api.stop();
    }
  });
});

describe("/cluster/resources", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 55, virtualTime: { startMs: START }, cluster: { sharedStorage: true } });
    await createVm(api, 100);
    await createVm(api, 101, { cores: 4 });
    await api.ok("POST", "/pools", { poolid: "prod" });
    await api.ok("PUT", "/pools/prod", { vms: "100,101", storage: "shared-nfs" });
  });
  afterAll(() => api.stop());

  test("VM entries carry memhost (9.x); pools are listed with their running members' stats summed", async () => {
    await api.task("POST", "/nodes/pve1/qemu/100/status/start");
    await api.task("POST", "/nodes/pve1/qemu/101/status/start");
    // a full pvestatd cycle: /cluster/resources shows the starts from the next broadcast on, and
    // only members with an uptime count
    await api.s.sim.virtualClock().advance(10_000);
    const all = await api.ok("GET", "/cluster/resources");
    const vm = all.find((r: any) => r.id === "qemu/100");
    expect(vm.memhost).toBe(vm.mem);
    const vm2 = all.find((r: any) => r.id === "qemu/101");
    const pool = all.find((r: any) => r.type === "pool");
    expect(pool).toEqual({
      id: "/pool/prod", pool: "prod", type: "pool",
      uptime: Math.max(vm.uptime, vm2.uptime), mem: vm.mem + vm2.mem, maxmem: vm.maxmem + vm2.maxmem,
      maxcpu: vm.maxcpu + vm2.maxcpu, cpu: expect.any(Number),
    });
    expect(pool.cpu).toBeCloseTo((vm.cpu * vm.maxcpu + vm2.cpu * vm2.maxcpu) / (vm.maxcpu + vm2.maxcpu));
  });

  test("storage entries: no pool field; a disabled storage is left out", async () => {
    let rows = (await api.ok("GET", "/cluster/resources", { type: "storage" })).filter((r: any) => r.storage === "shared-nfs");
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r).not.toHaveProperty("pool");
    await api.ok("PUT", "/storage/shared-nfs", { disable: 1 });
    rows = (await api.ok("GET", "/cluster/resources", { type: "storage" })).filter((r: any) => r.storage === "shared-nfs");
    expect(rows).toEqual([]);
    await api.ok("PUT", "/storage/shared-nfs", { disable: 0 });
  });
});

describe("memhost on 8.4", () => {
  test("the 8.x RRD format has no memhost", async () => {
    const api = await startApi({ seed: 56, pveVersion: "8.4" });
    try {
      await createVm(api, 100);
      const vm = (await api.ok("GET", "/cluster/resources", { type: "vm" }))[0];
      expect(vm).not.toHaveProperty("memhost");
    } finally {
      await api.stop();
    }
  });
});

describe("guest agent calls hold pvedaemon workers (virtual clock)", () => {
  test("three agent calls waiting for guest-ping make a config write on that node wait", async () => {
    const api = await startApi({ seed: 57, virtualTime: { startMs: START } });
    const clock = api.s.sim.virtualClock();
    try {
      await createVm(api, 100);
      await api.task("POST", "/nodes/pve1/qemu/100/status/start"); // no image: no agent in the guest
      const before = clock.pending();
      const agents = [0, 1, 2].map(() => api.req("GET", "/nodes/pve1/qemu/100/agent/network-get-interfaces"));
      while (clock.pending() < before + 3) await new Promise((r) => setTimeout(r, 5));
      let written = false;
      const write = api.req("PUT", "/nodes/pve1/qemu/100/config", { description: "x" }).finally(() => (written = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(written).toBe(false);
      await clock.advance(3000);
      expect((await Promise.all(agents)).map((r) => r.reason)).toEqual(Array(3).fill("QEMU guest agent is not running"));
      while (!written) {
        if (!(await clock.step())) await new Promise((r) => setTimeout(r, 5));
      }
      expect((await write).status).toBe(200);
    } finally {
      await api.stop();
    }
  });
});
