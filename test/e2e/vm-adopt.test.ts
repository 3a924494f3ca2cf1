/**
 * Importing an existing VM through the real engine: a VM made out of band (through the
 * simulator's API, not a clone), adopted by a program with `adopt: true`; then a no-op preview
 * (also with --refresh), an in-place change doing what its preview said, drift found by refresh
 * and named in `preview --diff`, and a destroy that releases the VM (kept, marker removed).
 *
 * Fails (does not skip) when the Pulumi CLI cannot be obtained: see scripts/ensure-pulumi.sh.
 */
import * as path from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { compileToDist, createTestStack, disposePulumiEnv, removeStack, type TestStack } from "./harness";
import { changesOf, providerSources } from "./engine-lifecycle-support";
import { startVmSim, type VmSim } from "../unit/resources/vm/sim-setup";

jest.setTimeout(15 * 60 * 1000);
afterAll(disposePulumiEnv);

const FIXTURE = path.join(__dirname, "fixtures", "vm-adopt");
const VMID = 420;

describe("adopting an existing VM (the import route for VmClone)", () => {
  let v: VmSim;
  let ts: TestStack | undefined;
  let stack: Stack;
  const vm = () => v.cluster.vms.get(VMID);
  const current = () => vm().config.current as Record<string, string>;
  const effective = (key: string) => (vm().config.pending?.[key] ?? current()[key]) as string | undefined;

  beforeAll(async () => {
    compileToDist(providerSources());
    v = await startVmSim({ seed: 31, timeFactor: 0.01 });
    // made by hand, not cloned: running, agent on, with a description of its own
    await v.api.qemu.createAndWait("pve1", VMID, {
      name: "db", memory: 1024, cores: 2, scsi0: "local-lvm:8", net0: "virtio,bridge=vmbr0", agent: "1", tags: "prod", description: "primary database",
    });
    await v.api.qemu.startAndWait("pve1", VMID);
    ts = await createTestStack({
      programDir: FIXTURE,
      stackName: `adopt${process.pid}`,
      simulator: v.s,
      config: {
        "proxmox:endpoint": { value: v.s.url },
        "proxmox:apiToken": { value: v.s.rootToken, secret: true },
        "proxmox:caCert": { value: v.s.caCert },
        "vm-adopt:vmid": { value: String(VMID) },
      },
    });
    stack = ts.stack;
  });

  afterAll(async () => {
    await removeStack(ts);
    await v?.stop();
  });

  it("adopts the VM: no clone, the marker stamped, the declared memory converged, its own description kept", async () => {
    const log0 = v.s.sim.requestLog.length;
    const up = await stack.up();
    expect(up.summary.resourceChanges).toEqual({ create: 2 });
    expect(up.outputs.vmid.value).toBe(VMID);
    expect(up.outputs.status.value).toBe("running");
    expect(up.outputs.ip.value).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(v.s.sim.requestLog.slice(log0).filter((e) => e.method === "POST" && /clone|\/qemu$/.test(e.template ?? ""))).toEqual([]);
    expect(current().description).toBe(`primary database\nmanaged-by=pulumi-pve resource=db stack=vm-adopt/${stack.name}`);
    expect(effective("memory")).toBe("2048");
    expect([...v.cluster.vms.keys()]).toEqual([VMID]);
  });

  it("previews no change after up, with and without --refresh", async () => {
    expect((await stack.preview({ diff: true })).changeSummary).toEqual({ same: 2 });
    const refreshed = await stack.preview({ diff: true, refresh: true, expectNoChanges: true });
    expect(refreshed.changeSummary).toEqual({ same: 2 });
  });

  it("changes memory in place, as the preview announced", async () => {
    await stack.setConfig("vm-adopt:memory", { value: "3072" });
    const preview = await stack.preview({ diff: true });
    expect(preview.changeSummary).toEqual({ update: 1, same: 1 });
    expect(preview.stdout).toMatch(/~ memory\s*: 2048 => 3072/);
    const up = await stack.up();
    expect(up.summary.resourceChanges).toEqual({ update: 1, same: 1 });
    expect(effective("memory")).toBe("3072");
    expect(vm()).toBeDefined();
  });

  it("names drift found by refresh in preview --diff, and up repairs it", async () => {
    vm().config.current.cores = "6";
    const refresh = await stack.refresh();
    expect(refresh.summary.resourceChanges).toEqual({ update: 1, same: 1 });
    const preview = await stack.preview({ diff: true });
    expect(preview.changeSummary).toEqual({ update: 1, same: 1 });
    expect(preview.stdout).toMatch(/~ cores\s*: 6 => 2/);
    expect(preview.stdout).not.toMatch(/~ memory/);
    await stack.up();
    expect(effective("cores")).toBe("2");
    expect(changesOf((await stack.preview({ refresh: true })).changeSummary)).toEqual({});
  });

  it("destroy releases the adopted VM: kept as it is, marker removed", async () => {
    const destroy = await stack.destroy();
    expect(destroy.summary.result).toBe("succeeded");
    expect(vm()).toBeDefined();
    expect(vm().running).toBe(true);
    expect(current().description).toBe("primary database");
  });
});

