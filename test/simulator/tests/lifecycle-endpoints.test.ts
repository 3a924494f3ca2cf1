// The lifecycle endpoints other PVE clients call (QEMU API2/Qemu.pm vm_reboot, vm_reset,
// vm_suspend, vm_resume; QemuServer.pm _do_vm_stop): refused synchronously on a stopped VM;
// a reboot is a shutdown and a start (pending changes applied, cloud-init read again); a reset
// keeps the guest's boot-time view; suspend pauses (or saves to disk), resume undoes it; a stop
// of a stopped VM is OK even when the VM is locked.
import { Api, createVm, startApi } from "./cluster-helpers";

let api: Api;
beforeAll(async () => {
  api = await startApi({ seed: 17 });
  await createVm(api, 100, { ipconfig0: "ip=dhcp" });
});
afterAll(() => api.stop());

const status = async () => (await api.ok("GET", "/nodes/pve1/qemu/100/status/current")) as { status: string; qmpstatus: string };
const v4 = async () =>
  (await api.ok("GET", "/nodes/pve1/qemu/100/agent/network-get-interfaces")).result[1]["ip-addresses"].filter((a: any) => a["ip-address-type"] === "ipv4").map((a: any) => a["ip-address"]);

test("a stopped VM: reboot, reset, suspend and resume are refused with `VM 100 not running`", async () => {
  for (const action of ["reboot", "reset", "suspend", "resume"]) {
    const r = await api.req("POST", `/nodes/pve1/qemu/100/status/${action}`);
    expect([action, r.status, r.reason]).toEqual([action, 500, "VM 100 not running"]);
  }
});

test("stop of a stopped VM succeeds without looking at the lock", async () => {
  await api.admin("PUT", "/vms/100/config", { set: { lock: "backup" } });
  expect((await api.task("POST", "/nodes/pve1/qemu/100/status/stop")).exitstatus).toBe("OK");
  expect((await api.task("POST", "/nodes/pve1/qemu/100/status/start")).exitstatus).toBe("VM is locked (backup)");
  await api.admin("PUT", "/vms/100/config", { delete: ["lock"] });
});

test("reboot: shutdown and start, so a cloud-init change made while running reaches the guest; reset does not", async () => {
  expect((await api.task("POST", "/nodes/pve1/qemu/100/status/start")).exitstatus).toBe("OK");
  await api.admin("POST", "/vms/100/power", { action: "start", agentReady: true });
  expect(await v4()).toEqual(["10.16.0.100"]);
  await api.ok("PUT", "/nodes/pve1/qemu/100/config", { ipconfig0: "ip=192.0.2.7/24" });
  const reset = await api.task("POST", "/nodes/pve1/qemu/100/status/reset");
  expect([reset.type, reset.exitstatus]).toEqual(["qmreset", "OK"]);
  // same QEMU process, same cloud-init drive: the guest keeps its boot-time address
  expect((await api.admin("GET", "/vms/100")).guest.nics[0]).toMatchObject({ name: "eth0", ipv4: "dhcp" });
  const reboot = await api.task("POST", "/nodes/pve1/qemu/100/status/reboot");
  expect([reboot.type, reboot.exitstatus]).toEqual(["qmreboot", "OK"]);
  expect((await status()).status).toBe("running");
  expect((await api.admin("GET", "/vms/100")).guest.nics[0].ipv4).toEqual({ address: "192.0.2.7", prefix: 24 });
});

test("suspend pauses the guest (qmpstatus paused, no agent, no shutdown); resume continues it", async () => {
  const pause = await api.task("POST", "/nodes/pve1/qemu/100/status/suspend");
  expect([pause.type, pause.exitstatus]).toEqual(["qmpause", "OK"]);
  expect(await status()).toMatchObject({ status: "running", qmpstatus: "paused" });
  const shutdown = await api.req("POST", "/nodes/pve1/qemu/100/status/shutdown");
  expect([shutdown.status, shutdown.reason]).toEqual([500, "VM is paused - cannot shutdown"]);
  const agent = await api.req("GET", "/nodes/pve1/qemu/100/agent/network-get-interfaces");
  expect(agent.reason).toBe("QEMU guest agent is not running");
  const resume = await api.task("POST", "/nodes/pve1/qemu/100/status/resume");
  expect([resume.type, resume.exitstatus]).toEqual(["qmresume", "OK"]);
  expect((await status()).qmpstatus).toBe("running");
});

test("suspend to disk: lock suspended, VM off; resume starts it and drops the lock", async () => {
  const save = await api.task("POST", "/nodes/pve1/qemu/100/status/suspend", { todisk: 1 });
  expect([save.type, save.exitstatus]).toEqual(["qmsuspend", "OK"]);
  expect((await status()).status).toBe("stopped");
  expect((await api.ok("GET", "/nodes/pve1/qemu/100/config")).lock).toBe("suspended");
  const resume = await api.task("POST", "/nodes/pve1/qemu/100/status/resume");
  expect(resume.exitstatus).toBe("OK");
  expect((await status()).status).toBe("running");
  expect((await api.ok("GET", "/nodes/pve1/qemu/100/config")).lock).toBeUndefined();
  expect((await api.task("POST", "/nodes/pve1/qemu/100/status/stop")).exitstatus).toBe("OK");
});

test("/cluster/resources shows a start only from pvestatd's next broadcast; status/current at once", async () => {
  const lagged = await startApi({ seed: 18, virtualTime: { startMs: Date.UTC(2026, 0, 5, 9, 0, 0) } });
  try {
    await createVm(lagged, 100);
    const clock = lagged.s.sim.virtualClock();
    const listed = async () => (await lagged.ok("GET", "/cluster/resources", { type: "vm" })).find((r: any) => r.vmid === 100).status;
    // the virtual clock starts on a 10 s boundary: no broadcast since the VM appeared, `unknown`
    expect(await listed()).toBe("unknown");
    await clock.advance(10_000);
    expect(await listed()).toBe("stopped");
    // the start (fork + 1 s) ends well inside this cycle
    expect((await lagged.task("POST", "/nodes/pve1/qemu/100/status/start")).exitstatus).toBe("OK");
    expect(lagged.s.sim.now() % 10_000).toBeLessThan(5_000);
    expect((await lagged.ok("GET", "/nodes/pve1/qemu/100/status/current")).status).toBe("running");
    expect(await listed()).toBe("stopped");
    await clock.advance(10_000);
    expect(await listed()).toBe("running");
  } finally {
    await lagged.stop();
  }
});
