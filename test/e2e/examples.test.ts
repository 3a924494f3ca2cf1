/**
 * The examples (examples/{quickstart,fleeting,machine-controller}) through the real engine,
 * against the simulator: each goes up, previews no change, and is destroyed leaving the
 * simulator exactly as it was before. The fleeting example also proves, with the credentials
 * it outputs, that the dedicated user and token can clone the template onto the dedicated
 * storage inside the pool, and are refused (403) outside it; the machine-controller example
 * proves its token's role, its HA template, its snippet on every node and the clones' cicustom.
 *
 * Fails (does not skip) when the Pulumi CLI cannot be obtained: see scripts/ensure-pulumi.sh.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { isPermissionDenied } from "../../provider/proxmox/errors";
import { startSimulator, type RunningSimulator } from "../simulator";
import { diffSnapshots, snapshotState, type StateSnapshot } from "../simulator/snapshot";
import { clusterOf } from "../simulator/state/cluster";
import { compileToDist, createTestStack, disposePulumiEnv, exportStackEncrypted, removeStack, REPO_ROOT, type ConfigEntry, type TestStack } from "./harness";
import { changesOf, keyLines, passwordClient, providerSources, proxmoxConfig, sshSetup, tokenClient, type SshSetup } from "./engine-lifecycle-support";

jest.setTimeout(15 * 60 * 1000);
afterAll(disposePulumiEnv);

const EXAMPLES = path.join(REPO_ROOT, "examples");

interface Run {
  sim: RunningSimulator;
  ts: TestStack;
  stack: Stack;
  before: StateSnapshot;
}

/** A simulator and a stack for one example; the snapshot is taken before anything is created. */
async function open(example: string, seed: number, config: (sim: RunningSimulator) => Record<string, ConfigEntry>, ssh?: SshSetup, simOptions: object = {}): Promise<Run> {
  const sim = await startSimulator({ seed, ...(ssh ? { cluster: ssh.cluster } : {}), ...simOptions });
  const before = snapshotState(sim.sim);
  const ts = await createTestStack({ programDir: path.join(EXAMPLES, example), stackName: `${example}${String((simOptions as { pveVersion?: string }).pveVersion ?? "").replace(".", "")}x${process.pid}`, simulator: sim, config: { ...proxmoxConfig(sim, ssh), ...config(sim) } });
  return { sim, ts, stack: ts.stack, before };
}

async function close(run: Run | undefined): Promise<void> {
  await removeStack(run?.ts);
  await run?.sim.stop();
}

beforeAll(() => compileToDist(providerSources()));

// Every example runs on a stock cluster of each PVE version (local: no snippets; import on 9.x
// only): what it needs beyond that it declares itself.
const VERSIONS = ["9.1", "8.4"] as const;

describe.each(VERSIONS)("examples/quickstart (stock PVE %s)", (pveVersion) => {
  const ssh = sshSetup();
  let run: Run | undefined;
  afterAll(() => close(run));

  it("builds a template and two clones whose user-data installs the agent, reaches their IPs, previews clean, destroys to nothing", async () => {
    run = await open("quickstart", 61, () => ({}), ssh, { pveVersion });
    const up = await run.stack.up();
    // stack, files storage, template, snippet, 2 clones
    expect(up.summary.resourceChanges).toEqual({ create: 6 });
    const ips = up.outputs.ips.value as string[];
    expect(ips).toHaveLength(2);
    for (const ip of ips) expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(Object.keys(up.outputs.vms.value).sort()).toEqual(["vm-1", "vm-2"]);
    const cluster = clusterOf(run.sim.sim);
    expect(cluster.storages.get("local")?.content).not.toContain("snippets");
    expect(cluster.vms.get(up.outputs.templateVmid.value)?.config.current.template).toBe("1");
    for (const { vmid, ip } of Object.values(up.outputs.vms.value as Record<string, { vmid: number; ip: string }>)) {
      const vm = cluster.vms.get(vmid);
      expect(vm?.running).toBe(true);
      expect(ips).toContain(ip);
      // Debian's image ships no agent: the user-data installed and started it
      expect(vm?.guest?.agent).toBe("cloud-init installs and starts qemu-guest-agent (user-data)");
    }

    expect(changesOf((await run.stack.preview()).changeSummary)).toEqual({});
    const destroy = await run.stack.destroy();
    expect(destroy.summary.result).toBe("succeeded");
    expect(diffSnapshots(run.before, snapshotState(run.sim.sim))).toEqual([]);
  });
});

describe.each(VERSIONS)("examples/fleeting (stock PVE %s)", (pveVersion) => {
  const PASSWORD = "Fleeting-Pass-0ne";
  const ssh = sshSetup();
  let run: Run | undefined;
  afterAll(() => close(run));

  it("sets up the plugin's dedicated user, token, pool and storage; its credentials clone onto the storage in the pool, and nowhere else; an instance has the agent and an address where the settings say", async () => {
    run = await open("fleeting", 62, () => ({ "fleeting:password": { value: PASSWORD, secret: true }, "fleeting:maxInstances": { value: "5" } }), ssh, { pveVersion });
    const { sim, stack } = run;
    const up = await stack.up();
    // stack, storage, user-data snippet, template, pool, user, token, 6 bindings, permission check
    expect(up.summary.resourceChanges).toEqual({ create: 14 });
    const settings = up.outputs.settings.value;
    expect(settings).toEqual({
      url: sim.url,
      insecure_skip_tls_verify: false,
      credentials_file_path: "/etc/gitlab-runner/proxmox-credentials.json",
      pool: "fleeting",
      storage: "fleeting",
      template_id: expect.any(Number),
      max_instances: 5,
      instance_network_interface: "eth0",
    });
    expect(up.outputs.pluginConfigToml.value).toContain('storage = "fleeting"');
    expect(up.outputs.pluginConfigToml.value).toContain(`template_id = ${settings.template_id}`);
    expect(up.outputs.credentialsFile.secret).toBe(true);
    expect(JSON.parse(up.outputs.credentialsFile.value)).toEqual({ realm: "pve", username: "fleeting", password: PASSWORD, otp: "" });
    expect(up.outputs.apiToken.secret).toBe(true);
    expect(up.outputs.poolMembers.value).toEqual({ vms: [settings.template_id], storage: ["fleeting"] });
    expect(up.outputs.missingPermissions.value).toEqual([]);
    const cluster = clusterOf(sim.sim);
    expect(cluster.storages.get("fleeting")).toMatchObject({ type: "dir", content: expect.arrayContaining(["images", "import", "snippets"]) });
    expect(String(cluster.vms.get(settings.template_id)?.config.current.scsi0)).toMatch(/^fleeting:/);

    // As the plugin would: a full clone of the template onto the dedicated storage, in the pool.
    const template = settings.template_id as number;
    const asToken = tokenClient(sim, up.outputs.apiToken.value);
    const cloned = await asToken.qemu.cloneAndWait("pve1", template, { newid: 500, name: "fleeting-creating", pool: "fleeting", full: true, storage: "fleeting" });
    expect(cloned.exitstatus).toBe("OK");
    expect(sim.sim.pools.poolOfVm(500)).toBe("fleeting");
    expect(String(cluster.vms.get(500)?.config.current.scsi0)).toMatch(/^fleeting:/);
    // The plugin starts the instance and reads the IPv4 of instance_network_interface from the
    // guest agent: the template's user-data installed the agent, its ipconfig0 gave eth0 an address.
    await asToken.qemu.startAndWait("pve1", 500);
    const deadline = Date.now() + 120_000;
    let seen: string | undefined;
    let address: string | undefined;
    while (address === undefined && Date.now() < deadline) {
      const r = await asToken.qemu.agentNetworkInterfaces("pve1", 500).catch((e: Error) => ({ ok: false as const, description: e.message }));
      if (r.ok) {
        seen = r.interfaces.map((i) => i.name).join(",");
        address = r.interfaces.find((i) => i.name === settings.instance_network_interface)?.["ip-addresses"]?.find((a) => a["ip-address-type"] === "ipv4")?.["ip-address"];
      } else seen = r.description;
      if (address === undefined) await new Promise((res) => setTimeout(res, 250));
    }
    expect({ address, seen }).toEqual({ address: expect.stringMatching(/^\d+\.\d+\.\d+\.\d+$/), seen: expect.stringContaining("eth0") });
    expect(cluster.vms.get(500)?.guest?.agent).toBe("cloud-init installs and starts qemu-guest-agent (user-data)");
    await asToken.qemu.stopAndWait("pve1", 500);
    // ...and with the password of the credentials file (the plugin's own way of logging in).
    const creds = JSON.parse(up.outputs.credentialsFile.value);
    const asUser = passwordClient(sim, `${creds.username}@${creds.realm}`, creds.password);
    expect((await asUser.qemu.cloneAndWait("pve1", template, { newid: 501, name: "fleeting-creating", pool: "fleeting", full: true, storage: "fleeting" })).exitstatus).toBe("OK");
    // Outside the pool, or onto another storage: refused.
    for (const [client, params] of [
      [asToken, { newid: 502, name: "stray", full: true, storage: "fleeting" }],
      [asUser, { newid: 502, name: "stray", full: true, storage: "fleeting" }],
      [asToken, { newid: 502, name: "stray", pool: "fleeting", full: true, storage: "local-lvm" }],
    ] as const) {
      const refused = await client.qemu.cloneAndWait("pve1", template, params).then(() => undefined, (e: unknown) => e);
      expect(isPermissionDenied(refused)).toBe(true);
      expect((refused as { status?: number }).status).toBe(403);
    }
    expect(cluster.vms.has(502)).toBe(false);

    // The instances are the plugin's, not the stack's: still no change.
    expect(changesOf((await stack.preview()).changeSummary)).toEqual({});
    const stored = await exportStackEncrypted(run.ts);
    expect(stored).not.toContain(PASSWORD);
    expect(stored).not.toContain(up.outputs.apiToken.value.split("=")[1]);

    // The plugin removes its instances; then the stack goes without a trace.
    await asToken.qemu.deleteAndWait("pve1", 500);
    await asToken.qemu.deleteAndWait("pve1", 501);
    const destroy = await stack.destroy();
    expect(destroy.summary.result).toBe("succeeded");
    expect(diffSnapshots(run.before, snapshotState(sim.sim))).toEqual([]);
  });
});

describe.each(VERSIONS)("examples/machine-controller (stock PVE %s)", (pveVersion) => {
  const ssh = sshSetup();
  let run: Run | undefined;
  afterAll(() => close(run));

  it("grants the role through the token, keeps the template in HA, puts user-data on every node, boots clones with it", async () => {
    run = await open("machine-controller", 63, () => ({}), ssh, { pveVersion });
    const { sim, stack } = run;
    const up = await stack.up();
    // stack, role, user, token, binding, files storage, template, snippet, 2 clones
    expect(up.summary.resourceChanges).toEqual({ create: 10 });
    expect(up.outputs.tokenId.value).toBe("machine-controller@pve!mc");
    expect(up.outputs.token.secret).toBe(true);
    if (pveVersion === "9.1") {
      // PVE 9 has no VM.Monitor: translated to what reading guest-agent IPs needs there.
      expect(up.outputs.appliedPrivileges.value).toContain("VM.GuestAgent.Audit");
      expect(up.outputs.appliedPrivileges.value).not.toContain("VM.Monitor");
    } else {
      expect(up.outputs.appliedPrivileges.value).toContain("VM.Monitor");
      expect(up.outputs.appliedPrivileges.value).not.toContain("VM.GuestAgent.Audit");
    }
    const cluster = clusterOf(sim.sim);
    const template = up.outputs.templateVmid.value as number;
    expect(cluster.ha.has(`vm:${template}`)).toBe(true);
    const file = (up.outputs.userData.value as string).split("/").pop()!;
    expect(up.outputs.userDataNodes.value).toEqual(["pve1", "pve2", "pve3"]);
    expect(up.outputs.userData.value).toMatch(/^pulumi-files:snippets\//);
    for (const node of ["pve1", "pve2", "pve3"]) expect(fs.existsSync(cluster.hostPath(node, `/var/lib/pulumi-files/snippets/${file}`))).toBe(true);
    const machines = up.outputs.machines.value as Array<{ vmid: number; ip: string }>;
    expect(machines).toHaveLength(2);
    for (const m of machines) {
      expect(m.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(cluster.vms.get(m.vmid)?.config.current.cicustom).toBe(`user=${up.outputs.userData.value}`);
    }

    // The token works with exactly the role: it can clone (VM.Clone, VM.Allocate on `/`).
    const asToken = tokenClient(sim, `${up.outputs.tokenId.value}=${up.outputs.token.value}`);
    expect((await asToken.qemu.cloneAndWait("pve1", template, { newid: 700, name: "probe" })).exitstatus).toBe("OK");
    await asToken.qemu.deleteAndWait("pve1", 700);
    const refused = await asToken.access.createUser("intruder@pve", {}).then(() => undefined, (e: unknown) => e);
    expect(isPermissionDenied(refused)).toBe(true);

    expect(changesOf((await stack.preview()).changeSummary)).toEqual({});
    const stored = await exportStackEncrypted(run.ts);
    expect(stored).not.toContain(up.outputs.token.value);
    for (const line of keyLines(ssh.key.private)) expect(stored).not.toContain(line);

    const destroy = await stack.destroy();
    expect(destroy.summary.result).toBe("succeeded");
    expect(diffSnapshots(run.before, snapshotState(sim.sim))).toEqual([]);
  });
});
