/**
 * What `pulumi preview --diff` displays is what `pulumi up` then does (issue 16), through the real
 * engine against the simulator, for the cases where it did not:
 * - only an ApiToken's comment changes: the binding to the token is not shown replaced (the full
 *   token id is known at preview);
 * - a Template is replaced: the PermissionCheck naming its VMID shows only that path changing,
 *   its privilege lists still sorted as the state has them;
 * - a CloudInitSnippet on the default nodes is replaced: no `- nodes` / `- targetNodes`;
 * - a VmClone given only `templateVmid` previews and is created (its node found).
 * Each preview's steps (URN, operation, replace reasons) are those of the `up` that follows.
 */
import * as path from "node:path";
import type { EngineEvent, Stack } from "@pulumi/pulumi/automation";
import { PREPARED_LOCAL_CONTENT } from "../simulator/state/cluster";
import { makeTemplate, startVmSim, type VmSim } from "../unit/resources/vm/sim-setup";
import { compileToDist, createTestStack, disposePulumiEnv, removeStack, type TestStack } from "./harness";
import { providerSources, proxmoxConfig, sshSetup } from "./engine-lifecycle-support";
import { changes, parseDiff, stepsOf } from "./preview-diff";

jest.setTimeout(10 * 60 * 1000);
afterAll(disposePulumiEnv);

describe("preview --diff shows what up does", () => {
  const ssh = sshSetup();
  let v: VmSim;
  let ts: TestStack | undefined;
  let stack: Stack;

  /** Preview (with --diff) then up; both their steps, and the preview's output. */
  async function previewThenUp(): Promise<{ stdout: string; stderr: string; previewed: string[]; done: string[] }> {
    const pe: EngineEvent[] = [];
    const pv = await stack.preview({ diff: true, onEvent: (e) => pe.push(e) });
    const ue: EngineEvent[] = [];
    await stack.up({ onEvent: (e) => ue.push(e) });
    expect((await stack.preview({ expectNoChanges: true })).changeSummary).toMatchObject({ same: expect.any(Number) });
    return { stdout: pv.stdout, stderr: pv.stderr, previewed: stepsOf(pe), done: stepsOf(ue) };
  }

  beforeAll(async () => {
    compileToDist(providerSources());
    v = await startVmSim({ seed: 163, timeFactor: 0.005, cluster: { localContent: PREPARED_LOCAL_CONTENT, ...ssh.cluster } });
    await makeTemplate(v.api, 9000);
    ts = await createTestStack({
      programDir: path.join(__dirname, "fixtures", "preview-plan"),
      stackName: `plan${process.pid}`,
      simulator: v.s,
      config: proxmoxConfig(v.s, ssh),
      verboseLogs: false,
    });
    stack = ts.stack;
  });
  afterAll(async () => {
    await stack?.destroy().catch(() => undefined);
    await removeStack(ts);
    await v?.stop();
  });

  it("creates a clone given only templateVmid (its node found), and a snippet on every online node", async () => {
    const r = await previewThenUp();
    expect(r.previewed).toEqual(r.done);
    expect(r.done).toContain("VmClone web create");
    const out = (await stack.outputs());
    expect(out.cloneNode.value).toBe("pve1");
    expect(out.motdNodes.value).toEqual(["pve1", "pve2", "pve3"]);
    expect(out.tokenId.value).toBe("fid@pve!ci");
  });

  it("a token's comment: the token is updated, its binding is not replaced", async () => {
    await stack.setConfig("plan:tokenComment", { value: "second" });
    const r = await previewThenUp();
    expect(r.previewed).toEqual(["ApiToken ci update"]);
    expect(r.done).toEqual(r.previewed);
    expect(changes(r.stdout)).toEqual({ "ApiToken ci": { op: "update", changed: { comment: expect.stringMatching(/^~ comment\s*: "first" => "second"$/) } } });
    expect(r.stderr).not.toMatch(/UserRoleBinding .* will be replaced/);
  });

  it("a replaced template: the check naming its VMID changes that path only, its privileges still sorted", async () => {
    await stack.setConfig("plan:templateMemory", { value: "1024" });
    const r = await previewThenUp();
    expect(r.done).toEqual(r.previewed);
    expect(r.previewed).toEqual(["PermissionCheck root-can-clone update", "Template base create-replacement (memory)", "Template base delete-replaced", "Template base replace (memory)"]);
    const check = parseDiff(r.stdout).find((b) => b.name === "root-can-clone");
    expect(Object.entries(check?.props ?? {}).filter(([, p]) => p.marker).map(([k]) => k)).toEqual(["requirements"]);
    const block = r.stdout.slice(r.stdout.indexOf("root-can-clone"));
    const lines = block.slice(0, block.indexOf("pulumi-nodejs:dynamic", 1)).split("\n").filter((l) => /=>/.test(l));
    expect(lines.map((l) => l.trim())).toEqual([expect.stringMatching(/^~ path\s*: "\/vms\/\d+" => \[unknown\]$/)]);
  });

  it("a replaced snippet on the default nodes: only what changes is shown, nodes stay", async () => {
    await stack.setConfig("plan:motd", { value: "#cloud-config\nhostname: plan2\n" });
    const r = await previewThenUp();
    expect(r.done).toEqual(r.previewed);
    expect(r.previewed).toEqual(["CloudInitSnippet motd create-replacement (file)", "CloudInitSnippet motd delete-replaced", "CloudInitSnippet motd replace (file)", "VmClone web update"]);
    const snippet = changes(r.stdout)["CloudInitSnippet motd"];
    expect(Object.keys(snippet.changed).sort()).toEqual(["cicustom", "content", "file", "path", "sha256", "size", "volumeId"]);
    expect(Object.values(snippet.changed).every((l) => l.startsWith("~ "))).toBe(true);
    // the clone's cicustom follows the new volume id, known at preview
    expect(changes(r.stdout)["VmClone web"].changed).toEqual({ cicustom: expect.stringMatching(/^~ cicustom\s*: \{/) });
  });
});
