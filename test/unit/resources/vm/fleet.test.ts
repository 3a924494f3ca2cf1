// 30 VmClone creates at full parallelism in one process, against the simulator's latency
// model: zero VMID collisions reach PVE, nothing is retried, every VM converges.
import { vmCloneLifecycle as life, type VmCloneInputs } from "../../../../provider/resources/vm-clone";
import { taskSlots } from "../../../../provider/resources/vm/task-slots";
import { connection } from "../../../../provider/resources/context";
import { DEFAULT_MAX_CONCURRENT_TASKS } from "../../../../provider/config";
import { makeTemplate, startVmSim, type VmSim } from "./sim-setup";

jest.setTimeout(120_000);

const FLEET = 30;

describe("a 30-VM fleet at full parallelism", () => {
  let v: VmSim;
  beforeAll(async () => {
    v = await startVmSim({ seed: 11, timeFactor: 0.02 });
    await makeTemplate(v.api, 9000);
  });
  afterAll(() => v.stop());

  test("every clone gets its own VMID on the first try and the fleet converges", async () => {
    const log0 = v.s.sim.requestLog.length;
    const stats0 = { ...v.api.stats };
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: FLEET }, async (_, i) => {
        const r = await life.check({}, { name: `node-${i}`, resourceName: `node-${i}`, templateVmid: 9000, templateNode: "pve1", cores: 1, memory: 1024, tags: ["fleet"] } as any);
        expect(r.failures).toEqual([]);
        return life.create(r.inputs as VmCloneInputs);
      }),
    );
    const wallMs = Date.now() - started;
    const ids = results.map((r) => r.outs.vmid);
    expect(new Set(ids).size).toBe(FLEET);
    expect(results.every((r) => r.outs.status === "running" && r.outs.ipv4Address !== undefined)).toBe(true);

    const log = v.s.sim.requestLog.slice(log0);
    const clonePosts = log.filter((e) => e.method === "POST" && e.template === "/nodes/{node}/qemu/{vmid}/clone");
    expect(clonePosts.length).toBe(FLEET); // one clone per VM: no collision, no retry
    expect(clonePosts.every((e) => e.status === 200)).toBe(true);
    // the only 500s are the agent's "not running yet" while the guests boot
    expect(log.filter((e) => e.status >= 500 && !e.template?.endsWith("/agent/network-get-interfaces"))).toEqual([]);
    const cloneTasks = v.cluster.tasks.all().filter((t: any) => t.type === "qmclone");
    expect(cloneTasks.length).toBe(FLEET);
    expect(cloneTasks.map((t: any) => t.exitstatus)).toEqual(Array(FLEET).fill("OK"));
    expect(v.api.stats.retries - stats0.retries).toBe(0);

    // the provider's own task bound (proxmox:maxConcurrentTasks) held; a fleet's linked clones
    // run side by side, and copy no disk
    const settings = connection().settings;
    expect(settings.maxConcurrentTasks).toBe(DEFAULT_MAX_CONCURRENT_TASKS);
    const bound = taskSlots(settings.endpoint, settings.maxConcurrentTasks);
    expect(bound.peakInFlight).toBeLessThanOrEqual(DEFAULT_MAX_CONCURRENT_TASKS);
    expect(bound.peakInFlight).toBeGreaterThan(4);
    expect(bound.peakCopiesInFlight).toBe(0);

    const requests = v.api.stats.requests - stats0.requests;
    process.stderr.write(
      `fleet: ${FLEET} VMs in ${wallMs} ms (timeFactor 0.02), ${requests} requests (${(requests / FLEET).toFixed(1)} per VM, ` +
        `${((v.api.stats.taskPolls - stats0.taskPolls) / FLEET).toFixed(1)} task polls per VM)\n`,
    );

    await Promise.all(results.map((r) => life.delete(r.id, r.outs)));
    expect([...v.cluster.vms.keys()]).toEqual([9000]);
  });
});
