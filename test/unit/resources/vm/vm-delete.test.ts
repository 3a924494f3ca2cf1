// VmClone's delete sequence, cleanup after a failed create when even the cleanup fails, and the
// wait for a config lock on a fresh clone; against the simulator (timeFactor 0.01), with the
// request log (methods, routes, parameters) and the simulator's VM and task tables as evidence.
import { vmCloneLifecycle as life, type VmCloneInputs, type VmCloneState } from "../../../../provider/resources/vm-clone";
import { client } from "../../../../provider/resources/context";
import { retryConvergent } from "../../../../provider/resources/vm/convergent-retry";
import { vmContext } from "../../../../provider/resources/vm/vm-context";
import { clearSharedReads } from "../../../../provider/resources/vm/shared-reads";
import type { RequestLogEntry } from "../../../simulator/sim";
import { makeTemplate, startVmSim, type VmSim } from "./sim-setup";

jest.setTimeout(60_000);

const VM = "/nodes/{node}/qemu/{vmid}";
/** Power and destroy calls, in order, as `<what> <params>`. */
function powerCalls(log: RequestLogEntry[]): string[] {
  return log
    .filter((e) => (e.method === "POST" && /\/status\/(shutdown|stop|start)$/.test(e.template ?? "")) || (e.method === "DELETE" && e.template === VM))
    .map((e) => {
      const { node: _n, vmid: _v, ...p } = e.params ?? {};
      const what = e.method === "DELETE" ? "DELETE" : (e.template ?? "").split("/").pop();
      return `${what} ${JSON.stringify(p)} ${e.status}`;
    });
}

async function checked(extra: Record<string, unknown>): Promise<VmCloneInputs> {
  const r = await life.check({}, { name: "web", resourceName: "web", stack: "proj/dev", templateVmid: 9000, templateNode: "pve1", ...extra } as any);
  expect(r.failures).toEqual([]);
  return r.inputs as VmCloneInputs;
}

describe("VmClone delete, cleanup and lock waits", () => {
  let v: VmSim;
  const vmids = (): number[] => [...v.cluster.vms.keys()].sort((a: number, b: number) => a - b);
  const since = (from: number) => v.s.sim.requestLog.slice(from);

  beforeAll(async () => {
    v = await startVmSim({ seed: 29, timeFactor: 0.01 });
    await makeTemplate(v.api, 9000);
    // a guest that ignores shutdown requests: no ACPI, no guest agent
    await makeTemplate(v.api, 9002, { name: "tpl-deaf", agent: "0", acpi: 0 });
  });
  afterAll(() => v.stop());
  afterEach(() => v.s.sim.faults.clear());

  test("a running VM: shutdown with the configured timeout, then DELETE with purge and destroy-unreferenced-disks", async () => {
    const { id, outs } = await life.create(await checked({ shutdownTimeoutSeconds: 30 }));
    expect(outs.status).toBe("running");
    const from = v.s.sim.requestLog.length;
    const tasksBefore = v.cluster.tasks.all().length;
    await life.delete(id, outs);
    expect(powerCalls(since(from))).toEqual([
      `shutdown {"timeout":30} 200`,
      `DELETE {"purge":1,"destroy-unreferenced-disks":1} 200`,
    ]);
    const tasks = v.cluster.tasks.all().slice(tasksBefore).filter((t: any) => t.id === String(outs.vmid));
    expect(tasks.filter((t: any) => ["qmshutdown", "qmstop", "qmdestroy"].includes(t.type)).map((t: any) => `${t.type} ${t.exitstatus}`)).toEqual(["qmshutdown OK", "qmdestroy OK"]);
    expect(vmids()).not.toContain(outs.vmid);
  });

  test("a guest that ignores shutdown: the shutdown times out, then a hard stop, then the DELETE", async () => {
    const { id, outs } = await life.create(await checked({ templateVmid: 9002, waitForIp: false, shutdownTimeoutSeconds: 3 }));
    expect(outs.status).toBe("running");
    const from = v.s.sim.requestLog.length;
    const tasksBefore = v.cluster.tasks.all().length;
    await life.delete(id, outs);
    expect(powerCalls(since(from))).toEqual([
      `shutdown {"timeout":3} 200`,
      `stop {} 200`,
      `DELETE {"purge":1,"destroy-unreferenced-disks":1} 200`,
    ]);
    const tasks = v.cluster.tasks.all().slice(tasksBefore).filter((t: any) => t.id === String(outs.vmid) && ["qmshutdown", "qmstop", "qmdestroy"].includes(t.type));
    expect(tasks.map((t: any) => `${t.type} ${t.exitstatus}`)).toEqual(["qmshutdown VM quit/powerdown failed - got timeout", "qmstop OK", "qmdestroy OK"]);
    expect(vmids()).not.toContain(outs.vmid);
  });

  test("a stopped VM: no power calls, only the DELETE", async () => {
    const { id, outs } = await life.create(await checked({ started: false }));
    const from = v.s.sim.requestLog.length;
    await life.delete(id, outs);
    expect(powerCalls(since(from))).toEqual([`DELETE {"purge":1,"destroy-unreferenced-disks":1} 200`]);
  });

  test("purge takes an HA-managed VM out of HA (PVE refuses the DELETE without it)", async () => {
    const { id, outs } = await life.create(await checked({ started: false }));
    await v.api.cluster.createHaResource({ sid: `vm:${outs.vmid}`, state: "stopped" });
    await life.delete(id, outs);
    expect(vmids()).not.toContain(outs.vmid);
    expect([...v.cluster.ha.keys()]).not.toContain(`vm:${outs.vmid}`);
  });

  test("an already-missing VM: delete succeeds without a DELETE request", async () => {
    const { id, outs } = await life.create(await checked({ started: false }));
    await v.api.qemu.deleteAndWait("pve1", outs.vmid, { purge: true });
    const from = v.s.sim.requestLog.length;
    await expect(life.delete(id, outs)).resolves.toBeUndefined();
    expect(since(from).filter((e) => e.method !== "GET")).toEqual([]);
  });

  test("create fails and so does the cleanup: the error names the VM and node left behind and what to do; a rerun takes it over", async () => {
    const inputs = await checked({ name: "orphan", resourceName: "orphan", cores: 3 });
    const before = vmids();
    v.s.sim.faults.addRule({ method: "PUT", path: `${VM}/config`, errorRate: 1, error: { status: 400, message: "injected: cannot write config" } });
    v.s.sim.faults.addRule({ method: "DELETE", path: VM, errorRate: 1, error: { status: 500, message: "injected: storage 'local-lvm' is not online" } });
    const from = v.s.sim.requestLog.length;
    const err = await life.create(inputs).then(() => undefined, (e: Error) => e);
    v.s.sim.faults.clear();
    const left = vmids().filter((id) => !before.includes(id));
    expect(left).toHaveLength(1);
    const vmid = left[0];
    expect(err?.message).toMatch(/injected: cannot write config/);
    expect(err?.message).toContain(`VM ${vmid} on node 'pve1' was left behind: destroying it failed`);
    expect(err?.message).toMatch(/injected: storage 'local-lvm' is not online/);
    expect(err?.message).toContain(`qm destroy ${vmid} --purge`);
    expect(err?.message).toMatch(/run `pulumi up` again/);
    expect(since(from).filter((e) => e.method === "DELETE" && e.template === VM).length).toBeGreaterThanOrEqual(1);
    expect(err?.message).not.toContain(v.s.rootToken.split("=")[1]);

    // what the message promises: the next run (a new process: no shared cluster answer) finds
    // it by its marker and takes it over
    clearSharedReads(client());
    const fromRerun = v.s.sim.requestLog.length;
    const again = await life.create(inputs);
    expect(again.outs.vmid).toBe(vmid);
    expect(since(fromRerun).filter((e) => e.template === "/nodes/{node}/qemu/{vmid}/clone")).toEqual([]);
    expect(v.cluster.vms.get(vmid).config.current.cores).toBe("3");
    await life.delete(again.id, again.outs);
  });

  test("a fresh clone locked by another task: the config change waits for the lock and create succeeds", async () => {
    // Hold converge's first config read briefly, and lock the new VM (a backup job starting on
    // it) as soon as its clone task is done; release the lock 600 ms later.
    v.s.sim.faults.addRule({ method: "GET", path: `${VM}/config`, latencyMs: 200, times: 1 });
    const from = v.s.sim.requestLog.length;
    const creating = life.create(await checked({ name: "locky", resourceName: "locky", cores: 3, started: false }));
    let locked: any;
    while (!locked) {
      locked = [...v.cluster.vms.values()].find((vm: any) => vm.config.current.name === "locky" && !vm.config.current.lock && !vm.tempClone);
      if (!locked) await new Promise((r) => setTimeout(r, 2));
    }
    locked.config.current.lock = "backup";
    const release = setTimeout(() => delete locked.config.current.lock, 600);
    const { id, outs } = await creating;
    clearTimeout(release);
    const puts = since(from).filter((e) => e.method === "PUT" && e.template === `${VM}/config`);
    expect(puts.length).toBeGreaterThanOrEqual(2);
    expect(puts[0].status).toBe(500); // VM is locked (backup)
    expect(puts[puts.length - 1].status).toBe(200);
    expect(outs.vmid).toBe(locked.vmid);
    expect(v.cluster.vms.get(outs.vmid).config.current.cores).toBe("3");
    expect(since(from).filter((e) => e.method === "DELETE")).toEqual([]);
    await life.delete(id, outs);
  });

  test("a lock that never clears: the retry is bounded and the error names the VM, the lock and what to do", async () => {
    const { id, outs } = await life.create(await checked({ started: false }));
    v.cluster.vms.get(outs.vmid).config.current.lock = "backup";
    const ctx = vmContext();
    const from = v.s.sim.requestLog.length;
    const policy = { maxAttempts: 3, budgetMs: 60_000, otherAttempts: 1, baseDelayMs: 10, maxDelayMs: 20 };
    const err = await retryConvergent(ctx, `updating VM ${outs.vmid}`, () => ctx.api.qemu.updateConfigSync("pve1", outs.vmid, { cores: 2 }, { noRetry: true }), policy).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(since(from).filter((e) => e.method === "PUT").map((e) => e.status)).toEqual([500, 500, 500]);
    expect(err?.message).toMatch(new RegExp(`^updating VM ${outs.vmid}: PUT /nodes/pve1/qemu/${outs.vmid}/config failed: VM is locked \\(backup\\)`));
    expect(err?.message).toMatch(/still locked after 3 attempts/);
    expect(err?.message).toMatch(/wait for it to finish/);
    delete v.cluster.vms.get(outs.vmid).config.current.lock;
    await life.delete(id, outs as VmCloneState);
  });
});
