// Volumes PVE leaves behind (vm/leftover-volumes.ts): a destroy's disks (destroy_vm only warns
// when it cannot free one, its storage lock held by other tasks for more than 10 s, and the VM's
// config goes anyway), and what a failed clone had made (clone_vm only prints it). Against the
// simulator, whose storage lock fails like PVE's (test/simulator/storage-locks.ts).
import { createHash } from "crypto";
import { templateLifecycle, type TemplateInputs } from "../../../../provider/resources/template";
import { vmCloneLifecycle as life, type VmCloneInputs } from "../../../../provider/resources/vm-clone";
import { providerLogger } from "../../../../provider/resources/context";
import { configureForTests } from "../../../../provider/resources/context";
import { makeTemplate, startVmSim, type VmSim } from "./sim-setup";

jest.setTimeout(60_000);

async function checked(): Promise<VmCloneInputs> {
  const r = await life.check({}, { name: "web", resourceName: "web", stack: "proj/dev", templateVmid: 9000, templateNode: "pve1", started: false } as any);
  expect(r.failures).toEqual([]);
  return r.inputs as VmCloneInputs;
}

const FLOCK_TIMEOUT = "can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout";

describe("volumes PVE left behind", () => {
  let v: VmSim;
  const warnings: string[] = [];
  const warn = providerLogger.warn;
  const volumesOf = async (vmid: number) => (await v.api.storage.content("pve1", "local-lvm", { vmid })).map((e) => e.volid).sort();
  /** Another client's work under pve1's local-lvm lock, until `release()`. */
  const holdLock = (): { release: () => void; done: Promise<void> } => {
    let release: () => void = () => undefined;
    const done: Promise<void> = v.cluster.storageLocks.with({ storage: "local-lvm", shared: false }, "pve1", () => new Promise<void>((r) => (release = r)));
    return { release: () => release(), done };
  };
  /** Makes the given waits (1-based, counted from now) for pve1's local-lvm lock time out at once,
   *  as if another client held it; returns the function that restores the lock. */
  const timeOutLockWaits = (which: number[]): (() => void) => {
    const locks = v.cluster.storageLocks;
    const withLock = locks.with;
    let calls = 0;
    locks.with = function (this: unknown, s: { storage: string }, node: string, ...rest: unknown[]) {
      if (s.storage === "local-lvm" && node === "pve1" && which.includes(++calls)) return Promise.reject(new Error(FLOCK_TIMEOUT));
      return withLock.call(locks, s, node, ...rest);
    };
    return () => (locks.with = withLock);
  };
  /** Resolves once a destroy task of `vmid` started after the `since`-th task has ended (real time). */
  const destroyEnded = async (vmid: number, since: number): Promise<void> => {
    while (!v.cluster.tasks.all().slice(since).some((t: any) => t.type === "qmdestroy" && t.id === String(vmid) && t.exitstatus !== undefined)) await new Promise((r) => setTimeout(r, 5));
  };

  beforeAll(async () => {
    v = await startVmSim({ seed: 41, timeFactor: 0.01 });
    await makeTemplate(v.api, 9000);
    providerLogger.warn = (m: string) => void warnings.push(m);
  });
  afterAll(async () => {
    providerLogger.warn = warn;
    await v.stop();
  });
  beforeEach(() => (warnings.length = 0));

  test("the provider frees them itself once the lock is free, and says what it did", async () => {
    const { id, outs } = await life.create(await checked());
    const vmid = outs.vmid;
    expect(await volumesOf(vmid)).toEqual([`local-lvm:vm-${vmid}-cloudinit`, `local-lvm:vm-${vmid}-disk-0`]);
    // held through the whole destroy task: its two frees and PVE's second try of each
    // (destroy-unreferenced-disks) wait 10 s each in vain
    const since = v.cluster.tasks.all().length;
    const other = holdLock();
    const deleting = life.delete(id, outs);
    await destroyEnded(vmid, since);
    other.release();
    await other.done;
    await deleting;
    const destroy = v.cluster.tasks.all().slice(since).filter((t: any) => t.type === "qmdestroy" && t.id === String(vmid));
    expect(destroy.map((t: any) => t.exitstatus)).toEqual(["WARNINGS: 4"]);
    expect(v.cluster.vms.has(vmid)).toBe(false);
    expect(await volumesOf(vmid)).toEqual([]);
    expect(warnings.filter((w) => w.includes("left its disk"))).toEqual([
      `VM ${vmid} was destroyed on node 'pve1' but PVE left its disk local-lvm:vm-${vmid}-cloudinit behind (can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout); removing it`,
      `VM ${vmid} was destroyed on node 'pve1' but PVE left its disk local-lvm:vm-${vmid}-disk-0 behind (can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout); removing it`,
    ]);
    // (a free that asked while the lock was still held timed out and was retried)
    const frees = v.cluster.tasks.all().slice(since).filter((t: any) => t.type === "imgdel");
    expect(frees.filter((t: any) => t.exitstatus === "OK")).toHaveLength(2);
    expect(frees.every((t: any) => t.exitstatus === "OK" || t.exitstatus === FLOCK_TIMEOUT)).toBe(true);
  });

  test("credentials that may not free a volume: the destroy fails naming the disks and the command that removes them", async () => {
    await v.api.access.createUser("fleet@pve");
    await v.api.access.createRole("Fleet", ["VM.Allocate", "VM.Clone", "VM.Audit", "VM.Config.Options", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Network", "VM.Config.Cloudinit", "VM.Config.Disk", "VM.PowerMgmt", "Datastore.AllocateSpace", "Datastore.Audit", "SDN.Use", "Sys.Audit"]);
    await v.api.access.updateAcl({ path: "/", roles: ["Fleet"], users: ["fleet@pve"] });
    const token = await v.api.access.createToken("fleet@pve", "ci", { privsep: false });
    const { id, outs } = await life.create(await checked());
    const vmid = outs.vmid;
    configureForTests({ endpoint: v.s.url, apiToken: `${token.fullTokenId}=${token.secret}`, caCert: v.s.caCert });
    try {
      const since = v.cluster.tasks.all().length;
      const other = holdLock();
      const deleting = life.delete(id, outs);
      await destroyEnded(vmid, since);
      other.release();
      await other.done;
      await expect(deleting).rejects.toThrow(
        `VM ${vmid} was destroyed on node 'pve1', but PVE could not remove its disks local-lvm:vm-${vmid}-cloudinit, local-lvm:vm-${vmid}-disk-0 ` +
          "(can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout), and this provider's credentials may not remove them " +
          `(Datastore.Allocate on /storage/local-lvm). Remove them on node 'pve1' with: pvesm free local-lvm:vm-${vmid}-cloudinit; pvesm free local-lvm:vm-${vmid}-disk-0`,
      );
      expect(await volumesOf(vmid)).toEqual([`local-lvm:vm-${vmid}-cloudinit`, `local-lvm:vm-${vmid}-disk-0`]);
    } finally {
      configureForTests({ endpoint: v.s.url, apiToken: v.s.rootToken, caCert: v.s.caCert });
    }
    // as the error says, by hand
    for (const volid of await volumesOf(vmid)) await v.api.storage.deleteContentAndWait("pve1", "local-lvm", volid);
    expect(await volumesOf(vmid)).toEqual([]);
  });

  test("a clone that failed on the storage lock and could not free its cloud-init drive: the provider frees it, and the retry to the same VMID succeeds", async () => {
    // the 2nd and 3rd waits for pve1's local-lvm lock time out: the clone's thin snapshot (after
    // its cloud-init drive was allocated), then its clean-up's free of that drive
    const restore = timeOutLockWaits([2, 3]);
    try {
      const from = v.s.sim.requestLog.length;
      const tasksBefore = v.cluster.tasks.all().length;
      const { outs } = await life.create(await checked());
      const vmid = outs.vmid;
      const clones = v.cluster.tasks.all().slice(tasksBefore).filter((t: any) => t.type === "qmclone");
      expect(clones.map((t: any) => t.exitstatus)).toEqual([`clone failed: ${FLOCK_TIMEOUT}`, "OK"]);
      expect(warnings).toEqual([`the failed task for VMID ${vmid} on node 'pve1' left local-lvm:vm-${vmid}-cloudinit behind (PVE could not free it); removing it`]);
      expect(await volumesOf(vmid)).toEqual([`local-lvm:vm-${vmid}-cloudinit`, `local-lvm:vm-${vmid}-disk-0`]);
      expect(v.s.sim.requestLog.slice(from).filter((e: any) => e.method === "POST" && e.template === "/nodes/{node}/qemu/{vmid}/clone").map((e: any) => e.params.newid)).toEqual([vmid, vmid]);
    } finally {
      restore();
    }
  });

  test("a Template whose create failed on the storage lock after allocating its disk, and could not free it: the provider frees it and reports the failure", async () => {
    const url = "https://cloud-images.example.org/noble/current/noble-server-cloudimg-amd64.img";
    const checksum = createHash("sha256").update(`pve-sim download: ${url}\n`).digest("hex");
    const r = await templateLifecycle.check({}, { node: "pve1", name: "noble", resourceName: "noble", image: { url, checksum } } as any);
    expect(r.failures).toEqual([]);
    // the create's first allocation goes through; the second times out, and so does the free of the first
    const restore = timeOutLockWaits([2, 3]);
    const vmsBefore = [...v.cluster.vms.keys()];
    try {
      await expect(templateLifecycle.create(r.inputs as TemplateInputs)).rejects.toThrow(FLOCK_TIMEOUT);
    } finally {
      restore();
    }
    const created = v.cluster.tasks.all().filter((t: any) => t.type === "qmcreate").at(-1);
    expect(created.exitstatus).toBe(`unable to create VM ${created.id} - ${FLOCK_TIMEOUT}`);
    const vmid = Number(created.id);
    expect([...v.cluster.vms.keys()]).toEqual(vmsBefore);
    expect(warnings).toEqual([expect.stringMatching(new RegExp(`^the failed task for VMID ${vmid} on node 'pve1' left local-lvm:vm-${vmid}-\\S+ behind \\(PVE could not free it\\); removing it$`))]);
    expect(await volumesOf(vmid)).toEqual([]);
  });
});
