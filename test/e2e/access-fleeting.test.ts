/**
 * The fleeting plugin's access setup through the real Pulumi engine, against the simulator:
 * user, token, pool (template + storage) and role bindings, then the new token's own secret
 * proves them by the permission model: cloning the template into the pool works, cloning
 * outside it is refused with 403. Also: no-op preview with a fleet VM in the pool, ACL drift
 * found by refresh and repaired by up, no secret in the stored state or the engine's output,
 * and a destroy that refuses a pool still holding a VM the stack did not place there.
 *
 * Fails (does not skip) when the Pulumi CLI cannot be obtained: see scripts/ensure-pulumi.sh.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { PveClient } from "../../provider/proxmox/client";
import { isPermissionDenied } from "../../provider/proxmox/errors";
import { startSimulator, type RunningSimulator } from "../simulator";
import { compileToDist, createTestStack, disposePulumiEnv, exportStackEncrypted, removeStack, REPO_ROOT, type TestStack } from "./harness";

const FIXTURE = path.join(__dirname, "fixtures", "access-fleeting");
const TEMPLATE = 9000;
const USER_PASSWORD = "fleeting-Pass-0ne";

jest.setTimeout(15 * 60 * 1000);

/** Every provider source file, transpiled to dist/ when newer (the engine's provider process requires dist/). */
function providerSources(dir = path.join(REPO_ROOT, "provider")): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return providerSources(p);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [p] : [];
  });
}

function tokenClient(sim: RunningSimulator, apiToken: string): PveClient {
  const eq = apiToken.indexOf("=");
  return new PveClient({ endpoint: sim.url, credentials: { kind: "token", tokenId: apiToken.slice(0, eq), secret: apiToken.slice(eq + 1) }, tls: { caCert: sim.caCert } });
}

function changesOf(summary: Record<string, number | undefined> | undefined): Array<[string, number | undefined]> {
  return Object.entries(summary ?? {}).filter(([op, n]) => op !== "same" && (n ?? 0) > 0);
}

afterAll(disposePulumiEnv);

describe("the fleeting plugin's user, token, pool and roles, through the engine", () => {
  let sim: RunningSimulator;
  let root: PveClient;
  let ts: TestStack | undefined;
  let stack: Stack;
  let apiToken = "";
  let tokenValue = "";
  const output: string[] = [];
  const onOutput = (line: string) => output.push(line);

  beforeAll(async () => {
    compileToDist(providerSources());
    sim = await startSimulator({ seed: 21 });
    root = tokenClient(sim, sim.rootToken);
    // The template, made directly (Template is another resource's job).
    await root.qemu.createAndWait("pve1", TEMPLATE, { name: "fleeting-template", memory: 1024, scsi0: "local-lvm:4", net0: "virtio,bridge=vmbr0" });
    await root.qemu.templateAndWait("pve1", TEMPLATE);
    ts = await createTestStack({
      programDir: FIXTURE,
      stackName: `fleeting${process.pid}`,
      simulator: sim,
      config: {
        "proxmox:endpoint": { value: sim.url },
        "proxmox:apiToken": { value: sim.rootToken, secret: true },
        "proxmox:caCert": { value: sim.caCert },
        "access-fleeting:templateVmid": { value: String(TEMPLATE) },
        "access-fleeting:node": { value: "pve1" },
        "access-fleeting:userPassword": { value: USER_PASSWORD, secret: true },
      },
    });
    stack = ts.stack;
  });

  afterAll(async () => {
    await removeStack(ts);
    await sim?.stop();
  });

  it("creates the user, token, pool, bindings and a passing permission check", async () => {
    const up = await stack.up({ onOutput });
    expect(up.summary.result).toBe("succeeded");
    // stack + user + token + pool + 6 bindings + check
    expect(up.summary.resourceChanges).toMatchObject({ create: 11 });
    expect(up.outputs.fullTokenId.value).toBe("fleeting@pve!runner");
    expect(up.outputs.apiToken.secret).toBe(true);
    expect(up.outputs.tokenValue.secret).toBe(true);
    apiToken = up.outputs.apiToken.value;
    tokenValue = up.outputs.tokenValue.value;
    expect(apiToken).toBe(`fleeting@pve!runner=${tokenValue}`);
    expect(up.outputs.poolMembers.value).toEqual({ vms: [TEMPLATE], storage: ["local-lvm"] });
    expect(up.outputs.missing.value).toEqual([]);
    expect(sim.sim.access.checkPassword("fleeting@pve", USER_PASSWORD)).toBe(true);
  });

  it("lets the new token clone the template into the pool, and refuses a clone outside it", async () => {
    const asToken = tokenClient(sim, apiToken);
    const res = await asToken.qemu.cloneAndWait("pve1", TEMPLATE, { newid: 200, name: "fleet-1", pool: "fleeting" });
    expect(res.exitstatus).toBe("OK");
    expect(sim.sim.pools.poolOfVm(200)).toBe("fleeting");
    const refused = await asToken.qemu.cloneAndWait("pve1", TEMPLATE, { newid: 201, name: "stray" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isPermissionDenied(refused)).toBe(true);
    expect((refused as Error).message).toContain("fleeting@pve!runner");
    expect((refused as { status?: number }).status).toBe(403);
    expect(sim.sim.ext.cluster.vms.has(201)).toBe(false);
  });

  it("previews no changes with the fleet VM in the pool, before and after a refresh", async () => {
    const before = await stack.preview();
    expect(changesOf(before.changeSummary)).toEqual([]);
    const refresh = await stack.refresh({ onOutput });
    expect(refresh.summary.result).toBe("succeeded");
    const after = await stack.preview();
    expect(changesOf(after.changeSummary)).toEqual([]);
    // The refreshed state reports every member, the fleet VM included, without drift.
    const state = await stack.exportStack();
    const pool = state.deployment.resources.find((r: { type: string }) => r.type === "pulumi-nodejs:dynamic/proxmox:Pool");
    expect(pool.outputs.members).toEqual({ vms: [200, TEMPLATE], storage: ["local-lvm"] });
    expect(pool.outputs.vms).toEqual([TEMPLATE]);
  });

  it("finds a removed ACL entry on refresh and grants it again on up", async () => {
    expect(sim.sim.access.removeAcl("/nodes/pve1", "token", "fleeting@pve!runner", "PVEAuditor")).toBe(true);
    await stack.refresh({ onOutput });
    const preview = await stack.preview();
    expect(preview.changeSummary).toMatchObject({ create: 1 });
    const up = await stack.up({ onOutput });
    expect(up.summary.result).toBe("succeeded");
    expect(sim.sim.access.aclEntries()).toContainEqual({ path: "/nodes/pve1", type: "token", ugid: "fleeting@pve!runner", roleid: "PVEAuditor", propagate: 0 });
  });

  it("keeps the token value and the password out of the stored state and the engine's output", async () => {
    const stored = await exportStackEncrypted(ts!);
    expect(stored).toContain("fleeting@pve!runner");
    expect(stored).not.toContain(tokenValue);
    expect(stored).not.toContain(USER_PASSWORD);
    expect(stored).not.toContain(sim.rootToken.split("=")[1]);
    expect(output.join("\n")).not.toContain(tokenValue);
    expect(output.join("\n")).not.toContain(USER_PASSWORD);
  });

  it("refuses to destroy the pool while it holds the fleet VM, naming it; destroys once it is gone", async () => {
    const failed = await stack.destroy({ onOutput }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(failed).toBeDefined();
    expect(String(failed?.message)).toContain("pool 'fleeting' is not empty: it holds VM 200");
    expect(String(failed?.message)).not.toContain(tokenValue);
    expect(sim.sim.pools.exists("fleeting")).toBe(true);

    await root.qemu.deleteAndWait("pve1", 200);
    const destroy = await stack.destroy({ onOutput });
    expect(destroy.summary.result).toBe("succeeded");
    expect(sim.sim.pools.exists("fleeting")).toBe(false);
    expect(sim.sim.access.user("fleeting@pve")).toBeUndefined();
    expect(sim.sim.access.aclEntries().filter((e) => e.ugid.startsWith("fleeting@pve"))).toEqual([]);
    // The template itself was only taken out of the pool.
    expect(sim.sim.ext.cluster.vms.has(TEMPLATE)).toBe(true);
  });
});
