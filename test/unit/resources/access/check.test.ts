// Invalid inputs fail in check(), with the property named, before any request reaches PVE.
import { apiTokenLifecycle } from "../../../../provider/resources/api-token";
import { poolLifecycle } from "../../../../provider/resources/pool";
import { permissionCheckLifecycle } from "../../../../provider/resources/preflight";
import { roleLifecycle } from "../../../../provider/resources/role";
import { userLifecycle } from "../../../../provider/resources/user";
import { userRoleBindingLifecycle } from "../../../../provider/resources/user-role-binding";
import { UNKNOWN } from "../../../../provider/resources/diff";
import type { Lifecycle } from "../../../../provider/resources/dynamic";
import { startTestSim, type TestSim } from "./sim-helpers";

let s: TestSim;
beforeAll(async () => {
  s = await startTestSim();
});
afterAll(() => s.stop());

async function failures(lc: Lifecycle<any, any>, news: Record<string, unknown>): Promise<Array<{ property: string; reason: string }>> {
  const before = s.requests();
  const r = await lc.check({}, news);
  expect(s.requests()).toBe(before); // no API call
  return r.failures ?? [];
}

const cases: Array<[string, Lifecycle<any, any>, Record<string, unknown>, string, RegExp]> = [
  ["a malformed userid", userLifecycle, { userid: "fleet" }, "userid", /'<name>@<realm>'/],
  ["a userid over 64 characters", userLifecycle, { userid: `${"a".repeat(61)}@pve` }, "userid", /at most 64/],
  ["a password outside the pve realm", userLifecycle, { userid: "fleet@pam", password: "long-enough-1" }, "password", /only be set for users of the 'pve' realm/],
  ["a short password", userLifecycle, { userid: "fleet@pve", password: "short" }, "password", /8 to 64 characters \(got 5\)/],
  ["a bad e-mail", userLifecycle, { userid: "fleet@pve", email: "nope" }, "email", /e-mail address/],
  ["a bad group", userLifecycle, { userid: "fleet@pve", groups: ["ok", "b a d"] }, "groups[1]", /group id/],
  ["a malformed token owner", apiTokenLifecycle, { userid: "fleet", tokenid: "ci" }, "userid", /'<name>@<realm>'/],
  ["a bad token id", apiTokenLifecycle, { userid: "fleet@pve", tokenid: "1x" }, "tokenid", /starts with a letter/],
  ["a negative token expiry", apiTokenLifecycle, { userid: "fleet@pve", tokenid: "ci", expire: -1 }, "expire", /at least 0/],
  ["a bad poolid", poolLifecycle, { poolid: "1fleet" }, "poolid", /starts with a letter/],
  ["a pool nested 4 levels", poolLifecycle, { poolid: "a/b/c/d" }, "poolid", /at most 3 levels/],
  ["a VM id under 100", poolLifecycle, { poolid: "fleet", vms: [99] }, "vms[0]", /100 to 999999999/],
  ["a bad storage id", poolLifecycle, { poolid: "fleet", storage: ["local lvm"] }, "storage[0]", /not a storage id/],
  ["an unknown privilege", roleLifecycle, { roleid: "Ops", privileges: ["VM.Audit", "VM.Fly"] }, "privileges[1]", /'VM.Fly' is not a Proxmox VE privilege\. Known VM\.\* privileges/],
  ["a privilege in the wrong case", roleLifecycle, { roleid: "Ops", privileges: ["vm.audit"] }, "privileges[0]", /Did you mean 'VM.Audit'/],
  ["a built-in roleid", roleLifecycle, { roleid: "PVEVMAdmin", privileges: ["VM.Audit"] }, "roleid", /built-in role/],
  ["a bad ACL path", userRoleBindingLifecycle, { path: "/pools/fleet", user: "fleet@pve", roles: ["PVEVMAdmin"] }, "path", /path '\/pools\/fleet' is not valid/],
  ["a VM path under 100", userRoleBindingLifecycle, { path: "/vms/42", user: "fleet@pve", roles: ["PVEVMAdmin"] }, "path", /VM ids start at 100/],
  ["a VLAN out of range", userRoleBindingLifecycle, { path: "/sdn/zones/localnetwork/vmbr0/10000", user: "fleet@pve", roles: ["PVESDNUser"] }, "path", /VLAN tag is 1-9999/],
  ["an unknown built-in-looking role", userRoleBindingLifecycle, { path: "/", user: "fleet@pve", roles: ["PVEVmAdmin"] }, "roles[0]", /did you mean the built-in role 'PVEVMAdmin'/],
  ["a PVE-prefixed role that is not built in", userRoleBindingLifecycle, { path: "/", user: "fleet@pve", roles: ["PVEFleet"] }, "roles[0]", /not one of PVE's built-in roles/],
  ["no roles", userRoleBindingLifecycle, { path: "/", user: "fleet@pve", roles: [] }, "roles", /must not be empty/],
  ["no principal", userRoleBindingLifecycle, { path: "/", roles: ["PVEAuditor"] }, "user", /one of user, token, group is required/],
  ["two principals", userRoleBindingLifecycle, { path: "/", user: "a@pve", group: "ops", roles: ["PVEAuditor"] }, "group", /set only one of user, token, group/],
  ["a token principal without a token id", userRoleBindingLifecycle, { path: "/", token: "fleet@pve", roles: ["PVEAuditor"] }, "token", /full token id/],
  ["a requirement with a bad path", permissionCheckLifecycle, { requirements: [{ path: "/vm/100", privileges: ["VM.Audit"] }] }, "requirements[0].path", /not valid/],
  ["a requirement with an unknown privilege", permissionCheckLifecycle, { requirements: [{ path: "/", privileges: ["Sys.Everything"] }] }, "requirements[0].privileges[0]", /not a Proxmox VE privilege/],
];

describe("check() rejects invalid inputs before any API call, naming the property", () => {
  it.each(cases)("%s", async (_what, lc, news, property, reason) => {
    const f = await failures(lc, news);
    expect(f.map((x) => x.property)).toContain(property);
    expect(f.find((x) => x.property === property)!.reason).toMatch(reason);
  });

  it("never echoes a password in a failure", async () => {
    const f = await failures(userLifecycle, { userid: "fleet@pam", password: "Very-Secret-Pw-9" });
    expect(JSON.stringify(f)).not.toContain("Very-Secret-Pw-9");
  });

  it("accepts what the docs allow, normalised the way PVE stores it, and lets unknowns pass", async () => {
    // a custom role declared by the same run (a Role checked first) is not looked up
    await roleLifecycle.check({}, { roleid: "FleetOperator", privileges: ["VM.Audit"] } as any);
    expect(await failures(userRoleBindingLifecycle, { path: "sdn/zones/localnetwork/", token: "fleet@pve!ci", roles: ["PVESDNAdmin", "FleetOperator"], propagate: false })).toEqual([]);
    const r = await userRoleBindingLifecycle.check({}, { path: "//pool/fleet/", user: "fleet@pve", roles: ["PVEVMAdmin", "PVEPoolUser", "PVEVMAdmin"] } as any);
    expect(r.inputs).toMatchObject({ path: "/pool/fleet", roles: ["PVEPoolUser", "PVEVMAdmin"], propagate: true });
    expect(await failures(userRoleBindingLifecycle, { path: UNKNOWN, user: UNKNOWN, roles: ["PVEVMAdmin", UNKNOWN] })).toEqual([]);
    expect(await failures(poolLifecycle, { poolid: "fleet", vms: [UNKNOWN], storage: ["local-lvm"] })).toEqual([]);
    // a role's privileges are also asked of the server (one read, not counted here: it is how a
    // preview fails where up would): with translation, both versions' names pass on PVE 9
    expect((await roleLifecycle.check({}, { roleid: "MachineController", privileges: ["VM.Monitor", "VM.GuestAgent.Audit", "VM.Replicate"], translatePrivileges: true } as any)).failures).toEqual([]);
    expect(await failures(userLifecycle, { userid: "fleet@pve", password: UNKNOWN })).toEqual([]);
    for (const path of ["/", "/access", "/access/groups/ops", "/access/realm/pve", "/nodes/pve1", "/pool/a/b/c", "/storage/local-lvm", "/vms/100", "/sdn/zones/localnetwork", "/sdn/zones/z1/vnet1", "/sdn/zones/z1/vnet1/42", "/mapping/pci/gpu"]) {
      expect(await failures(userRoleBindingLifecycle, { path, user: "fleet@pve", roles: ["PVEAuditor"] })).toEqual([]);
    }
  });
});
