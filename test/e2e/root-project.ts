/**
 * A project directory laid out like a user's, for running the root Pulumi.yaml program with the
 * Pulumi CLI itself (not inline): used by test/e2e/root-program-cli.test.ts and `npm run demo`.
 *
 * The directory holds the root Pulumi.yaml copied verbatim, the compiled program at the path its
 * `main` names (dist/examples/full-stack/index.js), a package.json, and node_modules/pulumi-pve
 * and node_modules/@pulumi linked to this checkout (harness.linkPackage). The CLI then starts a
 * Node.js language host for it: the real `pulumi-language-nodejs`, or pulumi-pve's minimal one
 * that scripts/ensure-pulumi.sh installs when the real one is absent.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { linkPackage, REPO_ROOT } from "./harness";

/** The TypeScript source of the root program (compiled to the `main` of the root Pulumi.yaml). */
export const ROOT_PROGRAM_SOURCE = path.join(REPO_ROOT, "examples", "full-stack", "index.ts");

/** The `main` of the root Pulumi.yaml. */
export function rootProgramMain(): string {
  const yaml = fs.readFileSync(path.join(REPO_ROOT, "Pulumi.yaml"), "utf8");
  const main = /^main:\s*(\S+)\s*$/m.exec(yaml)?.[1];
  if (!main) throw new Error(`the root Pulumi.yaml has no 'main'`);
  return main;
}

/**
 * Creates a new directory under `parent` holding the root project as a user would have it, and
 * returns its path. The compiled program must exist (`npm run build`, or harness.compileToDist).
 */
export function createRootProjectDir(parent: string, prefix = "proxmox-fleet-"): string {
  const main = rootProgramMain();
  const compiled = path.join(REPO_ROOT, main);
  if (!fs.existsSync(compiled)) throw new Error(`${compiled} does not exist: run 'npm run build' first`);
  const dir = fs.mkdtempSync(path.join(parent, prefix));
  fs.copyFileSync(path.join(REPO_ROOT, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
  fs.mkdirSync(path.join(dir, path.dirname(main)), { recursive: true });
  fs.copyFileSync(compiled, path.join(dir, main));
  fs.writeFileSync(
    path.join(dir, "package.json"),
    JSON.stringify({ name: "proxmox-fleet", private: true, dependencies: { "@pulumi/pulumi": "^3.248.0", "pulumi-pve": "*" } }, null, 2) + "\n",
  );
  linkPackage(dir);
  return dir;
}
