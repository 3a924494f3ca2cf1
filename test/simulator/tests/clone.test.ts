// Clone semantics (BEHAVIOURS §3) and THE race: 50 clients doing nextid + clone at once.
import { Api, UPID_RE, createVm, startApi } from "./cluster-helpers";
import { mulberry32 } from "../rng";

describe("clone semantics", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 3 });
    await createVm(api, 9000, {}, true);
    await createVm(api, 200);
  });
  afterAll(() => api.stop());

  test("linked clone of a template by default; UPID id is the source", async () => {
    const upid = await api.ok("POST", "/nodes/pve1/qemu/9000/clone", { newid: 101, name: "c1" });
    expect(upid).toMatch(UPID_RE);
    expect(upid.split(":").slice(5, 7)).toEqual(["qmclone", "9000"]);
    expect((await api.waitTask("pve1", upid)).exitstatus).toBe("OK");
    const conf = await api.ok("GET", "/nodes/pve1/qemu/101/config");
    const tpl = await api.ok("GET", "/nodes/pve1/qemu/9000/config");
    expect(conf.scsi0).toBe("local-lvm:base-9000-disk-0/vm-101-disk-0,size=10G");
    expect(conf.ide2).toBe("local-lvm:vm-101-cloudinit,media=cdrom");
    expect(conf.template).toBeUndefined();
    expect(conf.name).toBe("c1");
    expect(conf.net0).not.toBe(tpl.net0);
    expect(conf.smbios1).not.toBe(tpl.smbios1);
    expect(conf.vmgenid).not.toBe(tpl.vmgenid);
  });

  test("full clone of a VM; default name Copy-of-VM-<name>", async () => {
    expect((await api.task("POST", "/nodes/pve1/qemu/200/clone", { newid: 201 })).exitstatus).toBe("OK");
    const conf = await api.ok("GET", "/nodes/pve1/qemu/201/config");
    expect(conf.name).toBe("Copy-of-VM-vm200");
    expect(conf.scsi0).toBe("local-lvm:vm-201-disk-0,size=10G");
  });

  test("synchronous errors", async () => {
    let r = await api.req("POST", "/nodes/pve1/qemu/9000/clone", { newid: 101 });
    expect([r.status, r.reason]).toEqual([500, "unable to create VM 101: config file already exists"]);
    r = await api.req("POST", "/nodes/pve1/qemu/9000/clone", { newid: 102, storage: "local-lvm" });
    expect(r.reason).toBe("parameter 'storage' not allowed for linked clones");
    r = await api.req("POST", "/nodes/pve1/qemu/9000/clone", { newid: 102, target: "pve2" });
    expect(r.reason).toBe("can't clone VM to node 'pve2' (VM uses local storage)");
    r = await api.req("POST", "/nodes/pve1/qemu/200/clone", { newid: 102, full: 0 });
    expect(r.reason).toBe("Linked clone feature is not supported for 'local-lvm:vm-200-disk-0' (scsi0)");
    r = await api.req("POST", "/nodes/pve1/qemu/9000/clone", { newid: 102, pool: "nope" });
    expect(r.reason).toBe("pool 'nope' does not exist");
  });

  test("pool membership after clone", async () => {
    await api.ok("POST", "/pools", { poolid: "fleet" });
    expect((await api.task("POST", "/nodes/pve1/qemu/9000/clone", { newid: 102, pool: "fleet" })).exitstatus).toBe("OK");
    const res = await api.ok("GET", "/cluster/resources", { type: "vm" });
    expect(res.find((e: any) => e.vmid === 102)).toMatchObject({ id: "qemu/102", pool: "fleet", template: 0, status: "stopped", node: "pve1" });
  });
});

describe("locks during a clone (timeFactor > 0)", () => {
  test("target shows lock: clone; the source is locked only by flock (shared)", async () => {
    const api = await startApi({ seed: 5, timeFactor: 0.2 });
    try {
      await createVm(api, 9000, {}, true);
      const upid = await api.ok("POST", "/nodes/pve1/qemu/9000/clone", { newid: 300, full: 1 });
      const upid2 = await api.ok("POST", "/nodes/pve1/qemu/9000/clone", { newid: 301, full: 1 });
      await new Promise((r) => setTimeout(r, 300));
      const conf = await api.ok("GET", "/nodes/pve1/qemu/300/config");
      expect(conf.lock).toBe("clone");
      const res = await api.ok("GET", "/cluster/resources", { type: "vm" });
      expect(res.find((e: any) => e.vmid === 300).lock).toBe("clone");
      const held = api.s.sim.ext.cluster.locks.held();
      expect(held.find((l: any) => l.vmid === 9000)).toMatchObject({ mode: "shared" });
      expect(held.find((l: any) => l.vmid === 9000).holders.length).toBe(2);
      // a config change waits for the target's flock, held for the whole copy: timeout
      const r = await api.req("PUT", "/nodes/pve1/qemu/300/config", { memory: 1024 });
      expect([r.status, r.reason]).toEqual([500, "can't lock file '/var/lock/qemu-server/lock-300.conf' - got timeout"]);
      expect((await api.waitTask("pve1", upid)).exitstatus).toBe("OK");
      expect((await api.waitTask("pve1", upid2)).exitstatus).toBe("OK");
      expect((await api.ok("GET", "/nodes/pve1/qemu/300/config")).lock).toBeUndefined();
    } finally {
      await api.stop();
    }
  });
});

/** 50 clients, each: GET nextid, then POST clone newid=<that>. Clients start in bursts at
 *  seeded times; within a burst they race for the same id exactly as on PVE. */
async function race(seed: number) {
  const api = await startApi({ seed, timeFactor: 0.05, cluster: { latency: { forkMs: 1000 } } });
  try {
    await createVm(api, 9000, {}, true);
    const rng = mulberry32(seed);
    const starts: number[] = [];
    let t = 0;
    for (let i = 0; i < 50; i++) {
      if (i > 0 && rng() < 0.3) t += 250; // a new burst
      starts.push(t);
    }
    const outcomes = await Promise.all(starts.map(async (at) => {
      await new Promise((r) => setTimeout(r, at));
      const id = Number(await api.ok("GET", "/cluster/nextid"));
      const r = await api.req("POST", "/nodes/pve1/qemu/9000/clone", { newid: id, full: 0 });
      if (r.status !== 200) return { id, ok: false, error: r.reason, sync: true };
      const st = await api.waitTask("pve1", r.body.data);
      return { id, ok: st.exitstatus === "OK", error: st.exitstatus === "OK" ? undefined : st.exitstatus, sync: false };
    }));
    const lockSeen = (await api.ok("GET", "/cluster/resources", { type: "vm" })).length;
    return { outcomes, lockSeen, api };
  } finally {
    await api.stop();
  }
}

describe("50 concurrent clones from one template", () => {
  test("collisions fail with PVE's errors, survivors are distinct, reproducible under a seed", async () => {
    const a = await race(11);
    const summary = (x: typeof a) => x.outcomes.reduce((m: Record<string, number>, o) => ((m[o.ok ? "OK" : o.error!.replace(/\d+/g, "N")] = (m[o.ok ? "OK" : o.error!.replace(/\d+/g, "N")] ?? 0) + 1), m), {});
    expect(Object.keys(summary(a)).length).toBeGreaterThan(1);
    const ok = a.outcomes.filter((o) => o.ok);
    const failed = a.outcomes.filter((o) => !o.ok);
    expect(failed.length).toBeGreaterThan(0);
    expect(ok.length).toBeGreaterThan(1);
    expect(new Set(ok.map((o) => o.id)).size).toBe(ok.length);
    const allowed = [
      /^unable to create VM \d+: config file already exists$/,
      /^clone failed: unable to create VM \d+: config file already exists$/,
      /^unable to create VM \d+: config file already exists$/,
      /^can't lock file '\/var\/lock\/qemu-server\/lock-\d+\.conf' - got timeout$/,
    ];
    for (const f of failed) expect(allowed.some((re) => re.test(f.error!))).toBe(true);
    expect(failed.some((f) => /got timeout/.test(f.error!))).toBe(true);
    const b = await race(11);
    const count = (x: typeof a) => ({ ok: x.outcomes.filter((o) => o.ok).length, failed: x.outcomes.filter((o) => !o.ok).length, ids: x.outcomes.filter((o) => o.ok).map((o) => o.id).sort() });
    expect(count(b)).toEqual(count(a));
  }, 60000);
});
