// VmClone inputs and updates not covered elsewhere, against the simulator (timeFactor 0.01,
// with a shared NFS storage): a different node at creation, a full clone onto a given storage,
// in-place updates of memory, sockets, balloon, disk size and pool (each: the DiffResult and the
// API calls from the request log, with their parameters), and the calls of a replacement.
import { vmCloneLifecycle as life, type VmCloneInputs, type VmCloneState } from "../../../../provider/resources/vm-clone";
import type { RequestLogEntry } from "../../../simulator/sim";
import { makeTemplate, startVmSim, type VmSim } from "./sim-setup";

jest.setTimeout(60_000);

const STACK = "proj/dev";
const VM = "/nodes/{node}/qemu/{vmid}";

async function checked(extra: Record<string, unknown>, olds: Partial<VmCloneState> = {}): Promise<VmCloneInputs> {
  const r = await life.check(olds, { name: "app", resourceName: "app", stack: STACK, templateVmid: 9000, templateNode: "pve1", ...extra } as any);
  expect(r.failures).toEqual([]);
  return r.inputs as VmCloneInputs;
}

/** Writes (and the calls that matter) as `METHOD route {params}`, path parameters left out. */
function writes(log: RequestLogEntry[]): string[] {
  return log
    .filter((e) => e.method !== "GET")
    .map((e) => {
      const { node: _n, vmid: _v, ...p } = e.params ?? {};
      return `${e.method} ${e.template} ${JSON.stringify(p)}`;
    });
}

describe("VmClone creation options, updates and replacement", () => {
  let v: VmSim;
  const since = (from: number) => v.s.sim.requestLog.slice(from);
  const poolMembers = async (pool: string) => (await v.api.pools.get(pool)).members.map((m) => Number(m.vmid));

  beforeAll(async () => {
    v = await startVmSim({ seed: 31, timeFactor: 0.01, cluster: { sharedStorage: true } });
    await makeTemplate(v.api, 9000);
    await makeTemplate(v.api, 9001, { name: "tpl-b" });
    await makeTemplate(v.api, 9100, { name: "tpl-nfs", scsi0: "shared-nfs:8", ide2: "shared-nfs:cloudinit" });
    await v.api.pools.create("blue");
    await v.api.pools.create("green");
  });
  afterAll(() => v.stop());

  test("the address is found by net0's MAC: cloud-init names the NIC eth0, whatever the udev name would be", async () => {
    const { id, outs } = await life.create(await checked({ name: "by-mac", resourceName: "by-mac" }));
    const guest = (await v.api.qemu.agentNetworkInterfaces("pve1", outs.vmid)) as { ok: true; interfaces: Array<{ name: string; "hardware-address": string }> };
    const nic = guest.interfaces.find((i) => i["hardware-address"].toUpperCase() === outs.macAddresses[0]);
    expect(nic?.name).toBe("eth0");
    expect(outs.ipv4Address).toMatch(/^10\./);
    expect(outs).not.toHaveProperty("agentInterface");
    await life.delete(id, outs);
  });

  test("cloud-init changes on a running VM wait for its next boot: listed as pending, applied by a restart only with allowReboot", async () => {
    const first = await checked({ name: "ci", resourceName: "ci" });
    const { id, outs } = await life.create(first);
    const dhcp = outs.ipv4Address;
    // a static address: PVE writes ipconfig0 at once (never pending), but the guest keeps its boot-time address
    const staticIp = await checked({ name: "ci", resourceName: "ci", ipConfigs: [{ ip: "192.0.2.20/24", gw: "192.0.2.1" }] }, outs);
    expect(await life.diff(id, outs, staticIp)).toMatchObject({ changes: true, replaces: [] });
    let from = v.s.sim.requestLog.length;
    const up = (await life.update(id, outs, staticIp)).outs as VmCloneState;
    expect(up.pendingChanges).toEqual(["ipconfig0"]);
    expect(up.ipv4Address).toBe(dhcp);
    expect(writes(since(from)).some((w) => w.includes("/status/"))).toBe(false);
    // a refresh still lists it (no restart since), and so does a later update of something else
    const refreshed = (await life.read(id, up)).props as VmCloneState;
    expect(refreshed.pendingChanges).toEqual(["ipconfig0"]);
    const tagged = (await life.update(id, refreshed, await checked({ name: "ci", resourceName: "ci", ipConfigs: [{ ip: "192.0.2.20/24", gw: "192.0.2.1" }], tags: ["x"] }, refreshed))).outs as VmCloneState;
    expect(tagged.pendingChanges).toEqual(["ipconfig0"]);
    // allowReboot: shutdown, start (the start regenerates the cloud-init drive), the new address
    from = v.s.sim.requestLog.length;
    const rebooted = (await life.update(id, tagged, await checked({ name: "ci", resourceName: "ci", ipConfigs: [{ ip: "192.0.2.20/24", gw: "192.0.2.1" }], tags: ["x"], allowReboot: true }, tagged))).outs as VmCloneState;
    expect(writes(since(from)).filter((w) => w.includes("/status/")).map((w) => w.split(" ")[1])).toEqual([`${VM}/status/shutdown`, `${VM}/status/start`]);
    expect(rebooted.pendingChanges).toEqual([]);
    expect(rebooted.ipv4Address).toBe("192.0.2.20");
    expect(rebooted).not.toHaveProperty("cloudInitBoot");
    await life.delete(id, rebooted);
  });

  test("a different node at creation: cloned there with target, started there; no-op diff after", async () => {
    const inputs = await checked({ templateVmid: 9100, node: "pve2" });
    const from = v.s.sim.requestLog.length;
    const { id, outs } = await life.create(inputs);
    expect(id).toBe(`pve2/${outs.vmid}`);
    expect(outs).toMatchObject({ node: "pve2", status: "running" });
    const clone = since(from).find((e) => e.method === "POST" && e.template === `${VM}/clone`);
    expect(clone).toMatchObject({ path: "/nodes/pve1/qemu/9100/clone", status: 200 });
    expect(clone?.params).toMatchObject({ newid: outs.vmid, target: "pve2" });
    expect(since(from).filter((e) => e.method === "POST" && e.template === `${VM}/status/start`).map((e) => e.path)).toEqual([`/nodes/pve2/qemu/${outs.vmid}/status/start`]);
    expect(v.cluster.vms.get(outs.vmid).node).toBe("pve2");
    const read = (await life.read(id, outs)).props as VmCloneState;
    expect(await life.diff(id, read, inputs)).toMatchObject({ changes: false });
    await life.delete(id, read);
  });

  test("a different node with a template on local storage: cloned beside the template, migrated, started there", async () => {
    // PVE refuses `target` from local storage; an LVM-thin linked clone migrates (issue 16: the
    // replacement of a clone moved to another node must be what its preview announced)
    const inputs = await checked({ node: "pve2" });
    const from = v.s.sim.requestLog.length;
    const { id, outs } = await life.create(inputs);
    expect(id).toBe(`pve2/${outs.vmid}`);
    expect(outs).toMatchObject({ node: "pve2", status: "running" });
    const posts = since(from).filter((e) => e.method === "POST").map((e) => `${e.template} ${e.status}`);
    expect(posts.filter((p) => /\/clone |\/migrate /.test(p))).toEqual([`${VM}/clone 500`, `${VM}/clone 200`, `${VM}/migrate 200`]);
    expect(v.cluster.vms.get(outs.vmid).node).toBe("pve2");
    const read = (await life.read(id, outs)).props as VmCloneState;
    expect(await life.diff(id, read, inputs)).toMatchObject({ changes: false });
    await life.delete(id, read);
  });

  test("a full clone onto a given storage: full=1 and storage in the clone request, disks there, not linked; no-op diff after", async () => {
    const inputs = await checked({ full: true, storage: "shared-nfs", started: false });
    const from = v.s.sim.requestLog.length;
    const { id, outs } = await life.create(inputs);
    const clone = since(from).find((e) => e.method === "POST" && e.template === `${VM}/clone`);
    expect(clone?.params).toMatchObject({ newid: outs.vmid, full: 1, storage: "shared-nfs" });
    expect(clone?.params).not.toHaveProperty("target");
    const scsi0 = String((await v.api.qemu.getConfig("pve1", outs.vmid)).scsi0);
    expect(scsi0).toMatch(new RegExp(`^shared-nfs:${outs.vmid}/vm-${outs.vmid}-disk-0`));
    expect(scsi0).not.toContain("base-");
    const read = (await life.read(id, outs)).props as VmCloneState;
    expect(await life.diff(id, read, inputs)).toMatchObject({ changes: false });
    await life.delete(id, read);
  });

  async function running(extra: Record<string, unknown> = {}): Promise<{ id: string; outs: VmCloneState; inputs: VmCloneInputs }> {
    const inputs = await checked({ memory: 2048, balloon: 1024, sockets: 1, diskSize: "8G", ...extra });
    const { id, outs } = await life.create(inputs);
    expect(outs.status).toBe(inputs.started ? "running" : "stopped");
    return { id, outs, inputs };
  }

  test("memory on a running VM: an in-place update whose value stays pending (no memory hotplug) without allowReboot", async () => {
    const { id, outs, inputs } = await running({ name: "mem", resourceName: "mem" });
    const news = await checked({ ...inputs, memory: 3072 });
    expect(await life.diff(id, outs, news)).toMatchObject({ changes: true, replaces: [] });
    const from = v.s.sim.requestLog.length;
    const r = await life.update(id, outs, news);
    expect(writes(since(from))).toEqual([`PUT ${VM}/config {"memory":"3072"}`]); // PVE's memory is a property string
    expect(r.outs.pendingChanges).toEqual(["memory"]);
    expect(String((await v.api.qemu.getConfig("pve1", outs.vmid, { current: true })).memory)).toBe("2048");
    await life.delete(id, r.outs);
  });

  test("sockets with allowReboot: config PUT, then shutdown and start; nothing pending after", async () => {
    const { id, outs, inputs } = await running({ name: "sock", resourceName: "sock" });
    const news = await checked({ ...inputs, sockets: 2, allowReboot: true });
    expect(await life.diff(id, outs, news)).toMatchObject({ changes: true, replaces: [] });
    const from = v.s.sim.requestLog.length;
    const r = await life.update(id, outs, news);
    expect(writes(since(from))).toEqual([
      `PUT ${VM}/config {"sockets":2}`,
      `POST ${VM}/status/shutdown {"timeout":60}`,
      `POST ${VM}/status/start {}`,
    ]);
    expect(r.outs).toMatchObject({ status: "running", pendingChanges: [] });
    expect(Number((await v.api.qemu.getConfig("pve1", outs.vmid, { current: true })).sockets)).toBe(2);
    await life.delete(id, r.outs);
  });

  test("balloon, disk growth and pool move on a running VM: hot, one call each, no power calls; a refresh after shows no change", async () => {
    const { id, outs, inputs } = await running({ name: "hot", resourceName: "hot", pool: "blue" });
    expect(await poolMembers("blue")).toContain(outs.vmid);
    const news = await checked({ ...inputs, balloon: 1536, diskSize: "12G", pool: "green" }, inputs);
    const d = await life.diff(id, outs, news);
    expect(d).toMatchObject({ changes: true, replaces: [] });
    const from = v.s.sim.requestLog.length;
    const r = await life.update(id, outs, news);
    expect(writes(since(from))).toEqual([
      `PUT /pools {"poolid":"green","vms":"${outs.vmid}","allow-move":1}`,
      `PUT ${VM}/config {"balloon":1536}`,
      `PUT ${VM}/resize {"disk":"scsi0","size":"12G"}`,
    ]);
    expect(r.outs).toMatchObject({ status: "running", pendingChanges: [], pool: "green" });
    expect(await poolMembers("green")).toContain(outs.vmid);
    expect(await poolMembers("blue")).not.toContain(outs.vmid);
    const conf = await v.api.qemu.getConfig("pve1", outs.vmid, { current: true });
    expect(String(conf.balloon)).toBe("1536");
    expect(String(conf.scsi0)).toContain("size=12G");
    const read = (await life.read(id, r.outs)).props as VmCloneState;
    expect(await life.diff(id, read, news)).toMatchObject({ changes: false });

    // dropping the pool takes the VM out of it
    const noPool = await checked({ ...inputs, balloon: 1536, diskSize: "12G", pool: undefined }, news);
    expect(await life.diff(id, read, noPool)).toMatchObject({ changes: true, replaces: [] });
    const from2 = v.s.sim.requestLog.length;
    const r2 = await life.update(id, read, noPool);
    expect(writes(since(from2))).toEqual([`PUT /pools {"poolid":"green","vms":"${outs.vmid}","delete":1}`]);
    expect(await poolMembers("green")).not.toContain(outs.vmid);
    await life.delete(id, r2.outs);
  });

  test("pool drift: a VM taken out of its pool behind the provider's back shows on refresh and is put back", async () => {
    const { id, outs, inputs } = await running({ name: "drift", resourceName: "drift", pool: "blue", started: false });
    await v.api.pools.update("blue", { vms: [outs.vmid], delete: true }); // another tool
    const read = (await life.read(id, outs)).props as VmCloneState;
    expect(read.pool).toBeUndefined();
    expect(await life.diff(id, read, inputs)).toMatchObject({ changes: true, replaces: [] });
    const from = v.s.sim.requestLog.length;
    await life.update(id, read, inputs);
    expect(writes(since(from))).toEqual([`PUT /pools {"poolid":"blue","vms":"${outs.vmid}"}`]);
    expect(await poolMembers("blue")).toContain(outs.vmid);
    await life.delete(id, outs);
  });

  test("disk shrink: refused by check naming diskSize, and by update (without a resize request) naming disk and VM", async () => {
    const r = await life.check({ diskSize: "12G" } as any, { name: "app", templateVmid: 9000, templateNode: "pve1", diskSize: "10G" } as any);
    expect(r.failures).toEqual([{ property: "diskSize", reason: expect.stringMatching(/diskSize cannot shrink from 12G to 10G: PVE does not shrink disks/) }]);

    const { id, outs, inputs } = await running({ name: "shrink", resourceName: "shrink", diskSize: "12G", started: false });
    const from = v.s.sim.requestLog.length;
    const err = await life.update(id, outs, { ...inputs, diskSize: "10G" }).then(() => undefined, (e: Error) => e);
    expect(err?.message).toBe(`disk scsi0 of VM ${outs.vmid} is 12G; PVE cannot shrink disks to 10G. Keep the size, or replace the VM.`);
    expect(since(from).filter((e) => e.template === `${VM}/resize`)).toEqual([]);
    await life.delete(id, outs);
  });

  test("replace (create before delete): a new clone of the new template, then the old VM shut down and destroyed", async () => {
    const old = await life.create(await checked({ name: "rep", resourceName: "rep", shutdownTimeoutSeconds: 20 }));
    const news = await checked({ name: "rep", resourceName: "rep", templateVmid: 9001, shutdownTimeoutSeconds: 20 });
    expect(await life.diff(old.id, old.outs, news)).toMatchObject({ changes: true, replaces: ["templateVmid"] });
    // what the engine does for a replacement without deleteBeforeReplace: create, then delete the old
    const from = v.s.sim.requestLog.length;
    const created = await life.create(news);
    await life.delete(old.id, old.outs);
    const calls = since(from)
      .filter((e) => e.method !== "GET")
      .map((e) => `${e.method} ${e.path}${e.template === `${VM}/clone` ? ` newid=${e.params?.newid}` : ""}`);
    const n = created.outs.vmid;
    const o = old.outs.vmid;
    expect(n).not.toBe(o);
    expect(calls).toEqual([
      `POST /nodes/pve1/qemu/9001/clone newid=${n}`,
      `POST /nodes/pve1/qemu/${n}/status/start`,
      `POST /nodes/pve1/qemu/${o}/status/shutdown`,
      `DELETE /nodes/pve1/qemu/${o}`,
    ]);
    await life.delete(created.id, created.outs);
  });

  test("replace with an explicit vmid (delete before replace): the old VM destroyed first, then cloned again on the same id", async () => {
    const old = await life.create(await checked({ name: "rep2", resourceName: "rep2", vmid: 4444, started: false }));
    const news = await checked({ name: "rep2", resourceName: "rep2", vmid: 4444, templateVmid: 9001, started: false });
    expect(await life.diff(old.id, old.outs, news)).toMatchObject({ replaces: ["templateVmid"], deleteBeforeReplace: true });
    const from = v.s.sim.requestLog.length;
    await life.delete(old.id, old.outs);
    const created = await life.create(news);
    const calls = since(from)
      .filter((e) => e.method !== "GET")
      .map((e) => `${e.method} ${e.path}${e.template === `${VM}/clone` ? ` newid=${e.params?.newid}` : ""}`);
    expect(calls).toEqual([`DELETE /nodes/pve1/qemu/4444`, `POST /nodes/pve1/qemu/9001/clone newid=4444`]);
    expect(String((await v.api.qemu.getConfig("pve1", 4444)).description)).toMatch(/ origin=9001:linked$/);
    await life.delete(created.id, created.outs);
  });
});
