// VmClone's VMIDs against the simulator (timeFactor 0.01): an explicit vmid, a fleet allocated
// from a vmidRange (inside the range, no collisions, a clear error when it runs out), and an id
// another tool takes between our nextid and our clone (the clone moves on to another id; the
// user sees no error). Evidence: the simulator's request log (clone POSTs with their newid) and
// its VM table.
import { vmCloneLifecycle as life, type VmCloneInputs } from "../../../../provider/resources/vm-clone";
import type { RequestLogEntry } from "../../../simulator/sim";
import { makeTemplate, startVmSim, type VmSim } from "./sim-setup";

jest.setTimeout(60_000);

const CLONE = "/nodes/{node}/qemu/{vmid}/clone";

async function checked(extra: Record<string, unknown>): Promise<VmCloneInputs> {
  const r = await life.check({}, { name: "web", resourceName: "web", stack: "proj/dev", templateVmid: 9000, templateNode: "pve1", started: false, ...extra } as any);
  expect(r.failures).toEqual([]);
  return r.inputs as VmCloneInputs;
}

describe("VmClone VMIDs", () => {
  let v: VmSim;
  const vmids = (): number[] => [...v.cluster.vms.keys()].sort((a: number, b: number) => a - b);
  const clonePosts = (from: number): RequestLogEntry[] => v.s.sim.requestLog.slice(from).filter((e) => e.method === "POST" && e.template === CLONE);
  /** A VM made by another tool (not a clone, no marker). */
  const foreign = (vmid: number) => v.api.qemu.createAndWait("pve1", vmid, { name: "other-tool", memory: 512, scsi0: "local-lvm:1" });

  beforeAll(async () => {
    v = await startVmSim({ seed: 23, timeFactor: 0.01 });
    await makeTemplate(v.api, 9000);
  });
  afterAll(() => v.stop());

  test("an explicit vmid is the clone's newid; no id is allocated", async () => {
    const from = v.s.sim.requestLog.length;
    const { id, outs } = await life.create(await checked({ vmid: 4321 }));
    expect(id).toBe("pve1/4321");
    expect(outs).toMatchObject({ vmid: 4321, vmidAllocated: false });
    const posts = clonePosts(from);
    expect(posts.map((e) => [e.status, e.params?.newid, e.path])).toEqual([[200, 4321, "/nodes/pve1/qemu/9000/clone"]]);
    expect(v.s.sim.requestLog.slice(from).filter((e) => e.template === "/cluster/nextid")).toEqual([]);
    expect(v.cluster.vms.get(4321).config.current.name).toBe("web");
    await life.delete(id, outs);
  });

  test("an explicit vmid another VM holds: one clone attempt, an error naming vmid and what to do, the other VM untouched", async () => {
    await foreign(4322);
    const from = v.s.sim.requestLog.length;
    const err = await life.create(await checked({ vmid: 4322 })).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/vmid 4322 is already used by another VM/);
    expect(err?.message).toMatch(/Choose a free vmid, or remove vmid/);
    expect(clonePosts(from).map((e) => [e.status, e.params?.newid])).toEqual([[500, 4322]]);
    expect(v.cluster.vms.get(4322).config.current.name).toBe("other-tool");
    expect(v.s.sim.requestLog.slice(from).filter((e) => e.method === "DELETE")).toEqual([]);
    await v.api.qemu.deleteAndWait("pve1", 4322, { purge: true });
  });

  test("a parallel fleet from a vmidRange: ids inside the range, none twice, the id another tool holds skipped; one create too many fails clearly", async () => {
    await foreign(503); // 500-509 has 9 free ids
    const from = v.s.sim.requestLog.length;
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, async (_, i) => life.create(await checked({ name: `r${i}`, resourceName: `r${i}`, vmidRange: { min: 500, max: 509 } }))),
    );
    const made = results.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<typeof life.create>>> => r.status === "fulfilled").map((r) => r.value);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => (r.reason as Error).message);
    const ids = made.map((m) => m.outs.vmid).sort((a, b) => a - b);
    expect(ids).toEqual([500, 501, 502, 504, 505, 506, 507, 508, 509]);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatch(/no free VMID in the range 500-509/);
    expect(failed[0]).toMatch(/Widen vmidRange or remove VMs/);
    // no clone ever aimed at a taken id: one POST per VM, every one accepted
    const posts = clonePosts(from);
    expect(posts.map((e) => e.status)).toEqual(Array(9).fill(200));
    expect(posts.map((e) => e.params?.newid as number).sort((a, b) => a - b)).toEqual(ids);
    expect(made.every((m) => m.outs.vmidAllocated === true)).toBe(true);
    expect(v.cluster.vms.get(503).config.current.name).toBe("other-tool");
    await Promise.all(made.map((m) => life.delete(m.id, m.outs)));
    await v.api.qemu.deleteAndWait("pve1", 503, { purge: true });
    expect(vmids()).toEqual([9000]);
  });

  test("another tool takes the id between nextid and the clone: the clone moves to the next id and create succeeds", async () => {
    // Hold our clone POST for a second before PVE handles it, and create a VM on the id the
    // allocator was given while it waits (what a second tool racing us on nextid does).
    v.s.sim.faults.addRule({ method: "POST", path: CLONE, latencyMs: 1_000, times: 1 });
    const from = v.s.sim.requestLog.length;
    const creating = life.create(await checked({ name: "raced", resourceName: "raced" }));
    while (!v.s.sim.requestLog.slice(from).some((e) => e.template === "/cluster/nextid")) await new Promise((r) => setTimeout(r, 5));
    const stolen = await v.api.cluster.nextId(); // what our allocator was answered: nothing exists there yet
    await foreign(stolen);
    const { id, outs } = await creating;
    v.s.sim.faults.clear();

    expect(outs.vmid).not.toBe(stolen);
    expect(id).toBe(`pve1/${outs.vmid}`);
    const posts = clonePosts(from);
    expect(posts.map((e) => [e.status, e.params?.newid])).toEqual([[500, stolen], [200, outs.vmid]]);
    expect(v.cluster.vms.get(stolen).config.current.name).toBe("other-tool"); // theirs, untouched
    expect(v.cluster.vms.get(outs.vmid).config.current.name).toBe("raced");
    // nothing of ours was destroyed on the way
    expect(v.s.sim.requestLog.slice(from).filter((e) => e.method === "DELETE")).toEqual([]);
    await life.delete(id, outs);
    await v.api.qemu.deleteAndWait("pve1", stolen, { purge: true });
  });
});
