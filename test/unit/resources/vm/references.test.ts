// check()'s reference lookups with credentials that cannot see everything: PVE leaves out of
// `GET /cluster/resources` the VMs a principal lacks VM.Audit on, so a template that exists
// but is hidden must not be reported as missing.
import { configureForTests } from "../../../../provider/resources/context";
import { vmCloneLifecycle as life } from "../../../../provider/resources/vm-clone";
import { clearReferenceCache } from "../../../../provider/resources/vm/references";
import { makeTemplate, startVmSim, type VmSim } from "./sim-setup";

jest.setTimeout(60_000);

describe("VmClone check() as a principal that cannot see the template", () => {
  let v: VmSim;

  const failuresFor = async (templateVmid: number) => {
    clearReferenceCache();
    const r = await life.check({}, { name: "web", resourceName: "web", stack: "proj/dev", templateVmid, templateNode: "pve1" } as any);
    return r.failures ?? [];
  };

  beforeAll(async () => {
    v = await startVmSim({ seed: 31 });
    await makeTemplate(v.api, 9000);
    await v.api.access.createUser("narrow@pve");
    const token = await v.api.access.createToken("narrow@pve", "ci", { privsep: false });
    await v.api.access.updateAcl({ path: "/nodes", roles: ["PVEAuditor"], users: ["narrow@pve"] });
    configureForTests({ endpoint: v.s.url, apiToken: `${token.fullTokenId}=${token.secret}`, caCert: v.s.caCert });
  });
  afterAll(async () => {
    clearReferenceCache();
    await v.stop();
  });

  test("a hidden template is reported as hidden, naming the privilege and path; a free VMID as missing", async () => {
    expect(await failuresFor(9000)).toEqual([
      { property: "templateVmid", reason: "VM 9000 exists, but these credentials cannot see it: that needs VM.Audit on /vms/9000 (PVEAuditor there, or on a pool holding it)." },
    ]);
    expect(await failuresFor(9555)).toEqual([{ property: "templateVmid", reason: expect.stringMatching(/^there is no VM 9555 on the cluster; nothing to clone/) }]);
  });

  test("once the principal may see it, the same check passes", async () => {
    await v.api.access.updateAcl({ path: "/vms/9000", roles: ["PVEAuditor"], users: ["narrow@pve"] });
    expect(await failuresFor(9000)).toEqual([]);
  });
});
