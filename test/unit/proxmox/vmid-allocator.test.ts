// The per-process VMID allocator: distinct ids under parallel callers, skips what it learns is
// taken, one request per allocation, and a range that runs out says so.
import { VmidAllocator, isVmidCollision, vmidAllocatorFor, clearVmidAllocators } from "../../../provider/proxmox/vmid-allocator";

function fakeCluster(used: number[] = []) {
  const calls = { nextId: 0, resources: 0 };
  return {
    calls,
    nextId: async () => {
      calls.nextId++;
      await new Promise((r) => setTimeout(r, 1));
      let n = 100;
      while (used.includes(n)) n++;
      return n;
    },
    resources: async () => {
      calls.resources++;
      return used.map((vmid) => ({ id: `qemu/${vmid}`, type: "qemu", vmid }));
    },
  };
}

describe("VmidAllocator", () => {
  test("parallel allocations get distinct ids with one nextid request each", async () => {
    const cluster = fakeCluster([100, 101]);
    const a = new VmidAllocator();
    const leases = await Promise.all(Array.from({ length: 30 }, () => a.allocate(cluster as any)));
    const ids = leases.map((l) => l.vmid);
    expect(new Set(ids).size).toBe(30);
    expect(Math.min(...ids)).toBe(102);
    expect(cluster.calls.nextId).toBe(30);
    leases.forEach((l) => l.release());
    expect(a.reservedIds).toEqual([]);
  });

  test("an id found taken is never offered again; a released one is", async () => {
    const cluster = fakeCluster();
    const a = new VmidAllocator();
    const first = await a.allocate(cluster as any);
    first.markTaken();
    const second = await a.allocate(cluster as any);
    expect(second.vmid).toBe(101);
    second.release();
    expect((await a.allocate(cluster as any)).vmid).toBe(101);
  });

  test("ranges use the cluster's VM list and fail clearly when exhausted", async () => {
    const cluster = fakeCluster([200, 201]);
    const a = new VmidAllocator();
    const l = await a.allocate(cluster as any, { min: 200, max: 202 });
    expect(l.vmid).toBe(202);
    await expect(a.allocate(cluster as any, { min: 200, max: 202 })).rejects.toThrow(/no free VMID in the range 200-202/);
  });

  test("ids this process filled are skipped above nextid; nextid's own answer is trusted", async () => {
    const used: number[] = [];
    const cluster = fakeCluster(used);
    const a = new VmidAllocator();
    const [l100, l101, l102] = [await a.allocate(cluster as any), await a.allocate(cluster as any), await a.allocate(cluster as any)];
    l101.created();
    used.push(101); // 100 and 102 still cloning (no config yet): nextid answers 100
    expect((await a.allocate(cluster as any)).vmid).toBe(103); // not 101: our own finished VM
    used.splice(0, used.length, 100); // 100 now holds another tool's VM, 101 was deleted: nextid answers 101
    l100.markTaken();
    expect((await a.allocate(cluster as any)).vmid).toBe(101);
    l102.release();
  });

  test("explicit ids are reserved so allocations skip them", async () => {
    const a = new VmidAllocator();
    a.reserveExplicit(100);
    expect((await a.allocate(fakeCluster() as any)).vmid).toBe(101);
  });

  test("collision errors are recognised by id", () => {
    expect(isVmidCollision(new Error("unable to create VM 105: config file already exists"), 105)).toBe(true);
    expect(isVmidCollision(new Error("task qmclone 9000 failed: clone failed: unable to create VM 105: config file already exists"), 105)).toBe(true);
    expect(isVmidCollision(new Error("can't lock file '/var/lock/qemu-server/lock-105.conf' - got timeout"), 105)).toBe(true);
    expect(isVmidCollision(new Error("can't lock file '/var/lock/qemu-server/lock-9000.conf' - got timeout"), 105)).toBe(false);
    expect(isVmidCollision(new Error("unable to create VM 106: config file already exists"), 105)).toBe(false);
  });

  test("one allocator per endpoint", () => {
    clearVmidAllocators();
    expect(vmidAllocatorFor("https://a:8006/")).toBe(vmidAllocatorFor("https://a:8006"));
    expect(vmidAllocatorFor("https://a:8006")).not.toBe(vmidAllocatorFor("https://b:8006"));
  });
});
