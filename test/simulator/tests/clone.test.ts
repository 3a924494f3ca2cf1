// Clone semantics and locks (BEHAVIOURS §3; QEMU API2/Qemu.pm clone_vm, update_vm_api,
// destroy_vm; QemuServer.pm vm_start) and THE race: 50 clients doing nextid + clone at once.
// The lock and race tests run on the virtual clock: PVE time moves only when the test moves
// it, so their outcome does not depend on the machine's load.
import type { VirtualClock } from "../clock";
import { mulberry32 } from "../rng";
import { Api, UPID_RE, createVm, startApi } from "./cluster-helpers";
import { call } from "./core-http";

describe("clone semantics", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 3 });
    await createVm(api, 9000, {}, true);
    await createVm(api, 200);
  });
  afterAll(() => api.stop());

  test("volume names of linked clones per storage type: dir/nfs name the base (qcow2 backing file), lvmthin does not", async () => {
    await api.ok("POST", "/storage", { storage: "dirimg", type: "dir", path: "/mnt/dirimg", content: "images" });
    await createVm(api, 9100, { scsi0: "dirimg:4", ide2: "dirimg:cloudinit" }, true);
    expect((await api.ok("GET", "/nodes/pve1/qemu/9100/config")).scsi0).toBe("dirimg:9100/base-9100-disk-0.raw,size=4G"); // a dir storage's default format is raw
    expect((await api.task("POST", "/nodes/pve1/qemu/9100/clone", { newid: 150 })).exitstatus).toBe("OK");
    const conf = await api.ok("GET", "/nodes/pve1/qemu/150/config");
    expect(conf.scsi0).toBe("dirimg:9100/base-9100-disk-0.raw/150/vm-150-disk-0.qcow2,size=4G"); // the clone: a qcow2 overlay
    const listed = await api.ok("GET", "/nodes/pve1/storage/dirimg/content");
    expect(listed.find((v: { volid: string }) => v.volid.includes("/150/"))).toMatchObject({ format: "qcow2", vmid: 150 });
    expect((await api.ok("GET", "/nodes/pve1/qemu/150/config")).ide2).toBe("dirimg:150/vm-150-cloudinit.qcow2,media=cdrom");
    expect((await api.task("DELETE", "/nodes/pve1/qemu/150")).exitstatus).toBe("OK");
    expect((await api.task("DELETE", "/nodes/pve1/qemu/9100")).exitstatus).toBe("OK");
    await api.ok("DELETE", "/storage/dirimg");
  });

  test("linked clone of a template by default; UPID id is the source", async () => {
    const upid = await api.ok("POST", "/nodes/pve1/qemu/9000/clone", { newid: 101, name: "c1" });
    expect(upid).toMatch(UPID_RE);
    expect(upid.split(":").slice(5, 7)).toEqual(["qmclone", "9000"]);
    expect((await api.waitTask("pve1", upid)).exitstatus).toBe("OK");
    const conf = await api.ok("GET", "/nodes/pve1/qemu/101/config");
    const tpl = await api.ok("GET", "/nodes/pve1/qemu/9000/config");
    // LvmThinPlugin clone_image: a thin snapshot named like any volume, naming no template
    expect(conf.scsi0).toBe("local-lvm:vm-101-disk-0,size=10G");
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
    // ACCESS RPCEnvironment.pm check_pool_exist: raise_perm_exc, a 403
    expect([r.status, r.reason]).toEqual([403, "Permission check failed (pool 'nope' does not exist)"]);
  });

  test("pool membership after clone", async () => {
    await api.ok("POST", "/pools", { poolid: "fleet" });
    expect((await api.task("POST", "/nodes/pve1/qemu/9000/clone", { newid: 102, pool: "fleet" })).exitstatus).toBe("OK");
    const res = await api.ok("GET", "/cluster/resources", { type: "vm" });
    expect(res.find((e: any) => e.vmid === 102)).toMatchObject({ id: "qemu/102", pool: "fleet", template: 0, status: "stopped", node: "pve1" });
  });
});

const START = Date.UTC(2026, 0, 5, 9, 0, 0);
const LOCK_TIMEOUT = (vmid: number) => `can't lock file '/var/lock/qemu-server/lock-${vmid}.conf' - got timeout`;

async function virtualApi(seed: number): Promise<{ api: Api; clock: VirtualClock; cluster: any }> {
  const api = await startApi({ seed, virtualTime: { startMs: START } });
  return { api, clock: api.s.sim.virtualClock(), cluster: api.s.sim.ext.cluster };
}

/** Resolves once `cond` holds (polled in real time; nothing here moves PVE time). */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const waiting = (cluster: any, vmid: number) => cluster.locks.held().find((l: any) => l.vmid === vmid)?.waiting ?? 0;

describe("locks while a clone runs (virtual time)", () => {
  test("the target: lock: clone in its config; sync lock checks say `VM is locked (clone)`, flock takers time out", async () => {
    const { api, clock, cluster } = await virtualApi(5);
    try {
      await createVm(api, 9000, { scsi0: "local-lvm:64" }, true);
      // a full clone of 64 GiB at 1 GiB/s: ~66 s of PVE time, holding the target's flock throughout
      const upid = await api.ok("POST", "/nodes/pve1/qemu/9000/clone", { newid: 300, full: 1 });
      await clock.advance(1000);

      // the config written after the cloud-init drive, still locked (clone_vm writes it per drive)
      const conf = await api.ok("GET", "/nodes/pve1/qemu/300/config");
      expect(conf).toMatchObject({ lock: "clone", name: "Copy-of-VM-vm9000", ide2: "local-lvm:vm-300-cloudinit,media=cdrom" });
      expect(conf.scsi0).toBeUndefined();
      const res = await api.ok("GET", "/cluster/resources", { type: "vm" });
      // no pvestatd broadcast since the temporary config appeared: `status: unknown`, no stats, but
      // the lock from the config (MGR API2Tools.pm extract_vm_stats, API2/Cluster.pm resources)
      expect(res.find((e: any) => e.vmid === 300)).toEqual({ id: "qemu/300", vmid: 300, node: "pve1", type: "qemu", status: "unknown", lock: "clone" });
      expect((await api.ok("GET", "/nodes/pve1/qemu/300/status/current")).lock).toBe("clone");
      expect(cluster.locks.held().map((l: any) => [l.vmid, l.mode, l.holders.length])).toEqual([[9000, "shared", 1], [300, "exclusive", 1]]);

      // checked before any flock: refused at once
      let r = await api.req("POST", "/nodes/pve1/qemu/300/clone", { newid: 301 });
      expect([r.status, r.reason, r.body.message]).toEqual([500, "VM is locked (clone)", "VM is locked (clone)\n"]);
      r = await api.req("POST", "/nodes/pve1/qemu/300/migrate", { target: "pve2" });
      expect([r.status, r.reason]).toEqual([500, "VM is locked (clone)"]);
      r = await api.req("POST", "/nodes/pve1/qemu/300/template");
      expect([r.status, r.reason]).toEqual([500, "VM is locked (clone)"]);

      // PUT and POST config wait for the flock (10 s) before anything else (PVE 8.4/9.1
      // update_vm_api), and give up while the copy still runs
      for (const method of ["PUT", "POST"]) {
        const update = api.req(method, "/nodes/pve1/qemu/300/config", { memory: 1024 });
        await until(() => waiting(cluster, 300) === 1, `the ${method} config update to wait for the flock`);
        await clock.advance(10_000);
        r = await update;
        expect([r.status, r.reason, r.body.message]).toEqual([500, LOCK_TIMEOUT(300), `${LOCK_TIMEOUT(300)}\n`]);
      }

      // start and destroy fork a worker that waits for the flock: the task fails the same way
      for (const [method, path] of [["POST", "/nodes/pve1/qemu/300/status/start"], ["DELETE", "/nodes/pve1/qemu/300"]]) {
        const task = await api.ok(method, path);
        expect(task).toMatch(UPID_RE);
        await clock.advance(10_100);
        const st = await api.ok("GET", `/nodes/pve1/tasks/${encodeURIComponent(task)}/status`);
        expect(st).toMatchObject({ status: "stopped", exitstatus: LOCK_TIMEOUT(300) });
        expect((await api.log("pve1", task)).at(-1)).toBe(`TASK ERROR: ${LOCK_TIMEOUT(300)}`);
      }
      expect(cluster.vms.get(300).running).toBe(false);

      expect((await api.waitTask("pve1", upid)).exitstatus).toBe("OK");
      const done = await api.ok("GET", "/nodes/pve1/qemu/300/config");
      expect(done.lock).toBeUndefined();
      expect(done.scsi0).toBe("local-lvm:vm-300-disk-0,size=64G");
      expect(done.memory).toBe("2048");
      expect(cluster.locks.held()).toEqual([]);
    } finally {
      await api.stop();
    }
  });

  test("the target: a config change that outlives the clone's flock waits, then applies", async () => {
    const { api, clock, cluster } = await virtualApi(6);
    try {
      await createVm(api, 9000, {}, true);
      // a linked clone: 50 ms fork + 500 ms + 300 ms cloud-init drive + 500 ms thin snapshot, well
      // inside the 10 s flock timeout
      const upid = await api.ok("POST", "/nodes/pve1/qemu/9000/clone", { newid: 301 });
      await clock.advance(100);
      let answered = false;
      const put = api.req("PUT", "/nodes/pve1/qemu/301/config", { memory: 1024 }).finally(() => (answered = true));
      await until(() => waiting(cluster, 301) === 1, "the config update to wait for the flock");
      await clock.advance(1000);
      expect(answered).toBe(false);
      expect(cluster.tasks.get(upid).status).toBe("running");
      await clock.advance(1000);
      expect((await put).status).toBe(200);
      expect(cluster.tasks.get(upid).exitstatus).toBe("OK");
      const conf = await api.ok("GET", "/nodes/pve1/qemu/301/config");
      expect(conf.lock).toBeUndefined();
      expect(conf.memory).toBe("1024");
    } finally {
      await api.stop();
    }
  });

  test("the source: a shared flock while stopped, an exclusive one while running; no lock property", async () => {
    const { api, clock, cluster } = await virtualApi(7);
    try {
      await createVm(api, 9000, { scsi0: "local-lvm:32" }, true);
      const a = await api.ok("POST", "/nodes/pve1/qemu/9000/clone", { newid: 310, full: 1 });
      const b = await api.ok("POST", "/nodes/pve1/qemu/9000/clone", { newid: 311, full: 1 });
      await clock.advance(1000);
      expect(cluster.locks.held().find((l: any) => l.vmid === 9000)).toMatchObject({ mode: "shared", holders: [expect.stringContaining("310"), expect.stringContaining("311")] });
      expect((await api.ok("GET", "/nodes/pve1/qemu/9000/config")).lock).toBeUndefined();
      // a config change on the source needs the exclusive flock: it times out behind both copies
      const put = api.req("PUT", "/nodes/pve1/qemu/9000/config", { description: "x" });
      await until(() => waiting(cluster, 9000) === 1, "the config update to wait for the flock");
      await clock.advance(10_000);
      expect((await put).reason).toBe(LOCK_TIMEOUT(9000));
      expect((await api.waitTask("pve1", a)).exitstatus).toBe("OK");
      expect((await api.waitTask("pve1", b)).exitstatus).toBe("OK");

      await createVm(api, 200, { scsi0: "local-lvm:32" });
      expect((await api.task("POST", "/nodes/pve1/qemu/200/status/start")).exitstatus).toBe("OK");
      const full = await api.ok("POST", "/nodes/pve1/qemu/200/clone", { newid: 201 });
      await clock.advance(1000);
      expect(cluster.locks.held().find((l: any) => l.vmid === 200)).toMatchObject({ mode: "exclusive", holders: [expect.stringContaining("201")] });
      expect(await api.ok("GET", "/nodes/pve1/qemu/200/status/current")).toMatchObject({ status: "running" });
      expect((await api.ok("GET", "/nodes/pve1/qemu/200/status/current")).lock).toBeUndefined();
      // a second clone of the running source is accepted, and its worker gives up on the flock (1 s)
      const second = await api.ok("POST", "/nodes/pve1/qemu/200/clone", { newid: 202 });
      await clock.advance(1100);
      expect(await api.ok("GET", `/nodes/pve1/tasks/${encodeURIComponent(second)}/status`)).toMatchObject({ status: "stopped", exitstatus: LOCK_TIMEOUT(200) });
      expect(cluster.vms.has(202)).toBe(false);
      expect((await api.waitTask("pve1", full)).exitstatus).toBe("OK");
    } finally {
      await api.stop();
    }
  });
});

describe("a `lock: clone` left behind (a clone worker that died)", () => {
  test("every operation that checks the lock refuses with `VM is locked (clone)`", async () => {
    const api = await startApi({ seed: 9 });
    try {
      await createVm(api, 400);
      const drift = await call(api.s, "PUT", "/vms/400/config", { prefix: "/_sim", token: api.s.rootToken, json: { set: { lock: "clone" } } });
      expect(drift.status).toBe(200);
      let r = await api.req("PUT", "/nodes/pve1/qemu/400/config", { memory: 1024 });
      expect([r.status, r.reason, r.body.message]).toEqual([500, "VM is locked (clone)", "VM is locked (clone)\n"]);
      r = await api.req("POST", "/nodes/pve1/qemu/400/config", { memory: 1024 });
      expect([r.status, r.reason]).toEqual([500, "VM is locked (clone)"]);
      r = await api.req("PUT", "/nodes/pve1/qemu/400/cloudinit");
      expect([r.status, r.reason]).toEqual([500, "VM is locked (clone)"]);
      r = await api.req("POST", "/nodes/pve1/qemu/400/clone", { newid: 401 });
      expect([r.status, r.reason]).toEqual([500, "VM is locked (clone)"]);
      r = await api.req("POST", "/nodes/pve1/qemu/400/template");
      expect([r.status, r.reason]).toEqual([500, "VM is locked (clone)"]);
      // start and destroy check the lock in their worker (vm_start, destroy_vm)
      expect((await api.task("POST", "/nodes/pve1/qemu/400/status/start")).exitstatus).toBe("VM is locked (clone)");
      expect((await api.task("DELETE", "/nodes/pve1/qemu/400")).exitstatus).toBe("VM is locked (clone)");
      expect(api.s.sim.ext.cluster.vms.has(400)).toBe(true);
      expect((await api.ok("GET", "/nodes/pve1/qemu/400/config")).memory).toBe("2048");
    } finally {
      await api.stop();
    }
  });
});

/** One client of the race: reads nextid at `at`, posts the clone `think` ms later. */
interface Client {
  at: number;
  think: number;
}

interface Outcome {
  id: number;
  /** `sync` when the POST failed, `task` when it returned a UPID. */
  via: "sync" | "task";
  upid?: string;
  result: string;
}

const FAILURES: Array<[Outcome["via"], RegExp]> = [
  ["sync", /^unable to create VM (\d+): config file already exists$/],
  ["task", /^can't lock file '\/var\/lock\/qemu-server\/lock-(\d+)\.conf' - got timeout$/],
];

/** 50 clients, each: GET nextid, then POST clone newid=<that>. They come in bursts at seeded
 *  times; the clients of a burst read nextid at the same instant (so they get the same id),
 *  and post the clone at once or 100 ms later. Requests at the same instant reach the
 *  simulator in client order. Meanwhile /cluster/resources is sampled every 100 ms. */
async function race(seed: number) {
  const { api, clock } = await virtualApi(seed);
  try {
    await createVm(api, 9000, {}, true);
    const rng = mulberry32(seed);
    const clients: Client[] = [];
    let t = 0;
    for (let i = 0; i < 50; i++) {
      if (i > 0 && rng() < 0.3) t += 250;
      clients.push({ at: t, think: rng() < 0.25 ? 100 : 0 });
    }
    const t0 = clock.elapsed();
    const lockSeen = new Map<number, number[]>();
    const sample = async () => {
      for (const e of await api.ok("GET", "/cluster/resources", { type: "vm" })) {
        if (e.lock === "clone") lockSeen.set(e.vmid, [...(lockSeen.get(e.vmid) ?? []), clock.elapsed() - t0]);
      }
    };
    const runTo = async (at: number) => {
      while (clock.elapsed() - t0 + 100 <= at) {
        await clock.advance(100);
        await sample();
      }
      await clock.advance(at - (clock.elapsed() - t0));
    };
    // nextid reads before clone posts at the same instant, then client order
    const events = clients
      .flatMap((c, i) => [{ t: c.at, kind: 0, i }, { t: c.at + c.think, kind: 1, i }])
      .sort((x, y) => x.t - y.t || x.kind - y.kind || x.i - y.i);
    const ids: number[] = [];
    const outcomes: Outcome[] = [];
    for (const ev of events) {
      await runTo(ev.t);
      if (ev.kind === 0) {
        ids[ev.i] = Number(await api.ok("GET", "/cluster/nextid"));
        continue;
      }
      const r = await api.req("POST", "/nodes/pve1/qemu/9000/clone", { newid: ids[ev.i], full: 0 });
      outcomes[ev.i] = r.status === 200 ? { id: ids[ev.i], via: "task", upid: r.body.data, result: "" } : { id: ids[ev.i], via: "sync", result: r.reason };
      await sample();
    }
    while (clock.pending() > 0) {
      await clock.advance(100);
      await sample();
    }
    for (const o of outcomes) {
      if (o.upid) o.result = (await api.ok("GET", `/nodes/pve1/tasks/${encodeURIComponent(o.upid)}/status`)).exitstatus;
    }
    const vms = (await api.ok("GET", "/cluster/resources", { type: "vm" })).map((e: any) => ({ vmid: e.vmid, lock: e.lock, name: e.name }));
    return { outcomes, lockSeen, vms };
  } finally {
    await api.stop();
  }
}

describe("50 concurrent clones from one template", () => {
  test("nextid collisions fail with PVE's errors, each id has one winner, reproducible under a seed", async () => {
    const a = await race(11);
    const ok = a.outcomes.filter((o) => o.result === "OK");
    const failed = a.outcomes.filter((o) => o.result !== "OK");
    expect(a.outcomes).toHaveLength(50);
    expect(ok.length).toBeGreaterThan(1);
    expect(new Set(ok.map((o) => o.id)).size).toBe(ok.length);
    for (const f of failed) {
      const kind = FAILURES.find(([via, re]) => via === f.via && re.test(f.result));
      expect([f, kind !== undefined]).toEqual([f, true]);
      expect(Number(kind![1].exec(f.result)![1])).toBe(f.id);
      // a loser read the same nextid as exactly one winner
      expect(ok.filter((o) => o.id === f.id)).toHaveLength(1);
    }
    for (const [via] of FAILURES) expect(failed.some((f) => f.via === via)).toBe(true);

    // every winner was seen as `lock: clone` throughout its clone (1.3 s or more, waits for the
    // storage lock included: some 13 samples), only winners were, and no lock is left
    const byNumber = (x: number, y: number) => x - y;
    for (const o of ok) expect([o.id, new Set(a.lockSeen.get(o.id)).size >= 10]).toEqual([o.id, true]);
    expect([...a.lockSeen.keys()].sort(byNumber)).toEqual(ok.map((o) => o.id).sort(byNumber));
    expect(a.vms.map((v: any) => v.vmid).sort(byNumber)).toEqual([...ok.map((o) => o.id), 9000].sort(byNumber));
    expect(a.vms.filter((v: any) => v.lock !== undefined)).toEqual([]);

    const b = await race(11);
    expect(b.outcomes).toEqual(a.outcomes);
    expect([...b.lockSeen.entries()]).toEqual([...a.lockSeen.entries()]);
    const c = await race(12);
    expect(c.outcomes.map((o) => o.result)).not.toEqual(a.outcomes.map((o) => o.result));
  }, 120_000);
});
