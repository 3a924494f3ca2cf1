import { roleLifecycle as roles, type RoleState } from "../../../../provider/resources/role";
import { checkAndCreate, checkAndDiff, errorOf, startTestSim, type TestSim } from "./sim-helpers";

/** kubermatic machine-controller's documented token privileges (written for PVE 8). */
const MACHINE_CONTROLLER = [
  "Datastore.AllocateSpace", "Pool.Allocate", "Pool.Audit", "VM.Allocate", "VM.Audit", "VM.Clone", "VM.Config.CDROM", "VM.Config.CPU",
  "VM.Config.Cloudinit", "VM.Config.Disk", "VM.Config.HWType", "VM.Config.Memory", "VM.Config.Network", "VM.Config.Options", "VM.Monitor",
  "Sys.Audit", "Sys.Console",
];

describe("Role on PVE 9", () => {
  let s: TestSim;
  beforeAll(async () => {
    s = await startTestSim({ pveVersion: "9.1" });
  });
  afterAll(() => s.stop());

  it("refuses VM.Monitor before creating anything, naming the privilege, the version and the way out", async () => {
    const msg = await errorOf(checkAndCreate(roles, { roleid: "MachineController", privileges: MACHINE_CONTROLLER }));
    expect(msg).toContain("'VM.Monitor' does not exist on this server (PVE 9.1.4)");
    expect(msg).toContain("VM.GuestAgent.Audit");
    expect(msg).toContain("translatePrivileges");
    expect(s.sim.access.roles.has("MachineController")).toBe(false);
  });

  let state: RoleState;
  it("with translatePrivileges applies VM.GuestAgent.Audit instead, and reports it", async () => {
    const { id, outs } = await checkAndCreate(roles, { roleid: "MachineController", privileges: MACHINE_CONTROLLER, translatePrivileges: true });
    expect(id).toBe("MachineController");
    expect(outs.privileges).toContain("VM.Monitor");
    expect(outs.appliedPrivileges).toContain("VM.GuestAgent.Audit");
    expect(outs.appliedPrivileges).not.toContain("VM.Monitor");
    expect(outs.pveVersion).toBe("9.1.4");
    expect([...s.sim.access.roles.get("MachineController")!.privs].sort()).toEqual(outs.appliedPrivileges);
    // The role grants what PVE 9 checks for the guest agent's network query.
    expect(s.sim.access.roles.get("MachineController")!.privs.has("VM.GuestAgent.Audit")).toBe(true);
    state = outs;
  });

  it("read keeps the declared (translated) list while the server matches, so there is no diff", async () => {
    const read = await roles.read("MachineController", state);
    expect(read.inputs).toEqual({ roleid: "MachineController", privileges: state.privileges, translatePrivileges: true });
    const { diff } = await checkAndDiff(roles, "MachineController", read.props as RoleState, { roleid: "MachineController", privileges: MACHINE_CONTROLLER, translatePrivileges: true });
    expect(diff.changes).toBe(false);
  });

  it("detects privileges changed out of band and restores them in place", async () => {
    s.sim.access.roles.set("MachineController", { privs: new Set(["VM.Audit"]), special: false });
    const read = await roles.read("MachineController", state);
    expect(read.inputs).toMatchObject({ privileges: ["VM.Audit"] });
    const { inputs, diff } = await checkAndDiff(roles, "MachineController", read.props as RoleState, { roleid: "MachineController", privileges: MACHINE_CONTROLLER, translatePrivileges: true });
    expect(diff).toMatchObject({ changes: true, replaces: [] });
    const { outs } = await roles.update("MachineController", read.props as RoleState, inputs);
    expect(outs.appliedPrivileges).toEqual(state.appliedPrivileges);
  });

  it("imports by role id with the server's privileges", async () => {
    const imported = await roles.read("MachineController");
    expect(imported.inputs).toEqual({ roleid: "MachineController", privileges: state.appliedPrivileges });
    const { diff } = await checkAndDiff(roles, "MachineController", imported.props as RoleState, { roleid: "MachineController", privileges: state.appliedPrivileges });
    expect(diff.changes).toBe(false);
  });

  it("replaces on a new roleid, deletes, and treats a gone role as deleted", async () => {
    const { diff } = await checkAndDiff(roles, "MachineController", state, { roleid: "MC2", privileges: ["VM.Audit"] });
    expect(diff.replaces).toEqual(["roleid"]);
    await roles.delete("MachineController", state);
    expect(s.sim.access.roles.has("MachineController")).toBe(false);
    await expect(roles.delete("MachineController", state)).resolves.toBeUndefined();
    expect((await roles.read("MachineController", state)).id).toBe("");
  });
});

describe("Role on PVE 8", () => {
  let s: TestSim;
  beforeAll(async () => {
    s = await startTestSim({ pveVersion: "8.4" });
  });
  afterAll(() => s.stop());

  it("creates the machine-controller list as documented (VM.Monitor exists on PVE 8)", async () => {
    const { outs } = await checkAndCreate(roles, { roleid: "MachineController", privileges: MACHINE_CONTROLLER });
    expect(outs.appliedPrivileges).toEqual([...MACHINE_CONTROLLER].sort());
    expect(outs.pveVersion).toBe("8.4.1");
  });

  it("refuses PVE 9-only privileges, naming them and the version", async () => {
    const msg = await errorOf(checkAndCreate(roles, { roleid: "Agent", privileges: ["VM.Audit", "VM.GuestAgent.Audit", "VM.Replicate"] }));
    expect(msg).toContain("'VM.GuestAgent.Audit' and 'VM.Replicate' do not exist on this server (PVE 8.4.1)");
    expect(msg).toContain("Replace VM.GuestAgent.Audit with VM.Monitor");
    expect(msg).toContain("Remove VM.Replicate");
    const { outs } = await checkAndCreate(roles, { roleid: "Agent", privileges: ["VM.Audit", "VM.GuestAgent.Audit"], translatePrivileges: true });
    expect(outs.appliedPrivileges).toEqual(["VM.Audit", "VM.Monitor"]);
  });
});
