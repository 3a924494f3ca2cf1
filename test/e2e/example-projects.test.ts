/**
 * Each example under examples/ is a project a user can run where it stands: a Pulumi.yaml, a
 * package.json that depends on this checkout's package (`file:../..`, linked by `npm install`),
 * a tsconfig.json, and a README that lists every config key its program reads and says how to
 * run it (`cd examples/<name> && npm install && pulumi up`).
 *
 * Then one of them, examples/quickstart, exactly so, through the Pulumi CLI (no Automation API,
 * no inline program): `npm install` in the example's directory, `pulumi stack init`, `pulumi
 * config set-all`, `pulumi up --yes`, `pulumi preview --expect-no-changes`, `pulumi destroy
 * --yes`, against the simulator. The CLI runs the TypeScript program with its Node.js language
 * host (the real one, or pulumi-pve's minimal one that scripts/ensure-pulumi.sh installs), the
 * engine the dynamic providers from node_modules/pulumi-pve, the link `npm install` made. The
 * stack lives in the harness's temporary backend; its config file (Pulumi.<stack>.yaml, in the
 * example's directory) is removed afterwards.
 *
 * Needs `npm run build` (the example's node_modules/pulumi-pve is this checkout: its dist/).
 * Fails (does not skip) when the Pulumi CLI cannot be obtained: see scripts/ensure-pulumi.sh.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { startSimulator, type RunningSimulator } from "../simulator";
import { diffSnapshots, snapshotState, type StateSnapshot } from "../simulator/snapshot";
import { providerSources, proxmoxConfig, sshSetup } from "./engine-lifecycle-support";
import { expectOk, pulumiIn, runCommand, setConfigCli, type PulumiCommand } from "./cli";
import { captureCliState, compileToDist, disposePulumiEnv, pulumiEnv, REPO_ROOT, trackSimulator, type PulumiEnv } from "./harness";

jest.setTimeout(10 * 60 * 1000);

/** The examples that are Pulumi programs (examples/ci is a module for a user's program, and pipelines). */
const PROGRAMS = ["quickstart", "full-stack", "fleeting", "machine-controller"];
const dirOf = (name: string) => path.join(REPO_ROOT, "examples", name);
const read = (name: string, file: string) => fs.readFileSync(path.join(dirOf(name), file), "utf8");

/** Every `namespace:key` the program reads: `cfg.get(key)`, `cfg.requireNumber(key)`... of a `new pulumi.Config(namespace)`. */
function configKeys(source: string): string[] {
  const namespaces = new Map<string, string>();
  for (const m of source.matchAll(/const (\w+) = new pulumi\.Config\("([^"]+)"\)/g)) namespaces.set(m[1], m[2]);
  const keys = new Set<string>();
  for (const m of source.matchAll(/\b(\w+)\.(?:get|require)(?:Number|Boolean|Object|Secret|SecretNumber|SecretBoolean|SecretObject)?\("([^"]+)"/g)) {
    const ns = namespaces.get(m[1]);
    if (ns) keys.add(`${ns}:${m[2]}`);
  }
  return [...keys].sort();
}

describe.each(PROGRAMS)("examples/%s is a project that runs where it stands", (name) => {
  it("has a Pulumi.yaml (nodejs), a package.json depending on this package, and a tsconfig.json", () => {
    const yaml = read(name, "Pulumi.yaml");
    expect(yaml).toMatch(new RegExp(`^name: ${name}$`, "m"));
    expect(yaml).toMatch(/^runtime: nodejs$/m);
    const pkg = JSON.parse(read(name, "package.json")) as { private: boolean; main: string; dependencies: Record<string, string> };
    expect(pkg.private).toBe(true);
    expect(pkg.main).toBe("index.ts");
    // @pulumi/pulumi is not listed: the program and the linked package resolve the checkout's
    // one copy (a second SDK in the example would be a second copy for the linked provider)
    expect(pkg.dependencies).toEqual({ "pulumi-pve": "file:../.." });
    expect(fs.existsSync(path.join(dirOf(name), "index.ts"))).toBe(true);
    expect(JSON.parse(read(name, "tsconfig.json")).files).toEqual(["index.ts"]);
  });

  it("has a README that lists every config key the program reads, and says how to run it", () => {
    const readme = read(name, "README.md");
    const keys = configKeys(read(name, "index.ts"));
    expect(keys.length).toBeGreaterThan(3);
    expect(keys.filter((k) => !readme.includes(`\`${k}\``) && !new RegExp(`\`${k.split(":")[0]}:[^\`]*\\b${k.split(":")[1]}\\b`).test(readme))).toEqual([]);
    expect(readme).toContain(`cd examples/${name}`);
    expect(readme).toMatch(/npm install/);
    expect(readme).toMatch(/pulumi up/);
  });
});

describe("examples/quickstart run where it stands with the Pulumi CLI: npm install, pulumi up, preview, destroy", () => {
  const STACK = `inplace${process.pid}`;
  const dir = dirOf("quickstart");
  let penv: PulumiEnv;
  let sim: RunningSimulator | undefined;
  let before: StateSnapshot;
  let stackCreated = false;
  let pulumi: PulumiCommand;

  beforeAll(async () => {
    compileToDist(providerSources());
    penv = await pulumiEnv();
    pulumi = pulumiIn(penv, () => dir);
    const ssh = sshSetup();
    sim = await startSimulator({ seed: 67, cluster: ssh.cluster });
    trackSimulator(sim);
    before = snapshotState(sim.sim);

    const install = await runCommand("npm", ["install", "--no-audit", "--no-fund"], dir, { ...process.env }, "npm install");
    expectOk(install, "npm install in examples/quickstart");
    const link = path.join(dir, "node_modules", "pulumi-pve");
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.realpathSync(link)).toBe(fs.realpathSync(REPO_ROOT));
    expect(fs.existsSync(path.join(dir, "node_modules", "@pulumi"))).toBe(false); // one SDK: the checkout's

    expectOk(await pulumi(["stack", "init", STACK, "--secrets-provider", "passphrase"]), "pulumi stack init");
    stackCreated = true;
    await setConfigCli(pulumi, STACK, { ...proxmoxConfig(sim, ssh), "quickstart:count": { value: "1" } });
  });

  afterAll(async () => {
    if (stackCreated) await pulumi(["stack", "rm", STACK, "--yes", "--force"]);
    fs.rmSync(path.join(dir, `Pulumi.${STACK}.yaml`), { force: true });
    await sim?.stop();
    await disposePulumiEnv();
  });

  it("`pulumi up --yes` creates the files storage, the template, the snippet and the VM, which reports its address", async () => {
    const up = await pulumi(["up", "--yes"]);
    expectOk(up, "pulumi up");
    expect(up.stdout).toMatch(/\+ 5 created/); // stack, files storage, template, snippet, 1 clone
    await captureCliState(penv, dir, STACK, "after up");
    const out = await pulumi(["stack", "output", "--json"]);
    expectOk(out, "pulumi stack output");
    const outputs = JSON.parse(out.stdout) as { ips: string[] };
    expect(outputs.ips).toHaveLength(1);
    expect(outputs.ips[0]).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  });

  it("`pulumi preview --expect-no-changes` succeeds right after", async () => {
    expectOk(await pulumi(["preview", "--expect-no-changes"]), "pulumi preview --expect-no-changes");
  });

  it("`pulumi destroy --yes` leaves the cluster exactly as it was", async () => {
    const destroy = await pulumi(["destroy", "--yes"]);
    expectOk(destroy, "pulumi destroy");
    expect(destroy.stdout).toMatch(/- 5 deleted/);
    expect(diffSnapshots(before, snapshotState(sim!.sim))).toEqual([]);
  });
});
