// VmClone's adopt (taking an existing VM under management), refreshed inputs for drift display,
// hidden-versus-gone on refresh, replacement versus crash recovery, and the create economy of the
// crash-recovery lookup; all against the simulator.
import { vmCloneLifecycle as life, type VmCloneInputs, type VmCloneState } from "../../../../provider/resources/vm-clone";
import { templateLifecycle, type TemplateState } from "../../../../provider/resources/template";
import { client, configureForTests } from "../../../../provider/resources/context";
import { clearSharedReads } from "../../../../provider/resources/vm/shared-reads";
import { makeTemplate, startVmSim, type VmSim } from "./sim-setup";

jest.setTimeout(60_000);

const STACK = "proj/dev";

async function checked(extra: Record<string, unknown>): Promise<VmCloneInputs> {
  const r = await life.check({}, { name: "web", resourceName: "web", stack: STACK, templateVmid: 9000, templateNode: "pve1", ...extra } as any);
  expect(r.failures).toEqual([]);
  return r.inputs as VmCloneInputs;
}

async function adoptInputs(extra: Record<string, unknown>): Promise<VmCloneInputs> {
  const r = await life.check({}, { name: "db", resourceName: "db", stack: STACK, adopt: true, vmid: 700, node: "pve1", ...extra } as any);
  expect(r.failures).toEqual([]);
  return r.inputs as VmCloneInputs;
}

describe("VmClone adopt, refreshed inputs and hidden VMs", () => {
  let v: VmSim;
  const vmids = () => [...v.cluster.vms.keys()].sort((a: number, b: number) => a - b);
  const description = async (vmid: number) => String((await v.api.qemu.getConfig("pve1", vmid)).description ?? "");

  beforeAll(async () => {
    v = await startVmSim({ seed: 17 });
    await makeTemplate(v.api, 9000);
    await makeTemplate(v.api, 9001, { name: "tpl-b" });
  });
  afterAll(() => v.stop());

  /** A VM made by hand (not a clone), the way an operator would: stopped, with a description. */
  async function handMade(vmid: number, extra: Record<string, string | number> = {}): Promise<void> {
    await v.api.qemu.createAndWait("pve1", vmid, {
      name: "db", memory: 2048, cores: 2, scsi0: "local-lvm:8", net0: "virtio,bridge=vmbr0", agent: "1",
      description: "production database", tags: "prod", ...extra,
    });
  }

  test("check: adopt needs vmid and node, and takes no template, full or vmidRange", async () => {
    const ok = await life.check({}, { name: "db", resourceName: "db", adopt: true, vmid: 700, node: "pve1" } as any);
    expect(ok.failures).toEqual([]);
    const bad = await life.check({}, { name: "db", resourceName: "db", adopt: true, full: true, vmidRange: { min: 100, max: 200 } } as any);
    expect((bad.failures ?? []).map((f) => f.property).sort()).toEqual(["full", "node", "vmid", "vmidRange"]);
    const clone = await life.check({}, { name: "db", resourceName: "db" } as any);
    // templateNode is found from templateVmid (test/unit/resources/preview-cluster.test.ts)
    expect((clone.failures ?? []).map((f) => f.property).sort()).toEqual(["templateVmid"]);
  });

  test("adopts a hand-made VM: marker stamped, declared settings converged, undeclared ones kept; a no-op diff after; released on delete", async () => {
    await handMade(700);
    const inputs = await adoptInputs({ memory: 4096, tags: ["prod"], started: false, networks: [{ bridge: "vmbr0" }] });
    const { id, outs } = await life.create(inputs);
    expect(id).toBe("pve1/700");
    expect(outs).toMatchObject({ vmid: 700, node: "pve1", status: "stopped", memory: 4096, adopt: true, vmidAllocated: false });
    const conf = await v.api.qemu.getConfig("pve1", 700);
    expect(String(conf.description)).toBe(`production database\nmanaged-by=pulumi-pve resource=db stack=${STACK}`);
    expect(String(conf.memory)).toBe("4096");
    expect(conf.cores).toBe(2); // not declared: untouched

    const read = await life.read(id, outs);
    expect(await life.diff(id, read.props as VmCloneState, inputs)).toMatchObject({ changes: false, replaces: [] });
    expect((read.inputs as unknown as VmCloneInputs).vmid).toBe(700); // given, so an input

    // in place: cores
    const more = await adoptInputs({ memory: 4096, tags: ["prod"], started: false, networks: [{ bridge: "vmbr0" }], cores: 4 });
    expect(await life.diff(id, read.props as VmCloneState, more)).toMatchObject({ changes: true, replaces: [] });
    const up = await life.update(id, read.props as VmCloneState, more);
    expect((await v.api.qemu.getConfig("pve1", 700)).cores).toBe(4);
    expect(await description(700)).toContain("production database");

    // delete releases: the VM stays, the marker goes
    await life.delete(id, up.outs);
    expect(vmids()).toContain(700);
    expect(await description(700)).toBe("production database");
  });

  test("destroyOnDelete: true makes an adopted VM's delete destroy it; false keeps a cloned VM", async () => {
    await v.api.qemu.createAndWait("pve1", 701, { name: "db", memory: 512, scsi0: "local-lvm:4" });
    const inputs = await adoptInputs({ vmid: 701, started: false, destroyOnDelete: true });
    const { id, outs } = await life.create(inputs);
    expect(await description(701)).toBe(`managed-by=pulumi-pve resource=db stack=${STACK}`);
    await life.delete(id, outs);
    expect(vmids()).not.toContain(701);

    const clone = await life.create(await checked({ started: false, destroyOnDelete: false }));
    await life.delete(clone.id, clone.outs);
    expect(vmids()).toContain(clone.outs.vmid);
    expect(await description(clone.outs.vmid)).toBe("");
    await v.api.qemu.deleteAndWait("pve1", clone.outs.vmid, { purge: true });
  });

  test("refuses to adopt a missing VM, a template, a VM on another node, or one another resource manages; a failed adoption leaves the VM as it was", async () => {
    const err = (p: Promise<unknown>) => p.then(() => "resolved", (e: Error) => e.message);
    expect(await err(life.create(await adoptInputs({ vmid: 799 })))).toMatch(/cannot adopt VM 799: there is no VM 799 on the cluster/);
    expect(await err(life.create(await adoptInputs({ vmid: 9000 })))).toMatch(/cannot adopt VM 9000: it is a template/);
    await handMade(702, { description: "x\nmanaged-by=pulumi-pve resource=other stack=proj/prod" });
    expect(await err(life.create(await adoptInputs({ vmid: 702, node: "pve1" })))).toMatch(/marker of resource 'other' of stack proj\/prod/);
    expect(await err(life.create(await adoptInputs({ vmid: 702, node: "pve2" })))).toMatch(/it is on node 'pve1'/);

    await handMade(703, { agent: "0" });
    const before = await v.api.qemu.getConfig("pve1", 703);
    const failed = await err(life.create(await adoptInputs({ vmid: 703, memory: 1024 }))); // started, waits for an IP: no agent
    expect(failed).toMatch(/VM 703 \(db\) on node 'pve1' has no QEMU guest agent configured \(agent: 1\)/);
    expect(failed).toMatch(/was not adopted; it was left in place, not destroyed, and its description was restored/);
    expect(vmids()).toContain(703);
    expect((await v.api.qemu.getConfig("pve1", 703)).description).toBe(before.description);
    for (const id of [702, 703]) await v.api.qemu.deleteAndWait("pve1", id, { purge: true });
  });

  test("read returns the refreshed inputs: drifted settings as PVE holds them, declared non-PVE inputs kept, no outputs, an allocated vmid not made an input", async () => {
    const inputs = await checked({ memory: 1024, tags: ["a"], agentTimeoutSeconds: 90, allowReboot: true, networks: [{ bridge: "vmbr0" }] });
    const { id, outs } = await life.create(inputs);
    expect(outs.vmidAllocated).toBe(true);
    v.cluster.vms.get(outs.vmid).config.current.memory = "4096";
    v.cluster.vms.get(outs.vmid).config.current.tags = "a;hand";
    clearSharedReads(client());
    const read = await life.read(id, outs);
    const refreshed = read.inputs as unknown as Record<string, unknown>;
    expect(refreshed).toMatchObject({ memory: 4096, tags: ["a", "hand"], agentTimeoutSeconds: 90, allowReboot: true, templateVmid: 9000, resourceName: "web", stack: STACK });
    for (const k of ["vmid", "status", "ipv4Address", "ipv4Addresses", "macAddresses", "pendingChanges", "vmidAllocated"]) expect(refreshed).not.toHaveProperty(k);
    expect((read.props as VmCloneState).vmidAllocated).toBe(true);
    // the next check sees refreshed inputs as olds; the diff against the program finds the drift
    expect(await life.diff(id, read.props as VmCloneState, inputs)).toMatchObject({ changes: true, replaces: [] });
    await life.delete(id, read.props as VmCloneState);

    const explicit = await life.create(await checked({ vmid: 640, started: false }));
    expect(explicit.outs.vmidAllocated).toBe(false);
    expect((await life.read(explicit.id, explicit.outs)).inputs).toMatchObject({ vmid: 640 });
    await life.delete(explicit.id, explicit.outs);
  });

  test("a VM the credentials cannot see fails the refresh instead of being forgotten; a VM really gone is forgotten", async () => {
    const vm = await life.create(await checked({ started: false }));
    const tpl = { node: "pve1", vmid: 9001, name: "tpl-b", storage: "local-lvm", adopt: true, destroyOnDelete: false, cores: 2, memory: 2048, bridge: "vmbr0", ha: false } as TemplateState;
    // A token that can see nothing: no VM.Audit anywhere.
    await v.api.access.createUser("blind@pve");
    const token = await v.api.access.createToken("blind@pve", "ro", { privsep: false });
    await v.api.access.updateAcl({ path: "/nodes", roles: ["PVEAuditor"], users: ["blind@pve"] });
    configureForTests({ endpoint: v.s.url, apiToken: `${token.fullTokenId}=${token.secret}`, caCert: v.s.caCert });
    try {
      const err = await life.read(vm.id, vm.outs).then(() => undefined, (e: Error) => e.message);
      expect(err).toMatch(new RegExp(`^cannot see VM ${vm.outs.vmid} on pve1: the VMID is taken but the credentials lack VM.Audit on /vms/${vm.outs.vmid}; refresh would wrongly forget it`));
      const tplErr = await templateLifecycle.read("pve1/9001", tpl).then(() => undefined, (e: Error) => e.message);
      expect(tplErr).toMatch(/^cannot see VM 9001 on pve1: the VMID is taken but the credentials lack VM.Audit on \/vms\/9001/);
      // a VMID that is free: the VM is gone, whoever asks
      expect(await life.read("pve1/777", { ...vm.outs, vmid: 777 })).toEqual({ id: "" });
    } finally {
      configureForTests({ endpoint: v.s.url, apiToken: v.s.rootToken, caCert: v.s.caCert });
    }
    await v.api.qemu.deleteAndWait("pve1", vm.outs.vmid, { purge: true });
    expect(await life.read(vm.id, vm.outs)).toEqual({ id: "" });
  });

  test("a replacement (create before delete) clones anew instead of adopting the VM it replaces; an interrupted run's VM is still adopted", async () => {
    const first = await life.create(await checked({ started: false }));
    const replacement = await life.create(await checked({ started: false, templateVmid: 9001 }));
    expect(replacement.outs.vmid).not.toBe(first.outs.vmid);
    // on LVM-thin a linked clone's disk names no template (vm-<id>-disk-0): the marker's origin tells them apart
    const conf = await v.api.qemu.getConfig("pve1", replacement.outs.vmid);
    expect(String(conf.scsi0)).toMatch(new RegExp(`^local-lvm:vm-${replacement.outs.vmid}-disk-0,`));
    expect(String(conf.description)).toMatch(/ origin=9001:linked$/);
    await life.delete(first.id, first.outs);
    // same inputs as an existing, unrecorded VM, in a later run (a new process: no shared answer): adopted, not cloned again
    clearSharedReads(client());
    const again = await life.create(await checked({ started: false, templateVmid: 9001 }));
    expect(again.outs.vmid).toBe(replacement.outs.vmid);
    // read from the id alone (no state) knows the template from the marker, not from a volume name
    const fromId = (await life.read(again.id, undefined as unknown as VmCloneState)).props as VmCloneState;
    expect(fromId).toMatchObject({ templateVmid: 9001, full: false, resourceName: again.outs.resourceName });
    await life.delete(again.id, again.outs);
  });

  test("a fleet's creates share one cluster/resources read for the crash-recovery lookup", async () => {
    clearSharedReads(client());
    const from = v.s.sim.requestLog.length;
    const made = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => life.create(await checked({ name: `fleet-${i}`, resourceName: `fleet-${i}`, started: false }))),
    );
    const reads = v.s.sim.requestLog.slice(from).filter((e) => e.method === "GET" && e.template === "/cluster/resources");
    expect(made.map((m) => m.outs.vmid).length).toBe(6);
    expect(reads.length).toBe(1);
    await Promise.all(made.map((m) => life.delete(m.id, m.outs)));
  });
});
