/**
 * Runs Pulumi programs through the real engine (the Pulumi CLI provided by
 * scripts/ensure-pulumi.sh) with the Automation API, for the end-to-end suites.
 *
 * Programs run *inline*: the program directory's module is loaded in this process and its
 * exported function is handed to the Automation API, which serves it to the CLI over
 * `--client`. That needs no `pulumi-language-nodejs` language host (which the CLI built here
 * does not have; see docs/dynamic-provider-notes.md).
 *
 * Every stack gets a throw-away workspace directory laid out like a user's project that has
 * installed this package: `node_modules/pulumi-pve` (this checkout) and `node_modules/@pulumi`
 * (our @pulumi/pulumi). The engine starts the dynamic-provider process in that directory, so
 * provider methods resolve `require("pulumi-pve/dist/...")` exactly as they will for users.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";

const execFileAsync = promisify(execFile);

/** The root of this checkout (the package `pulumi-pve`). */
export const REPO_ROOT = findRepoRoot(__dirname);

/** From test/e2e (ts-jest) or dist/test/e2e (compiled scripts), up to the package root. */
function findRepoRoot(from: string): string {
    for (let dir = from; ; dir = path.dirname(dir)) {
        if (fs.existsSync(path.join(dir, "scripts", "ensure-pulumi.sh"))) return dir;
        if (path.dirname(dir) === dir) throw new Error(`no pulumi-pve checkout above ${from}`);
    }
}

/** The passphrase of the test stacks' secrets provider (throw-away stacks, not a secret). */
export const TEST_PASSPHRASE = "pulumi-pve-e2e-passphrase";

export interface PulumiEnv {
    /** The directory holding `pulumi` (and `pulumi-resource-pulumi-nodejs`). */
    pulumiBin: string;
    /** The `pulumi` executable. */
    pulumiPath: string;
    /** The Automation API handle on that CLI. */
    command: PulumiCommand;
    /** A temporary directory used as the root of everything below. */
    tmpRoot: string;
    /** The `file://` backend directory (PULUMI_BACKEND_URL). */
    backendDir: string;
    /** Environment for the CLI and the processes it starts (PATH, PULUMI_HOME, backend, passphrase...). */
    env: NodeJS.ProcessEnv;
}

let envPromise: Promise<PulumiEnv> | undefined;

/**
 * Runs scripts/ensure-pulumi.sh once per process (builds the CLI on first use on a machine,
 * which takes minutes) and prepares an isolated Pulumi environment: PULUMI_HOME and a local
 * `file://` backend in a temporary directory, a passphrase secrets provider, no update checks.
 * Rejects with the script's output when no CLI can be had.
 */
export function pulumiEnv(): Promise<PulumiEnv> {
    envPromise ??= makePulumiEnv();
    return envPromise;
}

async function makePulumiEnv(): Promise<PulumiEnv> {
    const script = path.join(REPO_ROOT, "scripts", "ensure-pulumi.sh");
    let stdout: string;
    try {
        ({ stdout } = await execFileAsync("bash", [script], {
            cwd: REPO_ROOT,
            maxBuffer: 64 * 1024 * 1024,
            timeout: 60 * 60 * 1000,
        }));
    } catch (e) {
        const err = e as { stderr?: string; code?: number | string; message: string };
        const output = (err.stderr ?? "").trim().split("\n").slice(-20).join("\n");
        throw new Error(
            `The Pulumi CLI could not be obtained: scripts/ensure-pulumi.sh failed ` +
                `(${err.code ?? err.message.split("\n")[0]}):\n${output}`,
        );
    }
    const pulumiBin = stdout.trim().split("\n").pop()!.trim();
    const pulumiPath = path.join(pulumiBin, "pulumi");
    if (!fs.existsSync(pulumiPath)) {
        throw new Error(`scripts/ensure-pulumi.sh answered ${JSON.stringify(pulumiBin)}, which holds no 'pulumi'`);
    }

    const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-pve-e2e-"));
    const backendDir = path.join(tmpRoot, "backend");
    const pulumiHome = path.join(tmpRoot, "home");
    fs.mkdirSync(backendDir, { recursive: true });
    fs.mkdirSync(pulumiHome, { recursive: true });

    const env: NodeJS.ProcessEnv = {
        PATH: `${pulumiBin}${path.delimiter}${process.env.PATH ?? ""}`,
        PULUMI_HOME: pulumiHome,
        PULUMI_BACKEND_URL: `file://${backendDir}`,
        PULUMI_CONFIG_PASSPHRASE: TEST_PASSPHRASE,
        PULUMI_SKIP_UPDATE_CHECK: "1",
        PULUMI_SKIP_CONFIRMATIONS: "1",
        PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "1",
        // Never reach out for plugins; everything the tests need is local.
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "1",
    };

    // PulumiCommand wants an installation root holding bin/pulumi.
    let root: string;
    if (path.basename(pulumiBin) === "bin") {
        root = path.dirname(pulumiBin);
    } else {
        root = path.join(tmpRoot, "cli");
        fs.mkdirSync(path.join(root, "bin"), { recursive: true });
        fs.symlinkSync(pulumiPath, path.join(root, "bin", "pulumi"));
    }
    const command = await PulumiCommand.get({ root, skipVersionCheck: true });
    return { pulumiBin, pulumiPath, command, tmpRoot, backendDir, env };
}

/**
 * Removes the temporary PULUMI_HOME, backend and workspaces of {@link pulumiEnv} (call it in a
 * file-level `afterAll`, after the stacks are destroyed). Set PULUMI_PVE_KEEP_TMP=1 to keep them
 * for inspection.
 */
export async function disposePulumiEnv(): Promise<void> {
    const p = envPromise;
    envPromise = undefined;
    if (!p) return;
    const penv = await p.catch(() => undefined);
    if (penv && !process.env.PULUMI_PVE_KEEP_TMP) fs.rmSync(penv.tmpRoot, { recursive: true, force: true });
}

/** A stack config value; `secret: true` stores it encrypted (as `pulumi config set --secret`). */
export interface ConfigEntry {
    value: string;
    secret?: boolean;
}

export interface CreateStackOptions {
    /**
     * A directory whose module (`index.ts` under ts-jest, `index.js` once compiled) exports the
     * Pulumi program as a function returning the stack outputs: preferably
     * `export = async () => { ...; return outputs; }` (which `pulumi up` accepts too), else a
     * default export or a named export `program`.
     */
    programDir: string;
    stackName: string;
    /** Defaults to the program directory's base name. */
    projectName?: string;
    /** Stack config, full keys: `{ "proxmox:endpoint": { value: "https://..." } }`. */
    config?: Record<string, ConfigEntry>;
    /** Extra environment for the CLI, the program's engine calls and the provider processes. */
    envVars?: Record<string, string>;
}

export interface TestStack {
    stack: Stack;
    /** The throw-away workspace directory (Pulumi.yaml, node_modules links); the provider's cwd. */
    workDir: string;
    env: PulumiEnv;
}

/**
 * Creates (or selects) a stack for the program in `programDir` on the local `file://` backend
 * with the passphrase secrets provider, and sets its config.
 */
export async function createStack(opts: CreateStackOptions): Promise<Stack> {
    return (await createTestStack(opts)).stack;
}

/** As {@link createStack}, also returning the workspace directory and environment. */
export async function createTestStack(opts: CreateStackOptions): Promise<TestStack> {
    const penv = await pulumiEnv();
    const programDir = path.resolve(opts.programDir);
    const projectName = opts.projectName ?? path.basename(programDir);
    const program = loadProgram(programDir);

    const workDir = fs.mkdtempSync(path.join(penv.tmpRoot, `${projectName}-${opts.stackName}-`));
    linkPackage(workDir);

    const envVars: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...penv.env, ...(opts.envVars ?? {}) })) {
        if (v !== undefined) envVars[k] = v;
    }

    const stack = await LocalWorkspace.createOrSelectStack(
        { stackName: opts.stackName, projectName, program },
        {
            workDir,
            pulumiHome: penv.env.PULUMI_HOME,
            pulumiCommand: penv.command,
            envVars,
            secretsProvider: "passphrase",
            projectSettings: {
                name: projectName,
                runtime: "nodejs",
                backend: { url: penv.env.PULUMI_BACKEND_URL },
            },
        },
    );
    if (opts.config && Object.keys(opts.config).length > 0) {
        await stack.setAllConfig(opts.config);
    }
    return { stack, workDir, env: penv };
}

/**
 * Lays out `dir` like a project that depends on this package: node_modules/pulumi-pve -> this
 * checkout, node_modules/@pulumi -> our @pulumi scope (for the dynamic-provider launcher).
 */
export function linkPackage(dir: string): void {
    const nm = path.join(dir, "node_modules");
    fs.mkdirSync(nm, { recursive: true });
    const links: Array<[string, string]> = [
        [path.join(nm, "pulumi-pve"), REPO_ROOT],
        [path.join(nm, "@pulumi"), path.join(REPO_ROOT, "node_modules", "@pulumi")],
    ];
    for (const [link, target] of links) {
        if (!fs.existsSync(link)) fs.symlinkSync(target, link, "dir");
    }
}

type ProgramFn = () => Promise<Record<string, unknown> | void>;

function loadProgram(programDir: string): ProgramFn {
    const mod = require(programDir) as { default?: unknown; program?: unknown } | ProgramFn;
    const fn =
        typeof mod === "function" ? mod : typeof mod.default === "function" ? mod.default : mod.program;
    if (typeof fn !== "function") {
        throw new Error(`${programDir} must export a program function (default export or 'program')`);
    }
    return fn as ProgramFn;
}

/** Removes the stack and its workspace; ignores errors (for afterAll). */
export async function removeStack(ts: TestStack | Stack | undefined): Promise<void> {
    if (!ts) return;
    const stack = ts instanceof Stack ? ts : ts.stack;
    try {
        await stack.workspace.removeStack(stack.name, { force: true });
    } catch {
        /* best effort */
    }
    if (!(ts instanceof Stack)) fs.rmSync(ts.workDir, { recursive: true, force: true });
}

/**
 * Transpiles the given TypeScript files of this repo to their dist/ place (as `npm run build`
 * would, rootDir "." -> dist/), when dist/ is missing or older than the source. For fixtures
 * whose code the dynamic-provider process `require()`s from dist/ while the suite runs from
 * source: lets `npx jest <e2e test>` work without a full build. Code under provider/ still
 * needs `npm run build`.
 */
export function compileToDist(files: string[]): void {
    const ts = require("typescript") as typeof import("typescript");
    for (const file of files) {
        const abs = path.resolve(file);
        const rel = path.relative(REPO_ROOT, abs);
        const out = path.join(REPO_ROOT, "dist", rel.replace(/\.ts$/, ".js"));
        if (fs.existsSync(out) && fs.statSync(out).mtimeMs >= fs.statSync(abs).mtimeMs) continue;
        const result = ts.transpileModule(fs.readFileSync(abs, "utf8"), {
            fileName: abs,
            compilerOptions: {
                target: ts.ScriptTarget.ES2022,
                module: ts.ModuleKind.CommonJS,
                esModuleInterop: true,
                sourceMap: false,
            },
        });
        fs.mkdirSync(path.dirname(out), { recursive: true });
        fs.writeFileSync(out, result.outputText);
    }
}

/**
 * The stack's state as stored, secrets still encrypted: `pulumi stack export` WITHOUT
 * `--show-secrets`. (The Automation API's `stack.exportStack()` passes `--show-secrets`, so it
 * shows secret values in plaintext and cannot prove that a secret stays encrypted.)
 */
export async function exportStackEncrypted(ts: TestStack): Promise<string> {
    const { stdout } = await execFileAsync(
        ts.env.pulumiPath,
        ["stack", "export", "--stack", ts.stack.name, "--non-interactive"],
        { cwd: ts.workDir, env: { ...process.env, ...ts.env.env }, maxBuffer: 64 * 1024 * 1024 },
    );
    return stdout;
}
