// The VmClone lifecycle under the reliability fault profile, without the engine (fast, and the
// place to see each fault handled): 30 creates at full parallelism all succeed, the cluster then
// holds exactly those 30 VMs (no duplicate left by a clone whose answer was lost), and a delete
// under the same faults removes them all.
import { vmCloneLifecycle as life, type VmCloneInputs } from "../../../provider/resources/vm-clone";
import { makeTemplate, startVmSim, type VmSim } from "../resources/vm/sim-setup";
import { countFaults, FLEET_FAULTS } from "./fault-profile";

jest.setTimeout(180_000);

const FLEET = 30;

describe("a 30-VM fleet under injected faults (lifecycle level)", () => {
  let v: VmSim;
  beforeAll(async () => {
    v = await startVmSim({ seed: 5, timeFactor: 0.01 });
    await makeTemplate(v.api, 9000);
  });
  afterAll(() => v.stop());

  test("every create succeeds once, no duplicate or orphan is left, delete removes all", async () => {
    const log0 = v.s.sim.requestLog.length;
    v.s.sim.faults.configure(FLEET_FAULTS);
    const inputs = await Promise.all(
      Array.from({ length: FLEET }, async (_, i) => {
        const r = await life.check({}, { name: `rel-${i}`, resourceName: `rel-${i}`, stack: "rel/unit", templateVmid: 9000, templateNode: "pve1", cores: 1, memory: 512 } as any);
        expect(r.failures).toEqual([]);
        return r.inputs as VmCloneInputs;
      }),
    );
    const results = await Promise.all(inputs.map((i) => life.create(i)));
    const ids = results.map((r) => r.outs.vmid).sort((a, b) => a - b);
    expect(new Set(ids).size).toBe(FLEET);
    const onCluster = [...v.cluster.vms.keys()].filter((id: number) => id !== 9000).sort((a: number, b: number) => a - b);
    expect(onCluster).toEqual(ids);
    const names = onCluster.map((id: number) => v.cluster.vms.get(id).config.current.name);
    expect(new Set(names).size).toBe(FLEET);

    const counts = countFaults(v.s.sim.requestLog.slice(log0), v.s.sim.faults.injected);
    process.stderr.write(`faulty fleet (lifecycle): ${JSON.stringify(counts)}\n`);
    expect(counts.error500 + counts.reset).toBeGreaterThan(0);
    expect(counts.lostResponse).toBeGreaterThan(0);

    await Promise.all(results.map((r) => life.delete(r.id, r.outs)));
    v.s.sim.faults.clear();
    expect([...v.cluster.vms.keys()]).toEqual([9000]);
  });
});
