/**
 * The guest, through the real Pulumi engine, on a stock cluster's terms: a Debian cloud image
 * ships no qemu-guest-agent, cloud-init names the NIC eth0 and reads its data only at boot.
 *
 * 1. Nothing installs the agent: `pulumi up` fails after agentTimeoutSeconds with an error that
 *    names the image and the fix, and leaves no VM behind.
 * 2. User-data installs and starts it: the address arrives, found by net0's MAC (the guest calls
 *    the NIC eth0). A static address set on the running VM is listed in `pendingChanges` and the
 *    VM keeps its DHCP address (no reboot without allowReboot); a preview and a refresh after it
 *    change nothing; with allowReboot the next `up` restarts the VM and reports the new address.
 */
import * as path from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { compileToDist, createTestStack, disposePulumiEnv, removeStack, type TestStack } from "./harness";
import { changesOf, providerSources, proxmoxConfig, sshSetup } from "./engine-lifecycle-support";
import { startSimulator, type RunningSimulator } from "../simulator";
import { clusterOf, PREPARED_LOCAL_CONTENT } from "../simulator/state/cluster";
import { diffSnapshots, snapshotState } from "../simulator/snapshot";

jest.setTimeout(10 * 60 * 1000);
afterAll(disposePulumiEnv);

describe("the guest through the Pulumi engine", () => {
  const ssh = sshSetup();
  let sim: RunningSimulator;
  let ts: TestStack | undefined;
  let stack: Stack;
  let before: ReturnType<typeof snapshotState>;
  const vmsNow = () => [...clusterOf(sim.sim).vms.values()].filter((v) => v.config.current.template !== "1");

  beforeAll(async () => {
    compileToDist(providerSources());
    // snippets and import enabled on `local` by the admin (a fresh install has neither on 8.x)
    sim = await startSimulator({ seed: 93, cluster: { ...ssh.cluster, localContent: PREPARED_LOCAL_CONTENT } });
    before = snapshotState(sim.sim);
    ts = await createTestStack({
      programDir: path.join(__dirname, "fixtures", "guest"),
      stackName: `guest${process.pid}`,
      simulator: sim,
      config: { ...proxmoxConfig(sim, ssh), "guest:installAgent": { value: "false" }, "guest:agentTimeoutSeconds": { value: "6" } },
    });
    stack = ts.stack;
  });
  afterAll(async () => {
    await removeStack(ts);
    await sim?.stop();
  });

  it("an image without the agent and nothing installing it: up fails at the timeout naming the image and the fix; no VM is left", async () => {
    const err = await stack.up().then(() => "succeeded", (e: unknown) => String(e));
    expect(err).toMatch(/VM \d+ \(app\) on node 'pve1': the QEMU guest agent never answered in \d+ s/);
    expect(err).toMatch(/its image \(debian-12-genericcloud-amd64-[0-9a-f]{8}\.qcow2\) probably does not include it/);
    expect(err).toContain("packages: [qemu-guest-agent] and runcmd: [[systemctl, start, qemu-guest-agent]]");
    expect(vmsNow()).toEqual([]);
  });

  it("user-data that installs and starts it: the address by MAC; a static address waits for the restart that allowReboot makes", async () => {
    await stack.setConfig("guest:installAgent", { value: "true" });
    await stack.setConfig("guest:agentTimeoutSeconds", { value: "60" });
    const up = await stack.up();
    const dhcp = up.outputs.ip.value as string;
    expect(dhcp).toMatch(/^10\./);
    const [vm] = vmsNow();
    expect([...(vm.guest?.nics.values() ?? [])].map((n) => [n.name, n.mac.toUpperCase()])).toEqual([["eth0", up.outputs.macs.value[0]]]);

    await stack.setAllConfig({ "guest:ip": { value: "192.0.2.30/24" }, "guest:gw": { value: "192.0.2.1" } });
    const changed = await stack.up();
    expect(changesOf(changed.summary.resourceChanges)).toEqual({ update: 1 });
    expect(changed.outputs.pending.value).toEqual(["ipconfig0"]);
    expect(changed.outputs.ip.value).toBe(dhcp);
    expect(vm.config.current.ipconfig0).toBe("gw=192.0.2.1,ip=192.0.2.30/24");
    expect(changesOf((await stack.preview()).changeSummary)).toEqual({});
    const refresh = await stack.refresh();
    expect(changesOf(refresh.summary.resourceChanges)).toEqual({});
    expect((await stack.outputs()).pending.value).toEqual(["ipconfig0"]);

    await stack.setConfig("guest:allowReboot", { value: "true" });
    const rebooted = await stack.up();
    expect(rebooted.outputs.pending.value).toEqual([]);
    expect(rebooted.outputs.ip.value).toBe("192.0.2.30");
    expect(changesOf((await stack.preview()).changeSummary)).toEqual({});

    expect((await stack.destroy()).summary.result).toBe("succeeded");
    expect(diffSnapshots(before, snapshotState(sim.sim))).toEqual([]);
  });
});
