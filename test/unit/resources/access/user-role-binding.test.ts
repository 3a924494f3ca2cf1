import { userRoleBindingLifecycle as lc, parseBindingId, type UserRoleBindingState } from "../../../../provider/resources/user-role-binding";
import { checkAndCreate, checkAndDiff, errorOf, replaceLikeEngine, startTestSim, type TestSim } from "./sim-helpers";

let s: TestSim;
const entries = (ugid: string, path: string) =>
  s.sim.access
    .aclEntries()
    .filter((e) => e.ugid === ugid && e.path === path)
    .map((e) => `${e.roleid}:${e.propagate}`);

beforeAll(async () => {
  s = await startTestSim();
  s.sim.access.addUser({ userid: "alice@pve" });
  s.sim.access.addUser({ userid: "bob@pve" });
  s.sim.access.requireUser("alice@pve").tokens.set("ci", { tokenid: "ci", privsep: 1, secret: "11111111-2222-4333-8444-555555555555" });
  s.sim.access.groups.set("ops", { groupid: "ops" });
  s.sim.pools.create("fleet");
});
afterAll(() => s.stop());

describe("UserRoleBinding", () => {
  let state: UserRoleBindingState;

  it("grants roles on a normalised path and uses an import-friendly id", async () => {
    const { id, outs } = await checkAndCreate(lc, { path: "pool//fleet/", user: "alice@pve", roles: ["PVEVMAdmin", "PVEPoolUser"] });
    expect(id).toBe("/pool/fleet|user:alice@pve");
    expect(outs).toMatchObject({ path: "/pool/fleet", roles: ["PVEPoolUser", "PVEVMAdmin"], propagate: true, preexistingRoles: [] });
    expect(entries("alice@pve", "/pool/fleet")).toEqual(["PVEPoolUser:1", "PVEVMAdmin:1"]);
    state = outs;
  });

  it("changes roles in place, removing only those it dropped", async () => {
    const { inputs, diff } = await checkAndDiff(lc, "/pool/fleet|user:alice@pve", state, { path: "/pool/fleet", user: "alice@pve", roles: ["PVEVMAdmin", "PVEDatastoreUser"] });
    expect(diff).toMatchObject({ changes: true, replaces: [] });
    const { outs } = await lc.update("/pool/fleet|user:alice@pve", state, inputs);
    expect(entries("alice@pve", "/pool/fleet")).toEqual(["PVEDatastoreUser:1", "PVEVMAdmin:1"]);
    state = outs;
  });

  it("replaces on a change of principal, path or propagation (deleting first on the same target)", async () => {
    const d1 = await checkAndDiff(lc, "x", state, { path: "/pool/fleet", user: "bob@pve", roles: state.roles });
    expect(d1.diff.replaces).toEqual(["user"]);
    const d2 = await checkAndDiff(lc, "x", state, { path: "/pool/fleet", user: "alice@pve", roles: state.roles, propagate: false });
    expect(d2.diff).toMatchObject({ replaces: ["propagate"], deleteBeforeReplace: true });
    const d3 = await checkAndDiff(lc, "x", state, { path: "/vms/100", user: "alice@pve", roles: state.roles });
    expect(d3.diff.replaces).toEqual(["path"]);
    expect(d3.diff.deleteBeforeReplace).toBeUndefined();
  });

  it("reports a role removed out of band as drift and grants it again", async () => {
    s.sim.access.removeAcl("/pool/fleet", "user", "alice@pve", "PVEDatastoreUser");
    const read = await lc.read("/pool/fleet|user:alice@pve", state);
    expect(read.inputs).toMatchObject({ roles: ["PVEVMAdmin"] });
    const { inputs, diff } = await checkAndDiff(lc, "/pool/fleet|user:alice@pve", read.props as UserRoleBindingState, { path: "/pool/fleet", user: "alice@pve", roles: ["PVEVMAdmin", "PVEDatastoreUser"] });
    expect(diff.changes).toBe(true);
    await lc.update("/pool/fleet|user:alice@pve", read.props as UserRoleBindingState, inputs);
    expect(entries("alice@pve", "/pool/fleet")).toEqual(["PVEDatastoreUser:1", "PVEVMAdmin:1"]);
  });

  it("imports all roles of the principal on the path, or only those listed in the id", async () => {
    const all = await lc.read("/pool/fleet|user:alice@pve");
    expect(all.inputs).toEqual({ path: "/pool/fleet", user: "alice@pve", roles: ["PVEDatastoreUser", "PVEVMAdmin"], propagate: true });
    const { diff } = await checkAndDiff(lc, all.id!, all.props as UserRoleBindingState, { path: "/pool/fleet", user: "alice@pve", roles: ["PVEVMAdmin", "PVEDatastoreUser"] });
    expect(diff.changes).toBe(false);
    const some = await lc.read("/pool/fleet|user:alice@pve|PVEVMAdmin");
    expect(some.inputs).toMatchObject({ roles: ["PVEVMAdmin"] });
    expect((await lc.read("/vms/100|user:alice@pve")).id).toBe("");
    expect(() => parseBindingId("/pool/fleet")).toThrow(/expected '<path>\|<user\|token\|group>:<principal>/);
  });

  it("refuses a role someone else granted unless adopt: true, granting nothing", async () => {
    s.sim.access.setAcl("/storage/local-lvm", "user", "bob@pve", "PVEDatastoreUser", 1); // a person's grant
    const msg = await errorOf(checkAndCreate(lc, { path: "/storage/local-lvm", user: "bob@pve", roles: ["PVEDatastoreUser", "PVEAuditor"] }));
    expect(msg).toContain("roles: user 'bob@pve' on '/storage/local-lvm' already has 'PVEDatastoreUser', granted outside this binding");
    expect(msg).toContain("set adopt: true");
    expect(entries("bob@pve", "/storage/local-lvm")).toEqual(["PVEDatastoreUser:1"]);
  });

  it("with adopt, never removes a role someone else granted, and refuses to flip its propagate flag", async () => {
    const { outs } = await checkAndCreate(lc, { path: "/storage/local-lvm", user: "bob@pve", roles: ["PVEDatastoreUser", "PVEAuditor"], adopt: true });
    expect(outs.preexistingRoles).toEqual(["PVEDatastoreUser"]);
    expect(entries("bob@pve", "/storage/local-lvm")).toEqual(["PVEAuditor:1", "PVEDatastoreUser:1"]);
    await lc.delete("/storage/local-lvm|user:bob@pve", outs);
    expect(entries("bob@pve", "/storage/local-lvm")).toEqual(["PVEDatastoreUser:1"]);
    const msg = await errorOf(checkAndCreate(lc, { path: "/storage/local-lvm", user: "bob@pve", roles: ["PVEDatastoreUser"], propagate: false, adopt: true }));
    expect(msg).toContain("'PVEDatastoreUser' with propagate=true");
    expect(entries("bob@pve", "/storage/local-lvm")).toEqual(["PVEDatastoreUser:1"]);
  });

  it("refuses a second binding of the same (path, principal, role), even when both are created in parallel", async () => {
    const one = { path: "/vms/200", group: "ops", roles: ["PVEVMUser"] };
    const results = await Promise.allSettled([checkAndCreate(lc, one), checkAndCreate(lc, { ...one, roles: ["PVEVMUser", "PVEAuditor"] })]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0].reason.message).toContain("'PVEVMUser' for group 'ops' on '/vms/200' is already granted by another UserRoleBinding of this program");
    expect(entries("ops", "/vms/200")).toEqual(won[0] === results[0] ? ["PVEVMUser:1"] : ["PVEAuditor:1", "PVEVMUser:1"]);
    // adopt does not make the overlap acceptable: the grant is this program's own
    expect(await errorOf(checkAndCreate(lc, { ...one, adopt: true }))).toContain("already granted by another UserRoleBinding of this program");
    const winner = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof checkAndCreate<any, UserRoleBindingState>>>>).value;
    await lc.delete(winner.id, winner.outs);
    expect(entries("ops", "/vms/200")).toEqual([]);
    // once the first binding is gone, the grant can be declared again
    const again = await checkAndCreate(lc, one);
    expect(entries("ops", "/vms/200")).toEqual(["PVEVMUser:1"]);
    await lc.delete(again.id, again.outs);
  });

  it("an update adding a role someone else granted fails without adopt; with adopt the role is adopted and kept on delete", async () => {
    const { id, outs } = await checkAndCreate(lc, { path: "/vms/201", user: "bob@pve", roles: ["PVEVMUser"] });
    s.sim.access.setAcl("/vms/201", "user", "bob@pve", "PVEAuditor", 1);
    const add = { path: "/vms/201", user: "bob@pve", roles: ["PVEVMUser", "PVEAuditor"] };
    const { inputs } = await checkAndDiff(lc, id, outs, add);
    expect(await errorOf(lc.update(id, outs, inputs))).toContain("already has 'PVEAuditor', granted outside this binding");
    const adopted = await checkAndDiff(lc, id, outs, { ...add, adopt: true });
    expect(adopted.diff).toMatchObject({ changes: true, replaces: [] });
    const { outs: next } = await lc.update(id, outs, adopted.inputs);
    expect(next.preexistingRoles).toEqual(["PVEAuditor"]);
    await lc.delete(id, next);
    expect(entries("bob@pve", "/vms/201")).toEqual(["PVEAuditor:1"]);
  });

  it("destroyOnDelete: true revokes the adopted roles too; destroyOnDelete: false revokes nothing", async () => {
    s.sim.access.setAcl("/vms/202", "user", "bob@pve", "PVEAuditor", 1);
    const all = await checkAndCreate(lc, { path: "/vms/202", user: "bob@pve", roles: ["PVEAuditor", "PVEVMUser"], adopt: true, destroyOnDelete: true });
    expect(all.outs.preexistingRoles).toEqual(["PVEAuditor"]);
    await lc.delete(all.id, all.outs);
    expect(entries("bob@pve", "/vms/202")).toEqual([]);
    const none = await checkAndCreate(lc, { path: "/vms/202", user: "bob@pve", roles: ["PVEVMUser"], destroyOnDelete: false });
    await lc.delete(none.id, none.outs);
    expect(entries("bob@pve", "/vms/202")).toEqual(["PVEVMUser:1"]);
  });

  it("replaces for real on a propagate change (revoke first, then grant) and on a principal or path change (grant first)", async () => {
    const first = await checkAndCreate(lc, { path: "/vms/300", user: "alice@pve", roles: ["PVEVMUser"] });
    const flipped = await replaceLikeEngine(lc, first.id, first.outs, { path: "/vms/300", user: "alice@pve", roles: ["PVEVMUser"], propagate: false });
    expect(flipped.order).toEqual(["delete old", "create new"]);
    expect(entries("alice@pve", "/vms/300")).toEqual(["PVEVMUser:0"]);

    const moved = await replaceLikeEngine(lc, flipped.id, flipped.outs, { path: "/vms/300", user: "bob@pve", roles: ["PVEVMUser"], propagate: false });
    expect(moved.order).toEqual(["create new", "delete old"]);
    expect(entries("alice@pve", "/vms/300")).toEqual([]);
    expect(entries("bob@pve", "/vms/300")).toEqual(["PVEVMUser:0"]);

    const rehomed = await replaceLikeEngine(lc, moved.id, moved.outs, { path: "/vms/301", user: "bob@pve", roles: ["PVEVMUser"], propagate: false });
    expect(rehomed.order).toEqual(["create new", "delete old"]);
    expect(entries("bob@pve", "/vms/300")).toEqual([]);
    expect(entries("bob@pve", "/vms/301")).toEqual(["PVEVMUser:0"]);
    await lc.delete(rehomed.id, rehomed.outs);
  });

  it("deletes exactly its own roles and leaves the principal's others on the same path", async () => {
    s.sim.access.setAcl("/pool/fleet", "user", "alice@pve", "PVEAuditor", 1);
    const current = (await lc.read("/pool/fleet|user:alice@pve", state)).props as UserRoleBindingState;
    await lc.delete("/pool/fleet|user:alice@pve", current);
    expect(entries("alice@pve", "/pool/fleet")).toEqual(["PVEAuditor:1"]);
    await expect(lc.delete("/pool/fleet|user:alice@pve", current)).resolves.toBeUndefined();
  });

  it("binds tokens and groups, with and without propagation", async () => {
    const t = await checkAndCreate(lc, { path: "/nodes/pve1", token: "alice@pve!ci", roles: ["PVEAuditor"], propagate: false });
    expect(t.id).toBe("/nodes/pve1|token:alice@pve!ci");
    expect(s.sim.access.aclEntries()).toContainEqual({ path: "/nodes/pve1", type: "token", ugid: "alice@pve!ci", roleid: "PVEAuditor", propagate: 0 });
    const g = await checkAndCreate(lc, { path: "/sdn/zones/localnetwork", group: "ops", roles: ["PVESDNAdmin"] });
    expect(g.id).toBe("/sdn/zones/localnetwork|group:ops");
    expect((await lc.read(t.id)).inputs).toEqual({ path: "/nodes/pve1", token: "alice@pve!ci", roles: ["PVEAuditor"], propagate: false });
  });

  it("rejects a custom role that does not exist at create, naming it, and grants nothing", async () => {
    const msg = await errorOf(checkAndCreate(lc, { path: "/vms/100", user: "alice@pve", roles: ["PVEVMUser", "FleetOperator"] }));
    expect(msg).toContain("'FleetOperator' does not exist");
    expect(msg).toContain("Role resource");
    expect(entries("alice@pve", "/vms/100")).toEqual([]);
    s.sim.access.roles.set("FleetOperator", { privs: new Set(["VM.Audit"]), special: false });
    const { outs } = await checkAndCreate(lc, { path: "/vms/100", user: "alice@pve", roles: ["PVEVMUser", "FleetOperator"] });
    expect(outs.roles).toEqual(["FleetOperator", "PVEVMUser"]);
  });
});
