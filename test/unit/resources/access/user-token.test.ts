import { userLifecycle as users, type UserState } from "../../../../provider/resources/user";
import { apiTokenLifecycle as tokens, type ApiTokenState } from "../../../../provider/resources/api-token";
import { checkAndCreate, checkAndDiff, errorOf, replaceLikeEngine, startTestSim, type TestSim } from "./sim-helpers";

let s: TestSim;
const PASSWORD = "first-Secret-pw1";
const NEW_PASSWORD = "second-Secret-pw2";

beforeAll(async () => {
  s = await startTestSim();
  s.sim.access.groups.set("ci", { groupid: "ci" });
  s.sim.access.groups.set("ops", { groupid: "ops" });
});
afterAll(() => s.stop());
beforeEach(() => s.useRootToken());

describe("User", () => {
  let state: UserState;

  it("creates a pve user with its password, which then logs in", async () => {
    const { id, outs } = await checkAndCreate(users, {
      userid: "fleet@pve",
      email: "ci@example.com",
      firstname: "Fleet",
      groups: ["ops", "ci"],
      comment: "GitLab runners",
      password: PASSWORD,
    });
    expect(id).toBe("fleet@pve");
    expect(outs).toEqual({
      userid: "fleet@pve",
      enable: true,
      expire: 0,
      email: "ci@example.com",
      firstname: "Fleet",
      groups: ["ci", "ops"],
      comment: "GitLab runners",
      password: PASSWORD,
    });
    expect(s.sim.access.checkPassword("fleet@pve", PASSWORD)).toBe(true);
    state = outs;
  });

  it("updates fields in place and clears removed ones", async () => {
    const { inputs, diff } = await checkAndDiff(users, "fleet@pve", state, { userid: "fleet@pve", email: "fleet@example.com", groups: ["ci"], password: PASSWORD });
    expect(diff).toMatchObject({ changes: true, replaces: [] });
    const { outs } = await users.update("fleet@pve", state, inputs);
    expect(outs).toEqual({ userid: "fleet@pve", enable: true, expire: 0, email: "fleet@example.com", groups: ["ci"], password: PASSWORD });
    expect(s.sim.access.user("fleet@pve")?.firstname).toBeUndefined();
    state = outs;
  });

  it("detects drift made out of band, keeping the password from the state", async () => {
    const u = s.sim.access.user("fleet@pve")!;
    u.email = "someone@else.example";
    u.enable = 0;
    const read = await users.read("fleet@pve", state);
    expect(read.inputs).toMatchObject({ email: "someone@else.example", enable: false, password: PASSWORD });
    const { diff } = await checkAndDiff(users, "fleet@pve", read.props as UserState, { userid: "fleet@pve", email: "fleet@example.com", groups: ["ci"], password: PASSWORD });
    expect(diff.changes).toBe(true);
    const { outs } = await users.update("fleet@pve", read.props as UserState, { userid: "fleet@pve", enable: true, expire: 0, email: "fleet@example.com", groups: ["ci"], password: PASSWORD });
    expect(outs.enable).toBe(true);
    expect(s.sim.access.user("fleet@pve")).toMatchObject({ email: "fleet@example.com", enable: 1 });
    state = outs;
  });

  it("imports by user id with inputs that diff empty against the same program", async () => {
    const imported = await users.read("fleet@pve");
    expect(imported.inputs).toEqual({ userid: "fleet@pve", enable: true, expire: 0, email: "fleet@example.com", groups: ["ci"] });
    const { diff } = await checkAndDiff(users, "fleet@pve", imported.props as UserState, { userid: "fleet@pve", email: "fleet@example.com", groups: ["ci"] });
    expect(diff.changes).toBe(false);
  });

  it("refuses a password change with token auth before changing anything, without the password in the message", async () => {
    const before = s.sim.requestLog.filter((r) => r.method !== "GET").length;
    const msg = await errorOf(users.update("fleet@pve", state, { ...state, email: "x@example.com", password: NEW_PASSWORD }));
    expect(msg).toContain("PUT /access/password");
    expect(msg).toContain("proxmox:username");
    expect(msg).not.toContain(NEW_PASSWORD);
    expect(msg).not.toContain(PASSWORD);
    expect(s.sim.requestLog.filter((r) => r.method !== "GET").length).toBe(before);
    expect(s.sim.access.checkPassword("fleet@pve", PASSWORD)).toBe(true);
  });

  it("changes the password when the provider logs in with a password (ticket)", async () => {
    s.usePassword("root@pam", "pve-sim-root");
    const { outs } = await users.update("fleet@pve", state, { ...state, password: NEW_PASSWORD });
    expect(outs.password).toBe(NEW_PASSWORD);
    expect(s.sim.access.checkPassword("fleet@pve", NEW_PASSWORD)).toBe(true);
    state = outs;
  });

  it("replaces (delete first) on a new userid, and deletes idempotently", async () => {
    const { diff } = await checkAndDiff(users, "fleet@pve", state, { userid: "fleet2@pve" });
    expect(diff).toMatchObject({ replaces: ["userid"], deleteBeforeReplace: true });
    const { outs } = await checkAndCreate(users, { userid: "tmp@pve" });
    await users.delete("tmp@pve", outs);
    expect(s.sim.access.user("tmp@pve")).toBeUndefined();
    await expect(users.delete("tmp@pve", outs)).resolves.toBeUndefined();
    expect((await users.read("tmp@pve", outs)).id).toBe("");
  });

  it("rejects an existing user, saying to set adopt: true, and changes nothing", async () => {
    const msg = await errorOf(checkAndCreate(users, { userid: "fleet@pve", email: "other@example.com" }));
    expect(msg).toContain("user 'fleet@pve' already exists");
    expect(msg).toContain("set adopt: true on the User");
    expect(s.sim.access.user("fleet@pve")?.email).toBe("fleet@example.com");
  });

  it("replaces for real on a userid change: deletes the old user first, then creates the new one", async () => {
    const { id, outs } = await checkAndCreate(users, { userid: "old@pve", comment: "runner", password: PASSWORD });
    const r = await replaceLikeEngine(users, id, outs, { userid: "new@pve", comment: "runner", password: PASSWORD });
    expect(r.order).toEqual(["delete old", "create new"]);
    expect(s.sim.access.user("old@pve")).toBeUndefined();
    expect(s.sim.access.user("new@pve")).toMatchObject({ comment: "runner" });
    expect(s.sim.access.checkPassword("new@pve", PASSWORD)).toBe(true);
    await users.delete(r.id, r.outs);
  });
});

describe("User adopt", () => {
  beforeAll(() => {
    s.sim.access.addUser({ userid: "legacy@pve", enable: 0, email: "legacy@example.com", firstname: "Leg", comment: "by hand", groups: ["ops"] });
    s.sim.access.setPassword("legacy@pve", PASSWORD);
  });
  beforeEach(() => s.useRootToken());

  let state: UserState;
  it("adopts an existing user: declared settings applied, undeclared ones (enable, name, groups, password) left alone", async () => {
    const { id, outs } = await checkAndCreate(users, { userid: "legacy@pve", adopt: true, email: "fleet-legacy@example.com" });
    expect(id).toBe("legacy@pve");
    expect(s.sim.access.user("legacy@pve")).toMatchObject({ enable: 0, email: "fleet-legacy@example.com", firstname: "Leg", comment: "by hand", groups: new Set(["ops"]) });
    expect(s.sim.access.checkPassword("legacy@pve", PASSWORD)).toBe(true);
    expect(outs).toEqual({ userid: "legacy@pve", adopt: true, enable: false, expire: 0, email: "fleet-legacy@example.com", firstname: "Leg", comment: "by hand", groups: ["ops"] });
    state = outs;
  });

  it("shows no change for the same program, before and after a refresh, even when an undeclared setting drifts", async () => {
    const same = { userid: "legacy@pve", adopt: true, email: "fleet-legacy@example.com" };
    expect((await checkAndDiff(users, "legacy@pve", state, same)).diff.changes).toBe(false);
    s.sim.access.requireUser("legacy@pve").lastname = "Added";
    const read = await users.read("legacy@pve", state);
    expect(read.props).toMatchObject({ lastname: "Added", adopt: true });
    expect((await checkAndDiff(users, "legacy@pve", read.props as UserState, same)).diff.changes).toBe(false);
    // a declared setting that drifts is a change
    s.sim.access.requireUser("legacy@pve").email = "drift@example.com";
    const drifted = await users.read("legacy@pve", read.props as UserState);
    expect((await checkAndDiff(users, "legacy@pve", drifted.props as UserState, same)).diff.changes).toBe(true);
    state = drifted.props as UserState;
  });

  it("updates declared settings in place and leaves the undeclared ones", async () => {
    const { inputs, diff } = await checkAndDiff(users, "legacy@pve", state, { userid: "legacy@pve", adopt: true, email: "fleet-legacy@example.com", enable: true });
    expect(diff).toMatchObject({ changes: true, replaces: [] });
    const { outs } = await users.update("legacy@pve", state, inputs);
    expect(s.sim.access.user("legacy@pve")).toMatchObject({ enable: 1, email: "fleet-legacy@example.com", firstname: "Leg", lastname: "Added", comment: "by hand", groups: new Set(["ops"]) });
    expect(outs).toMatchObject({ enable: true, lastname: "Added" });
    state = outs;
  });

  it("refuses a declared password with token auth before changing anything; sets it with a login", async () => {
    s.sim.access.addUser({ userid: "pw@pve", email: "pw@example.com" });
    const before = s.sim.requestLog.filter((r) => r.method !== "GET").length;
    const msg = await errorOf(checkAndCreate(users, { userid: "pw@pve", adopt: true, email: "new@example.com", password: NEW_PASSWORD }));
    expect(msg).toContain("PUT /access/password");
    expect(msg).not.toContain(NEW_PASSWORD);
    expect(s.sim.requestLog.filter((r) => r.method !== "GET").length).toBe(before);
    expect(s.sim.access.user("pw@pve")?.email).toBe("pw@example.com");
    s.usePassword("root@pam", "pve-sim-root");
    const { outs } = await checkAndCreate(users, { userid: "pw@pve", adopt: true, password: NEW_PASSWORD });
    expect(s.sim.access.checkPassword("pw@pve", NEW_PASSWORD)).toBe(true);
    expect(outs.password).toBe(NEW_PASSWORD);
  });

  it("releases an adopted user on delete; destroyOnDelete: true deletes it", async () => {
    await users.delete("legacy@pve", state);
    expect(s.sim.access.user("legacy@pve")).toMatchObject({ email: "fleet-legacy@example.com" });
    const { outs } = await checkAndCreate(users, { userid: "legacy@pve", adopt: true, destroyOnDelete: true });
    expect(outs.destroyOnDelete).toBe(true);
    await users.delete("legacy@pve", outs);
    expect(s.sim.access.user("legacy@pve")).toBeUndefined();
  });

  it("fails clearly when there is no user to adopt, creating nothing", async () => {
    // check() looks first, so a preview fails as the create would (issue 16)
    const msg = await errorOf(checkAndCreate(users, { userid: "ghost@pve", adopt: true }));
    expect(msg).toContain(`"property":"userid","reason":"cannot adopt user 'ghost@pve': it does not exist on the cluster. Fix userid, or remove adopt: true to have the User create it."`);
    expect(await errorOf(users.create({ userid: "ghost@pve", adopt: true }))).toBe("cannot adopt user 'ghost@pve': it does not exist on the cluster. Fix userid, or remove adopt: true to have the User create it.");
    expect(s.sim.access.user("ghost@pve")).toBeUndefined();
  });
});

describe("ApiToken", () => {
  let state: ApiTokenState;

  it("creates a token whose secret value is output once and authenticates", async () => {
    const { id, outs } = await checkAndCreate(tokens, { userid: "fleet@pve", tokenid: "ci", comment: "runner" });
    expect(id).toBe("fleet@pve!ci");
    expect(outs).toMatchObject({ userid: "fleet@pve", tokenid: "ci", privsep: true, expire: 0, comment: "runner", fullTokenId: "fleet@pve!ci" });
    expect(outs.value).toMatch(/^[0-9a-f-]{36}$/);
    expect(outs.apiToken).toBe(`fleet@pve!ci=${outs.value}`);
    expect((await s.clientFor(outs.apiToken!).cluster.version()).version).toMatch(/^9\./);
    state = outs;
  });

  it("updates comment, expiry and privilege separation in place and keeps the value", async () => {
    const { inputs, diff } = await checkAndDiff(tokens, state.fullTokenId, state, { userid: "fleet@pve", tokenid: "ci", privsep: false, expire: 4102444800 });
    expect(diff).toMatchObject({ changes: true, replaces: [] });
    const { outs } = await tokens.update(state.fullTokenId, state, inputs);
    expect(outs).toMatchObject({ privsep: false, expire: 4102444800, value: state.value, apiToken: state.apiToken });
    expect(outs.comment).toBeUndefined();
    expect(s.sim.access.requireToken("fleet@pve", "ci")).toMatchObject({ privsep: 0, expire: 4102444800 });
    state = outs;
  });

  it("reads drift while keeping the value from the state; import has no value", async () => {
    s.sim.access.requireToken("fleet@pve", "ci").comment = "edited";
    const read = await tokens.read(state.fullTokenId, state);
    expect(read.props).toMatchObject({ comment: "edited", value: state.value });
    expect(read.inputs).not.toHaveProperty("value");
    const imported = await tokens.read("fleet@pve!ci");
    expect(imported.props).not.toHaveProperty("value");
    expect(imported.props).not.toHaveProperty("apiToken");
    const { diff } = await checkAndDiff(tokens, "fleet@pve!ci", imported.props as ApiTokenState, { userid: "fleet@pve", tokenid: "ci", privsep: false, expire: 4102444800, comment: "edited" });
    expect(diff.changes).toBe(false);
  });

  it("replaces for real on a tokenid change: the new token is created first and works, then the old one stops working", async () => {
    const { id, outs } = await checkAndCreate(tokens, { userid: "fleet@pve", tokenid: "rot1" });
    const r = await replaceLikeEngine(tokens, id, outs, { userid: "fleet@pve", tokenid: "rot2" });
    expect(r.order).toEqual(["create new", "delete old"]);
    expect(r.id).toBe("fleet@pve!rot2");
    expect(r.outs.value).not.toBe(outs.value);
    expect((await s.clientFor(r.outs.apiToken!).cluster.version()).version).toMatch(/^9\./);
    await expect(s.clientFor(outs.apiToken!).cluster.version()).rejects.toThrow(/authentication failed/);
    expect(s.sim.access.user("fleet@pve")?.tokens.has("rot1")).toBe(false);
    await tokens.delete(r.id, r.outs);
  });

  it("replaces on a new tokenid; a duplicate token fails without any secret in the message", async () => {
    const { diff } = await checkAndDiff(tokens, state.fullTokenId, state, { userid: "fleet@pve", tokenid: "ci2" });
    expect(diff.replaces).toEqual(["tokenid"]);
    const msg = await errorOf(checkAndCreate(tokens, { userid: "fleet@pve", tokenid: "ci" }));
    expect(msg).toContain("already exists");
    expect(msg).not.toContain(state.value!);
  });

  it("deletes the token (the value stops working) and treats a gone token as deleted", async () => {
    await tokens.delete(state.fullTokenId, state);
    await expect(s.clientFor(state.apiToken!).cluster.version()).rejects.toThrow(/authentication failed/);
    await expect(tokens.delete(state.fullTokenId, state)).resolves.toBeUndefined();
    expect((await tokens.read(state.fullTokenId, state)).id).toBe("");
  });
});
