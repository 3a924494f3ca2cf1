import { poolLifecycle as lc, type PoolState } from "../../../../provider/resources/pool";
import { checkAndCreate, checkAndDiff, errorOf, replaceLikeEngine, startTestSim, type TestSim } from "./sim-helpers";

let s: TestSim;

beforeAll(async () => {
  s = await startTestSim();
  const root = s.clientFor(s.rootToken);
  for (const vmid of [100, 101, 102, 103, 110, 111, 112, 113]) await root.qemu.createAndWait("pve1", vmid, { name: `vm${vmid}`, memory: 512 });
});
afterAll(() => s.stop());

describe("Pool", () => {
  it("creates the pool with its declared VMs and storage, and reports every member", async () => {
    const { id, outs } = await checkAndCreate(lc, { poolid: "fleet", comment: "CI fleet", vms: [101, 100, 100], storage: ["local-lvm"] });
    expect(id).toBe("fleet");
    expect(outs).toMatchObject({ poolid: "fleet", comment: "CI fleet", vms: [100, 101], storage: ["local-lvm"], members: { vms: [100, 101], storage: ["local-lvm"] } });
    expect(s.sim.pools.get("fleet")).toMatchObject({ vms: new Set([100, 101]), storage: new Set(["local-lvm"]) });
  });

  it("does not see members that joined otherwise as drift, but reports them in members", async () => {
    s.sim.pools.addVm("fleet", 102); // a clone created with pool=fleet
    const read = await lc.read("fleet", { poolid: "fleet", comment: "CI fleet", vms: [100, 101], storage: ["local-lvm"], members: { vms: [100, 101], storage: ["local-lvm"] } });
    expect(read.props?.members).toEqual({ vms: [100, 101, 102], storage: ["local-lvm"] });
    expect(read.inputs).toEqual({ poolid: "fleet", comment: "CI fleet", vms: [100, 101], storage: ["local-lvm"] });
    const { diff } = await checkAndDiff(lc, "fleet", read.props as PoolState, { poolid: "fleet", comment: "CI fleet", vms: [100, 101], storage: ["local-lvm"] });
    expect(diff.changes).toBe(false);
  });

  it("adds and removes declared members in place, never touching the others", async () => {
    const olds = (await lc.read("fleet", { poolid: "fleet", vms: [100, 101], storage: ["local-lvm"], comment: "CI fleet", members: { vms: [], storage: [] } })).props as PoolState;
    const { inputs, diff } = await checkAndDiff(lc, "fleet", olds, { poolid: "fleet", comment: "CI fleet", vms: [100, 103], storage: [] });
    expect(diff).toMatchObject({ changes: true, replaces: [] });
    const { outs } = await lc.update("fleet", olds, inputs);
    expect(outs.members).toEqual({ vms: [100, 102, 103], storage: [] });
    expect(outs.vms).toEqual([100, 103]);
  });

  it("detects a changed comment and a declared member taken out of band, and puts them back", async () => {
    s.sim.pools.require("fleet").comment = "changed by hand";
    s.sim.pools.removeVm(103);
    const olds: PoolState = { poolid: "fleet", comment: "CI fleet", vms: [100, 103], storage: [], members: { vms: [100, 102, 103], storage: [] } };
    const read = await lc.read("fleet", olds);
    expect(read.inputs).toMatchObject({ comment: "changed by hand", vms: [100] });
    const refreshed = read.props as PoolState;
    const { inputs, diff } = await checkAndDiff(lc, "fleet", refreshed, { poolid: "fleet", comment: "CI fleet", vms: [100, 103], storage: [] });
    expect(diff.changes).toBe(true);
    const { outs } = await lc.update("fleet", refreshed, inputs);
    expect(outs).toMatchObject({ comment: "CI fleet", members: { vms: [100, 102, 103], storage: [] } });
    expect(s.sim.pools.get("fleet")?.comment).toBe("CI fleet");
  });

  it("imports by pool id with inputs that give an empty diff for the declared members", async () => {
    const imported = await lc.read("fleet");
    expect(imported.id).toBe("fleet");
    expect(imported.inputs).toEqual({ poolid: "fleet", comment: "CI fleet" });
    const { diff } = await checkAndDiff(lc, "fleet", imported.props as PoolState, { poolid: "fleet", comment: "CI fleet", vms: [100, 103] });
    expect(diff.changes).toBe(false);
  });

  it("replaces (delete first) when the pool id changes", async () => {
    const olds = (await lc.read("fleet")).props as PoolState;
    const { diff } = await checkAndDiff(lc, "fleet", olds, { poolid: "fleet2", comment: "CI fleet" });
    expect(diff).toMatchObject({ changes: true, replaces: ["poolid"], deleteBeforeReplace: true });
  });

  it("refuses to delete a pool holding members it did not place, naming them, then removes them when told to", async () => {
    const state: PoolState = { poolid: "fleet", comment: "CI fleet", vms: [100, 103], storage: [], members: { vms: [], storage: [] } };
    const msg = await errorOf(lc.delete("fleet", state));
    expect(msg).toContain("pool 'fleet' is not empty");
    expect(msg).toContain("VM 102");
    expect(msg).not.toContain("103");
    expect(msg).toContain("removeMembersOnDelete");
    expect(s.sim.pools.exists("fleet")).toBe(true);
    await lc.delete("fleet", { ...state, removeMembersOnDelete: true });
    expect(s.sim.pools.exists("fleet")).toBe(false);
    expect(s.sim.pools.poolOfVm(102)).toBeUndefined();
    // The VMs themselves are kept.
    expect((await s.clientFor(s.rootToken).qemu.list("pve1")).map((v) => v.vmid)).toEqual(expect.arrayContaining([100, 101, 102, 103]));
  });

  it("deletes a pool holding only its declared members, and treats an already-gone pool as deleted", async () => {
    const { outs } = await checkAndCreate(lc, { poolid: "tmpl", vms: [100], storage: ["local"] });
    await lc.delete("tmpl", outs);
    expect(s.sim.pools.exists("tmpl")).toBe(false);
    await expect(lc.delete("tmpl", outs)).resolves.toBeUndefined();
    expect((await lc.read("tmpl", outs)).id).toBe("");
  });

  it("names the other pool when a declared VM already belongs to one, and leaves nothing behind", async () => {
    await checkAndCreate(lc, { poolid: "other", vms: [101] });
    const msg = await errorOf(checkAndCreate(lc, { poolid: "third", vms: [101] }));
    expect(msg).toContain("belongs already to pool 'other'");
    expect(msg).toContain("allowMove");
    expect(s.sim.pools.exists("third")).toBe(false);
    const { outs } = await checkAndCreate(lc, { poolid: "third", vms: [101], allowMove: true });
    expect(outs.members.vms).toEqual([101]);
    expect(s.sim.pools.poolOfVm(101)).toBe("third");
  });

  it("supports nested pools", async () => {
    await checkAndCreate(lc, { poolid: "team" });
    const { id, outs } = await checkAndCreate(lc, { poolid: "team/ci", comment: "nested" });
    expect(id).toBe("team/ci");
    expect((await lc.read(id, outs)).inputs).toEqual({ poolid: "team/ci", comment: "nested" });
  });

  it("rejects a pool that already exists, saying to set adopt: true, and leaves it as it is", async () => {
    s.sim.pools.require("team").comment = "by hand";
    const msg = await errorOf(checkAndCreate(lc, { poolid: "team", comment: "mine" }));
    expect(msg).toContain("pool 'team' already exists");
    expect(msg).toContain("set adopt: true on the Pool");
    expect(msg).toContain("choose another poolid");
    expect(s.sim.pools.get("team")?.comment).toBe("by hand");
  });

  it("replaces for real on a poolid change: deletes the old pool first, then creates the new one with the members", async () => {
    const { id, outs } = await checkAndCreate(lc, { poolid: "blue", comment: "c", vms: [112] });
    const r = await replaceLikeEngine(lc, id, outs, { poolid: "green", comment: "c", vms: [112] });
    // A VM is in at most one pool, so the old pool must let it go before the new one takes it.
    expect(r.order).toEqual(["delete old", "create new"]);
    expect(r.id).toBe("green");
    expect(s.sim.pools.exists("blue")).toBe(false);
    expect(s.sim.pools.poolOfVm(112)).toBe("green");
    expect(r.outs).toMatchObject({ poolid: "green", vms: [112], members: { vms: [112], storage: [] } });
    await lc.delete(r.id, r.outs);
    expect(s.sim.pools.poolOfVm(112)).toBeUndefined();
  });
});

describe("Pool adopt", () => {
  beforeAll(() => {
    const legacy = s.sim.pools.create("legacy", "made by hand");
    legacy.storage.add("local");
    s.sim.pools.addVm("legacy", 110);
  });

  let state: PoolState;
  it("adopts an existing pool: declared members added, the undeclared comment and members left alone", async () => {
    const requests = s.requests();
    const { id, outs } = await checkAndCreate(lc, { poolid: "legacy", adopt: true, vms: [111] });
    expect(id).toBe("legacy");
    expect(outs).toMatchObject({ poolid: "legacy", adopt: true, vms: [111], comment: "made by hand", members: { vms: [110, 111], storage: ["local"] } });
    expect(s.sim.pools.get("legacy")).toMatchObject({ comment: "made by hand", vms: new Set([110, 111]), storage: new Set(["local"]) });
    expect(s.sim.requestLog.slice(requests).filter((r) => r.method === "POST")).toEqual([]); // nothing created
    state = outs;
  });

  it("shows no change for the same program, before and after a refresh, even when an undeclared setting drifts", async () => {
    const same = { poolid: "legacy", adopt: true, vms: [111] };
    expect((await checkAndDiff(lc, "legacy", state, same)).diff.changes).toBe(false);
    s.sim.pools.require("legacy").comment = "edited by hand"; // not declared: not managed
    const read = await lc.read("legacy", state);
    expect(read.props).toMatchObject({ comment: "edited by hand", adopt: true, vms: [111] });
    expect((await checkAndDiff(lc, "legacy", read.props as PoolState, same)).diff.changes).toBe(false);
    state = read.props as PoolState;
  });

  it("applies a newly declared comment and member in place, without touching the other members", async () => {
    const next = { poolid: "legacy", adopt: true, comment: "fleet", vms: [111, 113] };
    const { inputs, diff } = await checkAndDiff(lc, "legacy", state, next);
    expect(diff).toMatchObject({ changes: true, replaces: [] });
    const { outs } = await lc.update("legacy", state, inputs);
    expect(outs).toMatchObject({ comment: "fleet", vms: [111, 113], members: { vms: [110, 111, 113], storage: ["local"] } });
    expect(s.sim.pools.get("legacy")?.comment).toBe("fleet");
    // dropping adopt changes only what delete does: in place, no replacement
    expect((await checkAndDiff(lc, "legacy", outs, { poolid: "legacy", comment: "fleet", vms: [111, 113] })).diff).toMatchObject({ changes: true, replaces: [] });
    state = outs;
  });

  it("releases an adopted pool on delete: it stays in PVE with all its members", async () => {
    await lc.delete("legacy", state);
    expect(s.sim.pools.get("legacy")).toMatchObject({ comment: "fleet", vms: new Set([110, 111, 113]), storage: new Set(["local"]) });
  });

  it("deletes an adopted pool with destroyOnDelete: true (refusing, as usual, while it holds members it did not declare)", async () => {
    const { outs } = await checkAndCreate(lc, { poolid: "legacy", adopt: true, destroyOnDelete: true, vms: [111, 113] });
    const msg = await errorOf(lc.delete("legacy", outs));
    expect(msg).toContain("VM 110");
    expect(s.sim.pools.exists("legacy")).toBe(true);
    await lc.delete("legacy", { ...outs, removeMembersOnDelete: true });
    expect(s.sim.pools.exists("legacy")).toBe(false);
    expect(s.sim.pools.poolOfVm(110)).toBeUndefined();
  });

  it("fails clearly when there is no pool to adopt, creating nothing", async () => {
    // check() looks first, so a preview fails as the create would (issue 16)
    const msg = await errorOf(checkAndCreate(lc, { poolid: "nosuch", adopt: true, comment: "x" }));
    expect(msg).toContain(`"property":"poolid","reason":"cannot adopt pool 'nosuch': it does not exist on the cluster. Fix poolid, or remove adopt: true to have the Pool create it."`);
    expect(await errorOf(lc.create({ poolid: "nosuch", adopt: true, comment: "x" }))).toBe("cannot adopt pool 'nosuch': it does not exist on the cluster. Fix poolid, or remove adopt: true to have the Pool create it.");
    expect(s.sim.pools.exists("nosuch")).toBe(false);
  });

  it("a failed adoption leaves the pool as it was (comment put back, no member added)", async () => {
    s.sim.pools.create("old", "before");
    s.sim.pools.create("holder");
    s.sim.pools.addVm("holder", 113);
    const msg = await errorOf(checkAndCreate(lc, { poolid: "old", adopt: true, comment: "after", vms: [112, 113] }));
    expect(msg).toContain("belongs already to pool 'holder'");
    expect(msg).toContain("pool 'old' was not adopted; it was left as it was");
    expect(s.sim.pools.get("old")).toMatchObject({ comment: "before", vms: new Set() });
    expect(s.sim.pools.poolOfVm(113)).toBe("holder");
  });
});
