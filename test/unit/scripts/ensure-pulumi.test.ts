// scripts/ensure-pulumi.sh, branch by branch, on a copy of the script in a scratch "repository"
// with fake `pulumi` and `go` binaries, so no branch builds anything or touches the real cache.

import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const REPO = path.resolve(__dirname, "../../..");
// The SDK the suite runs on (the devDependency; the package itself declares a peer range).
const SDK_VERSION: string = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")).devDependencies["@pulumi/pulumi"];
// Tools the script calls; linked into a directory that is the whole PATH, so `go` is absent unless faked.
const TOOLS = ["bash", "node", "sort", "head", "tail", "dirname", "mkdir", "flock", "grep", "cat", "cp", "chmod", "mv", "cmp", "awk", "date", "rm", "mktemp", "tee", "du", "cut"];

let scratch: string;

function executable(file: string, body: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `#!/bin/bash\n${body}\n`, { mode: 0o755 });
}

/** A copy of the script in <scratch>/repo/scripts, with a package.json pinning `sdk`. */
function repoCopy(sdk = SDK_VERSION): string {
  const repo = path.join(scratch, "repo");
  fs.mkdirSync(path.join(repo, "scripts/language-host"), { recursive: true });
  fs.copyFileSync(path.join(REPO, "scripts/ensure-pulumi.sh"), path.join(repo, "scripts/ensure-pulumi.sh"));
  fs.copyFileSync(path.join(REPO, "scripts/language-host/pulumi-language-nodejs"), path.join(repo, "scripts/language-host/pulumi-language-nodejs"));
  fs.writeFileSync(path.join(repo, "package.json"), JSON.stringify({ peerDependencies: { "@pulumi/pulumi": "^3.248.0" }, devDependencies: { "@pulumi/pulumi": sdk } }));
  return repo;
}

function toolDir(): string {
  const dir = path.join(scratch, "tools");
  fs.mkdirSync(dir, { recursive: true });
  for (const tool of TOOLS) {
    const real = execFileSync("bash", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim();
    fs.symlinkSync(real, path.join(dir, tool));
  }
  return dir;
}

function run(repo: string, pathDirs: string[], env: Record<string, string> = {}) {
  const r = spawnSync("bash", [path.join(repo, "scripts/ensure-pulumi.sh")], {
    encoding: "utf8",
    env: { HOME: scratch, PATH: pathDirs.join(":"), PULUMI_PVE_CACHE: path.join(scratch, "cache"), ...env },
  });
  const lines = r.stdout.trim().split("\n");
  return { status: r.status, lastLine: lines[lines.length - 1], stderr: r.stderr };
}

beforeEach(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "ensure-pulumi-"));
});
afterEach(() => fs.rmSync(scratch, { recursive: true, force: true }));

test("uses a recent enough pulumi from PATH and prints its directory", () => {
  const installed = path.join(scratch, "installed");
  executable(path.join(installed, "pulumi"), `echo v3.280.1`);
  executable(path.join(installed, "pulumi-language-nodejs"), "exit 0");
  const r = run(repoCopy(), [installed, toolDir()]);
  expect(r.status).toBe(0);
  expect(r.lastLine).toBe(installed);
  expect(r.stderr).toContain("using pulumi v3.280.1 from PATH");
});

test("ignores an older pulumi on PATH and, with no Go, says how to install Pulumi", () => {
  const installed = path.join(scratch, "installed");
  executable(path.join(installed, "pulumi"), `echo v3.100.0`);
  const r = run(repoCopy(), [installed, toolDir()]);
  expect(r.status).toBe(1);
  expect(r.stderr).toContain("ignoring pulumi on PATH");
  expect(r.stderr).toContain(`the Pulumi CLI >= ${SDK_VERSION} is needed and neither it nor Go`);
  expect(r.stderr).toContain("https://www.pulumi.com/docs/install/");
});

test("refuses a Go too old to build the CLI, naming the version it needs", () => {
  const fakeGo = path.join(scratch, "go-bin");
  executable(path.join(fakeGo, "go"), `[ "$1 $2" = "env GOVERSION" ] && echo go1.21.0 || echo "go version go1.21.0 linux/amd64"`);
  const r = run(repoCopy(), [fakeGo, toolDir()]);
  expect(r.status).toBe(1);
  expect(r.stderr).toContain("Go 1.21.0 is too old to build the Pulumi CLI");
  expect(fs.existsSync(path.join(scratch, "cache", `pulumi-v${SDK_VERSION}`, "bin"))).toBe(false);
});

test("uses a complete cached build and gives it pulumi-pve's minimal language host", () => {
  const bin = path.join(scratch, "cache", `pulumi-v${SDK_VERSION}`, "bin");
  executable(path.join(bin, "pulumi"), `echo v${SDK_VERSION}`);
  executable(path.join(bin, "pulumi-resource-pulumi-nodejs"), "exit 0");
  fs.writeFileSync(path.join(bin, "..", ".complete"), `version=v${SDK_VERSION}\n`);
  const r = run(repoCopy(), [toolDir()], { PULUMI_PVE_NO_PATH: "1" });
  expect(r.status).toBe(0);
  expect(r.lastLine).toBe(bin);
  expect(fs.readFileSync(path.join(bin, "pulumi-language-nodejs"), "utf8")).toContain("PULUMI_PVE_MINIMAL_LANGUAGE_HOST");
});

test("refuses to provide a CLI of another release than the SDK package.json pins", () => {
  const installed = path.join(scratch, "installed");
  executable(path.join(installed, "pulumi"), `echo v${SDK_VERSION}`);
  const r = run(repoCopy("3.999.0"), [installed, toolDir()]);
  expect(r.status).toBe(1);
  expect(r.stderr).toContain(`package.json pins @pulumi/pulumi 3.999.0, but this script provides the CLI ${SDK_VERSION}`);
});

test("announces a build from source (what, how long, where it is cached) and shows the download progress", () => {
  const fakeGo = path.join(scratch, "go-bin");
  // a Go new enough, whose `go mod tidy` downloads 30 modules and then fails
  executable(
    path.join(fakeGo, "go"),
    [
      `case "$1 $2" in`,
      `  "env GOVERSION") echo go1.26.8 ;;`,
      `  "mod tidy") for i in $(seq 1 30); do echo "go: downloading example.com/m$i v1.0.0" >&2; done; echo "go: example.com/m30: 404" >&2; exit 1 ;;`,
      `  *) echo "go version go1.26.8 linux/amd64" ;;`,
      `esac`,
    ].join("\n"),
  );
  const tools = toolDir();
  fs.symlinkSync(execFileSync("bash", ["-c", "command -v seq"], { encoding: "utf8" }).trim(), path.join(tools, "seq"));
  const r = run(repoCopy(), [fakeGo, tools]);
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(new RegExp(`The Pulumi CLI v${SDK_VERSION.replace(/\./g, "\\.")} is neither on PATH nor cached: building it from source`));
  expect(r.stderr).toMatch(/\d+ to \d+ minutes on 2 cores, once per machine \(cached in .*pulumi-v/);
  expect(r.stderr).toContain("https://www.pulumi.com/docs/install/");
  expect(r.stderr).toContain("step 1 of 3: downloading the CLI's Go modules");
  expect(r.stderr).toMatch(/downloaded 25 modules, \dm\d\ds/);
  expect(r.stderr).toContain("go: example.com/m30: 404");
  expect(r.stderr).toContain("go mod tidy failed");
  expect(fs.existsSync(path.join(scratch, "cache", `pulumi-v${SDK_VERSION}`, ".complete"))).toBe(false);
});
