// /access endpoints: users, groups, tokens, roles, ACLs (BEHAVIOURS.md §7–§10).

import { RunningSimulator, startSimulator } from "../index";
import { call, readApiJson } from "./core-http";

let s: RunningSimulator;
let T: string;
const api = (method: string, path: string, form?: Record<string, string | number>, query?: Record<string, string>) =>
  call(s, method, path, { token: T, form, query });

beforeAll(async () => {
  s = await startSimulator({ seed: 9 });
  T = s.rootToken;
});
afterAll(() => s.stop());

describe("users", () => {
  test("create, read, list, update, delete", async () => {
    expect((await api("POST", "/access/groups", { groupid: "g1" })).status).toBe(200);
    expect((await api("POST", "/access/groups", { groupid: "g2" })).status).toBe(200);
    const c = await api("POST", "/access/users", { userid: "u1@pve", email: "u1@example.com", groups: "g1", comment: "first", password: "longenough1" });
    expect(c.status).toBe(200);
    const r = await api("GET", "/access/users/u1@pve");
    expect(r.body.data).toEqual({ enable: 1, expire: 0, email: "u1@example.com", comment: "first", groups: ["g1"], tokens: {} });
    const list = await api("GET", "/access/users");
    const e = list.body.data.find((x: any) => x.userid === "u1@pve");
    expect(e).toMatchObject({ userid: "u1@pve", enable: 1, expire: 0, "realm-type": "pve" });
    // Field set of the recorded list (userid, enable, expire, realm-type...).
    const f = readApiJson("fixtures/access-users.json").data[0];
    for (const k of ["userid", "enable", "expire", "realm-type"]) if (k in f) expect(e).toHaveProperty(k);

    // groups= replaces; append=1 adds; unknown groups are dropped silently.
    await api("PUT", "/access/users/u1@pve", { groups: "g2,nosuch" });
    expect((await api("GET", "/access/users/u1@pve")).body.data.groups).toEqual(["g2"]);
    await api("PUT", "/access/users/u1@pve", { groups: "g1", append: 1 });
    expect((await api("GET", "/access/users/u1@pve")).body.data.groups).toEqual(["g1", "g2"]);
    const bad = await api("PUT", "/access/users/u1@pve", { append: 1 });
    expect(bad.status).toBe(400);
    expect(Object.keys(bad.body.errors)).toEqual(["groups"]);

    expect((await api("DELETE", "/access/users/u1@pve")).status).toBe(200);
    const gone = await api("GET", "/access/users/u1@pve");
    expect(gone.status).toBe(500);
    expect(gone.body.message).toBe("no such user ('u1@pve')\n");
    const del = await api("DELETE", "/access/users/u1@pve");
    expect(del.status).toBe(500);
  });

  test("errors: duplicate, unknown realm, unknown group, bad user id", async () => {
    await api("POST", "/access/users", { userid: "dup@pve" });
    expect((await api("POST", "/access/users", { userid: "dup@pve" })).body.message).toBe("create user failed: user 'dup@pve' already exists\n");
    expect((await api("POST", "/access/users", { userid: "x@nowhere" })).body.message).toBe("create user failed: domain 'nowhere' does not exist\n");
    expect((await api("POST", "/access/users", { userid: "y@pve", groups: "nosuch" })).body.message).toBe("create user failed: no such group 'nosuch'\n");
    const r = await api("POST", "/access/users", { userid: "no-realm" });
    expect(r.status).toBe(400);
    expect(r.body.errors.userid).toMatch(/^invalid format - /);
  });

  test("deleting a user removes its ACLs and tokens", async () => {
    await api("POST", "/access/users", { userid: "gone@pve" });
    await api("POST", "/access/users/gone@pve/token/tok1");
    await api("PUT", "/access/acl", { path: "/vms", roles: "PVEAuditor", users: "gone@pve" });
    await api("PUT", "/access/acl", { path: "/vms", roles: "PVEAuditor", tokens: "gone@pve!tok1" });
    await api("DELETE", "/access/users/gone@pve");
    const acl = (await api("GET", "/access/acl")).body.data;
    expect(acl.filter((a: any) => a.ugid.startsWith("gone@pve"))).toEqual([]);
  });
});

describe("tokens", () => {
  test("create (privsep default 1), list, read, update, delete", async () => {
    await api("POST", "/access/users", { userid: "tok@pve" });
    const c = await api("POST", "/access/users/tok@pve/token/ci", { comment: "for CI" });
    expect(c.body.data["full-tokenid"]).toBe("tok@pve!ci");
    expect(c.body.data.info.privsep).toBe(1);
    const list = (await api("GET", "/access/users/tok@pve/token")).body.data;
    expect(list).toEqual([{ tokenid: "ci", privsep: 1, expire: 0, comment: "for CI" }]);
    expect((await api("GET", "/access/users/tok@pve/token/ci")).body.data).toEqual({ privsep: 1, expire: 0, comment: "for CI" });
    const u = await api("PUT", "/access/users/tok@pve/token/ci", { privsep: 0, expire: 4102444800 });
    expect(u.body.data).toEqual({ privsep: 0, expire: 4102444800, comment: "for CI" });
    const regen = await api("PUT", "/access/users/tok@pve/token/ci", { regenerate: 1 });
    expect(regen.body.data.value).not.toBe(c.body.data.value);
    expect((await call(s, "GET", "/version", { token: `tok@pve!ci=${c.body.data.value}` })).status).toBe(401);
    expect((await call(s, "GET", "/version", { token: `tok@pve!ci=${regen.body.data.value}` })).status).toBe(200);
    expect((await api("DELETE", "/access/users/tok@pve/token/ci")).status).toBe(200);
    const missing = await api("GET", "/access/users/tok@pve/token/ci");
    expect(missing.status).toBe(500);
    expect(missing.body.message).toBe("no such token 'ci' for user 'tok@pve'\n");
  });
  test("a user manages its own tokens (userid-param self)", async () => {
    await api("POST", "/access/users", { userid: "self@pve", password: "selfpass12" });
    const login = await call(s, "POST", "/access/ticket", { form: { username: "self@pve", password: "selfpass12" } });
    const { ticket, CSRFPreventionToken: csrf } = login.body.data;
    const mine = await call(s, "POST", "/access/users/self@pve/token/own", { ticket, csrf });
    expect(mine.status).toBe(200);
    const theirs = await call(s, "POST", "/access/users/tok@pve/token/steal", { ticket, csrf });
    expect(theirs.status).toBe(403);
  });
  test("token ids need 2+ characters starting with a letter", async () => {
    const r = await api("POST", "/access/users/root@pam/token/1x");
    expect(r.status).toBe(400);
    expect(r.body.errors.tokenid).toBe("value does not match the regex pattern");
  });
});

describe("roles", () => {
  test("built-ins are special and protected", async () => {
    const list = (await api("GET", "/access/roles")).body.data;
    const admin = list.find((r: any) => r.roleid === "PVEVMAdmin");
    expect(admin.special).toBe(1);
    expect(admin.privs.split(",")).toContain("VM.GuestAgent.Audit");
    const upd = await api("PUT", "/access/roles/PVEVMAdmin", { privs: "VM.Audit" });
    expect(upd.status).toBe(500);
    expect(upd.body.message).toBe("auto-generated role 'PVEVMAdmin' cannot be modified\n");
    const del = await api("DELETE", "/access/roles/NoAccess");
    expect(del.body.message).toBe("auto-generated role 'NoAccess' cannot be deleted\n");
  });
  test("custom roles: create, read, update (replace / append), delete", async () => {
    expect((await api("POST", "/access/roles", { roleid: "Custom", privs: "VM.Audit,Sys.Audit" })).status).toBe(200);
    expect((await api("GET", "/access/roles/Custom")).body.data).toEqual({ "Sys.Audit": 1, "VM.Audit": 1 });
    expect((await api("GET", "/access/roles")).body.data.find((r: any) => r.roleid === "Custom")).toEqual({ roleid: "Custom", privs: "Sys.Audit,VM.Audit", special: 0 });
    await api("PUT", "/access/roles/Custom", { privs: "Pool.Audit", append: 1 });
    expect(Object.keys((await api("GET", "/access/roles/Custom")).body.data)).toEqual(["Pool.Audit", "Sys.Audit", "VM.Audit"]);
    await api("PUT", "/access/roles/Custom", { privs: "Pool.Audit" });
    expect(Object.keys((await api("GET", "/access/roles/Custom")).body.data)).toEqual(["Pool.Audit"]);
    expect((await api("POST", "/access/roles", { roleid: "Custom" })).body.message).toBe("create role failed: role 'Custom' already exists\n");
    expect((await api("POST", "/access/roles", { roleid: "Bad", privs: "VM.Monitor" })).body.message).toBe("create role failed: invalid privilege 'VM.Monitor'\n");
    await api("PUT", "/access/acl", { path: "/", roles: "Custom", users: "root@pam" });
    expect((await api("DELETE", "/access/roles/Custom")).status).toBe(200);
    expect((await api("GET", "/access/roles/Custom")).body.message).toBe("role 'Custom' does not exist\n");
    expect((await api("GET", "/access/acl")).body.data.some((a: any) => a.roleid === "Custom")).toBe(false);
  });
  test("8.4 knows VM.Monitor and not VM.GuestAgent.*", async () => {
    const s84 = await startSimulator({ pveVersion: "8.4" });
    try {
      const ok = await call(s84, "POST", "/access/roles", { token: s84.rootToken, form: { roleid: "Mon", privs: "VM.Monitor" } });
      expect(ok.status).toBe(200);
      const bad = await call(s84, "POST", "/access/roles", { token: s84.rootToken, form: { roleid: "Ga", privs: "VM.GuestAgent.Audit" } });
      expect(bad.status).toBe(500);
    } finally {
      await s84.stop();
    }
  });
});

describe("ACLs", () => {
  test("PUT/GET/delete with propagate default 1", async () => {
    await api("POST", "/access/users", { userid: "acl@pve" });
    await api("POST", "/access/groups", { groupid: "aclg" });
    expect((await api("PUT", "/access/acl", { path: "/vms/", roles: "PVEAuditor,PVEVMUser", users: "acl@pve" })).status).toBe(200);
    expect((await api("PUT", "/access/acl", { path: "/storage", roles: "PVEDatastoreUser", groups: "aclg", propagate: 0 })).status).toBe(200);
    const acl = (await api("GET", "/access/acl")).body.data;
    expect(acl).toEqual(
      expect.arrayContaining([
        { path: "/vms", type: "user", ugid: "acl@pve", roleid: "PVEAuditor", propagate: 1 },
        { path: "/vms", type: "user", ugid: "acl@pve", roleid: "PVEVMUser", propagate: 1 },
        { path: "/storage", type: "group", ugid: "aclg", roleid: "PVEDatastoreUser", propagate: 0 },
      ]),
    );
    const shape = readApiJson("fixtures/access-acl.json").data[0];
    expect(Object.keys(acl[0]).sort()).toEqual(Object.keys(shape).sort());
    await api("PUT", "/access/acl", { path: "/vms", roles: "PVEVMUser", users: "acl@pve", delete: 1 });
    const after = (await api("GET", "/access/acl")).body.data.filter((a: any) => a.ugid === "acl@pve");
    expect(after.map((a: any) => a.roleid)).toEqual(["PVEAuditor"]);
  });
  test("errors", async () => {
    const none = await api("PUT", "/access/acl", { path: "/", roles: "PVEAuditor" });
    expect(none.status).toBe(400);
    const msg = "either 'users', 'groups' or 'tokens' is required.";
    expect(none.body.errors).toEqual({ users: msg, groups: msg, tokens: msg });
    const badPath = await api("PUT", "/access/acl", { path: "/nonsense", roles: "PVEAuditor", users: "root@pam" });
    expect(badPath.status).toBe(400);
    expect(badPath.body.errors).toEqual({ path: "invalid ACL path '/nonsense'" });
    expect((await api("PUT", "/access/acl", { path: "/", roles: "Nope", users: "root@pam" })).body.message).toBe("ACL update failed: role 'Nope' does not exist\n");
    expect((await api("PUT", "/access/acl", { path: "/", roles: "PVEAuditor", users: "ghost@pve" })).body.message).toBe("ACL update failed: user 'ghost@pve' does not exist\n");
    expect((await api("PUT", "/access/acl", { path: "/", roles: "PVEAuditor", groups: "ghosts" })).body.message).toBe("ACL update failed: group 'ghosts' does not exist\n");
    expect((await api("PUT", "/access/acl", { path: "/", roles: "PVEAuditor", tokens: "root@pam!ghost" })).body.message).toBe(
      "ACL update failed: no such token 'ghost' for user 'root@pam'\n",
    );
  });
  test("without Permissions.Modify only subsets of the caller's privileges may be granted", async () => {
    await api("POST", "/access/users", { userid: "vmadm@pve" });
    await api("POST", "/access/users", { userid: "peer@pve" });
    await api("PUT", "/access/acl", { path: "/vms/150", roles: "PVEVMAdmin", users: "vmadm@pve" });
    const tok = (await api("POST", "/access/users/vmadm@pve/token/tok1", { privsep: 0 })).body.data.value;
    const as = (form: Record<string, string>) => call(s, "PUT", "/access/acl", { token: `vmadm@pve!tok1=${tok}`, form });
    expect((await as({ path: "/vms/150", roles: "PVEVMUser", users: "peer@pve" })).status).toBe(200);
    const r = await as({ path: "/vms/150", roles: "Administrator", users: "peer@pve" });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({ role: "Cannot add role 'Administrator' - requires 'Permissions.Modify' or superset of privileges." });
    const elsewhere = await as({ path: "/vms/151", roles: "PVEVMUser", users: "peer@pve" });
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.reason).toBe("Permission check failed (/vms/151, Permissions.Modify|VM.Allocate)");
    // GET /access/acl shows only what the caller may modify.
    const seen = (await call(s, "GET", "/access/acl", { token: `vmadm@pve!tok1=${tok}` })).body.data;
    expect(seen.every((a: any) => a.path === "/vms/150")).toBe(true);
    expect(seen.length).toBeGreaterThan(0);
  });
});

describe("groups", () => {
  test("list, read, update, delete", async () => {
    await api("POST", "/access/groups", { groupid: "team", comment: "the team" });
    await api("POST", "/access/users", { userid: "member@pve", groups: "team" });
    const g = (await api("GET", "/access/groups/team")).body.data;
    expect(g).toEqual({ comment: "the team", members: ["member@pve"] });
    expect((await api("GET", "/access/groups")).body.data.find((x: any) => x.groupid === "team")).toEqual({ groupid: "team", comment: "the team", users: "member@pve" });
    expect((await api("POST", "/access/groups", { groupid: "team" })).body.message).toBe("create group failed: group 'team' already exists\n");
    await api("PUT", "/access/groups/team", { comment: "renamed" });
    expect((await api("GET", "/access/groups/team")).body.data.comment).toBe("renamed");
    expect((await api("DELETE", "/access/groups/team")).status).toBe(200);
    expect((await api("GET", "/access/users/member@pve")).body.data.groups).toEqual([]);
    expect((await api("DELETE", "/access/groups/team")).body.message).toBe("delete group failed: group 'team' does not exist\n");
  });
});
