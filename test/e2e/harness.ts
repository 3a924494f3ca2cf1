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
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { SECRET_NAME, SecretLedger } from "./secret-scan";

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
 * which takes minutes, showing its progress on stderr) and prepares an isolated Pulumi
 * environment: PULUMI_HOME and a local `file://` backend in a temporary directory, a passphrase
 * secrets provider, no update checks. Rejects with the script's output when no CLI can be had.
 */
export function pulumiEnv(): Promise<PulumiEnv> {
    envPromise ??= makePulumiEnv();
    return envPromise;
}

async function makePulumiEnv(): Promise<PulumiEnv> {
    const stdout = await runEnsurePulumi();
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

/** Messages of scripts/ensure-pulumi.sh that announce a wait of minutes (a build, or another process's). */
const LONG_WAIT = /building it from source|waiting for it/;

/**
 * scripts/ensure-pulumi.sh; resolves with its stdout. Its stderr is kept quiet while it only
 * finds the CLI, and shown live (on this process's stderr, the terminal under `npm test`, the
 * demo and CI) from the moment it announces a build: what it builds, how long that takes, and
 * its progress. Rejects with the end of its stderr when it fails.
 */
function runEnsurePulumi(): Promise<string> {
    const script = path.join(REPO_ROOT, "scripts", "ensure-pulumi.sh");
    return new Promise((resolve, reject) => {
        const child = spawn("bash", [script], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        let live = false;
        const timer = setTimeout(() => child.kill("SIGTERM"), 60 * 60 * 1000);
        child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
            stderr += chunk;
            if (!live && LONG_WAIT.test(stderr)) {
                live = true;
                process.stderr.write(stderr);
            } else if (live) {
                process.stderr.write(chunk);
            }
        });
        child.on("error", (e) => {
            clearTimeout(timer);
            reject(new Error(`The Pulumi CLI could not be obtained: scripts/ensure-pulumi.sh did not start (${e.message})`));
        });
        child.on("close", (code, signal) => {
            clearTimeout(timer);
            if (code === 0) return resolve(stdout);
            const output = stderr.trim().split("\n").slice(-20).join("\n");
            reject(new Error(`The Pulumi CLI could not be obtained: scripts/ensure-pulumi.sh failed (${signal ?? `exit ${code}`}):\n${output}`));
        });
    });
}

/** A stack config value; `secret: true` stores it encrypted (as `pulumi config set --secret`). */
export interface ConfigEntry {
    value: string;
    secret?: boolean;
}

/**
 * What a simulator gives a suite that must never leak: its root token's secret, root@pam's
 * password and the back door's secret. (Structurally what test/simulator's RunningSimulator is;
 * declared here so the harness needs nothing from the simulator.)
 */
export interface SimulatorSecrets {
    url: string;
    rootToken: string;
    adminSecret: string;
    sim: { options: { rootPassword?: string } };
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
    /**
     * The simulator the stack talks to: its secrets join the suite's secret scan. Required when
     * the stack's endpoint is a local simulator (createTestStack refuses to go on without it).
     */
    simulator?: SimulatorSecrets;
    /**
     * Engine operations log verbosely to stderr (`--logtostderr -v=5`), which the secret scan
     * reads with the rest of the output. Default true; false for suites that parse the CLI's
     * output in its error messages, or whose stacks are large enough to make the log costly.
     */
    verboseLogs?: boolean;
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

    if (opts.simulator) trackSimulator(opts.simulator);
    requireTrackedSimulator(opts.config?.["proxmox:endpoint"]?.value ?? opts.envVars?.PROXMOX_VE_ENDPOINT, opts.stackName);
    for (const [k, v] of Object.entries(opts.config ?? {})) if (v.secret) suiteSecrets.addSecret(v.value, `stack config ${k}`);
    trackEnvSecrets(opts.envVars, `${opts.stackName}'s environment`);

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
    const ts: TestStack = { stack, workDir, env: penv };
    trackStack(ts, { verboseLogs: opts.verboseLogs });
    if (opts.config && Object.keys(opts.config).length > 0) {
        await stack.setAllConfig(opts.config);
    }
    return ts;
}

// ---- the secret scan every suite gets --------------------------------------------------------
//
// Every stack the harness creates (or is given with trackStack) is watched: its secret config
// values and credential environment variables are registered as secrets; every engine operation
// (up, preview, refresh, destroy, import...) has its stdout and stderr collected (with the
// engine's verbose log, which carries the provider processes' stderr) and every error it throws
// recorded; after each operation that writes the state, and before the stack is removed, the
// stack is exported twice: as stored (secrets encrypted: a text to scan) and with
// --show-secrets (to learn the secrets the stack made: a new token's value, the passwords it
// declares). After the test file's tests, a root-level afterAll fails the file when any text
// holds any secret, naming the text and where the secret came from, never the secret.

/** The secrets and texts of this test file (jest gives each file its own module registry). */
export const suiteSecrets = new SecretLedger();

/** Whether this runs as a jest test file (scripts/bench.ts and scripts/demo.ts use the harness too, unwatched). */
const UNDER_JEST = typeof afterAll === "function" && process.env.JEST_WORKER_ID !== undefined;

const trackedSimulators = new Set<string>();
const watched = new WeakSet<Stack>();
const liveStacks = new Set<TestStack>();

/** Adds a simulator's secrets to the scan: its root token's secret, root@pam's password, the back door's secret. */
export function trackSimulator(sim: SimulatorSecrets): void {
    trackedSimulators.add(sim.url);
    suiteSecrets.addSecret(sim.rootToken, `simulator ${sim.url} root token`);
    suiteSecrets.addSecret(sim.sim.options.rootPassword ?? "pve-sim-root", `simulator ${sim.url} root password`);
    suiteSecrets.addSecret(sim.adminSecret, `simulator ${sim.url} back-door secret`);
}

/** A stack pointed at a local simulator must have it registered, or its secrets would go unscanned. */
function requireTrackedSimulator(endpoint: string | undefined, stackName: string): void {
    if (!UNDER_JEST) return;
    const local = endpoint && /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d+\/?$/.exec(endpoint.trim());
    if (local && !trackedSimulators.has(endpoint!.trim().replace(/\/$/, ""))) {
        throw new Error(
            `createTestStack(${stackName}): the endpoint ${endpoint} is a local simulator that the secret scan does not know; ` +
                "pass it as `simulator` (or call trackSimulator first) so its root token, root password and back-door secret are looked for",
        );
    }
}

/** Registers the credential-looking variables of an environment (by name, e.g. PROXMOX_VE_API_TOKEN). */
export function trackEnvSecrets(env: Record<string, string | undefined> | undefined, label: string): void {
    for (const [k, v] of Object.entries(env ?? {})) {
        if (k === "PULUMI_CONFIG_PASSPHRASE") continue; // the test stacks' documented, non-secret passphrase
        if (SECRET_NAME.test(k)) suiteSecrets.addSecret(v, `${label} ${k}`);
    }
}

/** Records a text a user or CI could see (output of a CLI run outside the Automation API...). */
export function recordText(label: string, text: string | undefined): void {
    suiteSecrets.addText(label, text);
}

/** Records an error's message, stack and CLI output. */
export function recordError(label: string, err: unknown): void {
    suiteSecrets.addError(label, err);
}

const STATE_WRITING = new Set(["up", "refresh", "destroy", "import"]);
const OPERATIONS = ["up", "preview", "refresh", "destroy", "previewRefresh", "previewDestroy", "import"] as const;

type OpOptions = { onOutput?: (s: string) => void; onError?: (s: string) => void; logToStdErr?: boolean; logVerbosity?: number };

/**
 * Watches a stack for the secret scan (createTestStack does this for every stack it makes; call
 * it for stacks made otherwise, e.g. a second workspace on the same stack). Returns the stack.
 */
export function trackStack(ts: TestStack, opts: { verboseLogs?: boolean; label?: string } = {}): Stack {
    const { stack } = ts;
    if (!UNDER_JEST || watched.has(stack)) return stack;
    watched.add(stack);
    liveStacks.add(ts);
    const label = opts.label ?? `stack ${stack.name} (${path.basename(ts.workDir)})`;
    const verbose = opts.verboseLogs ?? true;
    const target = stack as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    for (const op of OPERATIONS) {
        const original = target[op].bind(stack);
        target[op] = async (given?: unknown) => {
            const o = (given ?? {}) as OpOptions;
            // whole streams, recorded once the operation ends (a line is never split between texts)
            let stdout = "";
            let stderr = "";
            const merged: OpOptions = {
                ...(verbose ? { logToStdErr: true, logVerbosity: 5 } : {}),
                ...o,
                onOutput: (s: string) => {
                    stdout += s;
                    o.onOutput?.(s);
                },
                onError: (s: string) => {
                    stderr += s;
                    o.onError?.(s);
                },
            };
            const streams = () => {
                suiteSecrets.addText(`${label} ${op}: stdout`, stdout);
                suiteSecrets.addText(`${label} ${op}: stderr`, stderr);
            };
            try {
                const result = await original(merged);
                streams();
                if (STATE_WRITING.has(op)) await captureState(ts, label, `after ${op}`);
                return result;
            } catch (err) {
                streams();
                suiteSecrets.addError(`${label} ${op}`, err);
                if (STATE_WRITING.has(op)) await captureState(ts, label, `after a failed ${op}`);
                throw err;
            }
        };
    }
    for (const op of ["setConfig", "setAllConfig"] as const) {
        const original = target[op].bind(stack);
        target[op] = async (...args: unknown[]) => {
            const entries: Array<[string, ConfigEntry]> =
                op === "setConfig" ? [[args[0] as string, args[1] as ConfigEntry]] : Object.entries(args[0] as Record<string, ConfigEntry>);
            for (const [k, v] of entries) if (v?.secret) suiteSecrets.addSecret(v.value, `stack config ${k}`);
            return original(...args);
        };
    }
    return stack;
}

/**
 * Exports the stack as stored (a text to scan) and with --show-secrets (to learn its secrets),
 * and its Pulumi.<stack>.yaml. Best effort: a stack whose checkpoint cannot be read (a killed
 * run) is exported on the next occasion.
 */
async function captureState(ts: TestStack, label: string, when: string): Promise<void> {
    try {
        suiteSecrets.addText(`${label} state (stack export, ${when})`, await exportStackEncrypted(ts));
        suiteSecrets.harvestState(await ts.stack.exportStack(), `${label} ${when}`);
    } catch {
        /* no readable checkpoint now */
    }
    for (const f of fs.existsSync(ts.workDir) ? fs.readdirSync(ts.workDir) : []) {
        if (/^Pulumi\..+\.ya?ml$/.test(f)) suiteSecrets.addText(`${label} ${f}`, fs.readFileSync(path.join(ts.workDir, f), "utf8"));
    }
}

/**
 * For stacks driven through the `pulumi` CLI directly (no Automation API): exports the stack in
 * `workDir` as stored (a text to scan) and with --show-secrets (its secrets, learnt).
 */
export async function captureCliState(penv: PulumiEnv, workDir: string, stackName: string, when: string): Promise<void> {
    const run = (extra: string[]) =>
        execFileAsync(penv.pulumiPath, ["stack", "export", "--stack", stackName, "--non-interactive", ...extra], {
            cwd: workDir,
            env: { ...process.env, ...penv.env },
            maxBuffer: 64 * 1024 * 1024,
        });
    suiteSecrets.addText(`stack ${stackName} state (stack export, ${when})`, (await run([])).stdout);
    suiteSecrets.harvestState((await run(["--show-secrets"])).stdout, `stack ${stackName} ${when}`);
    for (const f of fs.readdirSync(workDir)) {
        if (/^Pulumi\..+\.ya?ml$/.test(f)) suiteSecrets.addText(`${stackName} ${f}`, fs.readFileSync(path.join(workDir, f), "utf8"));
    }
}

/**
 * The check every suite that imports the harness gets, after all its tests (and after its
 * describe-level afterAll hooks, which remove the stacks): fails the test file on any leak.
 */
export async function assertSuiteKeptSecrets(): Promise<void> {
    for (const ts of [...liveStacks]) {
        liveStacks.delete(ts);
        await captureState(ts, `stack ${ts.stack.name}`, "at the end of the suite");
    }
    if (!suiteSecrets.used) return; // this file made no stack and recorded nothing
    if (process.env.PULUMI_PVE_SECRET_SCAN_INVENTORY) {
        // what was scanned: labels and sizes only, never a text or a secret
        const sizes = new Map<string, number>();
        for (const t of suiteSecrets.texts) sizes.set(t.label, (sizes.get(t.label) ?? 0) + t.text.length);
        fs.writeFileSync(process.env.PULUMI_PVE_SECRET_SCAN_INVENTORY, [...sizes].map(([l, n]) => `${n}\t${l}`).join("\n") + "\n");
    }
    suiteSecrets.assertClean();
    const bytes = suiteSecrets.texts.reduce((n, t) => n + t.text.length, 0);
    const stateExports = suiteSecrets.texts.filter((t) => t.label.includes("(stack export")).length;
    process.stderr.write(
        `SECRET SCAN clean: ${suiteSecrets.secrets.length} secret values looked for in ${suiteSecrets.texts.length} texts (${(bytes / 1e6).toFixed(1)} MB, ${stateExports} state exports); ` +
            `${suiteSecrets.exempted} occurrence(s) inside @pulumi/pulumi's own RPC debug records exempted\n`,
    );
}

// Under jest, every test file importing the harness scans what it collected (outside jest, e.g.
// scripts/bench.ts, there is no hook).
if (UNDER_JEST) {
    afterAll(assertSuiteKeptSecrets, 5 * 60 * 1000);
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
    for (const live of [...liveStacks]) {
        if (live.stack !== stack) continue;
        liveStacks.delete(live);
        await captureState(live, `stack ${stack.name}`, "before removal");
    }
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
