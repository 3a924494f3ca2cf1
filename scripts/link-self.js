// npm postinstall: make this checkout resolvable as `pulumi-pve` from its own root.
// Dynamic-provider stubs require("pulumi-pve/dist/...") from the program's directory
// (docs/dynamic-provider-notes.md); a user's project has the package in node_modules,
// and this link gives the root Pulumi.yaml program and the examples the same layout.
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
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
