import { checkPermissions, describeMissing, permissionCheckLifecycle as lc } from "../../../../provider/resources/preflight";
import { checkAndCreate, errorOf, startTestSim, type TestSim } from "./sim-helpers";

let s: TestSim;
const TOKEN_SECRET = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";

beforeAll(async () => {
  s = await startTestSim();
  s.sim.access.addUser({ userid: "fleet@pve" });
  s.sim.access.requireUser("fleet@pve").tokens.set("ci", { tokenid: "ci", privsep: 1, secret: TOKEN_SECRET });
  s.sim.pools.create("fleet");
  // The user has the pool roles; the privsep token only PVEPoolUser of them.
  s.sim.access.setAcl("/pool/fleet", "user", "fleet@pve", "PVEVMAdmin", 1);
  s.sim.access.setAcl("/pool/fleet", "user", "fleet@pve", "PVEPoolUser", 1);
  s.sim.access.setAcl("/pool/fleet", "token", "fleet@pve!ci", "PVEPoolUser", 1);
  s.sim.access.setAcl("/nodes/pve1", "user", "fleet@pve", "PVEAuditor", 0);
});
afterAll(() => s.stop());
beforeEach(() => s.useRootToken());

const requirements = [
  { path: "/pool/fleet", privileges: ["VM.Allocate", "Pool.Audit"] },
  { path: "/nodes/pve1", privileges: ["Sys.Audit"] },
  { path: "/nodes/pve1/", privileges: ["Sys.Console"] },
];

describe("permission preflight", () => {
  it("lists what a principal lacks, per path, from PVE's own permission model", async () => {
    const api = s.clientFor(s.rootToken);
    expect(await checkPermissions(api, { principal: "fleet@pve", requirements })).toEqual([{ path: "/nodes/pve1", privileges: ["Sys.Console"] }]);
    expect(await checkPermissions(api, { principal: "fleet@pve!ci", requirements })).toEqual([
      { path: "/nodes/pve1", privileges: ["Sys.Audit", "Sys.Console"] },
      { path: "/pool/fleet", privileges: ["VM.Allocate"] },
    ]);
    expect(describeMissing("fleet@pve!ci", [{ path: "/pool/fleet", privileges: ["VM.Allocate"] }])).toContain("to the token as well as to its user");
  });

  it("checks the caller's own token without any extra privilege", async () => {
    const asToken = s.clientFor(`fleet@pve!ci=${TOKEN_SECRET}`);
    expect(await checkPermissions(asToken, { requirements: [{ path: "/pool/fleet", privileges: ["Pool.Audit"] }] })).toEqual([]);
    const msg = await errorOf(checkPermissions(asToken, { principal: "root@pam", requirements }));
    expect(msg).toContain("needs Sys.Audit on /access");
  });

  it("PermissionCheck fails create with one readable list, and reports at refresh instead of failing", async () => {
    const msg = await errorOf(checkAndCreate(lc, { principal: "fleet@pve!ci", requirements }));
    expect(msg).toContain("'fleet@pve!ci' lacks privileges it needs:\n  /nodes/pve1: Sys.Audit, Sys.Console\n  /pool/fleet: VM.Allocate");
    expect(msg).not.toContain(TOKEN_SECRET);
    s.sim.access.setAcl("/pool/fleet", "token", "fleet@pve!ci", "PVEVMAdmin", 1);
    s.sim.access.setAcl("/nodes/pve1", "token", "fleet@pve!ci", "PVEAuditor", 0);
    const { id, outs } = await checkAndCreate(lc, { principal: "fleet@pve!ci", requirements: requirements.slice(0, 2) });
    expect(outs).toMatchObject({ checkedPrincipal: "fleet@pve!ci", missing: [] });
    s.sim.access.removeAcl("/nodes/pve1", "token", "fleet@pve!ci", "PVEAuditor");
    const read = await lc.read(id, outs);
    expect(read.props?.missing).toEqual([{ path: "/nodes/pve1", privileges: ["Sys.Audit"] }]);
  });
});
