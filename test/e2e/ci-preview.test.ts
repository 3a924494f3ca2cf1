/**
 * CI previews and drift checks with a read-only token, through the real Pulumi engine against
 * the simulator (see examples/ci/README.md for the setup these tests pin down):
 *
 * - the stack is built by an "admin" workspace whose credentials are in the environment, never
 *   in the stack config; the stack declares its own read-only CI principal
 *   (`ci-readonly@pve!preview`, privsep, PVEAuditor on `/`);
 * - a "CI runner" workspace (a fresh checkout: Pulumi.yaml + Pulumi.<stack>.yaml copied, the
 *   same backend) runs with the read-only token and a read-only SSH user in its environment;
 * - its `preview --refresh --diff` on the converged stack shows no change and makes only reads,
 *   all as the read-only token;
 * - a change to one VM's memory and one snippet's content previews as exactly those changes
 *   (the snippet as a replacement naming `file`, the content-addressed file name that forces it);
 * - drift made through the simulator's back door fails `--expect-no-changes` with the property
 *   named; after the admin's `pulumi up` the drift check passes again.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { utils } from "ssh2";
import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation";
import { compileToDist, createTestStack, disposePulumiEnv, linkPackage, removeStack, REPO_ROOT, type TestStack } from "./harness";
import { makeTemplate, startVmSim, type VmSim } from "../unit/resources/vm/sim-setup";
import { clusterOf } from "../simulator/state/cluster";

jest.setTimeout(15 * 60 * 1000);
afterAll(disposePulumiEnv);

const FIXTURE = path.join(__dirname, "fixtures", "ci-preview");

function providerSources(dir = path.join(REPO_ROOT, "provider")): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return providerSources(p);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [p] : [];
  });
}

describe("CI preview and drift check with a read-only token", () => {
  const adminKey = utils.generateKeyPairSync("ed25519", { comment: "admin" });
  const ciKey = utils.generateKeyPairSync("ed25519", { comment: "ci" });
  let v: VmSim;
  let ts: TestStack | undefined;
  let admin: Stack;
  let ci: Stack;
  let ciWorkDir: string;

  beforeAll(async () => {
    compileToDist(providerSources());
    v = await startVmSim({
      seed: 57,
      timeFactor: 0.005,
      cluster: { sshUsers: { root: { keys: [adminKey.public] }, ciaudit: { keys: [ciKey.public] } } },
    });
    await makeTemplate(v.api, 9000);
    const s = v.s;
    ts = await createTestStack({
      programDir: FIXTURE,
      stackName: `ci${process.pid}`,
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
      envVars: {
        PROXMOX_VE_API_TOKEN: s.rootToken,
        PROXMOX_VE_SSH_USERNAME: "root",
        PROXMOX_VE_SSH_PRIVATE_KEY: adminKey.private,
      },
    });
    admin = ts.stack;
  });

  afterAll(async () => {
    if (admin) await admin.destroy().catch(() => undefined);
    await removeStack(ts);
    await v?.stop();
  });

  it("explores", async () => {
    const up = await admin.up();
    expect(up.summary.result).toBe("succeeded");
    const ciToken = up.outputs.ciApiToken.value as string;
    expect(ciToken.startsWith("ci-readonly@pve!preview=")).toBe(true);

    // the CI runner's checkout
    ciWorkDir = fs.mkdtempSync(path.join(ts!.env.tmpRoot, "ci-runner-"));
    linkPackage(ciWorkDir);
    for (const f of fs.readdirSync(ts!.workDir)) if (/^Pulumi\..*ya?ml$/.test(f)) fs.copyFileSync(path.join(ts!.workDir, f), path.join(ciWorkDir, f));
    const envVars: Record<string, string> = {};
    for (const [k, val] of Object.entries(ts!.env.env)) if (val !== undefined) envVars[k] = val;
    Object.assign(envVars, { PROXMOX_VE_API_TOKEN: ciToken, PROXMOX_VE_SSH_USERNAME: "ciaudit", PROXMOX_VE_SSH_PRIVATE_KEY: ciKey.private });
    ci = await LocalWorkspace.selectStack(
      { stackName: admin.name, projectName: "ci-preview", program: require(FIXTURE) },
      { workDir: ciWorkDir, pulumiHome: ts!.env.env.PULUMI_HOME, pulumiCommand: ts!.env.command, envVars },
    );
    const log0 = v.s.sim.requestLog.length;
    const pv = await ci.preview({ diff: true, refresh: true, expectNoChanges: true });
    console.log(pv.stdout, pv.changeSummary);
    console.log(v.s.sim.requestLog.slice(log0).map((e) => `${e.method} ${e.path} ${e.status} ${e.principal}`).join("\n"));

    await admin.setConfig("ci:memory", { value: "2048" });
    await admin.setConfig("ci:motd", { value: "#cloud-config\nhostname: web2\n" });
    for (const f of fs.readdirSync(ts!.workDir)) if (/^Pulumi\..*ya?ml$/.test(f)) fs.copyFileSync(path.join(ts!.workDir, f), path.join(ciWorkDir, f));
    const log1 = v.s.sim.requestLog.length;
    const pv2 = await ci.preview({ diff: true });
    console.log(pv2.stdout, pv2.changeSummary);
    console.log(v.s.sim.requestLog.slice(log1).map((e) => `${e.method} ${e.path} ${e.status} ${e.principal}`).join("\n"));
    void clusterOf;
  });
});
