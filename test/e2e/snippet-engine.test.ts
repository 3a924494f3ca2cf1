/**
 * CloudInitSnippet through the real Pulumi engine, against the simulator (API + per-node
 * SFTP): up, a no-op preview, drift (file removed on one node) seen by refresh and repaired by
 * the next up as an UPDATE, a node-list change in place, new content as a replacement, destroy.
 * The SSH key is a secret stack config value and never appears in the stored state.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { generateEd25519KeyPair } from "../helpers/ssh-keys";
import type { Stack } from "@pulumi/pulumi/automation";
import { compileToDist, createTestStack, disposePulumiEnv, exportStackEncrypted, removeStack, REPO_ROOT, TestStack } from "./harness";
import { PREPARED_LOCAL_CONTENT } from "../simulator/state/cluster";
import { startSimulator } from "../simulator";
import { clusterOf } from "../simulator/state/cluster";

jest.setTimeout(10 * 60 * 1000);
afterAll(disposePulumiEnv);

function providerSources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? providerSources(p) : e.name.endsWith(".ts") ? [p] : [];
  });
}

describe("CloudInitSnippet through the Pulumi engine", () => {
  const key = generateEd25519KeyPair({ comment: "e2e" });
  let sim: Awaited<ReturnType<typeof startSimulator>>;
  let ts: TestStack | undefined;
  let stack: Stack;
  const fileOn = (node: string, file: string): string | undefined => {
    const p = clusterOf(sim.sim).hostPath(node, `/var/lib/vz/snippets/${file}`);
    return fs.existsSync(p) ? fs.readFileSync(p, "utf8") : undefined;
  };

  beforeAll(async () => {
    compileToDist(providerSources(path.join(REPO_ROOT, "provider")));
    // a cluster whose admin enabled snippets on `local` (a fresh install has none)
    sim = await startSimulator({ seed: 41, cluster: { localContent: PREPARED_LOCAL_CONTENT, sshUsers: { root: { keys: [key.public] } } } });
    ts = await createTestStack({
      programDir: path.join(__dirname, "fixtures", "snippet"),
      stackName: `snippet${process.pid}`,
      simulator: sim,
      config: {
        "proxmox:endpoint": { value: sim.url },
        "proxmox:apiToken": { value: sim.rootToken, secret: true },
        "proxmox:caCert": { value: sim.caCert },
        "proxmox:sshUsername": { value: "root" },
        "proxmox:sshPrivateKey": { value: key.private, secret: true },
        "proxmox:sshNodes": { value: JSON.stringify(Object.fromEntries(sim.nodes.map((n) => [n.name, { host: "127.0.0.1", port: n.sshPort }]))) },
        "proxmox:sshHostKeys": { value: JSON.stringify(Object.fromEntries(sim.nodes.map((n) => [n.name, n.hostKeyFingerprint]))) },
        "snippet:hostname": { value: "web1" },
        "snippet:nodes": { value: JSON.stringify(["pve1", "pve2"]) },
      },
    });
    stack = ts.stack;
  });
  afterAll(async () => {
    await removeStack(ts);
    await sim?.stop();
  });

  it("creates, previews no change, repairs drift after refresh, updates nodes, replaces on new content, destroys", async () => {
    const up = await stack.up();
    expect(up.summary.resourceChanges).toMatchObject({ create: 2 });
    const file = up.outputs.file.value as string;
    expect(up.outputs.nodes.value).toEqual(["pve1", "pve2"]);
    expect(fileOn("pve1", file)).toBe("#cloud-config\nhostname: web1\npackages:\n  - nginx\n");
    expect(fileOn("pve3", file)).toBeUndefined();

    const preview = await stack.preview();
    expect(preview.changeSummary).toEqual({ same: 2 });

    const stored = await exportStackEncrypted(ts!);
    for (const line of key.private.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----"))) expect(stored).not.toContain(line);

    // drift: the file disappears from pve2
    fs.rmSync(clusterOf(sim.sim).hostPath("pve2", `/var/lib/vz/snippets/${file}`));
    await stack.refresh();
    const refreshed = (await stack.exportStack()).deployment.resources.find((r: { type: string }) => r.type === "pulumi-nodejs:dynamic:Resource" || r.type.endsWith("CloudInitSnippet"));
    expect(refreshed?.outputs.nodes).toEqual(["pve1"]); // only where it is intact
    expect((await stack.preview()).changeSummary).toEqual({ same: 1, update: 1 });
    const repair = await stack.up();
    expect(repair.summary.resourceChanges).toMatchObject({ update: 1 });
    expect(fileOn("pve2", file)).toBe(fileOn("pve1", file));
    expect((await stack.preview()).changeSummary).toEqual({ same: 2 });
    await stack.refresh();
    expect((await stack.preview()).changeSummary).toEqual({ same: 2 });

    // nodes change in place
    await stack.setConfig("snippet:nodes", { value: JSON.stringify(["pve2", "pve3"]) });
    const moved = await stack.up();
    expect(moved.summary.resourceChanges).toMatchObject({ update: 1 });
    expect(fileOn("pve1", file)).toBeUndefined();
    expect(fileOn("pve3", file)).toBeDefined();

    // new content: a new file, created before the old one is deleted
    await stack.setConfig("snippet:hostname", { value: "web2" });
    const replaced = await stack.up();
    expect(replaced.summary.resourceChanges).toMatchObject({ replace: 1 });
    const file2 = replaced.outputs.file.value as string;
    expect(file2).not.toBe(file);
    expect(fileOn("pve3", file)).toBeUndefined();
    expect(fileOn("pve3", file2)).toContain("hostname: web2");

    const destroy = await stack.destroy();
    expect(destroy.summary.result).toBe("succeeded");
    for (const n of ["pve1", "pve2", "pve3"]) expect(fileOn(n, file2)).toBeUndefined();
  });
});
