// Cloud-init (GET/PUT .../cloudinit, cloudinit/dump; BEHAVIOURS §4), the storage
// configuration (GET /storage, /storage/{id}), deleting storage content (STORAGE
// API2/Storage/Content.pm `delete`, Storage.pm `vdisk_free`), stopping a task (DELETE
// .../tasks/{upid}; MGR API2/Tasks.pm) and the guest agent's interface name option.
import { Api, UPID_RE, createVm, startApi } from "./cluster-helpers";
import { call } from "./core-http";

const START = Date.UTC(2026, 0, 5, 9, 0, 0);

describe("cloud-init", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 41 });
    await createVm(api, 100, { ciuser: "alice", ipconfig0: "ip=dhcp", nameserver: "10.0.0.53" });
  });
  afterAll(() => api.stop());

  const pending = () => api.ok("GET", "/nodes/pve1/qemu/100/cloudinit");

  test("GET shows the values the image was made with and what is pending (passwords masked); PUT regenerates", async () => {
    expect(await pending()).toEqual([
      { key: "ciuser", value: "alice" },
      { key: "nameserver", value: "10.0.0.53" },
    ]);
    // PVE records changes in [special:cloudinit] only as a running VM hot-plugs them
    // (vmconfig_hotplug_pending); a stopped VM's vmconfig_apply_pending records nothing
    await api.task("POST", "/nodes/pve1/qemu/100/status/start");
    await api.ok("PUT", "/nodes/pve1/qemu/100/config", { ciuser: "bob", ipconfig0: "ip=10.0.0.5/24,gw=10.0.0.1", searchdomain: "lab", cipassword: "s3cret", delete: "nameserver" });
    expect(await pending()).toEqual([
      // update_vm_api writes cipassword straight into the config: never pending, never recorded
      { key: "cipassword", value: "**********" },
      { key: "ciuser", value: "alice", pending: "bob" },
      // QEMU cloudinit_pending: ipconfigN is not in $cloudinitoptions, so a changed one is not listed
      { key: "nameserver", delete: 1 },
      { key: "searchdomain", pending: "lab" },
    ]);
    // the config itself already has the new values (cloud-init options are fast-plug)
    expect(await api.ok("GET", "/nodes/pve1/qemu/100/config")).toMatchObject({ ciuser: "bob", ipconfig0: "ip=10.0.0.5/24,gw=10.0.0.1" });

    const r = await api.req("PUT", "/nodes/pve1/qemu/100/cloudinit");
    expect([r.status, r.body]).toEqual([200, { data: null }]);
    expect(await pending()).toEqual([
      { key: "cipassword", value: "**********" },
      { key: "ciuser", value: "bob" },
      { key: "searchdomain", value: "lab" },
    ]);
  });

  test("cloudinit/dump returns the generated user, network and meta data as YAML strings", async () => {
    const mac = (await api.ok("GET", "/nodes/pve1/qemu/100/config")).net0.split(",")[0].split("=")[1].toLowerCase();
    const user = await api.ok("GET", "/nodes/pve1/qemu/100/cloudinit/dump", { type: "user" });
    expect(user).toMatch(/^#cloud-config\n/);
    expect(user).toContain("hostname: vm100\n");
    expect(user).toContain("user: bob\n");
    const net = await api.ok("GET", "/nodes/pve1/qemu/100/cloudinit/dump", { type: "network" });
    expect(net).toContain(`mac_address: '${mac}'`);
    // QEMU Cloudinit.pm nocloud_network: eth<N> by MAC, address and netmask apart
    expect(net).toContain(`    - type: physical\n      name: eth0\n      mac_address: '${mac}'\n      subnets:\n      - type: static\n        address: '10.0.0.5'\n        netmask: '255.255.255.0'\n        gateway: '10.0.0.1'\n`);
    expect(net).toContain("search:\n      - 'lab'");
    // nocloud_gen_metadata: instance-id = sha1(user-data . network-data)
    const { createHash } = await import("crypto");
    expect(await api.ok("GET", "/nodes/pve1/qemu/100/cloudinit/dump", { type: "meta" })).toBe(`instance-id: ${createHash("sha1").update(user + net).digest("hex")}\n`);
    // a NIC without ipconfigN is not in the network-config at all (`next if !$conf->{"ipconfig$id"}`)
    await api.ok("PUT", "/nodes/pve1/qemu/100/config", { net1: "virtio,bridge=vmbr0" });
    const net2 = await api.ok("GET", "/nodes/pve1/qemu/100/cloudinit/dump", { type: "network" });
    expect(net2.match(/type: physical/g)).toHaveLength(1);
    expect(net2).not.toContain("eth1");
    await api.ok("PUT", "/nodes/pve1/qemu/100/config", { delete: "net1" });
    const bad = await api.req("GET", "/nodes/pve1/qemu/100/cloudinit/dump", { type: "vendor" });
    expect([bad.status, bad.body.errors]).toEqual([400, { type: "value 'vendor' does not have a value in the enumeration 'user, network, meta'" }]);
  });

  test("PUT cloudinit checks the config lock", async () => {
    api.s.sim.ext.cluster.vms.get(100).config.current.lock = "backup";
    try {
      const r = await api.req("PUT", "/nodes/pve1/qemu/100/cloudinit");
      expect([r.status, r.reason]).toEqual([500, "VM is locked (backup)"]);
    } finally {
      delete api.s.sim.ext.cluster.vms.get(100).config.current.lock;
    }
  });
});

describe("storage configuration", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 42, cluster: { sharedStorage: true } });
  });
  afterAll(() => api.stop());

  test("GET /storage lists every storage's configuration; ?type filters", async () => {
    const list = await api.ok("GET", "/storage");
    const strip = (e: any) => {
      expect(e.digest).toMatch(/^[0-9a-f]{40}$/);
      const { digest: _d, ...rest } = e;
      return rest;
    };
    expect(list.map(strip)).toEqual([
      { storage: "local", type: "dir", path: "/var/lib/vz", content: "backup,import,iso,snippets,vztmpl" },
      { storage: "local-lvm", type: "lvmthin", vgname: "pve", thinpool: "data", content: "images,rootdir" },
      // nfs is in @SHARED_STORAGE: STORAGE Plugin.pm parse_config sets `shared` in the parsed config
      { storage: "shared-nfs", type: "nfs", path: "/mnt/pve/shared-nfs", server: "10.0.0.5", export: "/export/shared-nfs", content: "images,import,iso,snippets", shared: 1 },
    ]);
    expect((await api.ok("GET", "/storage", { type: "lvmthin" })).map((e: any) => e.storage)).toEqual(["local-lvm"]);
  });

  test("GET /storage/{id}: one entry, 500 for an unknown id, Datastore.Allocate required", async () => {
    expect(await api.ok("GET", "/storage/local-lvm")).toMatchObject({ storage: "local-lvm", type: "lvmthin", vgname: "pve", thinpool: "data" });
    const r = await api.req("GET", "/storage/nope");
    expect([r.status, r.reason]).toEqual([500, "storage 'nope' does not exist"]);

    // a token whose user may use only `local`: it lists only `local`, and may not read its config
    await api.ok("POST", "/access/users", { userid: "dsu@pve" });
    await api.ok("PUT", "/access/acl", { path: "/storage/local", roles: "PVEDatastoreUser", users: "dsu@pve" });
    const tok = await api.ok("POST", "/access/users/dsu@pve/token/tk", { privsep: 0 });
    const token = `dsu@pve!tk=${tok.value}`;
    expect((await api.req("GET", "/storage", {}, token)).body.data.map((e: any) => e.storage)).toEqual(["local"]);
    const denied = await api.req("GET", "/storage/local", {}, token);
    expect([denied.status, denied.reason]).toEqual([403, "Permission check failed (/storage/local, Datastore.Allocate)"]);
  });
});

describe("deleting storage content", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 43 });
    await createVm(api, 9000, {}, true);
    await createVm(api, 100);
  });
  afterAll(() => api.stop());

  const content = (storage: string, volid: string) => `/nodes/pve1/storage/${storage}/content/${encodeURIComponent(volid)}`;
  const volids = async (storage: string, node = "pve1") => (await api.ok("GET", `/nodes/${node}/storage/${storage}/content`)).map((e: any) => e.volid);

  test("a snippet file: an imgdel task with the storage as id; the file is gone", async () => {
    const put = await call(api.s, "PUT", "/nodes/pve1/files", { prefix: "/_sim", token: api.s.rootToken, json: { path: "/var/lib/vz/snippets/u.yaml", content: "#cloud-config\n" } });
    expect(put.status).toBe(200);
    expect(await volids("local")).toContain("local:snippets/u.yaml");
    const upid = await api.ok("DELETE", content("local", "local:snippets/u.yaml"));
    expect(upid).toMatch(UPID_RE);
    expect(upid.split(":").slice(5, 7)).toEqual(["imgdel", "local"]);
    const st = await api.waitTask("pve1", upid);
    expect(st.exitstatus).toBe("OK");
    expect(await api.log("pve1", upid)).toEqual(["Removed volume 'local:snippets/u.yaml'", "TASK OK"]);
    expect(await volids("local")).not.toContain("local:snippets/u.yaml");
  });

  test("a VM's disk: <vmid>@<storage> as id; with delay the call waits and answers null", async () => {
    const vol = "local-lvm:vm-100-disk-0";
    expect(await volids("local-lvm")).toContain(vol);
    const r = await api.req("DELETE", content("local-lvm", vol), { delay: 5 });
    expect([r.status, r.body]).toEqual([200, { data: null }]);
    const task = (await api.ok("GET", "/nodes/pve1/tasks", { typefilter: "imgdel" }))[0];
    expect(task).toMatchObject({ id: "100@local-lvm", status: "OK" });
    expect(await volids("local-lvm")).not.toContain(vol);
  });

  test("a template's base volume used by a linked clone: refused on dir (the volume stays), freed on lvmthin", async () => {
    // dir: the clone's name carries the base (Plugin.pm parse_volname), vdisk_free refuses
    await api.ok("POST", "/storage", { storage: "dirimg", type: "dir", path: "/mnt/dirimg", content: "images" });
    await createVm(api, 9001, { scsi0: "dirimg:4", ide2: "dirimg:cloudinit" }, true);
    expect((await api.task("POST", "/nodes/pve1/qemu/9001/clone", { newid: 111 })).exitstatus).toBe("OK");
    const dirBase = "dirimg:9001/base-9001-disk-0.raw";
    const st = await api.task("DELETE", content("dirimg", dirBase));
    expect(st.exitstatus).toBe("base volume '9001/base-9001-disk-0.raw' is still in use by linked clones");
    expect(await volids("dirimg")).toContain(dirBase);
    // with delay, the failure is the call's answer
    const r = await api.req("DELETE", content("dirimg", dirBase), { delay: 5 });
    expect([r.status, r.reason]).toEqual([500, "base volume '9001/base-9001-disk-0.raw' is still in use by linked clones"]);

    // lvmthin: "LVM-thin allows deletion of still referenced base volumes!" (Storage.pm vdisk_free);
    // its clone is a thin snapshot whose name does not point at the base
    expect((await api.task("POST", "/nodes/pve1/qemu/9000/clone", { newid: 101 })).exitstatus).toBe("OK");
    const base = "local-lvm:base-9000-disk-0";
    expect((await api.task("DELETE", content("local-lvm", base))).exitstatus).toBe("OK");
    expect(await volids("local-lvm")).not.toContain(base);
    expect(await volids("local-lvm")).toContain("local-lvm:vm-101-disk-0");
  });

  test("unknown volumes and missing privileges", async () => {
    let r = await api.req("DELETE", content("local", "local:snippets/none.yaml"));
    expect([r.status, r.reason]).toEqual([500, "volume 'local:snippets/none.yaml' does not exist"]);
    await api.ok("POST", "/access/users", { userid: "space@pve" });
    await api.ok("PUT", "/access/acl", { path: "/storage/local-lvm", roles: "PVEDatastoreUser", users: "space@pve" });
    const tok = await api.ok("POST", "/access/users/space@pve/token/tk", { privsep: 0 });
    r = await api.req("DELETE", content("local-lvm", "local-lvm:vm-101-disk-0"), {}, `space@pve!tk=${tok.value}`);
    expect([r.status, r.reason]).toEqual([403, "Permission check failed (/storage/local-lvm, Datastore.Allocate)"]);
  });
});

describe("stopping a task (DELETE .../tasks/{upid})", () => {
  test("a running full clone is interrupted, cleans up, and ends with `clone failed: interrupted by signal`", async () => {
    const api = await startApi({ seed: 44, virtualTime: { startMs: START } });
    const clock = api.s.sim.virtualClock();
    try {
      await createVm(api, 9000, { scsi0: "local-lvm:32" }, true);
      const upid = await api.ok("POST", "/nodes/pve1/qemu/9000/clone", { newid: 300, full: 1 });
      await clock.advance(5000);
      expect(await api.ok("GET", `/nodes/pve1/tasks/${encodeURIComponent(upid)}/status`)).toMatchObject({ status: "running" });
      const r = await api.req("DELETE", `/nodes/pve1/tasks/${encodeURIComponent(upid)}`);
      expect([r.status, r.body]).toEqual([200, { data: null }]);
      // clone_vm's clean-up: `sleep 1`, then each new volume freed under the storage lock (250 ms each)
      await clock.advance(1400);
      expect(await api.ok("GET", `/nodes/pve1/tasks/${encodeURIComponent(upid)}/status`)).toMatchObject({ status: "running" });
      await clock.advance(100);
      const st = await api.ok("GET", `/nodes/pve1/tasks/${encodeURIComponent(upid)}/status`);
      expect(st).toMatchObject({ status: "stopped", exitstatus: "clone failed: interrupted by signal" });
      expect((await api.log("pve1", upid)).at(-1)).toBe("TASK ERROR: clone failed: interrupted by signal");
      expect(api.s.sim.ext.cluster.vms.has(300)).toBe(false);
      const vols = (await api.ok("GET", "/nodes/pve1/storage/local-lvm/content")).map((e: any) => e.volid);
      expect(vols.filter((v: string) => v.includes("-300-"))).toEqual([]);
      expect(api.s.sim.ext.cluster.locks.held()).toEqual([]);

      // a worker without its own handler dies with fork_worker's `received interrupt`
      await createVm(api, 100);
      const start = await api.ok("POST", "/nodes/pve1/qemu/100/status/start");
      await clock.advance(500);
      await api.ok("DELETE", `/nodes/pve1/tasks/${encodeURIComponent(start)}`);
      await clock.advance(0);
      expect((await api.ok("GET", `/nodes/pve1/tasks/${encodeURIComponent(start)}/status`)).exitstatus).toBe("received interrupt");

      const bogus = upid.replace(":qmclone:", ":qmstop:");
      const nf = await api.req("DELETE", `/nodes/pve1/tasks/${encodeURIComponent(bogus)}`);
      expect([nf.status, nf.body.errors]).toEqual([400, { upid: "no such task" }]);
    } finally {
      await api.stop();
    }
  });
});

describe("guest agent interface name", () => {
  async function interfaces(cluster: Record<string, unknown>): Promise<string[]> {
    const api = await startApi({ seed: 45, cluster });
    try {
      await createVm(api, 100, { net1: "virtio,bridge=vmbr1" });
      const power = await call(api.s, "POST", "/vms/100/power", { prefix: "/_sim", token: api.s.rootToken, json: { action: "start", agentReady: true } });
      expect(power.status).toBe(200);
      const data = await api.ok("GET", "/nodes/pve1/qemu/100/agent/network-get-interfaces");
      const conf = await api.ok("GET", "/nodes/pve1/qemu/100/config");
      const mac = (net: string) => net.split(",")[0].split("=")[1].toLowerCase();
      expect(data.result.slice(1).map((i: any) => i["hardware-address"])).toEqual([mac(conf.net0), mac(conf.net1)]);
      return data.result.map((i: any) => i.name);
    } finally {
      await api.stop();
    }
  }

  test("ens18 by default; agentInterface renames the first NIC, the next ones count up", async () => {
    expect(await interfaces({})).toEqual(["lo", "ens18", "ens19"]);
    expect(await interfaces({ agentInterface: "eth0" })).toEqual(["lo", "eth0", "eth1"]);
    expect(await interfaces({ agentInterface: "enp6s18" })).toEqual(["lo", "enp6s18", "enp6s19"]);
  });
});
