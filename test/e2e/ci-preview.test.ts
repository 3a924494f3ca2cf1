/**
 * CI previews and drift checks with a read-only token, through the real Pulumi engine against
 * the simulator. These tests pin down the setup examples/ci/README.md recommends:
 *
 * - credentials live in the environment only, never in the stack config: the admin's `pulumi up`
 *   runs with an admin token in PROXMOX_VE_API_TOKEN, CI with the read-only one;
 * - the stack declares its own read-only CI principal (`ci-readonly@pve!preview`, privsep on,
 *   PVEAuditor on `/` for the token and its user);
 * - the "CI runner" is a second checkout (Pulumi.yaml and Pulumi.<stack>.yaml copied, the same
 *   backend and passphrase) whose environment holds only the read-only token and a read-only
 *   SSH user.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { generateEd25519KeyPair } from "../helpers/ssh-keys";
import { CommandError, LocalWorkspace, type EngineEvent, type PreviewResult, type Stack } from "@pulumi/pulumi/automation";
import { compileToDist, createTestStack, disposePulumiEnv, exportStackEncrypted, linkPackage, removeStack, REPO_ROOT, trackEnvSecrets, trackStack, type TestStack } from "./harness";
import { makeTemplate, startVmSim, type VmSim } from "../unit/resources/vm/sim-setup";
import { changes, parseDiff } from "./preview-diff";

jest.setTimeout(15 * 60 * 1000);
afterAll(disposePulumiEnv);

const FIXTURE = path.join(__dirname, "fixtures", "ci-preview");
const CI_TOKEN_ID = "ci-readonly@pve!preview";

function providerSources(dir = path.join(REPO_ROOT, "provider")): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return providerSources(p);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [p] : [];
  });
}

describe.each(["9.1", "8.4"] as const)("CI preview and drift check with a read-only token (PVE %s)", (pveVersion) => {
  const adminKey = generateEd25519KeyPair({ comment: "admin" });
  const ciKey = generateEd25519KeyPair({ comment: "ci" });
  let v: VmSim;
  let ts: TestStack | undefined;
  let admin: Stack;
  let ci: Stack;
  let ciWorkDir: string;
  let vmids: number[] = [];

  const log = () => v.s.sim.requestLog;
  const requestsSince = (from: number) => log().slice(from).map((e) => ({ call: `${e.method} ${e.path}`, method: e.method, principal: e.principal, status: e.status }));
  /** What CI sees of the repository: the project file and the stack's config file (as committed). */
  const syncCheckout = () => {
    for (const f of fs.readdirSync(ts!.workDir)) if (/^Pulumi\..*ya?ml$/.test(f)) fs.copyFileSync(path.join(ts!.workDir, f), path.join(ciWorkDir, f));
  };

  beforeAll(async () => {
    compileToDist(providerSources());
    v = await startVmSim({
      seed: 57,
      pveVersion,
      timeFactor: 0.005,
      cluster: { sshUsers: { root: { keys: [adminKey.public] }, ciaudit: { keys: [ciKey.public] } } },
    });
    await makeTemplate(v.api, 9000);
    const s = v.s;
    ts = await createTestStack({
      programDir: FIXTURE,
      stackName: `ci${pveVersion.replace(".", "")}-${process.pid}`,
      simulator: s,
      // Only non-secret connection settings in the stack config.
      config: {
        "proxmox:endpoint": { value: s.url },
        "proxmox:caCert": { value: s.caCert },
        "proxmox:sshNodes": { value: JSON.stringify(Object.fromEntries(s.nodes.map((n) => [n.name, { host: "127.0.0.1", port: n.sshPort }]))) },
        "proxmox:sshHostKeys": { value: JSON.stringify(Object.fromEntries(s.nodes.map((n) => [n.name, n.hostKeyFingerprint]))) },
        "ci:memory": { value: "1024" },
        "ci:motd": { value: "#cloud-config\nhostname: web\n" },
      },
      // The admin's credentials: environment only.
      envVars: { PROXMOX_VE_API_TOKEN: s.rootToken, PROXMOX_VE_SSH_USERNAME: "root", PROXMOX_VE_SSH_PRIVATE_KEY: adminKey.private },
    });
    admin = ts.stack;
    const up = await admin.up();
    expect(up.summary.result).toBe("succeeded");
    vmids = up.outputs.vmids.value as number[];
    const ciToken = up.outputs.ciApiToken.value as string;

    // The CI runner: a fresh checkout of the same project, the read-only credentials in its environment.
    ciWorkDir = fs.mkdtempSync(path.join(ts.env.tmpRoot, "ci-runner-"));
    linkPackage(ciWorkDir);
    syncCheckout();
    const envVars: Record<string, string> = {};
    for (const [k, val] of Object.entries(ts.env.env)) if (val !== undefined) envVars[k] = val;
    Object.assign(envVars, { PROXMOX_VE_API_TOKEN: ciToken, PROXMOX_VE_SSH_USERNAME: "ciaudit", PROXMOX_VE_SSH_PRIVATE_KEY: ciKey.private });
    ci = await LocalWorkspace.selectStack(
      { stackName: admin.name, projectName: "ci-preview", program: require(FIXTURE) },
      { workDir: ciWorkDir, pulumiHome: ts.env.env.PULUMI_HOME, pulumiCommand: ts.env.command, envVars },
    );
    // The CI runner's credentials and everything its previews print join the suite's secret scan
    // (not verbose: the drift check's test reads the diff out of the CLI's error message).
    trackEnvSecrets(envVars, "the CI runner's environment");
    trackStack({ stack: ci, workDir: ciWorkDir, env: ts.env }, { verboseLogs: false, label: "CI runner" });
  });

  afterAll(async () => {
    if (admin) await admin.destroy().catch(() => undefined);
    await removeStack(ts);
    await v?.stop();
  });

  it("keeps credentials out of the stack config and the state: the stack declares the read-only token", async () => {
    const stackFile = fs.readFileSync(path.join(ts!.workDir, `Pulumi.${admin.name}.yaml`), "utf8");
    expect(stackFile).toContain("proxmox:endpoint");
    expect(stackFile).not.toMatch(/apiToken|password|sshPrivateKey/);
    const state = await exportStackEncrypted(ts!);
    expect(state).not.toContain(v.s.rootToken.split("=")[1]);
    expect(state).not.toContain("PRIVATE KEY");
    // PVEAuditor on / for the token and for its user (privsep: the token gets the intersection)
    const acl = (await v.api.access.getAcl()).filter((a) => a.ugid.startsWith("ci-readonly@pve"));
    expect(acl.map((a) => `${a.type}:${a.ugid}:${a.path}:${a.roleid}`).sort()).toEqual([`token:${CI_TOKEN_ID}:/:PVEAuditor`, "user:ci-readonly@pve:/:PVEAuditor"]);
  });

  it("previews a converged stack as the read-only token: no change, no API call without --refresh, only reads by that token with it", async () => {
    const from = log().length;
    const plain = await ci.preview({ diff: true, expectNoChanges: true });
    expect(plain.changeSummary).toEqual({ same: 8 });
    expect(requestsSince(from)).toEqual([]); // check() and diff() of unchanged inputs ask PVE nothing

    const from2 = log().length;
    const refreshed = await ci.preview({ diff: true, refresh: true, expectNoChanges: true });
    expect(refreshed.changeSummary).toEqual({ same: 8 });
    expect(changes(refreshed.stdout)).toEqual({});
    expect(refreshed.stdout).not.toContain("__provider");
    const calls = requestsSince(from2);
    expect(calls.length).toBeGreaterThan(5);
    expect(calls.filter((c) => c.method !== "GET")).toEqual([]);
    expect([...new Set(calls.map((c) => c.principal))]).toEqual([CI_TOKEN_ID]);
    // every VM and the snippet were actually read
    for (const id of vmids) expect(calls.some((c) => c.call.startsWith(`GET /nodes/pve1/qemu/${id}/`))).toBe(true);
  });

  it("fails the drift check with the drifted property after a change behind the stack's back; passes again after up", async () => {
    // an operator doubles web-1's memory in the PVE UI
    await fetchBackdoor("PUT", `/_sim/vms/${vmids[1]}/config`, { set: { memory: 4096 } });
    syncCheckout();
    const from = log().length;
    const err = await ci.preview({ diff: true, refresh: true, expectNoChanges: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CommandError);
    // the CommandError's message holds the CLI's output twice (stderr, then err?); read it once
    const text = String((err as CommandError).message).split(" err?: ")[0];
    expect(text).toContain("error: no changes were expected for preview but changes were proposed");
    // the refresh part names what drifted, the preview part what `pulumi up` would do about it
    const refreshed = parseDiff(text).filter((b) => b.op === "refresh" && Object.values(b.props).some((p) => p.marker));
    expect(refreshed.map((b) => [b.type, b.name, Object.keys(b.props)])).toEqual([["VmClone", "web-1", ["memory"]]]);
    expect(refreshed[0].props.memory.line).toMatch(/^~ memory\s*: 1024 => 4096$/);
    // ...and the update names it too (read() returns the refreshed inputs), as the change back
    expect(changes(text)).toEqual({ "VmClone web-1": { op: "update", changed: { memory: expect.stringMatching(/^~ memory\s*: 4096 => 1024$/) } } });
    expect(requestsSince(from).filter((c) => c.method !== "GET")).toEqual([]);

    // a preview's refresh is not saved: the repair is `pulumi up --refresh` (a plain `up` compares with the old state)
    expect((await admin.preview()).changeSummary).toEqual({ same: 8 });
    const repair = await admin.up({ refresh: true });
    expect(repair.summary.resourceChanges).toMatchObject({ update: 1 });
    const clean = await ci.preview({ diff: true, refresh: true, expectNoChanges: true });
    expect(clean.changeSummary).toEqual({ same: 8 });
  });

  it("previews a merge request's change to one VM's memory and one snippet's content as exactly those changes", async () => {
    await admin.setConfig("ci:memory", { value: "2048" });
    await admin.setConfig("ci:motd", { value: "#cloud-config\nhostname: web2\n" });
    syncCheckout();
    const from = log().length;
    const events: EngineEvent[] = [];
    const pv: PreviewResult = await ci.preview({ diff: true, refresh: true, onEvent: (e) => events.push(e) });
    expect(pv.changeSummary).toEqual({ same: 6, update: 1, replace: 1 });
    const diff = changes(pv.stdout);
    expect(Object.keys(diff).sort()).toEqual(["CloudInitSnippet motd", "VmClone web-0"]);
    expect(diff["VmClone web-0"]).toEqual({ op: "update", changed: { memory: expect.stringMatching(/^~ memory\s*: 1024 => 2048$/) } });
    // the snippet: new content is a new content-addressed file, so `file` forces the replacement;
    // every line is a real change (outputs that follow from the inputs are predicted by check())
    const snippet = diff["CloudInitSnippet motd"];
    expect(snippet.op).toBe("replace");
    expect(Object.keys(snippet.changed).sort()).toEqual(["cicustom", "content", "file", "path", "sha256", "size", "volumeId"]);
    expect(Object.values(snippet.changed).every((l) => l.startsWith("~ "))).toBe(true);
    expect(snippet.changed.file).toMatch(/^~ file\s*: "motd-[0-9a-f]{12}\.yaml" => "motd-[0-9a-f]{12}\.yaml"$/);
    expect(pv.stdout).toMatch(/~ hostname: "web" => "web2"/);
    // the forcing property, named: by the provider on stderr, and in the engine's replace reasons
    expect(pv.stderr).toMatch(/\[pulumi-pve\] CloudInitSnippet local:snippets\/motd-[0-9a-f]{12}\.yaml will be replaced: file cannot change in place/);
    const replaced = events.flatMap((e) => (e.resourcePreEvent?.metadata.op === "replace" ? [e.resourcePreEvent.metadata] : []));
    expect(replaced.map((m) => [m.urn.split("::").pop(), m.keys])).toEqual([["motd", ["file"]]]);
    expect(pv.stdout).not.toContain("__provider");
    expect(requestsSince(from).filter((c) => c.method !== "GET" || c.principal !== CI_TOKEN_ID)).toEqual([]);
    // nothing was written
    expect(v.cluster.vms.get(vmids[0]).config.current.memory).toBe("1024");
  });

  it("shows no change when only the serialised provider changed (an upgraded pulumi-pve), and never displays __provider", async () => {
    await admin.setConfig("ci:memory", { value: "1024" });
    await admin.setConfig("ci:motd", { value: "#cloud-config\nhostname: web\n" });
    syncCheckout();
    const state = await admin.exportStack();
    let stubs = 0;
    for (const r of state.deployment.resources as Array<{ inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }>) {
      for (const props of [r.inputs, r.outputs]) {
        if (typeof props?.__provider === "string") {
          props.__provider = `${props.__provider}\n// serialised by an older build\n`;
          stubs++;
        }
      }
    }
    expect(stubs).toBe(14); // 7 dynamic resources, inputs and outputs
    await admin.importStack(state);
    const pv = await ci.preview({ diff: true, refresh: true, expectNoChanges: true });
    expect(pv.changeSummary).toEqual({ same: 8 });
    expect(pv.stdout).not.toContain("__provider");
    expect(pv.stdout).not.toMatch(/^\s+[~+-]\s/m);
  });

  it("previews changed references as the read-only token with reads only, and looks up only what changed", async () => {
    // The admin adds a template to the stack (and a second storage for VM images to move it to).
    await v.api.storage.create({ storage: "tpl-store", type: "dir", path: "/srv/tpl-store", content: "images" });
    await admin.setConfig("ci:template", { value: "on" });
    const added = await admin.up();
    expect(added.summary.resourceChanges).toMatchObject({ create: 1 });
    syncCheckout();

    // Unchanged references: check() asks PVE nothing, even for the template's node and storages.
    let from = log().length;
    expect((await ci.preview({ diff: true, expectNoChanges: true })).changeSummary).toEqual({ same: 9 });
    expect(requestsSince(from)).toEqual([]);
    // A change that is no reference (web-1's memory stays, web-0's changes): no lookup, only the
    // one request that proves the credentials can carry the update out (a preview fails where up would).
    await admin.setConfig("ci:memory", { value: "1536" });
    syncCheckout();
    from = log().length;
    expect((await ci.preview({ diff: true })).changeSummary).toEqual({ same: 8, update: 1 });
    expect(requestsSince(from).map((c) => c.call)).toEqual(["GET /version"]);
    await admin.setConfig("ci:memory", { value: "1024" });

    // web-1 moves to pve2, the template to another storage: check() looks both up, with reads
    // by the read-only token only, and the preview names exactly those properties.
    await admin.setConfig("ci:web1Node", { value: "pve2" });
    await admin.setConfig("ci:templateStorage", { value: "tpl-store" });
    syncCheckout();
    from = log().length;
    const pv = await ci.preview({ diff: true });
    expect(pv.changeSummary).toEqual({ same: 7, update: 1, replace: 1 });
    const diff = changes(pv.stdout);
    expect(diff["VmClone web-1"]).toEqual({ op: "update", changed: { node: expect.stringMatching(/^~ node\s*: "pve1" => "pve2"$/) } });
    expect(diff["Template base"].op).toBe("replace");
    expect(Object.keys(diff["Template base"].changed)).toContain("storage");
    const calls = requestsSince(from);
    expect(calls.filter((c) => c.method !== "GET" || c.principal !== CI_TOKEN_ID)).toEqual([]);
    // one cluster view serves both checks (cached per provider process); nothing else is read but
    // the credentials' probe
    expect(calls.map((c) => c.call.replace(/\?.*$/, "")).sort()).toEqual(["GET /cluster/resources", "GET /version"]);

    // A reference that does not exist fails the preview, naming the property, still read-only.
    await admin.setConfig("ci:templateStorage", { value: "nosuch" });
    syncCheckout();
    from = log().length;
    const failed = await ci.preview({ diff: true }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(String(failed?.message)).toMatch(/Template resource 'base': property storage value \{nosuch\} has a problem: storage 'nosuch' does not exist/);
    const failedCalls = requestsSince(from);
    expect(failedCalls.length).toBeGreaterThan(0);
    expect(failedCalls.filter((c) => c.method !== "GET" || c.principal !== CI_TOKEN_ID)).toEqual([]);

    // nothing was written: web-1 is still on pve1, the template where it was built
    expect(v.cluster.vms.get(vmids[1]).node).toBe("pve1");
    await admin.removeConfig("ci:web1Node");
    await admin.removeConfig("ci:templateStorage");
    syncCheckout();
    expect((await ci.preview({ diff: true, expectNoChanges: true })).changeSummary).toEqual({ same: 9 });
  });

  async function fetchBackdoor(method: string, p: string, body: unknown): Promise<void> {
    const { request } = await import("node:https");
    await new Promise<void>((resolve, reject) => {
      const url = new URL(p, v.s.url);
      const req = request(url, { method, ca: v.s.caCert, headers: { Authorization: `SimAdmin ${v.s.adminSecret}`, "Content-Type": "application/json" } }, (res) => {
        res.resume();
        res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`back door ${method} ${p}: HTTP ${res.statusCode}`))));
      });
      req.on("error", reject);
      req.end(JSON.stringify(body));
    });
  }
});
