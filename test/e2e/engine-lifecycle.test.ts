/**
 * The engine's whole lifecycle against the simulator, on a small representative stack
 * (fixtures/engine-lifecycle: user + token + binding, pool, template, snippet, two clones):
 * up; a no-op preview; an in-place update and a replace doing what their preview said; drift
 * made through the simulator's back door found by refresh and repaired by up; a VM made outside
 * the stack adopted with the `import` resource option; changes to the provider's code (a dist
 * file, and the serialised `__provider` stub itself) causing no diff; no plaintext secret in the
 * exported state; and a destroy that leaves the simulator exactly as it was.
 *
 * Fails (does not skip) when the Pulumi CLI cannot be obtained: see scripts/ensure-pulumi.sh.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { PveClient } from "../../provider/proxmox/client";
import { PREPARED_LOCAL_CONTENT } from "../simulator/state/cluster";
import { startSimulator, type RunningSimulator } from "../simulator";
import { diffSnapshots, snapshotState, type StateSnapshot } from "../simulator/snapshot";
import { clusterOf } from "../simulator/state/cluster";
import { compileToDist, createTestStack, disposePulumiEnv, exportStackEncrypted, removeStack, REPO_ROOT, type TestStack } from "./harness";
import { backdoor, changesOf, keyLines, providerSources, proxmoxConfig, sshSetup, tokenClient } from "./engine-lifecycle-support";

jest.setTimeout(15 * 60 * 1000);
afterAll(disposePulumiEnv);

const FIXTURE = path.join(__dirname, "fixtures", "engine-lifecycle");
const PASSWORD = "Lifecycle-Pass-42";
const RESOURCES = 9; // stack, user, token, pool, binding, template, snippet, 2 clones

/** The detailed preview's header of one resource step, e.g. `~ pulumi-nodejs:dynamic/proxmox:VmClone: (update)` + its URN. */
function announced(op: string, type: string, name: string, what: string): RegExp {
  const esc = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`${esc(op)}\\s*pulumi-nodejs:dynamic/proxmox:${type}: \\(${what}\\)\\s*(\\[id=[^\\]]*\\]\\s*)?\\[urn=[^\\]]*::${esc(name)}\\]`);
}

describe("the engine lifecycle of a representative stack", () => {
  const ssh = sshSetup();
  let sim: RunningSimulator;
  let root: PveClient;
  let ts: TestStack | undefined;
  let stack: Stack;
  let before: StateSnapshot;
  let vmids: number[] = [];
  let templateVmid = 0;
  let tokenValue = "";
  const output: string[] = [];
  const onOutput = (line: string) => output.push(line);
  const vm = (vmid: number) => clusterOf(sim.sim).vms.get(vmid);
  const snippetOn = (node: string, file: string) => fs.existsSync(clusterOf(sim.sim).hostPath(node, `/var/lib/vz/snippets/${file}`));

  beforeAll(async () => {
    compileToDist(providerSources());
    // a cluster whose admin enabled snippets and import on `local` (a fresh install has neither on 8.x)
    sim = await startSimulator({ seed: 51, cluster: { ...ssh.cluster, localContent: PREPARED_LOCAL_CONTENT } });
    root = tokenClient(sim, sim.rootToken);
    before = snapshotState(sim.sim);
    ts = await createTestStack({
      programDir: FIXTURE,
      stackName: `lifecycle${process.pid}`,
      simulator: sim,
      config: { ...proxmoxConfig(sim, ssh), "engine-lifecycle:userPassword": { value: PASSWORD, secret: true } },
    });
    stack = ts.stack;
  });

  afterAll(async () => {
    await removeStack(ts);
    await sim?.stop();
  });

  it("creates the stack", async () => {
    const up = await stack.up({ onOutput });
    expect(up.summary.result).toBe("succeeded");
    expect(up.summary.resourceChanges).toEqual({ create: RESOURCES });
    vmids = up.outputs.vmids.value;
    templateVmid = up.outputs.templateVmid.value;
    tokenValue = up.outputs.tokenValue.value;
    expect(up.outputs.tokenValue.secret).toBe(true);
    expect(vmids).toHaveLength(2);
    for (const id of vmids) expect(vm(id)?.running).toBe(true);
    expect((up.outputs.ips.value as string[]).every((ip) => /^\d+\.\d+\.\d+\.\d+$/.test(ip))).toBe(true);
    expect(sim.sim.pools.exists("lifecycle")).toBe(true);
    expect(vm(templateVmid)?.config.current.template).toBe("1");
  });

  it("previews no change right after up", async () => {
    const preview = await stack.preview();
    expect(preview.changeSummary).toEqual({ same: RESOURCES });
  });

  it("updates in place exactly what the preview announced", async () => {
    await stack.setAllConfig({ "engine-lifecycle:memory": { value: "1536" }, "engine-lifecycle:userComment": { value: "operators" } });
    const preview = await stack.preview({ diff: true });
    expect(preview.changeSummary).toEqual({ update: 3, same: RESOURCES - 3 });
    expect(preview.stdout).toMatch(announced("~", "VmClone", "app-1", "update"));
    expect(preview.stdout).toMatch(announced("~", "VmClone", "app-2", "update"));
    expect(preview.stdout).toMatch(announced("~", "User", "ops", "update"));
    expect(preview.stdout).toMatch(/~ memory\s*: 1024 => 1536/);
    expect(preview.stdout).toMatch(/~ comment\s*: "engine lifecycle" => "operators"/);
    const up = await stack.up({ onOutput });
    expect(up.summary.resourceChanges).toEqual({ update: 3, same: RESOURCES - 3 });
    expect(up.outputs.vmids.value).toEqual(vmids); // same VMs
    for (const id of vmids) expect(vm(id)?.config.pending.memory ?? vm(id)?.config.current.memory).toBe("1536");
    expect(sim.sim.access.user("ops@pve")?.comment).toBe("operators");
    expect(changesOf((await stack.preview()).changeSummary)).toEqual({});
  });

  it("replaces exactly what the preview announced (new snippet content: new file, clones point to it)", async () => {
    const oldFile = (await root.qemu.getConfig("pve1", vmids[0])).cicustom as string;
    await stack.setConfig("engine-lifecycle:hostname", { value: "app-v2" });
    const preview = await stack.preview({ diff: true });
    expect(preview.changeSummary).toEqual({ replace: 1, update: 2, same: RESOURCES - 3 });
    expect(preview.stdout).toMatch(announced("+-", "CloudInitSnippet", "user-data", "replace"));
    expect(preview.stdout).toMatch(announced("~", "VmClone", "app-1", "update"));
    const up = await stack.up({ onOutput });
    expect(up.summary.resourceChanges).toEqual({ replace: 1, update: 2, same: RESOURCES - 3 });
    const newVolume = up.outputs.snippet.value as string;
    const newFile = newVolume.split("/").pop()!;
    const oldName = oldFile.split("/").pop()!;
    expect(newFile).not.toBe(oldName);
    for (const node of ["pve1", "pve2", "pve3"]) {
      expect(snippetOn(node, newFile)).toBe(true);
      expect(snippetOn(node, oldName)).toBe(false);
    }
    for (const id of vmids) expect(String((await root.qemu.getConfig("pve1", id)).cicustom)).toBe(`user=${newVolume}`);
    expect(changesOf((await stack.preview()).changeSummary)).toEqual({});
  });

  it("finds drift made through the back door on refresh, and up repairs it", async () => {
    await backdoor(sim, "PUT", `/vms/${vmids[1]}/config`, { set: { name: "renamed-by-hand" } });
    await backdoor(sim, "PUT", `/users/${encodeURIComponent("ops@pve")}`, { comment: "changed by hand" });
    expect(changesOf((await stack.preview()).changeSummary)).toEqual({}); // preview alone does not read PVE
    const refresh = await stack.refresh({ onOutput });
    expect(refresh.summary.resourceChanges).toEqual({ update: 2, same: RESOURCES - 2 });
    const preview = await stack.preview({ diff: true });
    expect(preview.changeSummary).toEqual({ update: 2, same: RESOURCES - 2 });
    expect(preview.stdout).toMatch(announced("~", "VmClone", "app-2", "update"));
    expect(preview.stdout).toMatch(/~ name\s*: "renamed-by-hand" => "app-2"/); // the refreshed VM's inputs name the drift
    expect(preview.stdout).toMatch(/~ comment\s*: "changed by hand" => "operators"/);
    const up = await stack.up({ onOutput });
    expect(up.summary.resourceChanges).toEqual({ update: 2, same: RESOURCES - 2 });
    expect(vm(vmids[1])?.config.current.name).toBe("app-2");
    expect(sim.sim.access.user("ops@pve")?.comment).toBe("operators");
    await stack.refresh({ onOutput });
    expect(changesOf((await stack.preview()).changeSummary)).toEqual({});
  });

  /** How the dynamic-provider host fails an import's Read, by @pulumi/pulumi release. */
  const IMPORT_FAILURE = new RegExp(
    [
      "Cannot read properties of undefined \\(reading 'toJavaScript'\\)", // 3.248
      "code must be a string, not undefined", // 3.276: require-from-string of the absent __provider
    ].join("|"),
  );

  it("cannot adopt a VM with the `import` resource option: the engine's import Read carries no `__provider` (documented limitation)", async () => {
    // The engine's ImportStep calls Read with the id only (no inputs, no state), and the
    // dynamic-provider host needs `__provider` from the properties to know which provider to
    // run: it fails before any provider code runs (@pulumi/pulumi 3.248 with a TypeError,
    // 3.276 loading the undefined `__provider`: see IMPORT_FAILURE). The same holds for `pulumi
    // import` on the command line. This test fails, and says so, the day the engine or the SDK
    // lifts the limitation.
    const IMPORTED = 300;
    await root.qemu.cloneAndWait("pve1", templateVmid, { newid: IMPORTED, name: "adopted" });
    const config = await root.qemu.getConfig("pve1", IMPORTED);
    const mac = /=([0-9A-F:]{17})/i.exec(String(config.net0))![1];
    const size = /size=(\w+)/.exec(String(config.scsi0))![1];
    await stack.setAllConfig({
      "engine-lifecycle:importVmid": { value: String(IMPORTED) },
      "engine-lifecycle:importMac": { value: mac },
      "engine-lifecycle:importDiskSize": { value: size },
    });
    const failed = await stack.preview().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(String(failed?.message)).toMatch(IMPORT_FAILURE);
    expect(String(failed?.message)).toMatch(/VmClone adopted import/);
    const up = await stack.up({ onOutput }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(String(up?.message)).toMatch(IMPORT_FAILURE);
    // Nothing was taken over: the state does not know the VM, which is untouched.
    const state = await stack.exportStack();
    expect(state.deployment.resources.map((r: { urn: string }) => r.urn).filter((u: string) => u.endsWith("::adopted"))).toEqual([]);
    expect(vm(IMPORTED)?.config.current.name).toBe("adopted");
    await stack.removeConfig("engine-lifecycle:importVmid");
    await root.qemu.deleteAndWait("pve1", IMPORTED);
    expect((await stack.preview()).changeSummary).toEqual({ same: RESOURCES });
  });

  it("shows no diff when only the provider's code changed: a dist file, or the serialised stub", async () => {
    const poolJs = path.join(REPO_ROOT, "dist", "provider", "resources", "pool.js");
    const original = fs.readFileSync(poolJs, "utf8");
    try {
      fs.writeFileSync(poolJs, `${original}\n// a rebuilt provider: nothing changed but this comment\n`);
      expect((await stack.preview()).changeSummary).toEqual({ same: RESOURCES });
    } finally {
      fs.writeFileSync(poolJs, original);
    }
    // The Pool declared with a differently written stub: its `__provider` text changes.
    await stack.setConfig("engine-lifecycle:stubVariant", { value: "inline" });
    const preview = await stack.preview({ diff: true });
    expect(preview.changeSummary).toEqual({ same: RESOURCES });
    const up = await stack.up({ onOutput });
    expect(up.summary.resourceChanges).toEqual({ same: RESOURCES });
    const state = await stack.exportStack();
    const pool = state.deployment.resources.find((r: { type: string }) => r.type.endsWith("proxmox:Pool"));
    expect(pool.inputs.__provider).toContain("inline stub");
    await stack.removeConfig("engine-lifecycle:stubVariant");
  });

  it("keeps every secret out of the exported state", async () => {
    const stored = await exportStackEncrypted(ts!);
    expect(stored).toContain("ops@pve!ci");
    expect(stored).not.toContain(tokenValue);
    expect(stored).not.toContain(PASSWORD);
    expect(stored).not.toContain(sim.rootToken.split("=")[1]);
    for (const line of keyLines(ssh.key.private)) expect(stored).not.toContain(line);
    const printed = output.join("");
    expect(printed).not.toContain(tokenValue);
    expect(printed).not.toContain(PASSWORD);
  });

  it("destroys everything, leaving the simulator exactly as it was", async () => {
    const destroy = await stack.destroy({ onOutput });
    expect(destroy.summary.result).toBe("succeeded");
    expect(diffSnapshots(before, snapshotState(sim.sim))).toEqual([]);
  });
});
