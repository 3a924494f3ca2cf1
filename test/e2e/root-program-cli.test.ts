/**
 * The root Pulumi.yaml program run by the Pulumi CLI itself, as a user runs it: `pulumi stack
 * init`, `pulumi config set-all`, `pulumi up --yes`, `pulumi preview --expect-no-changes`,
 * `pulumi destroy --yes`, each a child process in a project directory, with no Automation API
 * and no inline program. The CLI starts a Node.js language host for `runtime: nodejs`: the real
 * `pulumi-language-nodejs` where Pulumi is installed normally, otherwise pulumi-pve's minimal
 * one (scripts/language-host/, installed beside the cached CLI by scripts/ensure-pulumi.sh).
 *
 * The workspace is laid out like a user's project: the root Pulumi.yaml copied verbatim (so
 * its `main: dist/examples/full-stack/index.js`), that compiled program at that path, a
 * package.json, and node_modules/pulumi-pve and node_modules/@pulumi linked to this checkout.
 *
 * Fails (does not skip) when the Pulumi CLI cannot be obtained: see scripts/ensure-pulumi.sh.
 */
import { startSimulator, type RunningSimulator } from "../simulator";
import { diffSnapshots, snapshotState, type StateSnapshot } from "../simulator/snapshot";
import { clusterOf } from "../simulator/state/cluster";
import { providerSources, proxmoxConfig, sshSetup } from "./engine-lifecycle-support";
import { expectOk, pulumiIn, setConfigCli, type PulumiCommand } from "./cli";
import { captureCliState, compileToDist, disposePulumiEnv, pulumiEnv, trackSimulator, type ConfigEntry, type PulumiEnv } from "./harness";
import { createRootProjectDir, ROOT_PROGRAM_SOURCE, rootProgramMain } from "./root-project";

jest.setTimeout(10 * 60 * 1000);

const STACK = "root-cli";

let penv: PulumiEnv;
let sim: RunningSimulator | undefined;
let workDir = "";
let before: StateSnapshot;
let stackCreated = false;

/** `pulumi <args>` in the workspace, as a user would in a shell (set once the CLI is known). */
let pulumi: PulumiCommand;
const setConfig = (config: Record<string, ConfigEntry>): Promise<void> => setConfigCli(pulumi, STACK, config);

beforeAll(async () => {
  compileToDist([...providerSources(), ROOT_PROGRAM_SOURCE]);
  penv = await pulumiEnv();
  pulumi = pulumiIn(penv, () => workDir);

  expect(rootProgramMain()).toBe("dist/examples/full-stack/index.js");
  workDir = createRootProjectDir(penv.tmpRoot);

  const ssh = sshSetup();
  sim = await startSimulator({ seed: 71, cluster: ssh.cluster });
  trackSimulator(sim);
  before = snapshotState(sim.sim);

  expectOk(await pulumi(["stack", "init", STACK, "--secrets-provider", "passphrase"]), "pulumi stack init");
  stackCreated = true;
  await setConfig({ ...proxmoxConfig(sim, ssh), "fleet:size": { value: "2" } });
});

afterAll(async () => {
  if (stackCreated) await pulumi(["stack", "rm", STACK, "--yes", "--force"]);
  await sim?.stop();
  await disposePulumiEnv();
});

describe("the root Pulumi.yaml through the Pulumi CLI (no Automation API)", () => {
  it("a program error fails `pulumi preview` with the program's own message, reported once", async () => {
    await setConfig({ "fleet:size": { value: "two" } });
    const r = await pulumi(["preview"]);
    await setConfig({ "fleet:size": { value: "2" } });
    expect(r.code).not.toBe(0);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/fleet:size/);
    // The SDK reported the error itself (exit code 32): the language host adds nothing.
    expect(out).not.toMatch(/Program exited with non-zero exit code/);
    expect(diffSnapshots(before, snapshotState(sim!.sim))).toEqual([]);
  });

  it("`pulumi up --yes` creates the whole stack; the fleet's VMs run in the cluster", async () => {
    const up = await pulumi(["up", "--yes"]);
    expectOk(up, "pulumi up");
    expect(up.stdout).toMatch(/\+ 12 created/); // with the files storage a stock cluster lacks
    await captureCliState(penv, workDir, STACK, "after up");

    const out = await pulumi(["stack", "output", "--json"]);
    expectOk(out, "pulumi stack output");
    const outputs = JSON.parse(out.stdout) as { pool: string; templateVmid: number; fleet: Array<{ name: string; vmid: number; node: string; ipv4: string[]; status: string }> };
    expect(outputs.pool).toBe("fleet");
    expect(outputs.fleet.map((vm) => vm.name).sort()).toEqual(["fleet-1", "fleet-2"].sort());

    const cluster = clusterOf(sim!.sim);
    expect(cluster.vms.get(outputs.templateVmid)?.config.current.template).toBe("1");
    for (const vm of outputs.fleet) {
      expect(vm.status).toBe("running");
      expect(vm.ipv4.length).toBeGreaterThan(0);
      const simVm = cluster.vms.get(vm.vmid);
      expect(simVm?.running).toBe(true);
      expect(simVm?.config.current.description).toContain("managed-by=pulumi-pve resource=" + vm.name);
    }
  });

  it("`pulumi preview --expect-no-changes` succeeds right after", async () => {
    expectOk(await pulumi(["preview", "--expect-no-changes"]), "pulumi preview --expect-no-changes");
  });

  it("`pulumi destroy --yes` leaves the cluster exactly as it was", async () => {
    const destroy = await pulumi(["destroy", "--yes"]);
    expectOk(destroy, "pulumi destroy");
    expect(destroy.stdout).toMatch(/- 12 deleted/);
    await captureCliState(penv, workDir, STACK, "after destroy");
    expect(diffSnapshots(before, snapshotState(sim!.sim))).toEqual([]);
  });
});
