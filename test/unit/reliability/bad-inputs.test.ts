// Every row of the bad-input table (bad-inputs.ts, which also renders the README table): check()
// fails naming the property, and, where the input alone shows the mistake, before any API call
// (asserted on the simulator's request log); a reference is looked up with reads only, and only
// when it changed. The valid inputs of each resource pass, so each failure is the row's own doing.
// A reference to what another resource of the same run declares passes without a lookup.
import * as fs from "node:fs";
import * as path from "node:path";
import { apiTokenLifecycle } from "../../../provider/resources/api-token";
import { cloudInitSnippetLifecycle } from "../../../provider/resources/cloud-init-snippet";
import { poolLifecycle } from "../../../provider/resources/pool";
import { permissionCheckLifecycle } from "../../../provider/resources/preflight";
import { roleLifecycle } from "../../../provider/resources/role";
import { storageLifecycle } from "../../../provider/resources/storage";
import { templateLifecycle } from "../../../provider/resources/template";
import { userLifecycle } from "../../../provider/resources/user";
import { userRoleBindingLifecycle } from "../../../provider/resources/user-role-binding";
import { vmCloneLifecycle } from "../../../provider/resources/vm-clone";
import { clearReferenceCache } from "../../../provider/resources/vm/references";
import { makeTemplate, startVmSim, type VmSim } from "../resources/vm/sim-setup";
import { BAD_INPUTS, VALID, inputsOf, renderBadInputTable, type ResourceName } from "./bad-inputs";

jest.setTimeout(60_000);

type Checked = { inputs?: any; failures?: Array<{ property: string; reason: string }> };
const LIFECYCLES: Record<ResourceName, { check(olds: any, news: any): Promise<Checked> }> = {
  Pool: poolLifecycle as any,
  User: userLifecycle as any,
  ApiToken: apiTokenLifecycle as any,
  Role: roleLifecycle as any,
  UserRoleBinding: userRoleBindingLifecycle as any,
  PermissionCheck: permissionCheckLifecycle as any,
  Storage: storageLifecycle as any,
  CloudInitSnippet: cloudInitSnippetLifecycle as any,
  Template: templateLifecycle as any,
  VmClone: vmCloneLifecycle as any,
};

describe("bad input is refused by check(), naming the property", () => {
  let v: VmSim;
  beforeAll(async () => {
    v = await startVmSim({ seed: 3, timeFactor: 0 });
    await makeTemplate(v.api, 9000);
    await v.api.qemu.createAndWait("pve1", 100, { name: "plain", memory: 512 });
    // a storage for VM images that only pve2 has
    await v.api.storage.create({ storage: "only-pve2", type: "dir", path: "/srv/only-pve2", content: "images", nodes: "pve2" });
  });
  afterAll(() => v.stop());
  beforeEach(() => clearReferenceCache());

  test.each(Object.keys(VALID) as ResourceName[])("the valid inputs of %s pass", async (resource) => {
    const r = await LIFECYCLES[resource].check({}, { ...VALID[resource] });
    expect(r.failures ?? []).toEqual([]);
  });

  const callsSince = (from: number) => v.s.sim.requestLog.slice(from).map((e) => `${e.method} ${e.template ?? e.path}`);
  test.each(BAD_INPUTS.map((r) => [`${r.resource}.${r.property}: ${r.problem}`, r] as const))("%s", async (_title, row) => {
    const log0 = v.s.sim.requestLog.length;
    const r = await LIFECYCLES[row.resource].check({}, inputsOf(row));
    const failures = r.failures ?? [];
    const mine = failures.filter((f) => f.property === row.property);
    expect(mine.map((f) => f.property)).toContain(row.property);
    expect(mine.map((f) => f.reason).join("\n")).toMatch(row.reason);
    const calls = callsSince(log0);
    if (row.api === "none") expect(calls).toEqual([]);
    else {
      expect(calls.length).toBeGreaterThan(0);
      expect(calls.filter((c) => !c.startsWith("GET "))).toEqual([]); // read-only
    }
  });

  // A preview of a resource whose inputs did not change asks PVE nothing, even when a check
  // would look its references up: check(olds = the inputs it returned last time, same news).
  test.each(Object.keys(VALID) as ResourceName[])("unchanged inputs of %s are not looked up again", async (resource) => {
    const first = await LIFECYCLES[resource].check({}, { ...VALID[resource] });
    expect(first.failures ?? []).toEqual([]);
    const log0 = v.s.sim.requestLog.length;
    const again = await LIFECYCLES[resource].check(first.inputs, { ...VALID[resource] });
    expect(again.failures ?? []).toEqual([]);
    expect(callsSince(log0)).toEqual([]);
  });

  // ...and a bad reference that was already there is not looked up (nor reported) again: only a
  // change is checked. (Not CloudInitSnippet: its check computes the snippet's path from the
  // storage, which a check that failed never learnt; a snippet that exists always has one.)
  test.each(BAD_INPUTS.filter((r) => r.api === "lookup" && r.resource !== "CloudInitSnippet").map((r) => [`${r.resource}.${r.property}: ${r.problem}`, r] as const))(
    "%s: not looked up when unchanged",
    async (_title, row) => {
      const first = await LIFECYCLES[row.resource].check({}, inputsOf(row));
      expect((first.failures ?? []).map((f) => f.property)).toContain(row.property);
      const log0 = v.s.sim.requestLog.length;
      const again = await LIFECYCLES[row.resource].check(first.inputs, inputsOf(row));
      expect(again.failures ?? []).toEqual([]);
      expect(callsSince(log0)).toEqual([]);
    },
  );

  describe("references to what the same run declares pass without a lookup", () => {
    const NEW_STORE = { storage: "newstore", type: "dir", content: ["images", "import", "snippets"], path: "/srv/newstore", nodes: ["pve1"] };

    test("a Pool, a Storage and a Role checked earlier in the run", async () => {
      expect((await LIFECYCLES.Pool.check({}, { poolid: "newpool" })).failures).toEqual([]);
      expect((await LIFECYCLES.Storage.check({}, NEW_STORE)).failures).toEqual([]);
      expect((await LIFECYCLES.Role.check({}, { roleid: "NewRole", privileges: ["VM.Audit"] })).failures).toEqual([]);
      const log0 = v.s.sim.requestLog.length;
      const template = await LIFECYCLES.Template.check({}, { ...VALID.Template, storage: "newstore", pool: "newpool", image: { url: "https://example.com/x.img", storage: "newstore" } });
      expect(template.failures).toEqual([]);
      expect((await LIFECYCLES.VmClone.check({}, { ...VALID.VmClone, full: true, storage: "newstore" })).failures).toEqual([]);
      expect((await LIFECYCLES.UserRoleBinding.check({}, { ...VALID.UserRoleBinding, roles: ["NewRole"] })).failures).toEqual([]);
      expect((await LIFECYCLES.CloudInitSnippet.check({}, { ...VALID.CloudInitSnippet, storage: "newstore" })).failures).toEqual([]);
      // the pool and the role are not asked for; the cluster view only for the template and nodes
      expect(callsSince(log0).filter((c) => !c.startsWith("GET /cluster/resources"))).toEqual([]);
    });

    test("a declared storage is judged by its declared content and nodes", async () => {
      await LIFECYCLES.Storage.check({}, { ...NEW_STORE, storage: "snips", content: ["snippets"], nodes: ["pve2"] });
      const t = await LIFECYCLES.Template.check({}, { ...VALID.Template, storage: "snips" });
      expect(t.failures).toEqual([{ property: "storage", reason: expect.stringMatching(/declared by this stack.*not available on node 'pve1'/) }]);
      const t2 = await LIFECYCLES.Template.check({}, { ...VALID.Template, node: "pve2", storage: "snips" });
      expect(t2.failures).toEqual([{ property: "storage", reason: expect.stringMatching(/declared by this stack.*does not hold 'images'/) }]);
      await LIFECYCLES.Storage.check({}, { ...NEW_STORE, storage: "imgs", content: ["images"] });
      const s = await LIFECYCLES.CloudInitSnippet.check({}, { ...VALID.CloudInitSnippet, storage: "imgs" });
      expect(s.failures).toEqual([{ property: "storage", reason: expect.stringMatching(/declared by this stack.*'snippets'/) }]);
    });

    test("what the run does not declare is still looked up", async () => {
      await LIFECYCLES.Role.check({}, { roleid: "NewRole", privileges: ["VM.Audit"] });
      const b = await LIFECYCLES.UserRoleBinding.check({}, { ...VALID.UserRoleBinding, roles: ["NewRole", "OtherRole"] });
      expect(b.failures).toEqual([{ property: "roles[1]", reason: expect.stringMatching(/role 'OtherRole' does not exist/) }]);
    });
  });

  test("every resource has rows, and the README's table is exactly the one rendered from them", () => {
    for (const resource of Object.keys(VALID)) expect(BAD_INPUTS.some((r) => r.resource === resource)).toBe(true);
    const table = renderBadInputTable();
    expect(table.split("\n").length).toBe(BAD_INPUTS.length + 2);
    const readmePath = path.join(__dirname, "..", "..", "..", "README.md");
    const readme = fs.readFileSync(readmePath, "utf8");
    const begin = "<!-- bad-inputs:begin (generated from test/unit/reliability/bad-inputs.ts; UPDATE_README=1 npx jest bad-inputs rewrites it) -->\n";
    const end = "<!-- bad-inputs:end -->";
    const start = readme.indexOf(begin);
    const stop = readme.indexOf(end);
    expect(start).toBeGreaterThanOrEqual(0);
    expect(stop).toBeGreaterThan(start);
    if (process.env.UPDATE_README === "1") {
      fs.writeFileSync(readmePath, readme.slice(0, start + begin.length) + table + "\n" + readme.slice(stop));
      return;
    }
    expect(readme.slice(start + begin.length, stop)).toBe(table + "\n");
  });
});
