// Template: build from a cloud image (download-url → import-from → template → HA), no-op diff
// after create, in-place metadata, replacement on image/hardware, adopt semantics, cleanup
// after a failed build, and a VmClone from the result.
import { createHash } from "crypto";
import * as fs from "fs";
import { templateLifecycle as tl, importFileName, type TemplateInputs, type TemplateState } from "../../../../provider/resources/template";
import { vmCloneLifecycle } from "../../../../provider/resources/vm-clone";
import { callsSince, makeTemplate, startVmSim, type VmSim } from "./sim-setup";

jest.setTimeout(60_000);

const URL = "https://cloud-images.example.org/noble/current/noble-server-cloudimg-amd64.img";
const SHA = createHash("sha256").update(`pve-sim download: ${URL}\n`).digest("hex");

async function checked(extra: Record<string, unknown>): Promise<TemplateInputs> {
  const r = await tl.check({}, { node: "pve1", name: "noble", resourceName: "noble", image: { url: URL, checksum: SHA }, ...extra } as any);
  expect(r.failures).toEqual([]);
  return r.inputs as TemplateInputs;
}

describe("Template", () => {
  let v: VmSim;
  beforeAll(async () => {
    v = await startVmSim({ seed: 5, timeFactor: 0.01 });
  });
  afterAll(() => v.stop());

  test("import file names follow PVE's extension rules", () => {
    expect(importFileName({ url: URL })).toMatch(/^noble-server-cloudimg-amd64-[0-9a-f]{8}\.qcow2$/);
    expect(importFileName({ url: URL })).not.toBe(importFileName({ url: URL, checksum: SHA }));
    expect(importFileName({ url: "https://x/y/disk.raw" })).toMatch(/^disk-[0-9a-f]{8}\.raw$/);
    expect(importFileName({ url: URL, fileName: "noble.img" })).toBe("noble.qcow2");
  });

  test("builds the seed's template through the API, HA stopped, then clones from it", async () => {
    const inputs = await checked({ tags: ["Ubuntu"], description: "noble", ha: true, diskSize: "4G", cores: 2 });
    const from = v.s.sim.requestLog.length;
    const { id, outs } = await tl.create(inputs);
    const calls = callsSince(v.s, from);
    expect(calls).toEqual(expect.arrayContaining([
      "POST /nodes/{node}/storage/{storage}/download-url",
      "POST /nodes/{node}/qemu",
      "PUT /nodes/{node}/qemu/{vmid}/resize",
      "POST /nodes/{node}/qemu/{vmid}/template",
      "POST /cluster/ha/resources",
    ]));
    expect(outs.imageVolume).toBe(`local:import/${importFileName({ url: URL, checksum: SHA })}`);
    const conf = await v.api.qemu.getConfig("pve1", outs.vmid);
    expect(conf).toMatchObject({ template: 1, serial0: "socket", vga: "serial0", agent: "1", boot: "order=scsi0", tags: "ubuntu" });
    expect(String(conf.scsi0)).toMatch(/^local-lvm:base-\d+-disk-0,size=4G$/);
    expect(String(conf.ide2)).toContain("cloudinit");
    expect(String(conf.net0)).toMatch(/^virtio=.*bridge=vmbr0/);
    expect((await v.api.cluster.haResource(`vm:${outs.vmid}`)).state).toBe("stopped");

    const read = (await tl.read(id, outs)).props as TemplateState;
    expect(await tl.diff(id, read, inputs)).toMatchObject({ changes: false });

    // in place: name, description, tags
    const renamed = await checked({ tags: ["ubuntu", "lts"], description: "noble 24.04", ha: true, diskSize: "4G", cores: 2, name: "noble2" });
    expect(await tl.diff(id, read, renamed)).toMatchObject({ changes: true, replaces: [] });
    const up = await tl.update(id, read, renamed);
    expect((await v.api.qemu.getConfig("pve1", outs.vmid)).name).toBe("noble2");
    // replace: image or hardware
    expect((await tl.diff(id, up.outs, await checked({ ...renamed, image: { url: URL.replace("noble", "jammy") } }))).replaces).toEqual(["image"]);
    expect((await tl.diff(id, up.outs, await checked({ ...renamed, memory: 4096 }))).replaces).toEqual(["memory"]);

    // a second build reuses the downloaded image
    const again = v.s.sim.requestLog.length;
    const second = await tl.create(await checked({ name: "noble-b", resourceName: "noble-b" }));
    expect(callsSince(v.s, again)).not.toContain("POST /nodes/{node}/storage/{storage}/download-url");

    // Ubuntu's cloud image ships no qemu-guest-agent (the simulator's guest knows it by the image):
    const cloneOf = async (extra: Record<string, unknown>) =>
      vmCloneLifecycle.create((await vmCloneLifecycle.check({}, { templateVmid: outs.vmid, templateNode: "pve1", ipConfigs: [{ ip: "dhcp" }], ...extra } as any)).inputs as any);
    // without waiting for an address it runs;
    const clone = await cloneOf({ name: "c1", resourceName: "c1", waitForIp: false });
    expect(clone.outs.status).toBe("running");
    await vmCloneLifecycle.delete(clone.id, clone.outs);
    // waiting for one with nothing installing the agent fails at the timeout, naming the image and the fix;
    const silent = await cloneOf({ name: "c2", resourceName: "c2", agentTimeoutSeconds: 3 }).then(() => undefined, (e: Error) => e.message);
    expect(silent).toMatch(/^VM \d+ \(c2\) on node 'pve1': the QEMU guest agent never answered in \d+ s/);
    expect(silent).toContain(`its image (${importFileName({ url: URL, checksum: SHA })}) probably does not include it`);
    expect(silent).toContain("Nothing in its cloud-init data installs the agent (no cicustom.user)");
    expect(silent).toContain("packages: [qemu-guest-agent] and runcmd: [[systemctl, start, qemu-guest-agent]]");
    // user-data that installs and starts it: the address arrives (boot + package install)
    fs.writeFileSync(v.cluster.hostPath("pve1", "/var/lib/vz/snippets/agent.yaml"), "#cloud-config\npackages: [qemu-guest-agent]\nruncmd:\n  - [systemctl, start, qemu-guest-agent]\n");
    const served = await cloneOf({ name: "c3", resourceName: "c3", cicustom: { user: "local:snippets/agent.yaml" } });
    expect(served.outs.ipv4Address).toMatch(/^10\./);
    await vmCloneLifecycle.delete(served.id, served.outs);
    await tl.delete(id, up.outs);
    await tl.delete(second.id, second.outs);
    expect([...v.cluster.vms.keys()]).toEqual([]);
    expect(await tl.read(id, up.outs)).toEqual({ id: "" });
  });

  test("ipConfigs and cicustom are inherited: a bare clone (clone + start, as GitLab's fleeting plugin makes one) gets eth0's address from its agent", async () => {
    fs.writeFileSync(v.cluster.hostPath("pve1", "/var/lib/vz/snippets/agent-tpl.yaml"), "#cloud-config\npackages: [qemu-guest-agent]\nruncmd:\n  - [systemctl, start, qemu-guest-agent]\n");
    // an instance as the plugin sees it: the IPv4 of a named interface, from the guest agent
    const bareInstance = async (template: number, newid: number): Promise<{ name: string; ip?: string }[] | string> => {
      await v.api.qemu.cloneAndWait("pve1", template, { newid, name: `bare-${newid}`, full: true });
      await v.api.qemu.startAndWait("pve1", newid);
      // polls for 5 minutes of PVE time (3 s here, at timeFactor 0.01), where the plugin would
      // wait as long: an agent the user-data installs answers within a minute of the start
      // (boot, then the package install), one that is not in the guest never does
      const deadline = Date.now() + v.s.sim.clock.span(5 * 60_000);
      for (;;) {
        const r = await v.api.qemu.agentNetworkInterfaces("pve1", newid).catch((e: Error) => ({ ok: false as const, description: e.message }));
        if (r.ok) return r.interfaces.filter((i) => i.name !== "lo").map((i) => ({ name: i.name, ip: i["ip-addresses"]?.find((a) => a["ip-address-type"] === "ipv4")?.["ip-address"] }));
        if (Date.now() > deadline) return r.description;
        await new Promise((res) => setTimeout(res, 100));
      }
    };
    const bare = await tl.create(await checked({ name: "bare", resourceName: "bare" }));
    const prepared = await checked({ name: "prepared", resourceName: "prepared", ipConfigs: [{ ip: "dhcp" }], cicustom: { user: "local:snippets/agent-tpl.yaml" } });
    expect(prepared).toMatchObject({ ipConfigs: [{ ip: "dhcp" }], cicustom: { user: "local:snippets/agent-tpl.yaml" } });
    const built = await tl.create(prepared);
    expect(await v.api.qemu.getConfig("pve1", built.outs.vmid)).toMatchObject({ ipconfig0: "ip=dhcp", cicustom: "user=local:snippets/agent-tpl.yaml" });
    // Debian/Ubuntu cloud images ship no agent, and a NIC without ipconfig gets no address
    expect(await bareInstance(bare.outs.vmid, 801)).toMatch(/not running/);
    const served = await bareInstance(built.outs.vmid, 802);
    expect(served).toEqual([{ name: "eth0", ip: expect.stringMatching(/^10\./) }]);

    // refresh shows no drift; drift on the template is found; changes go in place
    const read = (await tl.read(built.id, built.outs)).props as TemplateState;
    expect(await tl.diff(built.id, read, prepared)).toMatchObject({ changes: false });
    await v.api.qemu.updateConfigSync("pve1", built.outs.vmid, { delete: "cicustom" });
    const drifted = (await tl.read(built.id, built.outs)).props as TemplateState;
    expect(drifted.cicustom).toBeUndefined();
    expect(await tl.diff(built.id, drifted, prepared)).toMatchObject({ changes: true, replaces: [] });
    const static4 = await checked({ name: "prepared", resourceName: "prepared", ipConfigs: [{ ip: "10.9.0.5/24", gw: "10.9.0.1" }] });
    const updated = await tl.update(built.id, drifted, static4);
    const conf = await v.api.qemu.getConfig("pve1", built.outs.vmid);
    expect(conf.ipconfig0).toBe("gw=10.9.0.1,ip=10.9.0.5/24");
    expect(conf.cicustom).toBeUndefined();
    expect(await tl.diff(built.id, (await tl.read(built.id, updated.outs)).props as TemplateState, static4)).toMatchObject({ changes: false });

    for (const id of [801, 802]) {
      await v.api.qemu.stopAndWait("pve1", id);
      await v.api.qemu.deleteAndWait("pve1", id);
    }
    await tl.delete(built.id, updated.outs);
    await tl.delete(bare.id, bare.outs);
  });

  test("ipConfigs and cicustom are checked at preview, and not taken with adopt", async () => {
    const bad = await tl.check({}, { node: "pve1", name: "t", image: { url: URL }, ipConfigs: [{ ip: "10.0.0.5" }], cicustom: { user: "agent.yaml", extra: "x" } } as any);
    expect(bad.failures).toEqual(expect.arrayContaining([
      { property: "ipConfigs[0]", reason: expect.stringContaining("must be 'dhcp' or an IPv4 address with prefix") },
      { property: "cicustom.user", reason: expect.stringContaining("must be a snippet volume id such as local:snippets/user.yaml") },
      { property: "cicustom.extra", reason: "cicustom has no 'extra'; use user, network, meta or vendor." },
    ]));
    const adopted = await tl.check({}, { node: "pve1", name: "t", adopt: true, vmid: 9000, ipConfigs: [{ ip: "dhcp" }] } as any);
    expect(adopted.failures).toContainEqual({ property: "ipConfigs", reason: expect.stringContaining("an adopted template's cloud-init data is not managed") });
  });

  test("the create request imports the image with import-from; pool puts the template in the pool", async () => {
    await v.api.pools.create("templates");
    const inputs = await checked({ name: "pooled", resourceName: "pooled", pool: "templates" });
    const from = v.s.sim.requestLog.length;
    const { id, outs } = await tl.create(inputs);
    const creates = v.s.sim.requestLog.slice(from).filter((e) => e.method === "POST" && e.template === "/nodes/{node}/qemu");
    expect(creates).toHaveLength(1);
    expect(creates[0].params).toMatchObject({
      vmid: outs.vmid,
      scsi0: `local-lvm:0,import-from=${outs.imageVolume}`,
      ide2: "local-lvm:cloudinit",
      pool: "templates",
      agent: "1",
      boot: "order=scsi0",
    });
    expect(outs.imageVolume).toMatch(/^local:import\/.*\.qcow2$/);
    // the pool's members, read back through the API: the template, as a template
    const members = (await v.api.pools.get("templates")).members;
    expect(members.map((m) => [Number(m.vmid), Boolean(Number(m.template))])).toEqual([[outs.vmid, true]]);
    await tl.delete(id, outs);
    expect((await v.api.pools.get("templates")).members).toEqual([]);
  });

  test("a checksum mismatch fails the build before any VM exists", async () => {
    const err = await tl.create(await checked({ image: { url: URL.replace("noble", "bad"), checksum: "0".repeat(64) } })).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/checksum mismatch/);
    expect([...v.cluster.vms.keys()]).toEqual([]);
  });

  test("a failing template conversion destroys the half-made VM", async () => {
    v.s.sim.faults.configure({ tasks: { failRate: 1, types: ["qmtemplate"], failMessage: "injected: template failed" } });
    const err = await tl.create(await checked({ name: "broken" })).then(() => undefined, (e: Error) => e);
    v.s.sim.faults.clear();
    expect(err?.message).toMatch(/injected: template failed[\s\S]*was destroyed again/);
    expect([...v.cluster.vms.keys()]).toEqual([]);
  });

  test("a failing conversion whose cleanup fails too: the error names the VM and node left behind and how to remove it", async () => {
    const before = [...v.cluster.vms.keys()];
    v.s.sim.faults.configure({
      tasks: { failRate: 1, types: ["qmtemplate"], failMessage: "injected: template failed" },
      rules: [{ method: "DELETE", path: "/nodes/{node}/qemu/{vmid}", errorRate: 1, error: { status: 500, message: "injected: storage 'local-lvm' is not online" } }],
    });
    const err = await tl.create(await checked({ name: "stuck", resourceName: "stuck" })).then(() => undefined, (e: Error) => e);
    v.s.sim.faults.clear();
    const left = [...v.cluster.vms.keys()].filter((id) => !before.includes(id));
    expect(left).toHaveLength(1);
    expect(err?.message).toMatch(/injected: template failed/);
    expect(err?.message).toContain(`VM ${left[0]} on node 'pve1' was left behind: destroying it failed`);
    expect(err?.message).toContain(`Remove it by hand (qm destroy ${left[0]} --purge): it is a half-built template that the next \`pulumi up\` does not reuse.`);
    await v.api.qemu.deleteAndWait("pve1", left[0], { purge: true });
  });

  test("adopt manages metadata of an existing template and never destroys it unless told", async () => {
    await makeTemplate(v.api, 8000);
    const r = await tl.check({}, { node: "pve1", name: "adopted", adopt: true, vmid: 8000, tags: ["x"] } as any);
    expect(r.failures).toEqual([]);
    const { id, outs } = await tl.create(r.inputs as TemplateInputs);
    expect((await v.api.qemu.getConfig("pve1", 8000)).name).toBe("adopted");
    await tl.delete(id, outs);
    expect(v.cluster.vms.has(8000)).toBe(true);
    await tl.delete(id, { ...outs, destroyOnDelete: true });
    expect(v.cluster.vms.has(8000)).toBe(false);
    const bad = await tl.check({}, { node: "pve1", name: "x", adopt: true } as any);
    expect((bad.failures ?? []).map((f) => f.property)).toEqual(["vmid"]);
  });
});
