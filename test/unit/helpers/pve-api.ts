import * as fs from "fs";
import * as path from "path";

/**
 * The shared PVE API reference (fixtures, BEHAVIOURS.md). Tests that need it fail, loudly,
 * when it is missing: they never pass without having looked at it.
 */
export function pveApiDir(): string {
  const fromEnv = process.env.PVE_API_DIR;
  const dir = fromEnv ?? path.resolve(__dirname, "../../../../shared/pve-api");
  if (!fs.existsSync(path.join(dir, "fixtures"))) {
    throw new Error(
      `PVE API reference not found: looked for ${path.join(dir, "fixtures")} ` +
        `(${fromEnv ? "from PVE_API_DIR" : "the default <repo>/../shared/pve-api"}). ` +
        `Set PVE_API_DIR to the directory that holds fixtures/ and BEHAVIOURS.md.`,
    );
  }
  return dir;
}

export function readFixture<T = unknown>(name: string): T {
  return JSON.parse(fs.readFileSync(path.join(pveApiDir(), "fixtures", name), "utf8")) as T;
}

export function listFixtures(pattern: RegExp): string[] {
  return fs.readdirSync(path.join(pveApiDir(), "fixtures")).filter((f) => pattern.test(f)).sort();
}

export function readReferenceText(name: string): string {
  return fs.readFileSync(path.join(pveApiDir(), name), "utf8");
}
