/**
 * A released pulumi-pve rebuilt from git history, as an installable package, for the old-state
 * compatibility test (old-state-compat.test.ts, issue 18): the release's `provider/`,
 * `tsconfig.json` and `package.json` taken from a commit with `git archive` (read-only: the
 * checkout's working tree, index and refs are not touched), compiled with this checkout's
 * TypeScript against this checkout's node_modules (a symlink), into `<dir>/dist/`. The directory
 * is then what `npm install pulumi-pve@<that release>` puts in a user's node_modules, as far as
 * the provider stubs stored in a state are concerned: they `require("pulumi-pve/dist/...")`.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT } from "./harness";

const execFileAsync = promisify(execFile);

/** What the archive takes from the release: everything its build and its package need. */
const RELEASE_FILES = ["provider", "tsconfig.json", "package.json"];

/** The error of a child process, with its output. */
function failure(what: string, err: unknown): Error {
  const e = err as { message?: string; stdout?: string; stderr?: string };
  const output = [e.stdout, e.stderr].filter((s) => s && s.trim()).join("\n").trim();
  return new Error(`${what} failed: ${output || e.message || String(err)}`);
}

/**
 * Fails, saying how to fix it, when `commit` is not in this clone (a shallow clone, or a checkout
 * without its git history). The test needs the release's sources: it must not be skipped.
 */
async function requireCommit(commit: string): Promise<void> {
  const present = () => execFileAsync("git", ["-C", REPO_ROOT, "cat-file", "-e", `${commit}^{commit}`]);
  try {
    await present();
  } catch {
    // a shallow clone: ask its origin for the commit once (no network beyond the origin)
    await execFileAsync("git", ["-C", REPO_ROOT, "fetch", "--quiet", "origin", commit]).catch(() => undefined);
  }
  try {
    await present();
  } catch (err) {
    const shallow = await execFileAsync("git", ["-C", REPO_ROOT, "rev-parse", "--is-shallow-repository"]).then(
      (r) => r.stdout.trim() === "true",
      () => false,
    );
    throw new Error(
      `The old-state compatibility test builds the release at commit ${commit} from git history, and this checkout (${REPO_ROOT}) does not have it` +
        `${shallow ? " (it is a shallow clone)" : ""}: ${String((err as Error).message).trim().replace(/\.$/, "")}.\n` +
        `Fetch it, then run the test again:\n` +
        `  git -C ${REPO_ROOT} fetch --unshallow origin      # a shallow clone: the whole history\n` +
        `  git -C ${REPO_ROOT} fetch origin ${commit}   # or just that commit\n` +
        "(CI runs .ci/run in a clone of main with its full history.)",
    );
  }
}

/**
 * Builds the release at `commit` into `dir` (created; must not exist) and returns `dir`, now a
 * `pulumi-pve` package: package.json, dist/provider/**.js (and .d.ts), node_modules -> this
 * checkout's. Type errors the release's sources get from newer type packages in node_modules do
 * not fail the build when the JavaScript was emitted (tsc exit 2: what `npm run build` of the
 * release emits is the same JavaScript); they are noted on stderr. Anything else fails.
 */
export async function buildRelease(commit: string, dir: string): Promise<string> {
  await requireCommit(commit);
  fs.mkdirSync(dir, { recursive: false });
  const tar = path.join(path.dirname(dir), `${path.basename(dir)}.tar`);
  try {
    await execFileAsync("git", ["-C", REPO_ROOT, "archive", "--format=tar", `--output=${tar}`, commit, ...RELEASE_FILES]);
    await execFileAsync("tar", ["-xf", tar, "-C", dir]);
  } catch (err) {
    throw failure(`taking ${RELEASE_FILES.join(", ")} of commit ${commit} with git archive`, err);
  } finally {
    fs.rmSync(tar, { force: true });
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: string };
  if (pkg.name !== "pulumi-pve") throw new Error(`commit ${commit}'s package.json names the package ${JSON.stringify(pkg.name)}, not "pulumi-pve"`);
  fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");

  // The release's own compiler options (tsconfig.json), on its provider only: the tests, scripts
  // and examples its tsconfig also includes are not part of the package (nor in the archive).
  const tsconfig = path.join(dir, "tsconfig.release.json");
  fs.writeFileSync(tsconfig, JSON.stringify({ extends: "./tsconfig.json", include: ["provider/**/*.ts"] }, null, 2));
  const tsc = path.join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc");
  try {
    await execFileAsync(process.execPath, [tsc, "-p", tsconfig], { cwd: dir, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    if (e.code !== 2) throw failure(`compiling commit ${commit}'s provider/ (tsc -p ${tsconfig})`, err);
    process.stderr.write(`[old-release] commit ${commit}'s provider/ compiled with type errors against this checkout's node_modules (JavaScript emitted):\n${e.stdout ?? ""}\n`);
  }

  const missing = sourcesOf(path.join(dir, "provider"))
    .map((src) => path.join(dir, "dist", path.relative(dir, src).replace(/\.ts$/, ".js")))
    .filter((out) => !fs.existsSync(out));
  if (missing.length) throw new Error(`compiling commit ${commit}'s provider/ emitted no ${missing.map((m) => path.relative(dir, m)).join(", ")}`);
  return dir;
}

function sourcesOf(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourcesOf(p);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [p] : [];
  });
}

/**
 * Makes `pulumi-pve` in the workspace `workDir` (the provider process's cwd, whose
 * node_modules resolves the stubs' `require("pulumi-pve/dist/...")`) the package in `pkgDir`:
 * the user's `npm install` of another version. The link is replaced in one rename.
 */
export function installPulumiPve(workDir: string, pkgDir: string): void {
  const link = path.join(workDir, "node_modules", "pulumi-pve");
  const next = `${link}.next`;
  fs.rmSync(next, { force: true });
  fs.symlinkSync(pkgDir, next, "dir");
  fs.renameSync(next, link);
}
