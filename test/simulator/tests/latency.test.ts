// The latency model (latency.ts): base time per operation, clone time from disk size and a
// storage bandwidth shared by concurrent copies, the boot-to-agent delay, all in PVE time.
// Most tests run on the virtual clock and read durations from the task list's
// starttime/endtime (whole seconds, so a duration D ms reads as floor or ceil of D/1000);
// the last one checks the real clock's timeFactor scaling with lower bounds only.
import type { LatencyOptions } from "../latency";
import { Api, createVm, startApi } from "./cluster-helpers";

const START = Date.UTC(2026, 0, 5, 9, 0, 0);
const GiB = 1024 ** 3;

async function virtualApi(latency: Partial<LatencyOptions> = {}, cluster: Record<string, unknown> = {}): Promise<Api> {
  return startApi({ seed: 21, virtualTime: { startMs: START }, cluster: { latency, ...cluster } });
}

/** endtime - starttime of each finished task, by UPID. */
async function spans(api: Api): Promise<Map<string, number>> {
  const list = await api.ok("GET", "/nodes/pve1/tasks", { limit: 1000 });
  return new Map(list.filter((t: any) => t.endtime !== undefined).map((t: any) => [t.upid, t.endtime - t.starttime]));
}

/** The task took `ms` of PVE time, as far as whole-second timestamps can tell. */
function expectSpan(seconds: number | undefined, ms: number): void {
  expect(seconds).toBeGreaterThanOrEqual(Math.floor(ms / 1000));
  expect(seconds).toBeLessThanOrEqual(Math.ceil(ms / 1000));
}

/** Starts the calls at the same instant, then runs PVE time until they are done. */
async function together(api: Api, calls: Array<[string, string, Record<string, string | number>?]>): Promise<string[]> {
  const upids: string[] = [];
  for (const [m, p, params] of calls) upids.push(await api.ok(m, p, params));
  await api.s.sim.virtualClock().runUntilIdle();
  for (const u of upids) expect((await api.ok("GET", `/nodes/pve1/tasks/${encodeURIComponent(u)}/status`)).exitstatus).toBe("OK");
  return upids;
}

describe("clone time: disk size over storage bandwidth (virtual clock)", () => {
  test("a full clone takes forkMs + cloneBaseMs + size / storageBandwidth", async () => {
    const api = await virtualApi();
    try {
      await createVm(api, 9000, { scsi0: "local-lvm:16" }, true);
      await createVm(api, 9001, { scsi0: "local-lvm:48" }, true);
      const [small] = await together(api, [["POST", "/nodes/pve1/qemu/9000/clone", { newid: 100, full: 1 }]]);
      const [big] = await together(api, [["POST", "/nodes/pve1/qemu/9001/clone", { newid: 101, full: 1 }]]);
      const s = await spans(api);
      expectSpan(s.get(small), 50 + 500 + (16 * GiB) / (GiB / 1000));
      expectSpan(s.get(big), 50 + 500 + (48 * GiB) / (GiB / 1000));
    } finally {
      await api.stop();
    }
    // a faster storage: the copy part shrinks in proportion
    const fast = await virtualApi({ storageBandwidth: 4 * GiB });
    try {
      await createVm(fast, 9001, { scsi0: "local-lvm:48" }, true);
      const [big] = await together(fast, [["POST", "/nodes/pve1/qemu/9001/clone", { newid: 101, full: 1 }]]);
      expectSpan((await spans(fast)).get(big), 50 + 500 + (48 * GiB) / ((4 * GiB) / 1000));
    } finally {
      await fast.stop();
    }
  });

  test("two concurrent full clones on one storage take about twice as long; on two storages they do not", async () => {
    const api = await virtualApi({}, { sharedStorage: true });
    try {
      await createVm(api, 9000, { scsi0: "local-lvm:16" }, true);
      await createVm(api, 9002, { scsi0: "shared-nfs:16", ide2: "shared-nfs:cloudinit" }, true);
      const [alone] = await together(api, [["POST", "/nodes/pve1/qemu/9000/clone", { newid: 100, full: 1 }]]);
      const pair = await together(api, [
        ["POST", "/nodes/pve1/qemu/9000/clone", { newid: 101, full: 1 }],
        ["POST", "/nodes/pve1/qemu/9000/clone", { newid: 102, full: 1 }],
      ]);
      const apart = await together(api, [
        ["POST", "/nodes/pve1/qemu/9000/clone", { newid: 103, full: 1 }],
        ["POST", "/nodes/pve1/qemu/9002/clone", { newid: 104, full: 1 }],
      ]);
      const s = await spans(api);
      const copy = (16 * GiB) / (GiB / 1000);
      // fork and clone base, then the cloud-init drive and the disk allocated under the storage
      // lock (the pair's four allocations one after the other; the copies are not under it)
      const setup = 550 + 2 * 300;
      expectSpan(s.get(alone), setup + copy);
      for (const u of pair) expectSpan(s.get(u), setup + 2 * copy);
      for (const u of apart) expectSpan(s.get(u), setup + copy);
      expect(s.get(pair[0])! / s.get(alone)!).toBeGreaterThan(1.8);
    } finally {
      await api.stop();
    }
  });
});

describe("base time per operation (virtual clock)", () => {
  test("create, template, linked clone, start, shutdown, stop, resize, config, destroy, boot to agent", async () => {
    const L: Partial<LatencyOptions> = {
      forkMs: 1000, createMs: 4000, allocateDiskMs: 2000, templateMs: 5000, cloneBaseMs: 3000, linkedCloneMs: 11_000,
      startMs: 6000, shutdownMs: 9000, stopMs: 3000, resizeMs: 8000, configMs: 2000, destroyMs: 7000, freeDiskMs: 2500, bootToAgentMs: 20_000,
    };
    const api = await virtualApi(L);
    const clock = api.s.sim.virtualClock();
    try {
      const [create] = await together(api, [["POST", "/nodes/pve1/qemu", { vmid: 9000, scsi0: "local-lvm:8", scsi1: "local-lvm:4", ide2: "local-lvm:cloudinit", net0: "virtio,bridge=vmbr0", agent: "1" }]]);
      const [template] = await together(api, [["POST", "/nodes/pve1/qemu/9000/template"]]);
      const [clone] = await together(api, [["POST", "/nodes/pve1/qemu/9000/clone", { newid: 100 }]]);
      const [start] = await together(api, [["POST", "/nodes/pve1/qemu/100/status/start"]]);
      const [shutdown] = await together(api, [["POST", "/nodes/pve1/qemu/100/status/shutdown"]]);
      const [start2] = await together(api, [["POST", "/nodes/pve1/qemu/100/status/start"]]);

      // the agent answers bootToAgentMs after the start task finished, not before; a call before
      // that waits for guest-ping's 3 s timeout (Agent.pm qga_check_running) before it fails
      await clock.advance(19_900);
      let done = false;
      const early = api.req("GET", "/nodes/pve1/qemu/100/agent/network-get-interfaces").finally(() => (done = true));
      const waiting = clock.pending();
      while (!done && clock.pending() === waiting) await new Promise((res) => setTimeout(res, 5));
      await clock.advance(2_999);
      await new Promise((res) => setTimeout(res, 20));
      expect(done).toBe(false);
      await clock.advance(1);
      let r = await early;
      expect([r.status, r.reason]).toEqual([500, "QEMU guest agent is not running"]);
      r = await api.req("GET", "/nodes/pve1/qemu/100/agent/network-get-interfaces");
      expect(r.status).toBe(200);

      const [stop] = await together(api, [["POST", "/nodes/pve1/qemu/100/status/stop"]]);
      const [resize] = await together(api, [["PUT", "/nodes/pve1/qemu/100/resize", { disk: "scsi0", size: "+1G" }]]);
      const [config] = await together(api, [["POST", "/nodes/pve1/qemu/100/config", { memory: 1024 }]]);
      const [destroy] = await together(api, [["DELETE", "/nodes/pve1/qemu/100"]]);

      const s = await spans(api);
      expectSpan(s.get(create), 1000 + 4000 + 3 * 2000); // two disks and the cloud-init drive allocated
      expectSpan(s.get(template), 1000 + 5000);
      expectSpan(s.get(clone), 1000 + 3000 + 2000 + 2 * 11_000); // the cloud-init drive allocated, two thin snapshots
      expectSpan(s.get(start), 1000 + 6000);
      expectSpan(s.get(shutdown), 1000 + 9000);
      expectSpan(s.get(start2), 1000 + 6000);
      expectSpan(s.get(stop), 1000 + 3000);
      expectSpan(s.get(resize), 1000 + 8000);
      expectSpan(s.get(config), 1000 + 2000);
      expectSpan(s.get(destroy), 1000 + 7000 + 3 * 2500); // three volumes freed
    } finally {
      await api.stop();
    }
  });
});

describe("timeFactor (real clock)", () => {
  /** Wall-clock ms of a 100 GiB full clone (50 + 500 + 100000 ms of PVE time); also checks
   *  that the task is still running `probeMs` after it started, when given. */
  async function fullClone(timeFactor: number, probeMs?: number): Promise<number> {
    const api = await startApi({ seed: 22, timeFactor });
    try {
      await createVm(api, 9000, { scsi0: "local-lvm:100" }, true);
      const t0 = Date.now();
      const upid = await api.ok("POST", "/nodes/pve1/qemu/9000/clone", { newid: 100, full: 1 });
      if (probeMs !== undefined) {
        await new Promise((r) => setTimeout(r, probeMs));
        expect((await api.ok("GET", `/nodes/pve1/tasks/${encodeURIComponent(upid)}/status`)).status).toBe("running");
      }
      expect((await api.waitTask("pve1", upid)).exitstatus).toBe("OK");
      return Date.now() - t0;
    } finally {
      await api.stop();
    }
  }

  test("PVE time runs timeFactor times as fast as the wall clock (lower bounds; a generous upper one)", async () => {
    const slow = await fullClone(0.01, 200);
    expect(slow).toBeGreaterThanOrEqual(1005);
    const fast = await fullClone(0.001);
    expect(fast).toBeGreaterThanOrEqual(100);
    expect(fast).toBeLessThan(slow);
  });
});
