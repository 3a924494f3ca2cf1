// /cluster/resources shows what pvestatd last broadcast (every 10 s): right after a start it still
// says "stopped". Here the cycle is set so long that it never catches up within the test, so the
// provider's decisions must come from the node (status/current): a refresh keeps `started`, an
// update does not start a running VM again, and delete stops the VM before destroying it.
import { vmCloneLifecycle as life, type VmCloneInputs, type VmCloneState } from "../../../../provider/resources/vm-clone";
import { clearSharedReads } from "../../../../provider/resources/vm/shared-reads";
import { clearClonesStartedHere } from "../../../../provider/resources/vm/clone";
import { clearVmidAllocators } from "../../../../provider/proxmox/vmid-allocator";
import { client } from "../../../../provider/resources/context";
import { makeTemplate, startVmSim, type VmSim } from "./sim-setup";

jest.setTimeout(60_000);

describe("VmClone with /cluster/resources a broadcast behind", () => {
  let v: VmSim;
  beforeAll(async () => {
    v = await startVmSim({ seed: 61, timeFactor: 0.01, cluster: { statsIntervalMs: 100_000_000 } });
    await makeTemplate(v.api, 9000);
  });
  afterAll(() => v.stop());

  test("refresh, update and delete ask the node, not the stale cluster view", async () => {
    const r = await life.check({}, { name: "fresh", resourceName: "fresh", stack: "p/s", templateVmid: 9000, templateNode: "pve1" } as never);
    // the template was converted after pvestatd's last broadcast (status unknown, no template
    // flag in cluster/resources), as a Template made by the same `up` is: still a template
    expect((await v.api.cluster.resources("vm")).find((x) => Number(x.vmid) === 9000)).toMatchObject({ status: "unknown" });
    expect(r.failures).toEqual([]);
    const { id, outs } = await life.create(r.inputs as VmCloneInputs);
    expect(outs.status).toBe("running");
    const listed = (await v.api.cluster.resources("vm")).find((x) => Number(x.vmid) === outs.vmid);
    // the stale view this test is about: never broadcast yet, so PVE lists it as `unknown`, without its name
    expect(listed?.status).toBe("unknown");
    expect(listed?.name).toBeUndefined();
    clearSharedReads(client());
    const read = (await life.read(id, outs)).props as VmCloneState;
    expect(read).toMatchObject({ status: "running", started: true });
    expect(await life.diff(id, read, r.inputs as VmCloneInputs)).toMatchObject({ changes: false });
    const from = v.s.sim.requestLog.length;
    const news = (await life.check(read, { name: "fresh", resourceName: "fresh", stack: "p/s", templateVmid: 9000, templateNode: "pve1", tags: ["x"] } as never)).inputs as VmCloneInputs;
    const up = (await life.update(id, read, news)).outs as VmCloneState;
    expect(up.status).toBe("running");
    expect(v.s.sim.requestLog.slice(from).filter((e) => e.template?.endsWith("/status/start"))).toEqual([]);
    await life.delete(id, up);
    expect(v.cluster.vms.has(outs.vmid)).toBe(false);
  });

  test("the crash-recovery lookup does not read the configs of the fleet's own new VMs", async () => {
    const inputs = async (name: string) => (await life.check({}, { name, resourceName: name, stack: "p/s", templateVmid: 9000, templateNode: "pve1", started: false } as never)).inputs as VmCloneInputs;
    const a = await life.create(await inputs("fleet-a"));
    clearSharedReads(client()); // B's lookup reads the cluster afresh: A is listed there without its name
    const from = v.s.sim.requestLog.length;
    const b = await life.create(await inputs("fleet-b"));
    const readsOfA = v.s.sim.requestLog.slice(from).filter((e) => e.method === "GET" && e.path === `/nodes/pve1/qemu/${a.outs.vmid}/config`);
    expect(readsOfA).toEqual([]);
    await life.delete(a.id, a.outs);
    await life.delete(b.id, b.outs);
  });

  test("crash recovery finds a VM an interrupted run made seconds ago, listed without its name", async () => {
    const inputs = (await life.check({}, { name: "young", resourceName: "young", stack: "p/s", templateVmid: 9000, templateNode: "pve1", started: false } as never)).inputs as VmCloneInputs;
    const first = await life.create(inputs);
    expect((await v.api.cluster.resources("vm")).find((x) => Number(x.vmid) === first.outs.vmid)?.name).toBeUndefined();
    // a later run (a new process: no shared answer, no clone of its own, nothing recorded) creates the same resource: adopted, not cloned again
    clearSharedReads(client());
    clearClonesStartedHere();
    clearVmidAllocators();
    const from = v.s.sim.requestLog.length;
    const again = await life.create(inputs);
    expect(again.outs.vmid).toBe(first.outs.vmid);
    expect(v.s.sim.requestLog.slice(from).filter((e) => e.template?.endsWith("/clone"))).toEqual([]);
    await life.delete(again.id, again.outs);
  });
});
