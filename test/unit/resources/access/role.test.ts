import { roleLifecycle as roles, type RoleState } from "../../../../provider/resources/role";
import { checkAndCreate, checkAndDiff, errorOf, replaceLikeEngine, startTestSim, type TestSim } from "./sim-helpers";

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

  it("replaces for real on a roleid change: creates the new role first, then deletes the old one", async () => {
    const { id, outs } = await checkAndCreate(roles, { roleid: "Runner", privileges: ["VM.Audit", "VM.Clone"] });
    const r = await replaceLikeEngine(roles, id, outs, { roleid: "Runner2", privileges: ["VM.Audit", "VM.Clone"] });
    expect(r.order).toEqual(["create new", "delete old"]);
    expect(s.sim.access.roles.has("Runner")).toBe(false);
    expect([...s.sim.access.roles.get("Runner2")!.privs].sort()).toEqual(["VM.Audit", "VM.Clone"]);
    await roles.delete(r.id, r.outs);
  });

  it("rejects a role that already exists, saying to set adopt: true, and changes nothing", async () => {
    s.sim.access.roles.set("Existing", { privs: new Set(["VM.Audit"]), special: false });
    const msg = await errorOf(checkAndCreate(roles, { roleid: "Existing", privileges: ["Sys.Audit"] }));
    expect(msg).toContain("role 'Existing' already exists");
    expect(msg).toContain("set adopt: true on the Role");
    expect([...s.sim.access.roles.get("Existing")!.privs]).toEqual(["VM.Audit"]);
  });

  describe("adopt", () => {
    let adopted: RoleState;
    it("adopts an existing role, giving it the declared privileges", async () => {
      s.sim.access.roles.set("Legacy", { privs: new Set(["VM.Audit"]), special: false });
      const { id, outs } = await checkAndCreate(roles, { roleid: "Legacy", adopt: true, privileges: ["VM.Audit", "VM.Console"] });
      expect(id).toBe("Legacy");
      expect([...s.sim.access.roles.get("Legacy")!.privs].sort()).toEqual(["VM.Audit", "VM.Console"]);
      expect(outs).toMatchObject({ adopt: true, appliedPrivileges: ["VM.Audit", "VM.Console"] });
      adopted = outs;
    });

    it("shows no change for the same program before and after a refresh; updates in place", async () => {
      const same = { roleid: "Legacy", adopt: true, privileges: ["VM.Console", "VM.Audit"] };
      expect((await checkAndDiff(roles, "Legacy", adopted, same)).diff.changes).toBe(false);
      const read = await roles.read("Legacy", adopted);
      expect((await checkAndDiff(roles, "Legacy", read.props as RoleState, same)).diff.changes).toBe(false);
      const { inputs, diff } = await checkAndDiff(roles, "Legacy", read.props as RoleState, { ...same, privileges: ["VM.Audit"] });
      expect(diff).toMatchObject({ changes: true, replaces: [] });
      adopted = (await roles.update("Legacy", read.props as RoleState, inputs)).outs;
      expect([...s.sim.access.roles.get("Legacy")!.privs]).toEqual(["VM.Audit"]);
    });

    it("releases an adopted role on delete; destroyOnDelete: true deletes it", async () => {
      await roles.delete("Legacy", adopted);
      expect(s.sim.access.roles.has("Legacy")).toBe(true);
      const { inputs, diff } = await checkAndDiff(roles, "Legacy", adopted, { roleid: "Legacy", adopt: true, destroyOnDelete: true, privileges: ["VM.Audit"] });
      expect(diff).toMatchObject({ changes: true, replaces: [] });
      const { outs } = await roles.update("Legacy", adopted, inputs);
      await roles.delete("Legacy", outs);
      expect(s.sim.access.roles.has("Legacy")).toBe(false);
    });

    it("fails clearly when there is no role to adopt, or its new privileges do not exist, changing nothing", async () => {
      // check() looks first, so a preview fails as the create would (issue 16)
      expect(await errorOf(checkAndCreate(roles, { roleid: "Ghost", adopt: true, privileges: ["VM.Audit"] }))).toContain(
        `"property":"roleid","reason":"cannot adopt role 'Ghost': it does not exist on the cluster. Fix roleid, or remove adopt: true to have the Role create it."`,
      );
      expect(await errorOf(roles.create({ roleid: "Ghost", adopt: true, privileges: ["VM.Audit"] }))).toBe(
        "cannot adopt role 'Ghost': it does not exist on the cluster. Fix roleid, or remove adopt: true to have the Role create it.",
      );
      expect(s.sim.access.roles.has("Ghost")).toBe(false);
      s.sim.access.roles.set("Old8", { privs: new Set(["VM.Audit"]), special: false });
      expect(await errorOf(checkAndCreate(roles, { roleid: "Old8", adopt: true, privileges: ["VM.Monitor"] }))).toContain("'VM.Monitor' does not exist on this server");
      expect([...s.sim.access.roles.get("Old8")!.privs]).toEqual(["VM.Audit"]);
    });
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
