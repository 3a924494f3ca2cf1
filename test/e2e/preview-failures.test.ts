/**
 * A preview fails where `up` would (issue 16), through the real engine against the simulator:
 * with a wrong API token, without the cluster's CA, or with an unreachable endpoint, `pulumi
 * preview` exits non-zero with the message `pulumi up` gives, and creates nothing. With a
 * read-only token it passes: the CI auditor (PVEAuditor on `/`) sees everything it checks; a
 * token that sees only its pool gets warnings naming what it could not check and the privilege.
 */
import * as path from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { PREPARED_LOCAL_CONTENT } from "../simulator/state/cluster";
import { makeTemplate, startVmSim, type VmSim } from "../unit/resources/vm/sim-setup";
import { compileToDist, createTestStack, disposePulumiEnv, removeStack, trackEnvSecrets, type TestStack } from "./harness";
import { providerSources, proxmoxConfig, sshSetup } from "./engine-lifecycle-support";

jest.setTimeout(10 * 60 * 1000);
afterAll(disposePulumiEnv);

/** The CLI's error output of a failed operation, read once (the CommandError's message holds it twice). */
async function failure(op: Promise<unknown>): Promise<string> {
  const err = await op.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(err).toBeDefined();
  return String(err?.message).split(" err?: ")[0];
}

/** The provider's message in the CLI's output: the text after a resource's `error: ` that names
 *  the problem. (The same message is also printed for the stack, as the SDK's host logs
 *  `${err}: ${err.stack}`, in an order that varies from run to run: that line is not the one.) */
function providerError(text: string, pattern: RegExp): string {
  const lines = text.split("\n").map((l) => l.replace(/\x1b\[[0-9;]*m/g, "").trim()).filter((l) => pattern.test(l));
  const line = lines.find((l) => /error: $/.test(l.slice(0, l.search(pattern))));
  expect(line).toBeDefined();
  return line!.slice(line!.search(pattern));
}

describe("preview with credentials or a connection that up could not use", () => {
  const ssh = sshSetup();
  let v: VmSim;
  let ts: TestStack | undefined;
  let stack: Stack;
  const WRONG = "00000000-0000-4000-8000-000000000000";

  beforeAll(async () => {
    compileToDist(providerSources());
    v = await startVmSim({ seed: 167, timeFactor: 0.005, cluster: { localContent: PREPARED_LOCAL_CONTENT, ...ssh.cluster } });
    await makeTemplate(v.api, 9000);
    ts = await createTestStack({
      programDir: path.join(__dirname, "fixtures", "preview-plan"),
      stackName: `planfail${process.pid}`,
      simulator: v.s,
      config: { ...proxmoxConfig(v.s, ssh), "plan:clone": { value: "false" } },
      verboseLogs: false,
    });
    stack = ts.stack;
  });
  // a failed test must not leave the next one with its broken connection settings
  afterEach(async () => {
    await stack?.setAllConfig({ "proxmox:apiToken": { value: v.s.rootToken, secret: true }, "proxmox:caCert": { value: v.s.caCert }, "proxmox:endpoint": { value: v.s.url } });
  });
  afterAll(async () => {
    await stack?.setConfig("proxmox:apiToken", { value: v.s.rootToken, secret: true }).catch(() => undefined);
    await stack?.destroy().catch(() => undefined);
    await removeStack(ts);
    await v?.stop();
  });

  /** preview and up both fail, with the same provider message matching `pattern`; nothing is created. */
  async function failsLikeUp(pattern: RegExp): Promise<string> {
    const before = v.s.sim.requestLog.filter((e) => e.method !== "GET").length;
    const pv = await failure(stack.preview({ diff: true }));
    const up = await failure(stack.up());
    const said = providerError(pv, pattern);
    expect(providerError(up, pattern)).toBe(said);
    expect(v.s.sim.requestLog.filter((e) => e.method !== "GET").length).toBe(before);
    const state = (await stack.exportStack()).deployment.resources ?? [];
    expect(state.filter((r: { type: string }) => r.type.startsWith("pulumi-nodejs:dynamic/"))).toEqual([]);
    return said;
  }

  it("a wrong API token: non-zero exit, the authentication error up gives, no secret in it", async () => {
    const wrong = `${v.s.rootToken.split("=")[0]}=${WRONG}`;
    trackEnvSecrets({ PROXMOX_VE_API_TOKEN: wrong }, "the wrong token");
    await stack.setConfig("proxmox:apiToken", { value: wrong, secret: true });
    const said = await failsLikeUp(/authentication failed for token '/);
    expect(said).toMatch(/^authentication failed for token 'root@pam!\w+' at https:\/\/127\.0\.0\.1:\d+ \(PVE said: .*\): check the token id and secret/);
    expect(said).not.toContain(WRONG);
    await stack.setConfig("proxmox:apiToken", { value: v.s.rootToken, secret: true });
  });

  it("without the cluster's CA: the TLS error up gives, saying how to fix it", async () => {
    await stack.removeConfig("proxmox:caCert");
    const said = await failsLikeUp(/TLS verification of /);
    expect(said).toMatch(/^TLS verification of https:\/\/127\.0\.0\.1:\d+ failed for GET \/version \(\w+.*Set `proxmox:caCert`/);
    await stack.setConfig("proxmox:caCert", { value: v.s.caCert });
  });

  it("an unreachable endpoint: the network error up gives", async () => {
    await stack.setConfig("proxmox:endpoint", { value: "https://127.0.0.1:9" });
    const said = await failsLikeUp(/could not complete GET \/version/);
    expect(said).toMatch(/^could not complete GET \/version at https:\/\/127\.0\.0\.1:9: ECONNREFUSED/);
    await stack.setConfig("proxmox:endpoint", { value: v.s.url });
  });

  it("read-only tokens: the auditor previews cleanly; a token that sees only its pool is warned about what it could not check", async () => {
    expect((await stack.up()).summary.result).toBe("succeeded");
    const auditor = await v.api.access.createToken("root@pam", "auditor", { privsep: true });
    await v.api.access.updateAcl({ path: "/", roles: ["PVEAuditor"], tokens: [auditor.fullTokenId] });
    await v.api.access.createUser("team-ci@pve");
    const narrow = await v.api.access.createToken("team-ci@pve", "preview", { privsep: false });
    await v.api.access.updateAcl({ path: "/pool/team", roles: ["PVEAuditor"], users: ["team-ci@pve"] });
    // the change under review: a second clone on pve2 (a create: its references are looked up)
    await stack.setConfig("plan:extraNode", { value: "pve2" });
    const writes = () => v.s.sim.requestLog.filter((e) => e.method !== "GET").length;
    const before = writes();

    await stack.setConfig("proxmox:apiToken", { value: `${auditor.fullTokenId}=${auditor.secret}`, secret: true });
    const full = await stack.preview({ diff: true });
    expect(full.changeSummary).toMatchObject({ create: 1 });
    expect(full.stderr).not.toMatch(/warning: could not check/);

    await stack.setConfig("proxmox:apiToken", { value: `${narrow.fullTokenId}=${narrow.secret}`, secret: true });
    const seen = await stack.preview({ diff: true });
    expect(seen.changeSummary).toMatchObject({ create: 1 });
    expect(seen.stderr).toMatch(/\[pulumi-pve\] warning: could not check node 'pve1' \(templateNode\), node 'pve2' \(node\): token 'team-ci@pve!preview' sees no node in the cluster \(that needs Sys\.Audit on \/nodes\)/);
    expect(seen.stderr).not.toContain(narrow.secret);
    expect(writes()).toBe(before);
    await stack.setConfig("proxmox:apiToken", { value: v.s.rootToken, secret: true });
    await stack.removeConfig("plan:extraNode");
  });
});
