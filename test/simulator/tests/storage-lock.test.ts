// The storage lock (storage-locks.ts; STORAGE Plugin.pm cluster_lock_storage, Storage.pm
// vdisk_alloc / vdisk_clone / vdisk_free; COMMON Tools.pm lock_file_full; CLUSTER Cluster.pm
// $cfs_lock; QEMU API2/Qemu.pm clone_vm, QemuServer.pm destroy_vm): every allocation, linked
// clone and free on one storage waits for the one before it, 10 s at most. A burst of clones or
// deletes on one node's local-lvm fails the way users report it (`clone failed: can't lock file
// '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout`), and a destroy whose free timed
// out ends with a warning and leaves the disk behind. Virtual clock: the outcome does not depend
// on the machine's load.
import type { VirtualClock } from "../clock";
import { Api, createVm, startApi } from "./cluster-helpers";

const START = Date.UTC(2026, 0, 5, 9, 0, 0);
const FLOCK_TIMEOUT = "can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout";

async function virtualApi(seed: number, cluster: Record<string, unknown> = {}): Promise<{ api: Api; clock: VirtualClock; c: any }> {
  const api = await startApi({ seed, virtualTime: { startMs: START }, cluster });
  return { api, clock: api.s.sim.virtualClock(), c: api.s.sim.ext.cluster };
}

/** Starts every call at once, then runs PVE time until each task has ended; final statuses in order. */
async function burst(api: Api, clock: VirtualClock, calls: Array<[string, string, Record<string, string | number>?]>): Promise<Array<{ upid: string; exitstatus: string }>> {
  const upids: string[] = await Promise.all(calls.map(([m, p, q]) => api.ok(m, p, q)));
  await clock.runUntilIdle(10 * 60_000);
  return Promise.all(upids.map(async (upid) => ({ upid, exitstatus: (await api.waitTask(upid.split(":")[1], upid)).exitstatus })));
}

const volumesOf = async (api: Api, node: string, vmid: number): Promise<string[]> =>
  (await api.ok("GET", `/nodes/${node}/storage/local-lvm/content`, { vmid })).map((v: { volid: string }) => v.volid).sort();

describe("the storage lock (virtual time)", () => {
  test("30 linked clones at once on one node's local-lvm: the later ones wait more than 10 s and fail, the task log shows the wait", async () => {
    const { api, clock, c } = await virtualApi(21);
    try {
      await createVm(api, 9000, {}, true);
      const ids = Array.from({ length: 30 }, (_, i) => 100 + i);
      const ends = await burst(api, clock, ids.map((newid) => ["POST", "/nodes/pve1/qemu/9000/clone", { newid }]));
      const ok = ids.filter((_, i) => ends[i].exitstatus === "OK");
      const failed = ids.filter((_, i) => ends[i].exitstatus !== "OK");
      // each clone holds the lock twice (cloud-init allocation 300 ms, thin snapshot 500 ms): the
      // lock is busy 24 s for 30 clones, so some of them cannot have had it within 10 s
      expect(ok.length).toBeGreaterThanOrEqual(7);
      expect(failed.length).toBeGreaterThan(0);
      for (const i of ids.keys()) if (ends[i].exitstatus !== "OK") expect(ends[i].exitstatus).toBe(`clone failed: ${FLOCK_TIMEOUT}`);
      // flock: the first ones through are the first that asked
      expect(ok.slice(0, 7)).toEqual(ids.slice(0, 7));
      const failedLog = await api.log("pve1", ends[ids.indexOf(failed[0])].upid);
      expect(failedLog).toContain("trying to acquire lock...");
      expect(failedLog.at(-1)).toBe(`TASK ERROR: clone failed: ${FLOCK_TIMEOUT}`);
      const okLog = await api.log("pve1", ends[ids.indexOf(ok.at(-1)!)].upid);
      expect(okLog).toEqual(expect.arrayContaining(["trying to acquire lock...", " OK"]));
      // a failed clone has no config; a volume of it is left only where freeing it, under the
      // same lock, timed out too, and its task log says so (`warn $@`: a plain line, no `WARN:`)
      for (const vmid of failed) {
        expect((await api.req("GET", `/nodes/pve1/qemu/${vmid}/config`)).status).toBe(500);
        const left = await volumesOf(api, "pve1", vmid);
        const printed = (await api.log("pve1", ends[ids.indexOf(vmid)].upid)).filter((l) => l === FLOCK_TIMEOUT);
        expect(printed.length).toBe(left.length);
      }
      for (const vmid of ok) expect(await volumesOf(api, "pve1", vmid)).toEqual([`local-lvm:vm-${vmid}-cloudinit`, `local-lvm:vm-${vmid}-disk-0`]);
      expect(c.storageLocks.busy()).toEqual([]);
    } finally {
      await api.stop();
    }
  });

  test("a clone to a VMID whose cloud-init volume is still there (a failed clone's clean-up timed out) fails on it, and frees only what it made", async () => {
    const { api } = await virtualApi(25);
    try {
      await createVm(api, 9000, {}, true);
      await api.ok("POST", "/nodes/pve1/storage/local-lvm/content", { vmid: 130, filename: "vm-130-cloudinit", size: "4M" });
      const st = await api.task("POST", "/nodes/pve1/qemu/9000/clone", { newid: 130 });
      // LvmThinPlugin.pm alloc_image: lvcreate's last stderr line, through run_command's errmsg
      expect(st.exitstatus).toBe(`clone failed: lvcreate 'pve/vm-130-cloudinit' error:   Logical Volume "vm-130-cloudinit" already exists in volume group "pve"`);
      expect(await volumesOf(api, "pve1", 130)).toEqual(["local-lvm:vm-130-cloudinit"]);
    } finally {
      await api.stop();
    }
  });

  test("a create that fails after allocating a disk frees it under the lock; when that wait times out, the disk stays and the log says so", async () => {
    const { api, clock, c } = await virtualApi(26);
    try {
      // scsi0 is allocated (550–850 ms), then scsi1's format fails in lvmthin's alloc_image (–1 150)
      const upid = await api.ok("POST", "/nodes/pve1/qemu", { vmid: 140, scsi0: "local-lvm:1", scsi1: "local-lvm:1,format=qcow2" });
      await clock.advance(1100);
      // another task takes the lock next, for 15 s: the clean-up's free waits behind it
      const other = c.storageLocks.with({ storage: "local-lvm", shared: false }, "pve1", () => c.latency.sleep(15_000));
      const st = await api.waitTask("pve1", upid);
      expect(st.exitstatus).toMatch(/^unable to create VM 140 - unsupported format 'qcow2' at /);
      const log = await api.log("pve1", upid);
      expect(log).toContain(FLOCK_TIMEOUT); // create_disks' `warn $@`: a plain line
      expect(await volumesOf(api, "pve1", 140)).toEqual(["local-lvm:vm-140-disk-0"]);
      expect((await api.req("GET", "/nodes/pve1/qemu/140/config")).status).toBe(500);
      await clock.runUntilIdle(60_000);
      await other;
    } finally {
      await api.stop();
    }
  });

  test("a local storage's lock is the node's: 40 disks allocated on one node time out, spread over three nodes they do not", async () => {
    const { api, clock } = await virtualApi(22);
    try {
      const create = (node: string, vmid: number): [string, string, Record<string, string | number>] => ["POST", `/nodes/${node}/qemu`, { vmid, scsi0: "local-lvm:1" }];
      // 40 × 300 ms on pve1's lock: the last ones would wait 12 s
      const one = await burst(api, clock, Array.from({ length: 40 }, (_, i) => create("pve1", 200 + i)));
      const failed = one.filter((e) => e.exitstatus !== "OK");
      expect(failed.length).toBeGreaterThan(0);
      for (const e of failed) expect(e.exitstatus).toBe(`unable to create VM ${e.upid.split(":")[6]} - ${FLOCK_TIMEOUT}`);
      const spread = await burst(api, clock, Array.from({ length: 39 }, (_, i) => create(["pve1", "pve2", "pve3"][i % 3], 300 + i)));
      expect(spread.map((e) => e.exitstatus)).toEqual(spread.map(() => "OK"));
    } finally {
      await api.stop();
    }
  });

  test("a shared storage's lock is the cluster's (pmxcfs): allocations from every node contend, looked for about once a second", async () => {
    const { api, clock } = await virtualApi(23, { sharedStorage: true });
    try {
      const ends = await burst(api, clock, Array.from({ length: 45 }, (_, i) => ["POST", `/nodes/${["pve1", "pve2", "pve3"][i % 3]}/qemu`, { vmid: 400 + i, scsi0: "shared-nfs:1" }]));
      const failed = ends.filter((e) => e.exitstatus !== "OK");
      expect(failed.length).toBeGreaterThan(0);
      for (const e of failed) expect(e.exitstatus).toBe(`unable to create VM ${e.upid.split(":")[6]} - cfs-lock 'storage-shared-nfs' error: got lock request timeout`);
      const log = await api.log(failed[0].upid.split(":")[1], failed[0].upid);
      expect(log).toContain("trying to acquire cfs lock 'storage-shared-nfs' ...");
      expect(ends.filter((e) => e.exitstatus === "OK").length).toBeGreaterThan(10);
    } finally {
      await api.stop();
    }
  });

  test("50 destroys at once: a free that waited 10 s is a warning, the VM is gone and its disk is left; destroy-unreferenced-disks tries once more", async () => {
    const { api, clock } = await virtualApi(24);
    try {
      await createVm(api, 9000, {}, true);
      const ids = Array.from({ length: 50 }, (_, i) => 500 + i);
      for (let i = 0; i < ids.length; i += 6) {
        const ends = await burst(api, clock, ids.slice(i, i + 6).map((newid) => ["POST", "/nodes/pve1/qemu/9000/clone", { newid }]));
        expect(ends.map((e) => e.exitstatus)).toEqual(ends.map(() => "OK"));
      }
      // two frees of 250 ms per VM: 25 s of lock for 50 VMs, more than 40 in the queue at once
      const ends = await burst(api, clock, ids.map((vmid) => ["DELETE", `/nodes/pve1/qemu/${vmid}`]));
      const warned = ids.filter((_, i) => ends[i].exitstatus !== "OK");
      expect(warned.length).toBeGreaterThan(0);
      for (const vmid of ids) expect((await api.req("GET", `/nodes/pve1/qemu/${vmid}/config`)).status).toBe(500);
      for (const vmid of warned) {
        const e = ends[ids.indexOf(vmid)];
        expect(e.exitstatus).toMatch(/^WARNINGS: [12]$/);
        const log = await api.log("pve1", e.upid);
        const notRemoved = log.filter((l) => l.startsWith("WARN: Could not remove disk"));
        expect(notRemoved.length).toBe(Number(e.exitstatus.slice(10)));
        for (const l of notRemoved) expect(l).toMatch(new RegExp(`^WARN: Could not remove disk 'local-lvm:vm-${vmid}-(cloudinit|disk-0)', check manually: ${FLOCK_TIMEOUT.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`));
        expect((await volumesOf(api, "pve1", vmid)).length).toBe(notRemoved.length);
      }
      // the purge of unreferenced disks frees them, one more wait under the lock each
      const left = warned[0];
      await api.ok("POST", "/nodes/pve1/qemu", { vmid: left, scsi0: "local-lvm:1" });
      await clock.runUntilIdle(60_000);
      const purge = await burst(api, clock, [["DELETE", `/nodes/pve1/qemu/${left}`, { "destroy-unreferenced-disks": 1 }]]);
      expect(purge[0].exitstatus).toBe("OK");
      expect(await volumesOf(api, "pve1", left)).toEqual([]);
    } finally {
      await api.stop();
    }
  });
});
