#!/usr/bin/env node
// Prints the toolchain that `npm test`, `npm run demo` and CI run on, and stops when it is not a
// supported one. Run by `npm test` (pretest) and .ci/run.
//
// npm puts node_modules/.bin first on PATH for its scripts, so `node` there is Node.js 24 from
// the `node` devDependency (its preinstall links the binary of the npm registry's
// node-<platform>-<arch> package), whatever Node.js runs npm itself. When that binary is missing
// (install scripts disabled, e.g. `npm ci --ignore-scripts`), the shell falls through to the
// machine's node: this check says so instead of letting the suite run on another Node.js.
//
// Usage: node scripts/toolchain.js [--pulumi <dir holding the pulumi CLI>] [--expect-node <major>]
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const ROOT = path.resolve(__dirname, "..");
const MIN_NODE_MAJOR = 22;

function arg(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function fail(message) {
  process.stderr.write(`[toolchain] ERROR: ${message}\n`);
  process.exit(1);
}

const major = Number(process.versions.node.split(".")[0]);
const bundled = path.join(ROOT, "node_modules", "node", "bin", "node");
const fromDevDependency = fs.existsSync(bundled) && fs.realpathSync(process.execPath) === fs.realpathSync(bundled);
const lines = [`node ${process.version} (${process.execPath}${fromDevDependency ? ", the `node` devDependency" : ""})`];

let sdk = "not installed";
try {
  sdk = require(require.resolve("@pulumi/pulumi/package.json", { paths: [ROOT] })).version;
} catch {
  // reported below
}
lines.push(`this checkout's @pulumi/pulumi ${sdk}`);

const pulumiDir = arg("--pulumi");
if (pulumiDir) {
  const cli = path.join(pulumiDir, "pulumi");
  const version = execFileSync(cli, ["version"], { encoding: "utf8", env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "1" } }).trim();
  lines.push(`pulumi CLI ${version} (${cli})`);
}
const agent = process.env.npm_config_user_agent;
if (agent) lines.push(`npm ${/npm\/(\S+)/.exec(agent)?.[1] ?? "?"} on node ${/node\/(\S+)/.exec(agent)?.[1] ?? "?"}`);
process.stderr.write(`[toolchain] ${lines.join("; ")}\n`);

if (sdk === "not installed") fail("@pulumi/pulumi is not installed: run `npm ci` first");
const expected = arg("--expect-node");
if (expected && String(major) !== expected) fail(`expected Node.js ${expected}, this is ${process.version}`);
if (major < MIN_NODE_MAJOR) {
  fail(
    `Node.js ${process.version} is not supported (${MIN_NODE_MAJOR} or newer). ` +
      (fs.existsSync(path.join(ROOT, "node_modules", "node"))
        ? "The `node` devDependency's binary is missing: run `npm ci` again, with install scripts enabled."
        : "Run `npm ci`: it installs Node.js 24 for this project's scripts."),
  );
}

// ssh2's optional native crypto binding is built by its install script with the Node.js that ran
// `npm ci` (on our machines Node.js 20), so Node.js 24 cannot load it ("Module did not
// self-register") and ssh2 falls back to JavaScript crypto: every SSH transfer, the snippet
// suites included, then runs about 6x slower (8.5 s against 55 s for the simulator's transport
// suite). Rebuilt here for this Node.js, with the headers its npm package carries (no download),
// except on the Node.js releases where any addon built on node::ObjectWrap aborts the process
// when the garbage collector reclaims one of its objects (24.19 and later 24.x: `Assertion failed:
// (env) != nullptr` in RemoveEnvironmentCleanupHook, from ssh2's cipher destructors;
// nodejs/node#65446, mscdex/ssh2#1511): there the binding is removed, and ssh2 runs on
// JavaScript crypto, slower but alive.
if (objectWrapAbortsOnGc(process.versions.node)) removeSsh2Binding();
else ensureSsh2Binding();

/** Node.js 24.19.0 and later 24.x (nodejs/node#65446, open when this was written). */
function objectWrapAbortsOnGc(version) {
  const [major, minor] = version.split(".").map(Number);
  return major === 24 && minor >= 19;
}

function removeSsh2Binding() {
  const binding = path.join(ROOT, "node_modules", "ssh2", "lib", "protocol", "crypto", "build", "Release", "sshcrypto.node");
  if (!fs.existsSync(binding)) return;
  fs.rmSync(binding);
  process.stderr.write(`[toolchain] removed ssh2's native crypto binding: on Node.js ${process.version} an addon built on node::ObjectWrap aborts the process when its objects are garbage collected (nodejs/node#65446); SSH transfers use JavaScript crypto\n`);
}

function ensureSsh2Binding() {
  const dir = path.join(ROOT, "node_modules", "ssh2", "lib", "protocol", "crypto");
  const binding = path.join(dir, "build", "Release", "sshcrypto.node");
  if (!fs.existsSync(dir)) return;
  const { spawnSync } = require("child_process");
  const loads = () => spawnSync(process.execPath, ["-e", `require(${JSON.stringify(binding)})`], { stdio: "ignore" }).status === 0;
  if (fs.existsSync(binding) && loads()) return;
  const gyp = [process.env.npm_config_node_gyp, path.join(path.dirname(process.env.npm_execpath ?? ""), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"), "/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"].find(
    (p) => p && fs.existsSync(p),
  );
  const nodedir = path.join(ROOT, "node_modules", "node", "node_modules", `node-${process.platform}-${process.arch}`);
  if (!gyp) {
    process.stderr.write("[toolchain] warning: ssh2's native crypto binding does not load on this Node.js and node-gyp was not found to rebuild it: SSH transfers will be slower\n");
    return;
  }
  process.stderr.write(`[toolchain] rebuilding ssh2's native crypto binding for Node.js ${process.version} (it was built for another one)\n`);
  const args = [gyp, "rebuild", `--target=${process.version}`, `--real_openssl_major=${/^\d+/.exec(process.versions.openssl)[0]}`];
  // node-gyp lets npm's config (`npm_config_nodedir`, e.g. `nodedir=/usr` in ~/.npmrc, which npm
  // exports to its scripts) override its own --nodedir flag: built against /usr's headers (the
  // machine's Node.js 20), the binding then fails to load on Node.js 24 ("Module did not
  // self-register"). So the headers of the Node.js that runs the tests are named both ways.
  const env = { ...process.env };
  if (fs.existsSync(path.join(nodedir, "include", "node"))) {
    args.push(`--nodedir=${nodedir}`);
    for (const key of Object.keys(env)) if (/^npm_(package_config_node_gyp|config)_nodedir$/i.test(key)) delete env[key];
    env.npm_config_nodedir = nodedir;
  }
  const built = spawnSync(process.execPath, args, { cwd: dir, env, stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  if (built.status === 0 && loads()) process.stderr.write("[toolchain] ssh2's native crypto binding rebuilt\n");
  else process.stderr.write(`[toolchain] warning: could not rebuild ssh2's native crypto binding (SSH transfers will be slower): ${(built.stderr || "").trim().split("\n").slice(-3).join(" | ")}\n`);
}
