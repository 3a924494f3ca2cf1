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
