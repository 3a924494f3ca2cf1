// VmClone's lifecycle against the simulator with a nonzero latency model (timeFactor 0.02):
// create/read/diff/update/delete, the update classes and the API calls each makes, cleanup
// after a failed create, drift through the back door, and the agent wait's errors.
import * as fs from "fs";
import { vmCloneLifecycle as life, type VmCloneInputs, type VmCloneState } from "../../../../provider/resources/vm-clone";
import { callsSince, makeTemplate, startVmSim, type VmSim } from "./sim-setup";
import { generateEd25519KeyPair } from "../../../helpers/ssh-keys";
import { encodeSshKeys } from "../../../../provider/proxmox/codecs";

jest.setTimeout(60_000);

async function checked(extra: Record<string, unknown>, olds: Partial<VmCloneState> = {}): Promise<VmCloneInputs> {
  const r = await life.check(olds, { name: "web", resourceName: "web", templateVmid: 9000, templateNode: "pve1", ...extra } as any);
  expect(r.failures).toEqual([]);
  return r.inputs as VmCloneInputs;
}

describe("VmClone lifecycle", () => {
  let v: VmSim;
  beforeAll(async () => {
    v = await startVmSim();
    await makeTemplate(v.api, 9000);
    await makeTemplate(v.api, 9001, { name: "tpl-noagent", agent: "0" });
    await v.api.pools.create("fleet");
  });
  afterAll(() => v.stop());

  const vmids = () => [...v.cluster.vms.keys()].sort((a: number, b: number) => a - b);

  test("create configures, starts and reports; read gives state whose diff is empty", async () => {
    // a real key: PVE checks each line with `ssh-keygen -l` (COMMON validate_ssh_public_keys)
    const sshKey = generateEd25519KeyPair({ comment: "ops@example.org" }).public;
    const inputs = await checked({
      cores: 4, memory: 4096, balloon: 1024, diskSize: "12G", pool: "fleet",
      networks: [{ bridge: "vmbr0", vlanTag: 20, firewall: true }, { bridge: "vmbr1", model: "e1000", macAddress: "bc:24:11:aa:bb:cc" }],
      ipConfigs: [{ ip: "dhcp" }, { ip: "10.1.0.5/24", gw: "10.1.0.1" }],
      nameserver: "1.1.1.1, 8.8.8.8", searchdomain: "example.org", ciuser: "ops",
      sshKeys: [sshKey],
      cicustom: { user: "local:snippets/user.yaml" }, tags: ["Web", "prod", "web"], description: "front end\n", onBoot: true,
    });
    expect(inputs.tags).toEqual(["prod", "web"]);
    expect(inputs.nameserver).toBe("1.1.1.1 8.8.8.8");
    expect(inputs.networks?.[1].macAddress).toBe("BC:24:11:AA:BB:CC");
    // the snippet must exist on the node for the VM to start
    fs.writeFileSync(v.cluster.hostPath("pve1", "/var/lib/vz/snippets/user.yaml"), "#cloud-config\n");
    const { id, outs } = await life.create(inputs);
    expect(id).toBe(`pve1/${outs.vmid}`);
    expect(outs.status).toBe("running");
    expect(outs.ipv4Address).toMatch(/^10\./);
    expect(outs.macAddresses[1]).toBe("BC:24:11:AA:BB:CC");
    expect(outs.pendingChanges).toEqual([]);
    const conf = await v.api.qemu.getConfig("pve1", outs.vmid);
    expect(conf.sshkeys).toBe(encodeSshKeys([sshKey]));
    expect(String(conf.sshkeys)).toMatch(/^ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9%]+%20ops%40example\.org$/);
    expect(String(conf.description)).toContain("managed-by=pulumi-pve resource=web");
    expect(conf.scsi0).toContain("size=12G");
    expect(conf.tags).toBe("prod;web");

    const read = await life.read(id, outs);
    expect(read.props?.description).toBe("front end");
    const d = await life.diff(id, read.props as VmCloneState, inputs);
    expect(d).toMatchObject({ changes: false, replaces: [] });
    const d2 = await life.diff(id, outs, inputs);
    expect(d2.changes).toBe(false);
    await life.delete(id, read.props as VmCloneState);
    expect(vmids()).not.toContain(outs.vmid);
  });

  async function running(extra: Record<string, unknown> = {}): Promise<{ id: string; outs: VmCloneState; inputs: VmCloneInputs }> {
    const inputs = await checked({ cores: 2, memory: 2048, tags: ["a"], description: "x", ...extra });
    const { id, outs } = await life.create(inputs);
    return { id, outs, inputs };
  }

  test("in place: tags, description, on-boot and NIC changes are hot; no power or migrate calls", async () => {
    const { id, outs, inputs } = await running();
    const news = await checked({ ...inputs, tags: ["b", "a"], description: "y", onBoot: true, networks: [{ bridge: "vmbr0", vlanTag: 30 }] });
    expect(await life.diff(id, outs, news)).toMatchObject({ changes: true, replaces: [] });
    const from = v.s.sim.requestLog.length;
    const r = await life.update(id, outs, news);
    const calls = callsSince(v.s, from);
    expect(calls).toContain("PUT /nodes/{node}/qemu/{vmid}/config");
    expect(calls.filter((c) => /status\/(shutdown|stop|start)|migrate|clone/.test(c))).toEqual([]);
    expect(r.outs.pendingChanges).toEqual([]);
    expect(r.outs.macAddresses[0]).toBe(outs.macAddresses[0]); // the generated MAC is kept
    const conf = await v.api.qemu.getConfig("pve1", outs.vmid);
    expect(conf.tags).toBe("a;b");
    expect(String(conf.net0)).toContain("tag=30");
    expect(await life.diff(id, (await life.read(id, r.outs)).props as VmCloneState, news)).toMatchObject({ changes: false });
    await life.delete(id, r.outs);
  });

  test("needs a restart: cores on a running VM stay pending without allowReboot, and restart with it", async () => {
    const { id, outs, inputs } = await running();
    const news = await checked({ ...inputs, cores: 4 });
    expect(await life.diff(id, outs, news)).toMatchObject({ changes: true, replaces: [] });
    let from = v.s.sim.requestLog.length;
    const pending = await life.update(id, outs, news);
    expect(pending.outs.pendingChanges).toEqual(["cores"]);
    expect(callsSince(v.s, from).filter((c) => /status\/(shutdown|stop|start)/.test(c))).toEqual([]);
    const refreshed = (await life.read(id, pending.outs)).props as VmCloneState;
    expect(refreshed.pendingChanges).toEqual(["cores"]);
    expect(await life.diff(id, refreshed, news)).toMatchObject({ changes: false });

    const allow = await checked({ ...inputs, cores: 6, allowReboot: true });
    from = v.s.sim.requestLog.length;
    const rebooted = await life.update(id, refreshed, allow);
    const calls = callsSince(v.s, from);
    expect(calls).toContain("POST /nodes/{node}/qemu/{vmid}/status/shutdown");
    expect(calls).toContain("POST /nodes/{node}/qemu/{vmid}/status/start");
    expect(rebooted.outs.pendingChanges).toEqual([]);
    expect(rebooted.outs.status).toBe("running");
    expect((await v.api.qemu.getConfig("pve1", outs.vmid, { current: true })).cores).toBe(6);
    await life.delete(id, rebooted.outs);
  });

  test("replace: template, full/linked and storage changes; an explicit vmid deletes first", async () => {
    const olds = { ...(await checked({ vmid: 555 })), vmid: 555 } as VmCloneState;
    expect(await life.diff("pve1/555", olds, await checked({ vmid: 555, templateVmid: 9001 }))).toMatchObject({ replaces: ["templateVmid"], deleteBeforeReplace: true });
    expect((await life.diff("pve1/555", olds, await checked({ vmid: 555, full: true }))).replaces).toEqual(["full"]);
    const allocated = { ...(await checked({})), vmid: 321 } as VmCloneState;
    expect(await life.diff("pve1/321", allocated, await checked({}))).toMatchObject({ changes: false });
    const d = await life.diff("pve1/321", allocated, await checked({ full: true, storage: "local-lvm" }));
    expect(d.replaces?.sort()).toEqual(["full", "storage"]);
    expect(d.deleteBeforeReplace).toBeUndefined();
  });

  test("migrate: a node change is an update that migrates the running VM online", async () => {
    const { id, outs, inputs } = await running();
    const news = await checked({ ...inputs, node: "pve2" });
    expect(await life.diff(id, outs, news)).toMatchObject({ changes: true, replaces: [] });
    const from = v.s.sim.requestLog.length;
    const r = await life.update(id, outs, news);
    const migrate = v.s.sim.requestLog.slice(from).filter((e) => e.template === "/nodes/{node}/qemu/{vmid}/migrate" && e.method === "POST");
    expect(migrate.length).toBe(1);
    expect(r.outs.node).toBe("pve2");
    expect(v.cluster.vms.get(outs.vmid).node).toBe("pve2");
    const read = (await life.read(id, r.outs)).props as VmCloneState;
    expect(read.node).toBe("pve2");
    expect(await life.diff(id, read, news)).toMatchObject({ changes: false });
    await life.delete(id, read);
    expect(vmids()).not.toContain(outs.vmid);
  });

  test("refresh sees changes made behind the provider's back", async () => {
    const { id, outs, inputs } = await running({ networks: [{ bridge: "vmbr0" }] });
    const vm = v.cluster.vms.get(outs.vmid);
    vm.config.current.cores = "8";
    vm.config.current.tags = "a;hacked";
    vm.config.current.net0 = vm.config.current.net0.replace("bridge=vmbr0", "bridge=vmbr9");
    const read = (await life.read(id, outs)).props as VmCloneState;
    expect(read.cores).toBe(8);
    expect(read.tags).toEqual(["a", "hacked"]);
    expect(read.networks?.[0].bridge).toBe("vmbr9");
    const d = await life.diff(id, read, inputs);
    expect(d).toMatchObject({ changes: true, replaces: [] });
    const r = await life.update(id, read, inputs);
    expect((await v.api.qemu.getConfig("pve1", outs.vmid)).tags).toBe("a");
    await life.delete(id, r.outs);
  });

  test("a VM deleted out of band reads as gone, and deleting it again is success", async () => {
    const { id, outs } = await running({ started: false });
    expect(outs.status).toBe("stopped");
    await v.api.qemu.deleteAndWait("pve1", outs.vmid, { purge: true });
    expect(await life.read(id, outs)).toEqual({ id: "" });
    await expect(life.delete(id, outs)).resolves.toBeUndefined();
  });

  test("a failing config PUT after the clone leaves no VM behind", async () => {
    const before = vmids();
    v.s.sim.faults.addRule({ method: "PUT", path: "/nodes/{node}/qemu/{vmid}/config", errorRate: 1, error: { status: 500, message: "injected: cannot write config" } });
    const err = await life.create(await checked({ cores: 3 })).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/injected: cannot write config[\s\S]*was destroyed again/);
    expect(vmids()).toEqual(before);
    v.s.sim.faults.clear();
  });

  test("a failing start task leaves no VM behind", async () => {
    const before = vmids();
    v.s.sim.faults.configure({ tasks: { failRate: 1, types: ["qmstart"], failMessage: "injected: start failed" } });
    const err = await life.create(await checked({})).then(() => undefined, (e: Error) => e);
    v.s.sim.faults.clear();
    expect(err?.message).toMatch(/injected: start failed/);
    expect(vmids()).toEqual(before);
  });

  test("no agent configured: an immediate error naming the VM, and nothing left behind", async () => {
    const before = vmids();
    const err = await life.create(await checked({ templateVmid: 9001 })).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/VM \d+ \(web\) on node 'pve1' has no QEMU guest agent configured/);
    expect(vmids()).toEqual(before);
    // without waiting for an address the same template is fine
    const ok = await life.create(await checked({ templateVmid: 9001, waitForIp: false }));
    expect(ok.outs.status).toBe("running");
    expect(ok.outs.ipv4Addresses).toEqual([]);
    await life.delete(ok.id, ok.outs);
  });

  test("agent configured but silent: a bounded wait, then an error naming VM, node, interface and what to check", async () => {
    const before = vmids();
    const err = await life.create(await checked({ agentInterface: "eth7", agentTimeoutSeconds: 1 })).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/VM \d+ \(web\) on node 'pve1': no IPv4 address on interface eth7 after \d+ s/);
    expect(err?.message).toMatch(/interfaces seen: eth0 [0-9A-F:]{17} 10\.[\d.]+/);
    expect(err?.message).toMatch(/Check that the NIC gets an address/);
    expect(vmids()).toEqual(before);
  });

  test("import: read by node/vmid fills the inputs from PVE, template from the linked disk", async () => {
    const { id, outs } = await running();
    const imported = await life.read(`pve1/${outs.vmid}`);
    const p = imported.props as VmCloneState;
    expect(p).toMatchObject({ vmid: outs.vmid, node: "pve1", templateVmid: 9000, resourceName: "web", cores: 2, memory: 2048, tags: ["a"], description: "x", diskSize: "8G" });
    await life.delete(id, p);
  });

  test("check reports bad inputs by property", async () => {
    const r = await life.check({}, { name: "bad_name", templateVmid: 9000, templateNode: "pve1", storage: "local-lvm", networks: [{ model: "virtio" }], cicustom: { user: "user.yaml" }, vmid: 101, vmidRange: { min: 1, max: 2 } } as any);
    const props = (r.failures ?? []).map((f) => f.property).sort();
    expect(props).toEqual(expect.arrayContaining(["name", "storage", "networks[0]", "cicustom.user", "vmidRange"]));
    const shrink = await life.check({ diskSize: "20G" }, { name: "a", templateVmid: 9000, templateNode: "pve1", diskSize: "10G" } as any);
    expect((shrink.failures ?? []).map((f) => f.property)).toEqual(["diskSize"]);
  });
});
