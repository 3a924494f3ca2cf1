// npm postinstall: make this checkout resolvable as `pulumi-pve` from its own root.
// Dynamic-provider stubs require("pulumi-pve/dist/...") from the program's directory
// (docs/dynamic-provider-notes.md); a user's project has the package in node_modules,
// and this link gives the root Pulumi.yaml program and the examples the same layout.
//
// Installed as a dependency (the package lives somewhere under a node_modules directory:
// npm, pnpm's store, a global install) there is nothing to link: it is a no-op there, and it
// never fails that install. Only in a checkout does a failure to link fail `npm ci`.
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");

function installedAsDependency() {
  const real = (() => {
    try {
      return fs.realpathSync(root);
    } catch {
      return root;
    }
  })();
  return [root, real].some((p) => p.split(path.sep).includes("node_modules"));
}

if (installedAsDependency()) process.exit(0);

const link = path.join(root, "node_modules", "pulumi-pve");
if (!fs.existsSync(path.join(root, "node_modules"))) process.exit(0);
try {
  const stat = fs.lstatSync(link);
  if (stat.isSymbolicLink() && path.resolve(path.dirname(link), fs.readlinkSync(link)) === root) process.exit(0);
  fs.rmSync(link, { recursive: true, force: true });
} catch {
  // not there yet
}
fs.symlinkSync("..", link, "dir");
