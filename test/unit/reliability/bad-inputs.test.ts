// Every row of the bad-input table (bad-inputs.ts, which also renders the README table): check()
// fails naming the property, and, where the input alone shows the mistake, before any API call
// (asserted on the simulator's request log). The valid inputs of each resource pass, so each
// failure is the row's own doing.
import * as fs from "node:fs";
import * as path from "node:path";
import { apiTokenLifecycle } from "../../../provider/resources/api-token";
import { cloudInitSnippetLifecycle } from "../../../provider/resources/cloud-init-snippet";
import { poolLifecycle } from "../../../provider/resources/pool";
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

const LIFECYCLES: Record<ResourceName, { check(olds: any, news: any): Promise<{ failures?: Array<{ property: string; reason: string }> }> }> = {
  Pool: poolLifecycle as any,
  User: userLifecycle as any,
  ApiToken: apiTokenLifecycle as any,
  Role: roleLifecycle as any,
  UserRoleBinding: userRoleBindingLifecycle as any,
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
  });
  afterAll(() => v.stop());
  beforeEach(() => clearReferenceCache());

  test.each(Object.keys(VALID) as ResourceName[])("the valid inputs of %s pass", async (resource) => {
    const r = await LIFECYCLES[resource].check({}, { ...VALID[resource] });
    expect(r.failures ?? []).toEqual([]);
  });

  test.each(BAD_INPUTS.map((r) => [`${r.resource}.${r.property}: ${r.problem}`, r] as const))("%s", async (_title, row) => {
    const log0 = v.s.sim.requestLog.length;
    const r = await LIFECYCLES[row.resource].check({}, inputsOf(row));
    const failures = r.failures ?? [];
    const mine = failures.filter((f) => f.property === row.property);
    expect(mine.map((f) => f.property)).toContain(row.property);
    expect(mine.map((f) => f.reason).join("\n")).toMatch(row.reason);
    const calls = v.s.sim.requestLog.slice(log0).map((e) => `${e.method} ${e.template ?? e.path}`);
    if (row.api === "none") expect(calls).toEqual([]);
    else expect(calls.length).toBeGreaterThan(0);
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
