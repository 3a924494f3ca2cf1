// Permission resolution (BEHAVIOURS.md §7, §8) in-process, the route-level checks over
// HTTP, and the fleeting setup's permission model.

import { buildSim, RunningSimulator, startSimulator } from "../index";
import { evalCheck, isValidAclPath, normalizeAclPath } from "../permissions";
import type { Sim } from "../sim";
import { AuthContext, PveError } from "../types";
import { call } from "./core-http";

function u(userid: string): AuthContext {
  return { userid, principal: userid };
}
function t(full: string): AuthContext {
  return { userid: full.split("!")[0], tokenid: full, principal: full };
}

describe("resolution", () => {
  let sim: Sim;
  const privs = (who: string, path: string) => Object.fromEntries(sim.access.privileges_of(who, path));
  beforeEach(() => {
    sim = buildSim({ seed: 1 });
    for (const id of ["bob@pve", "carol@pve"]) sim.access.addUser({ userid: id });
    sim.access.groups.set("ops", { groupid: "ops" });
    sim.access.user("bob@pve")!.groups.add("ops");
  });
  afterEach(() => sim.runStopHooks());

  test("propagation from / and propagate=0 only at the exact path", () => {
    sim.access.setAcl("/", "user", "bob@pve", "PVEAuditor", 1);
    expect(privs("bob@pve", "/vms/100")["VM.Audit"]).toBe(1);
    sim.access.setAcl("/nodes", "user", "carol@pve", "PVEAuditor", 0);
    expect(privs("carol@pve", "/nodes")["Sys.Audit"]).toBe(0);
    expect(privs("carol@pve", "/nodes/pve1")).toEqual({});
  });

  test("a deeper level replaces what was inherited (even with a propagate=0 entry above)", () => {
    sim.access.setAcl("/", "user", "bob@pve", "Administrator", 1);
    sim.access.setAcl("/vms", "user", "bob@pve", "PVEAuditor", 1);
    expect(privs("bob@pve", "/vms/100")["VM.Allocate"]).toBeUndefined();
    expect(privs("bob@pve", "/vms/100")["VM.Audit"]).toBe(1);
    expect(privs("bob@pve", "/storage/local")["Datastore.Allocate"]).toBe(1);
    // A non-propagating entry at /vms still replaces the inheritance for /vms/100.
    sim.access.setAcl("/vms", "user", "bob@pve", "PVEAuditor", 0);
    expect(privs("bob@pve", "/vms/100")).toEqual({});
  });

  test("user ACLs beat group ACLs at the same level; group applies where the user has none", () => {
    sim.access.setAcl("/vms", "group", "ops", "PVEVMAdmin", 1);
    expect(privs("bob@pve", "/vms/100")["VM.Allocate"]).toBe(1);
    sim.access.setAcl("/vms", "user", "bob@pve", "PVEAuditor", 1);
    expect(privs("bob@pve", "/vms/100")["VM.Allocate"]).toBeUndefined();
    // Group at a deeper level replaces the user's inherited roles.
    sim.access.setAcl("/vms/100", "group", "ops", "PVETemplateUser", 1);
    expect(Object.keys(privs("bob@pve", "/vms/100")).sort()).toEqual(["VM.Audit", "VM.Clone"]);
  });

  test("NoAccess wins", () => {
    sim.access.setAcl("/", "user", "bob@pve", "Administrator", 1);
    sim.access.setAcl("/vms/100", "user", "bob@pve", "NoAccess", 1);
    sim.access.setAcl("/vms/100", "user", "bob@pve", "PVEVMAdmin", 1);
    expect(privs("bob@pve", "/vms/100")).toEqual({});
    expect(privs("bob@pve", "/vms/101")["VM.Allocate"]).toBe(1);
  });

  test("pool ACLs apply to member VMs and storage, not further, not over direct roles", () => {
    sim.pools.create("P");
    sim.pools.addVm("P", 100);
    sim.pools.get("P")!.storage.add("local");
    sim.access.setAcl("/pool/P", "user", "bob@pve", "PVEVMAdmin", 1);
    sim.access.setAcl("/pool/P", "user", "bob@pve", "PVEDatastoreUser", 1);
    expect(privs("bob@pve", "/vms/100")["VM.Allocate"]).toBe(1);
    expect(privs("bob@pve", "/vms/101")).toEqual({});
    expect(privs("bob@pve", "/storage/local")["Datastore.AllocateSpace"]).toBe(1);
    expect(privs("bob@pve", "/storage/other")).toEqual({});
    // A pool NoAccess beats direct roles.
    sim.access.setAcl("/vms/100", "user", "carol@pve", "PVEAuditor", 1);
    sim.access.setAcl("/pool/P", "user", "carol@pve", "NoAccess", 1);
    expect(privs("carol@pve", "/vms/100")).toEqual({});
  });

  test("nested pools: roles on the parent propagate to the child pool's members", () => {
    sim.pools.create("A");
    sim.pools.create("A/B");
    sim.pools.addVm("A/B", 200);
    sim.access.setAcl("/pool/A", "user", "bob@pve", "PVEVMUser", 1);
    expect(privs("bob@pve", "/vms/200")["VM.PowerMgmt"]).toBe(1);
  });

  test("privsep tokens: intersection of token ACLs and user privileges", () => {
    const tok = sim.access.user("bob@pve")!;
    tok.tokens.set("sep", { tokenid: "sep", privsep: 1, secret: "x" });
    tok.tokens.set("full", { tokenid: "full", privsep: 0, secret: "y" });
    sim.access.setAcl("/", "user", "bob@pve", "PVEAuditor", 1);
    expect(privs("bob@pve!sep", "/vms/100")).toEqual({});
    expect(privs("bob@pve!full", "/vms/100")).toEqual(privs("bob@pve", "/vms/100"));
    sim.access.setAcl("/vms", "token", "bob@pve!sep", "PVEVMAdmin", 1);
    // The token's PVEVMAdmin is cut down to what the user has: VM.Audit (+ GuestAgent.Audit).
    expect(Object.keys(privs("bob@pve!sep", "/vms/100")).sort()).toEqual(["VM.Audit", "VM.GuestAgent.Audit"]);
    // Token ACLs take precedence over the user's own ACLs for a privsep token only.
    expect(privs("bob@pve!full", "/vms/100")["VM.Allocate"]).toBeUndefined();
  });

  test("root@pam has everything", () => {
    expect(Object.keys(privs("root@pam", "/vms/999")).length).toBe(sim.access.privileges.size);
  });

  test("ACL path normalisation and validity", () => {
    expect(normalizeAclPath("vms//100/")).toBe("/vms/100");
    expect(isValidAclPath("/vms/100")).toBe(true);
    expect(isValidAclPath("/vms/99")).toBe(false);
    expect(isValidAclPath("/pool/a/b/c")).toBe(true);
    expect(isValidAclPath("/pool/a/b/c/d")).toBe(false);
    expect(isValidAclPath("/sdn/zones/z/v/10")).toBe(true);
    expect(isValidAclPath("/sdn/zones/z/v/10000")).toBe(false);
    expect(isValidAclPath("/bogus")).toBe(false);
  });

  test("check expressions: perm, any, require_param, or, and, userid-param, perm-modify", () => {
    const env = { access: sim.access, pools: sim.pools };
    sim.access.setAcl("/vms/100", "user", "bob@pve", "PVETemplateUser", 1);
    const bob = u("bob@pve");
    expect(evalCheck(env, ["perm", "/vms/{vmid}", ["VM.Clone"]], bob, { vmid: 100 })).toBe(true);
    expect(() => evalCheck(env, ["perm", "/vms/{vmid}", ["VM.Clone", "VM.Allocate"]], bob, { vmid: 100 })).toThrow("Permission check failed (/vms/100, VM.Allocate)");
    expect(() => evalCheck(env, ["perm", "/vms/{vmid}", ["VM.Allocate", "VM.Migrate"], "any", 1], bob, { vmid: 100 })).toThrow(
      "Permission check failed (/vms/100, VM.Allocate|VM.Migrate)",
    );
    expect(evalCheck(env, ["perm", "/pool/{pool}", ["VM.Allocate"], "require_param", "pool"], bob, {}, true)).toBe(false);
    const clone = ["and", ["perm", "/vms/{vmid}", ["VM.Clone"]], ["or", ["perm", "/vms/{newid}", ["VM.Allocate"]], ["perm", "/pool/{pool}", ["VM.Allocate"], "require_param", "pool"]]] as any;
    expect(() => evalCheck(env, clone, bob, { vmid: 100, newid: 101 })).toThrow(/^Permission check failed$/);
    sim.pools.create("P");
    sim.access.setAcl("/pool/P", "user", "bob@pve", "PVEVMAdmin", 1);
    expect(evalCheck(env, clone, bob, { vmid: 100, newid: 101, pool: "P" })).toBe(true);
    expect(evalCheck(env, ["userid-param", "self"], bob, { userid: "bob@pve" })).toBe(true);
    expect(() => evalCheck(env, ["userid-param", "self"], bob, { userid: "carol@pve" })).toThrow(PveError);
    expect(() => evalCheck(env, ["userid-param", "self"], bob, { userid: "ghost@pve" })).toThrow("no such user ('ghost@pve')");
    // perm-modify: VM.Allocate on /vms/* suffices instead of Permissions.Modify.
    expect(() => evalCheck(env, ["perm-modify", "{path}"], bob, { path: "/vms/100" })).toThrow("Permission check failed (/vms/100, Permissions.Modify|VM.Allocate)");
    sim.access.setAcl("/vms/100", "user", "bob@pve", "PVEVMAdmin", 1);
    expect(evalCheck(env, ["perm-modify", "{path}"], bob, { path: "/vms/100" })).toBe(true);
    expect(evalCheck(env, ["perm", "/vms/100", ["VM.Audit"]], t("bob@pve!none"), {}, true)).toBe(false);
  });
});

describe("over HTTP", () => {
  let s: RunningSimulator;
  let T: string;
  const tokenFor = async (userid: string, tokenid: string, privsep = 0) => {
    const r = await call(s, "POST", `/access/users/${userid}/token/${tokenid}`, { token: T, form: { privsep } });
    return `${userid}!${tokenid}=${r.body.data.value}`;
  };
  beforeAll(async () => {
    s = await startSimulator({ seed: 5 });
    T = s.rootToken;
  });
  afterAll(() => s.stop());

  test("the fleeting setup: GET /access/permissions shows the right privileges", async () => {
    const R = { token: T };
    expect((await call(s, "POST", "/access/users", { ...R, form: { userid: "fleeting@pve" } })).status).toBe(200);
    expect((await call(s, "POST", "/pools", { ...R, form: { poolid: "fleeting" } })).status).toBe(200);
    for (const role of ["PVEVMAdmin", "PVEPoolUser", "PVEDatastoreUser"]) {
      expect((await call(s, "PUT", "/access/acl", { ...R, form: { path: "/pool/fleeting", roles: role, users: "fleeting@pve" } })).status).toBe(200);
    }
    expect((await call(s, "PUT", "/access/acl", { ...R, form: { path: "/sdn/zones/localnetwork", roles: "PVESDNAdmin", users: "fleeting@pve" } })).status).toBe(200);
    expect((await call(s, "PUT", "/access/acl", { ...R, form: { path: "/nodes/pve1", roles: "PVEAuditor", users: "fleeting@pve", propagate: 0 } })).status).toBe(200);
    const tok = await tokenFor("fleeting@pve", "runner");

    const all = (await call(s, "GET", "/access/permissions", { token: tok })).body.data;
    expect(all["/nodes/pve1"]["Sys.Audit"]).toBe(0);
    expect(all["/pool/fleeting"]["VM.Allocate"]).toBe(1);
    expect(all["/pool/fleeting"]["Pool.Audit"]).toBe(1);
    expect(all["/pool/fleeting"]["Datastore.AllocateSpace"]).toBe(1);
    expect(all["/sdn/zones/localnetwork"]["SDN.Use"]).toBe(1);
    expect(all["/"]).toBeUndefined();
    expect(all["/nodes"]).toBeUndefined();

    const one = (await call(s, "GET", "/access/permissions", { token: tok, query: { path: "/nodes/pve1" } })).body.data;
    expect(Object.keys(one)).toEqual(["/nodes/pve1"]);
    expect(one["/nodes/pve1"]).toMatchObject({ "Sys.Audit": 0, "VM.Audit": 0, "Datastore.Audit": 0 });
    // Not propagated below the node.
    const below = (await call(s, "GET", "/access/permissions", { token: tok, query: { path: "/nodes/pve1/qemu" } })).body.data;
    expect(below).toEqual({ "/nodes/pve1/qemu": {} });

    // Root may query anyone's; a user may query its own tokens; others need Sys.Audit.
    const byRoot = (await call(s, "GET", "/access/permissions", { token: T, query: { userid: "fleeting@pve" } })).body.data;
    expect(byRoot["/pool/fleeting"]["VM.Allocate"]).toBe(1);
    const denied = await call(s, "GET", "/access/permissions", { token: tok, query: { userid: "root@pam" } });
    expect(denied.status).toBe(403);
    expect(denied.body.message).toBe("Permission check failed (/access, Sys.Audit)\n");
  });

  test("route checks: 403 with the path and privilege", async () => {
    await call(s, "POST", "/access/users", { token: T, form: { userid: "weak@pve" } });
    const tok = await tokenFor("weak@pve", "tok1");
    const r = await call(s, "POST", "/pools", { token: tok, form: { poolid: "nope" } });
    expect(r.status).toBe(403);
    expect(r.reason).toBe("Permission check failed (/pool/nope, Pool.Allocate)");
    const r2 = await call(s, "POST", "/access/roles", { token: tok, form: { roleid: "X" } });
    expect(r2.reason).toBe("Permission check failed (/access, Sys.Modify)");
  });

  test("a privsep token has nothing until ACLs name it", async () => {
    await call(s, "POST", "/access/users", { token: T, form: { userid: "sep@pve" } });
    await call(s, "PUT", "/access/acl", { token: T, form: { path: "/", roles: "PVEAuditor", users: "sep@pve" } });
    const tok = await tokenFor("sep@pve", "sep1", 1);
    const r = await call(s, "GET", "/access/permissions", { token: tok, query: { path: "/vms/100" } });
    expect(r.body.data).toEqual({ "/vms/100": {} });
    await call(s, "PUT", "/access/acl", { token: T, form: { path: "/vms", roles: "PVEVMAdmin", tokens: "sep@pve!sep1" } });
    const r2 = await call(s, "GET", "/access/permissions", { token: tok, query: { path: "/vms/100" } });
    expect(Object.keys(r2.body.data["/vms/100"]).sort()).toEqual(["VM.Audit", "VM.GuestAgent.Audit"]);
  });
});

describe("config keys need their own privilege (QEMU API2/Qemu.pm $check_vm_modify_config_perm)", () => {
  let s: RunningSimulator;
  const as = (token: string) => (form: Record<string, string>) => call(s, "PUT", "/nodes/pve1/qemu/100/config", { token, form });
  let put: ReturnType<typeof as>;
  beforeAll(async () => {
    s = await startSimulator({ seed: 12, cluster: { ssh: false } });
    const root = (m: "POST" | "PUT", p: string, form: Record<string, string>) => call(s, m, p, { token: s.rootToken, form });
    const created = await root("POST", "/nodes/pve1/qemu", { vmid: "100", scsi0: "local-lvm:1", net0: "virtio,bridge=vmbr0" });
    expect(created.status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    for (const [m, p, form] of [
      ["POST", "/access/roles", { roleid: "OptsNet", privs: "VM.Config.Options,VM.Config.Network" }],
      ["POST", "/access/users", { userid: "ed@pve" }],
      ["PUT", "/access/acl", { path: "/vms/100", roles: "OptsNet", users: "ed@pve" }],
    ] as const) {
      const r = await root(m, p, form);
      expect([p, r.status, r.reason, r.text]).toEqual([p, 200, "OK", expect.anything()]);
    }
    const tok = await root("POST", "/access/users/ed@pve/token/tk", { privsep: "0" });
    expect([tok.status, tok.reason]).toEqual([200, "OK"]);
    put = as(`ed@pve!tk=${tok.body.data.value}`);
  });
  afterAll(() => s.stop());

  test("HWType and Disk keys are not Options keys; cloud-init keys take Network as well as Cloudinit", async () => {
    const refused = async (form: Record<string, string>) => {
      const r = await put(form);
      return [r.status, r.reason];
    };
    expect(await refused({ vga: "serial0" })).toEqual([403, "Permission check failed (/vms/100, VM.Config.HWType)"]);
    expect(await refused({ scsihw: "virtio-scsi-pci" })).toEqual([403, "Permission check failed (/vms/100, VM.Config.HWType)"]);
    expect(await refused({ boot: "order=scsi0" })).toEqual([403, "Permission check failed (/vms/100, VM.Config.Disk)"]);
    expect(await refused({ startup: "order=1" })).toEqual([403, "Permission check failed (/, Sys.Modify)"]);
    expect((await put({ ipconfig0: "ip=dhcp" })).status).toBe(200);
    expect((await put({ description: "ok", onboot: "1" })).status).toBe(200);
  });

  test("keys in no list are root@pam's alone, not even a root token's", async () => {
    const asRootToken = await call(s, "PUT", "/nodes/pve1/qemu/100/config", { token: s.rootToken, form: { args: "-no-reboot" } });
    expect([asRootToken.status, asRootToken.reason]).toEqual([500, "only root can set 'args' config"]);
    // QEMU update_vm_api `$updatefn`: a config update says `modify` (create says `set`)
    expect([(await put({ serial0: "/dev/ttyS0" })).reason]).toEqual(["only root can modify 'serial0' config for real devices"]);
  });
});
