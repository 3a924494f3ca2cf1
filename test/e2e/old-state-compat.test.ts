/**
 * Old-state compatibility (issue 18): a stack created by the last release must still refresh,
 * update and destroy with this checkout's code, through the real Pulumi engine against the
 * simulator.
 *
 * The release is rebuilt from git history (old-release.ts: `git archive` of OLD_RELEASE_COMMIT,
 * compiled with this checkout's TypeScript) into an installable `pulumi-pve` package. The stack
 * (fixtures/old-state-compat: pool, user, API token, role, binding, template, cloud-init snippet,
 * two clones) is created with it: the program declares the release's classes, and the provider
 * process, started in the stack's workspace, resolves the stored stubs' `require("pulumi-pve/
 * dist/...")` to the release (node_modules/pulumi-pve -> the release). Then the workspace's
 * pulumi-pve becomes this checkout (node_modules/pulumi-pve -> the repository, whose dist/ is
 * current) and the release's build is moved away, so nothing of it can be loaded any more:
 *
 *   - `pulumi refresh` runs the stubs the release stored, on the new code: it succeeds, deletes
 *     and replaces nothing, and every resource keeps its id;
 *   - `pulumi preview` of the same program (this checkout's classes) proposes no change;
 *   - `pulumi up` with one in-place change per resource kind updates each in place (no
 *     replacement), with the effect seen on the simulator; app-2, unchanged, keeps the stub and
 *     outputs the release wrote;
 *   - `pulumi destroy` (app-2 by the release's stub) leaves the simulator as it was before.
 *
 * Fails (does not skip) when the release's commit is not in the clone (a shallow clone: the error
 * says how to fetch it) or when the Pulumi CLI cannot be obtained (scripts/ensure-pulumi.sh).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { EngineEvent, Stack } from "@pulumi/pulumi/automation";
import * as currentPve from "pulumi-pve";
import { startSimulator, type RunningSimulator } from "../simulator";
import { coreState } from "../simulator/backdoor";
import { diffSnapshots, snapshotState, type StateSnapshot } from "../simulator/snapshot";
import { PREPARED_LOCAL_CONTENT, clusterOf } from "../simulator/state/cluster";
import { compat } from "./fixtures/old-state-compat";
import { compileToDist, createTestStack, disposePulumiEnv, pulumiEnv, removeStack, REPO_ROOT, type TestStack } from "./harness";
import { providerSources, proxmoxConfig, sshSetup } from "./engine-lifecycle-support";
import { buildRelease, installPulumiPve } from "./old-release";
import { stepsOf } from "./preview-diff";

/**
 * The last release before the field-table/structure refactor of provider/resources (issue 18):
 * the stacks users have were created by this code, so its stored stubs and state must keep
 * working with every later version.
 */
const OLD_RELEASE_COMMIT = "80bafaafa5a3be69f7032d89ca03588546a555b1";

jest.setTimeout(15 * 60 * 1000);
afterAll(disposePulumiEnv);

const FIXTURE = path.join(__dirname, "fixtures", "old-state-compat");
/** The stack, pool, user, token, role, binding, template, snippet and 2 clones. */
const RESOURCES = 10;
/** What `old-state-compat:changed` changes in place: one resource of each kind, app-2 not. */
const UPDATED = ["ApiToken ops-ci", "CloudInitSnippet user-data", "Pool compat", "Role operator", "Template base", "User ops", "UserRoleBinding ops-ci-on-pool", "VmClone app-1"];

interface StateResource {
  urn: string;
  type: string;
  id?: string;
  inputs?: Record<string, any>;
  outputs?: Record<string, any>;
}

/** `<Type> <name>` of a state resource of this package. */
const label = (r: StateResource) => `${r.type.replace(/^pulumi-nodejs:dynamic\/proxmox:/, "")} ${r.urn.split("::").pop()}`;

describe("a stack created by the last release, carried on by this checkout", () => {
  const ssh = sshSetup();
  let sim: RunningSimulator;
  let ts: TestStack | undefined;
  let stack: Stack;
  let release = "";
  let before: StateSnapshot;
  /** The stack's resources of this package as the release stored them, by label. */
  let created = new Map<string, StateResource>();
  /** The same after this checkout's refresh. */
  let refreshed = new Map<string, StateResource>();
  let vmids: number[] = [];
  let templateVmid = 0;
  let snippetFile = "";
  let destroyed = false;

  const resources = async (): Promise<Map<string, StateResource>> => {
    const state = await stack.exportStack();
    const all = state.deployment.resources as StateResource[];
    return new Map(all.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/proxmox:")).map((r) => [label(r), r]));
  };
  const vm = (vmid: number) => clusterOf(sim.sim).vms.get(vmid);
  /** A VM setting as it will be after the next restart (pending) or is (current). */
  const setting = (vmid: number, key: string): string | undefined => {
    const config = vm(vmid)?.config;
    return config?.pending?.[key] ?? config?.current?.[key];
  };
  const tagsOf = (vmid: number) => String(setting(vmid, "tags") ?? "").split(/[;, ]+/).filter(Boolean).sort();
  const snippetOn = (node: string) => fs.existsSync(clusterOf(sim.sim).hostPath(node, `/var/lib/vz/snippets/${snippetFile}`));
  const access = () => coreState(sim.sim) as any;
  const user = () => access().users.find((u: any) => u.userid === "compat-ops@pve");
  const poolAcl = () =>
    access()
      .acls.filter((a: any) => a.path === "/pool/compat")
      .map((a: any) => `${a.type} ${a.ugid} ${a.roleid}`)
      .sort();

  beforeAll(async () => {
    // This checkout's provider, current in dist/ for the provider process (as `npm run build`).
    compileToDist(providerSources());
    const penv = await pulumiEnv();
    const started = Date.now();
    release = await buildRelease(OLD_RELEASE_COMMIT, path.join(penv.tmpRoot, `pulumi-pve-${OLD_RELEASE_COMMIT.slice(0, 8)}`));
    process.stderr.write(`[old-state-compat] release ${OLD_RELEASE_COMMIT.slice(0, 8)} built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

    sim = await startSimulator({ seed: 18, cluster: { ...ssh.cluster, localContent: PREPARED_LOCAL_CONTENT } });
    before = snapshotState(sim.sim);
    ts = await createTestStack({ programDir: FIXTURE, stackName: `compat${process.pid}`, simulator: sim, config: proxmoxConfig(sim, ssh) });
    stack = ts.stack;
    // The user's project with the release installed: the program's classes and the provider
    // process's `pulumi-pve` are the release's.
    installPulumiPve(ts.workDir, release);
    compat.pve = require(path.join(release, "dist", "provider", "index.js")) as typeof currentPve;
  }, 10 * 60 * 1000);

  afterAll(async () => {
    if (ts && !destroyed) await ts.stack.destroy().catch(() => undefined);
    await removeStack(ts);
    await sim?.stop();
  });

  it("the release creates the stack", async () => {
    const up = await stack.up();
    expect(up.summary.result).toBe("succeeded");
    expect(up.summary.resourceChanges).toEqual({ create: RESOURCES });
    vmids = up.outputs.vmids.value as number[];
    templateVmid = up.outputs.templateVmid.value as number;
    snippetFile = String(up.outputs.snippet.value).split("/").pop()!;
    expect(vmids).toHaveLength(2);

    // on the simulator
    expect(access().pools.find((p: any) => p.poolid === "compat")).toMatchObject({ comment: "compat pool", vms: [...vmids].sort((a, b) => a - b) });
    expect(user()).toMatchObject({ comment: "operators", tokens: [expect.objectContaining({ tokenid: "ci", comment: "ci" })] });
    expect(access().roles.find((r: any) => r.roleid === "CompatOperator")?.privs).toEqual(["VM.Audit", "VM.PowerMgmt"]);
    expect(poolAcl()).toEqual(["token compat-ops@pve!ci CompatOperator"]);
    expect(vm(templateVmid)?.config.current.template).toBe("1");
    for (const id of vmids) expect(vm(id)?.running).toBe(true);
    expect([snippetOn("pve1"), snippetOn("pve2")]).toEqual([true, false]);

    // The stored stubs name the package, never a directory of this machine: that is what lets
    // another installed version take them over.
    created = await resources();
    expect([...created.keys()].sort()).toEqual([...UPDATED, "VmClone app-2"].sort());
    for (const r of created.values()) {
      expect(r.outputs?.__provider).toContain('"pulumi-pve/dist/provider/resources/dynamic.js"');
      expect(r.outputs?.__provider).not.toContain(release);
      expect(r.outputs?.__provider).not.toContain(REPO_ROOT);
    }

    // From here on, the workspace's pulumi-pve is this checkout, and the release cannot be loaded.
    installPulumiPve(ts!.workDir, REPO_ROOT);
    fs.renameSync(release, `${release}.retired`);
    expect(fs.realpathSync(path.join(ts!.workDir, "node_modules", "pulumi-pve"))).toBe(fs.realpathSync(REPO_ROOT));
    compat.pve = currentPve;
  });

  it("this checkout refreshes the release's state: nothing deleted or replaced, every id kept", async () => {
    const events: EngineEvent[] = [];
    const refresh = await stack.refresh({ onEvent: (e) => events.push(e) });
    expect(refresh.summary.result).toBe("succeeded");
    const counts = refresh.summary.resourceChanges ?? {};
    // a refresh shows `same`, or `update` where the read outputs differ from the stored ones
    expect(Object.keys(counts).filter((op) => op !== "same" && op !== "update")).toEqual([]);
    expect((counts.same ?? 0) + (counts.update ?? 0)).toBe(RESOURCES);
    expect(events.filter((e) => e.diagnosticEvent?.severity === "error").map((e) => e.diagnosticEvent!.message)).toEqual([]);
    refreshed = await resources();
    expect([...refreshed].map(([k, r]) => `${k} ${r.id}`)).toEqual([...created].map(([k, r]) => `${k} ${r.id}`));
  });

  it("previews no change for the same program with this checkout's classes", async () => {
    const events: EngineEvent[] = [];
    const preview = await stack.preview({ onEvent: (e) => events.push(e) });
    expect(preview.changeSummary).toEqual({ same: RESOURCES });
    expect(stepsOf(events)).toEqual([]);
  });

  it("updates one resource of each kind in place, replacing nothing", async () => {
    await stack.setConfig("old-state-compat:changed", { value: "true" });
    const events: EngineEvent[] = [];
    const up = await stack.up({ onEvent: (e) => events.push(e) });
    expect(up.summary.result).toBe("succeeded");
    expect(up.summary.resourceChanges).toEqual({ update: UPDATED.length, same: RESOURCES - UPDATED.length });
    expect(stepsOf(events)).toEqual(UPDATED.map((r) => `${r} update`));
    expect(up.outputs.vmids.value).toEqual(vmids);
    expect(up.outputs.templateVmid.value).toBe(templateVmid);

    // on the simulator
    expect(access().pools.find((p: any) => p.poolid === "compat")?.comment).toBe("compat pool, changed");
    expect(user()).toMatchObject({ comment: "operators, changed", tokens: [expect.objectContaining({ tokenid: "ci", comment: "ci, changed" })] });
    expect(access().roles.find((r: any) => r.roleid === "CompatOperator")?.privs).toEqual(["VM.Audit", "VM.Console", "VM.PowerMgmt"]);
    expect(poolAcl()).toEqual(["token compat-ops@pve!ci CompatOperator", "token compat-ops@pve!ci PVEAuditor"]);
    expect(vm(templateVmid)?.config.current.description).toContain("compat base, changed");
    expect(tagsOf(templateVmid)).toEqual(["changed", "compat"]);
    expect([snippetOn("pve1"), snippetOn("pve2")]).toEqual([true, true]);
    expect([setting(vmids[0], "memory"), setting(vmids[1], "memory")]).toEqual(["1536", "1024"]);
    expect([tagsOf(vmids[0]), tagsOf(vmids[1])]).toEqual([["changed", "compat"], ["compat"]]);

    // app-2, unchanged, still holds the stub the release stored (and the outputs of the
    // refresh): the destroy runs that stub
    const app2 = (await resources()).get("VmClone app-2");
    expect(app2?.outputs).toEqual(refreshed.get("VmClone app-2")?.outputs);
    expect(app2?.outputs?.__provider).toBe(created.get("VmClone app-2")?.outputs?.__provider);
    expect((await stack.preview()).changeSummary).toEqual({ same: RESOURCES });
  });

  it("destroys the stack, leaving the simulator as it was before", async () => {
    const destroy = await stack.destroy();
    expect(destroy.summary.result).toBe("succeeded");
    destroyed = true;
    expect(destroy.summary.resourceChanges).toEqual({ delete: RESOURCES });
    expect(diffSnapshots(before, snapshotState(sim.sim))).toEqual([]);
  });
});
