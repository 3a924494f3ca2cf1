/**
 * The package as a user gets it: `npm pack` of this checkout, `npm install` of that tarball in a
 * fresh project (no link to this checkout anywhere), and a plain JavaScript program
 * `require("pulumi-pve")` run by the Pulumi CLI itself: `pulumi stack init`, `pulumi config
 * set-all`, `pulumi up --yes`, `pulumi preview --expect-no-changes`, `pulumi refresh --yes`,
 * `pulumi destroy --yes`.
 *
 * Proves that the tarball holds what `main`/`exports` and the stored provider stubs name
 * (dist/provider, .d.ts included), README and LICENSE, and nothing of the sources, tests or
 * scripts; that it runs no install script; that the compiled provider needs nothing outside
 * dist/provider at run time; that @pulumi/pulumi, a peer dependency, is installed once (the
 * project's copy, never a second one under pulumi-pve); and that the provider code the engine
 * ran is the installed copy.
 *
 * Both ends of the supported range run it: `npm test` the newest (the Node.js that runs the
 * suite, the @pulumi/pulumi of package.json's devDependency), and CI's `scripts/test-oldest.sh`
 * the oldest (Node.js 22 and PULUMI_PVE_SDK_VERSION=3.248.0). The program reports the Node.js
 * and the @pulumi/pulumi it ran on, and the test checks them.
 *
 * With the newest SDK the project starts from a copy of this checkout's package-lock.json (npm
 * prunes what the project does not use) and installs with `--prefer-offline`: the dependency
 * versions are the tested ones, from the cache `npm ci` filled. With another SDK version npm
 * resolves the project afresh from the registry, as a user's first install does.
 *
 * Fails (does not skip) when the Pulumi CLI cannot be obtained: see scripts/ensure-pulumi.sh.
 */
import * as fs from "node:fs";
import { builtinModules } from "node:module";
import * as path from "node:path";
import { diffSnapshots, snapshotState, type StateSnapshot } from "../simulator/snapshot";
import { makeTemplate, startVmSim, type VmSim } from "../unit/resources/vm/sim-setup";
import { providerSources, proxmoxConfig } from "./engine-lifecycle-support";
import { expectOk, pulumiIn, runCommand as run, setConfigCli, type CmdResult, type PulumiCommand } from "./cli";
import { captureCliState, disposePulumiEnv, pulumiEnv, REPO_ROOT, trackSimulator, type ConfigEntry, type PulumiEnv } from "./harness";

jest.setTimeout(10 * 60 * 1000);

const STACK = "packaged";
const PROJECT = "my-fleet";
const TEMPLATE_VMID = 9000;
const PKG = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as {
  name: string;
  version: string;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
/** The @pulumi/pulumi of the user's project: the suite's own (the newest) unless CI asks for another. */
const SDK_VERSION = process.env.PULUMI_PVE_SDK_VERSION || PKG.devDependencies["@pulumi/pulumi"];
const NEWEST_SDK = SDK_VERSION === PKG.devDependencies["@pulumi/pulumi"];

/** The user's program: plain JavaScript, the package by name, no TypeScript toolchain. */
const PROGRAM = `"use strict";
const pulumi = require("@pulumi/pulumi");
const { Pool, VmClone } = require("pulumi-pve");

const cfg = new pulumi.Config("fleet");
const pool = new Pool("packaged", { poolid: "packaged", comment: "installed from the tarball" });
const vm = new VmClone("packaged-vm", {
  template: { node: "pve1", vmid: cfg.requireNumber("templateVmid") },
  pool: pool.poolid,
  cores: 1,
  memory: 1024,
  networks: [{ bridge: "vmbr0" }],
  ipConfigs: [{ ip: "dhcp" }],
  agentTimeoutSeconds: 120,
});

exports.poolid = pool.poolid;
exports.vmid = vm.vmid;
exports.node = vm.node;
exports.ipv4 = vm.ipv4Address;
exports.runtime = { node: process.version, sdk: require("@pulumi/pulumi/package.json").version };
`;

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: Array<{ path: string }>;
}

let penv: PulumiEnv;
let v: VmSim | undefined;
let workDir = "";
let tarball = "";
let packed: PackResult;
let before: StateSnapshot;
let stackCreated = false;

/** `pulumi <args>` in the project, as a user would in a shell (set once the CLI is known). */
let pulumi: PulumiCommand;

function npm(args: string[], cwd: string): Promise<CmdResult> {
  return run("npm", args, cwd, { ...process.env }, `npm ${args[0]}`);
}

const setConfig = (config: Record<string, ConfigEntry>): Promise<void> => setConfigCli(pulumi, STACK, config);

/** dist/ path (without extension) of a provider source. */
function distBase(src: string): string {
  return path.relative(REPO_ROOT, src).replace(/\.ts$/, "").split(path.sep).join("/");
}

/**
 * What `npm pack` packs must be the compiled provider, types included. When dist/provider is
 * missing or older than a source (a `npx jest` of this file without `npm run build`), the
 * provider is compiled as `npm run build` (the prepack) does: the TypeScript compiler with
 * tsconfig.json's options, declarations included, on the provider's files only.
 */
function buildProviderIfStale(): void {
  const sources = providerSources();
  const stale = sources.some((src) =>
    [".js", ".d.ts"].some((ext) => {
      const out = path.join(REPO_ROOT, "dist", distBase(src) + ext);
      return !fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(src).mtimeMs;
    }),
  );
  if (!stale) return;
  const ts = require("typescript") as typeof import("typescript");
  const host = { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d: import("typescript").Diagnostic) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n")); } };
  const config = ts.getParsedCommandLineOfConfigFile(path.join(REPO_ROOT, "tsconfig.json"), {}, host)!;
  const program = ts.createProgram(sources, config.options);
  const emitted = program.emit();
  const errors = [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics].filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length) {
    throw new Error(`compiling provider/ failed:\n${ts.formatDiagnostics(errors, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => REPO_ROOT, getNewLine: () => "\n" })}`);
  }
}

/** Every `require("...")` of a JavaScript file's text. */
function requiresOf(text: string): string[] {
  return [...text.matchAll(/\brequire\(\s*(["'])([^"']+)\1\s*\)/g)].map((m) => m[2]);
}

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

beforeAll(async () => {
  buildProviderIfStale();
  penv = await pulumiEnv();
  pulumi = pulumiIn(penv, () => workDir);

  const packDir = fs.mkdtempSync(path.join(penv.tmpRoot, "pack-"));
  const pack = await npm(["pack", "--ignore-scripts", "--json", "--pack-destination", packDir], REPO_ROOT);
  expectOk(pack, "npm pack");
  [packed] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("["))) as PackResult[];
  tarball = path.join(packDir, packed.filename);
  expect(fs.existsSync(tarball)).toBe(true);
  process.stderr.write(`PACKAGE ${packed.filename}: ${packed.size} bytes, ${packed.unpackedSize} unpacked, ${packed.entryCount} files\n`);

  v = await startVmSim({ seed: 83, timeFactor: 0.02 });
  trackSimulator(v.s);
  await makeTemplate(v.api, TEMPLATE_VMID);
  before = snapshotState(v.s.sim);

  // A user's fresh project: package.json, Pulumi.yaml, the program; nothing of this checkout.
  workDir = fs.mkdtempSync(path.join(penv.tmpRoot, `${PROJECT}-`));
  fs.writeFileSync(
    path.join(workDir, "package.json"),
    JSON.stringify({ name: PROJECT, private: true, main: "index.js", dependencies: { "@pulumi/pulumi": SDK_VERSION } }, null, 2) + "\n",
  );
  if (NEWEST_SDK) fs.copyFileSync(path.join(REPO_ROOT, "package-lock.json"), path.join(workDir, "package-lock.json"));
  fs.writeFileSync(path.join(workDir, "Pulumi.yaml"), `name: ${PROJECT}\nruntime: nodejs\nmain: index.js\ndescription: pulumi-pve installed from its tarball\n`);
  fs.writeFileSync(path.join(workDir, "index.js"), PROGRAM);
});

afterAll(async () => {
  if (stackCreated) await pulumi(["stack", "rm", STACK, "--yes", "--force"]);
  await v?.stop();
  await disposePulumiEnv();
});

describe("pulumi-pve installed from its npm tarball into a user's project", () => {
  it("`npm pack` ships the compiled provider with its types, README and LICENSE, and nothing of the sources, tests, scripts or examples", () => {
    const files = packed.files.map((f) => f.path).sort();
    expect(files).toEqual(expect.arrayContaining(["package.json", "README.md", "LICENSE", "dist/provider/index.js", "dist/provider/index.d.ts"]));
    expect(files.filter((f) => !f.startsWith("dist/"))).toEqual(["LICENSE", "README.md", "package.json"]);
    // exactly one .js and one .d.ts per provider source: nothing missing, nothing stale
    const expected = providerSources().flatMap((src) => [`dist/${distBase(src)}.js`, `dist/${distBase(src)}.d.ts`]).sort();
    expect(files.filter((f) => f.startsWith("dist/"))).toEqual(expected);
    for (const stub of ["resources/dynamic.js", "resources/context.js", "resources/pool.js", "resources/vm-clone.js"]) expect(files).toContain(`dist/provider/${stub}`);
    expect(files.filter((f) => /^(test|examples|provider|docs|scripts|dist\/(?!provider\/))/.test(f) || /(?<!\.d)\.ts$/.test(f))).toEqual([]);
    // main, types and the exports map point into the tarball
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { main: string; types: string; exports: Record<string, string>; scripts?: Record<string, string> };
    expect(files).toEqual(expect.arrayContaining([pkg.main, pkg.types, pkg.exports["."].replace(/^\.\//, "")]));
    // nothing runs when a user installs it
    for (const hook of ["preinstall", "install", "postinstall", "prepare"]) expect(pkg.scripts?.[hook]).toBeUndefined();
  });

  it(`\`npm install <tarball>\` puts a real copy in node_modules, beside the project's one @pulumi/pulumi (${SDK_VERSION}); its code needs nothing outside it`, async () => {
    const install = await npm(["install", ...(NEWEST_SDK ? ["--prefer-offline"] : []), "--no-audit", "--no-fund", "--ignore-scripts", tarball], workDir);
    expectOk(install, "npm install <tarball>");

    const installed = path.join(workDir, "node_modules", "pulumi-pve");
    expect(fs.lstatSync(installed).isDirectory()).toBe(true); // not a symlink to the checkout
    expect(fs.realpathSync(installed)).toBe(fs.realpathSync(workDir) + "/node_modules/pulumi-pve");
    expect(JSON.parse(fs.readFileSync(path.join(installed, "package.json"), "utf8")).version).toBe(PKG.version);
    for (const absent of ["test", "examples", "provider", "tsconfig.json", "dist/test", "dist/examples"]) expect(fs.existsSync(path.join(installed, absent))).toBe(false);
    const sdk = path.join(workDir, "node_modules", "@pulumi", "pulumi");
    expect(fs.lstatSync(path.join(workDir, "node_modules", "@pulumi")).isSymbolicLink()).toBe(false);
    expect(JSON.parse(fs.readFileSync(path.join(sdk, "package.json"), "utf8")).version).toBe(SDK_VERSION);
    // a peer dependency: the project's copy is the only one (no second SDK nested under pulumi-pve)
    expect(fs.existsSync(path.join(installed, "node_modules", "@pulumi", "pulumi"))).toBe(false);
    const copies = await npm(["ls", "@pulumi/pulumi", "--all", "--parseable"], workDir);
    expectOk(copies, "npm ls @pulumi/pulumi");
    expect(copies.stdout.trim().split("\n")).toEqual([fs.realpathSync(sdk)]);
    const userPkg = JSON.parse(fs.readFileSync(path.join(workDir, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    expect(userPkg.dependencies["pulumi-pve"]).toMatch(/^file:.*\.tgz$/);

    // What Node resolves from the project's directory (the provider process's cwd) is the
    // installed copy. (In a child process: jest's own resolver maps `pulumi-pve` to the sources.)
    const ids = ["pulumi-pve", "pulumi-pve/dist/provider/resources/vm-clone.js", "pulumi-pve/dist/provider/resources/dynamic.js"];
    const resolved = await run(process.execPath, ["-e", `for (const id of ${JSON.stringify(ids)}) console.log(require("fs").realpathSync(require.resolve(id)))`], workDir, { ...process.env }, "resolve");
    expectOk(resolved, "require.resolve in the project");
    expect(resolved.stdout.trim().split("\n")).toEqual(ids.map((id) => path.join(fs.realpathSync(installed), id === "pulumi-pve" ? "dist/provider/index.js" : id.slice("pulumi-pve/".length))));

    // Every require() of the installed JavaScript: a Node built-in, a declared dependency, or a
    // file of the installed package (relative, or by the package's own name as the stubs do).
    const deps = new Set([...Object.keys(PKG.dependencies), ...Object.keys(PKG.peerDependencies)]);
    const builtins = new Set(builtinModules);
    const outside: string[] = [];
    for (const file of walk(path.join(installed, "dist")).filter((f) => f.endsWith(".js"))) {
      for (const id of requiresOf(fs.readFileSync(file, "utf8"))) {
        const where = `${path.relative(installed, file)}: require(${JSON.stringify(id)})`;
        if (id.startsWith(".")) {
          const target = path.resolve(path.dirname(file), id);
          const found = [target, `${target}.js`, path.join(target, "index.js")].find((t) => fs.existsSync(t) && fs.statSync(t).isFile());
          if (!found || !found.startsWith(path.join(installed, "dist", "provider") + path.sep)) outside.push(where);
        } else if (id.startsWith("pulumi-pve/")) {
          if (!fs.existsSync(path.join(installed, id.slice("pulumi-pve/".length)))) outside.push(where);
        } else {
          const name = id.startsWith("@") ? id.split("/").slice(0, 2).join("/") : id.split("/")[0];
          if (!deps.has(name) && !builtins.has(name.replace(/^node:/, ""))) outside.push(where);
        }
      }
    }
    expect(outside).toEqual([]);
  });

  it("`pulumi up --yes` of the plain-JS program creates the pool and the VM with the installed provider", async () => {
    expectOk(await pulumi(["stack", "init", STACK, "--secrets-provider", "passphrase"]), "pulumi stack init");
    stackCreated = true;
    await setConfig({ ...proxmoxConfig(v!.s), "fleet:templateVmid": { value: String(TEMPLATE_VMID) } });

    const up = await pulumi(["up", "--yes"]);
    expectOk(up, "pulumi up");
    expect(up.stdout).toMatch(/\+ 3 created/);
    await captureCliState(penv, workDir, STACK, "after up");

    const out = await pulumi(["stack", "output", "--json"]);
    expectOk(out, "pulumi stack output");
    const outputs = JSON.parse(out.stdout) as { poolid: string; vmid: number; node: string; ipv4: string; runtime: { node: string; sdk: string } };
    const cli = await pulumi(["version"]);
    process.stderr.write(`PACKAGED INSTALL ran on Node.js ${outputs.runtime.node}, @pulumi/pulumi ${outputs.runtime.sdk}, Pulumi CLI ${cli.stdout.trim()}\n`);
    // the program ran on the Node.js of PATH (the suite's) and on the project's SDK
    expect(outputs.runtime).toEqual({ node: process.version, sdk: SDK_VERSION });
    expect(outputs.poolid).toBe("packaged");
    expect(outputs.node).toBe("pve1");
    expect(outputs.ipv4).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const simVm = v!.cluster.vms.get(outputs.vmid);
    expect(simVm?.running).toBe(true);
    expect(simVm?.config.current.description).toContain(`managed-by=pulumi-pve resource=packaged-vm stack=${PROJECT}/${STACK}`);
    expect(v!.s.sim.pools.poolOfVm(outputs.vmid)).toBe("packaged");

    // The stored stubs name the package's dist/ by package name: resolved from the project's
    // cwd, that is the installed copy (checked above); no path of this checkout or the project.
    const exported = await pulumi(["stack", "export"]);
    expectOk(exported, "pulumi stack export");
    const resources = (JSON.parse(exported.stdout) as { deployment: { resources: Array<{ type: string; outputs?: { __provider?: string } }> } }).deployment.resources;
    const stubs = resources.filter((r) => typeof r.outputs?.__provider === "string");
    expect(stubs.map((r) => r.type).sort()).toEqual(["pulumi-nodejs:dynamic/proxmox:Pool", "pulumi-nodejs:dynamic/proxmox:VmClone"]);
    for (const r of stubs) {
      const text = r.outputs!.__provider!;
      expect(text).toContain("pulumi-pve/dist/provider/resources/dynamic.js");
      expect(text).toMatch(/pulumi-pve\/dist\/provider\/resources\/(pool|vm-clone)\.js/);
      expect(text).not.toContain(REPO_ROOT);
      expect(text).not.toContain(workDir);
      expect(text).not.toContain("node_modules");
    }
  });

  it("`pulumi preview --expect-no-changes` succeeds right after", async () => {
    expectOk(await pulumi(["preview", "--expect-no-changes"]), "pulumi preview --expect-no-changes");
  });

  it("`pulumi refresh --yes --expect-no-changes` reads everything back through the installed provider", async () => {
    const refresh = await pulumi(["refresh", "--yes", "--expect-no-changes"]);
    expectOk(refresh, "pulumi refresh --expect-no-changes");
    expect(refresh.stdout).toMatch(/3 unchanged/);
  });

  it("`pulumi destroy --yes` leaves the cluster as it was", async () => {
    const destroy = await pulumi(["destroy", "--yes"]);
    expectOk(destroy, "pulumi destroy");
    expect(destroy.stdout).toMatch(/- 3 deleted/);
    await captureCliState(penv, workDir, STACK, "after destroy");
    expect(diffSnapshots(before, snapshotState(v!.s.sim))).toEqual([]);
  });
});
