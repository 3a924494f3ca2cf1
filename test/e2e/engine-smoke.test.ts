/**
 * The real Pulumi engine runs a dynamic provider from this package: up, a no-op preview with
 * zero changes, a refresh, and destroy, on a local file backend. The provider reads stack config
 * (`proxmox:*`, one of them secret) in its own process, and the secret never lands in the state.
 *
 * Fails (does not skip) when the Pulumi CLI cannot be obtained: see scripts/ensure-pulumi.sh.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import {
    compileToDist,
    createTestStack,
    disposePulumiEnv,
    exportStackEncrypted,
    removeStack,
    REPO_ROOT,
    TestStack,
} from "./harness";
import { fingerprint } from "./fixtures/echo/impl";

const FIXTURE = path.join(__dirname, "fixtures", "echo");
const ENDPOINT = "https://pve.example.test:8006";
const TOKEN = "root@pam!e2e=6f1d0c1e-secret-token-value-4b3e";

// Building the CLI on a fresh machine takes minutes; the engine itself is slow to start.
jest.setTimeout(30 * 60 * 1000);

afterAll(disposePulumiEnv);

describe("the Pulumi engine runs a dynamic provider from this package", () => {
    let ts: TestStack | undefined;
    let stack: Stack;

    beforeAll(async () => {
        // The provider stub requires the implementation from dist/ by package name.
        compileToDist([path.join(FIXTURE, "impl.ts")]);
        ts = await createTestStack({
            programDir: FIXTURE,
            stackName: `smoke${process.pid}`,
            config: {
                "proxmox:endpoint": { value: ENDPOINT },
                "proxmox:apiToken": { value: TOKEN, secret: true },
            },
        });
        stack = ts.stack;
    });

    afterAll(async () => {
        await removeStack(ts);
    });

    it("creates the resource with `up`, the provider reading config in its own process", async () => {
        const up = await stack.up();
        expect(up.summary.result).toBe("succeeded");
        expect(up.summary.resourceChanges).toMatchObject({ create: 2 }); // the stack + the echo
        expect(up.outputs.message.value).toBe("hello from pulumi-pve");
        expect(up.outputs.endpoint.value).toBe(ENDPOINT);
        expect(up.outputs.tokenFingerprint.value).toBe(fingerprint(TOKEN));
        // The implementation ran from this checkout's dist/, found through node_modules/pulumi-pve
        // in the workspace dir, which is the provider process's cwd.
        expect(up.outputs.implPath.value).toBe(
            path.join(REPO_ROOT, "dist", "test", "e2e", "fixtures", "echo", "impl.js"),
        );
        expect(up.outputs.providerCwd.value).toBe(ts!.workDir);
    });

    it("keeps the secret config value out of the state", async () => {
        // As stored (secrets encrypted): the token is nowhere in plaintext.
        const stored = await exportStackEncrypted(ts!);
        expect(stored).not.toContain(TOKEN);
        expect(stored).not.toContain("secret-token-value");
        const resources = JSON.parse(stored).deployment.resources as Array<{
            type: string;
            inputs?: Record<string, unknown>;
        }>;
        // The engine stores the whole stack config as the inputs of the default `pulumi-nodejs`
        // provider; the secret one is a Pulumi secret there (ciphertext), the plain one is plain.
        const defaultProvider = resources.find((r) => r.type === "pulumi:providers:pulumi-nodejs");
        expect(defaultProvider?.inputs?.["proxmox:endpoint"]).toBe(ENDPOINT);
        expect(defaultProvider?.inputs?.["proxmox:apiToken"]).toMatchObject({
            "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
            ciphertext: expect.any(String),
        });
        // The serialised provider is in the state, and is only a stub naming the module to require.
        const echo = resources.find((r) => r.type === "pulumi-nodejs:dynamic/echo:Echo");
        const serialized = String(echo?.inputs?.__provider);
        expect(serialized).toContain('"pulumi-pve/dist/test/e2e/fixtures/echo/impl.js"');
        expect(serialized).not.toContain(REPO_ROOT);
        // `stack.exportStack()` runs `pulumi stack export --show-secrets`: it decrypts.
        expect(JSON.stringify(await stack.exportStack())).toContain("secret-token-value");
    });

    it("previews no changes right after up", async () => {
        const preview = await stack.preview();
        const changes = Object.entries(preview.changeSummary).filter(([op, n]) => op !== "same" && n > 0);
        expect(changes).toEqual([]);
        expect(preview.changeSummary.same).toBe(2);
    });

    it("refreshes through the provider's read without changes", async () => {
        const refresh = await stack.refresh();
        expect(refresh.summary.result).toBe("succeeded");
        const changed = Object.entries(refresh.summary.resourceChanges ?? {}).filter(
            ([op, n]) => op !== "same" && (n ?? 0) > 0,
        );
        expect(changed).toEqual([]);
    });

    it("destroys everything", async () => {
        const destroy = await stack.destroy();
        expect(destroy.summary.result).toBe("succeeded");
        expect(destroy.summary.resourceChanges).toMatchObject({ delete: 2 });
        const state = await stack.exportStack();
        expect(state.deployment.resources ?? []).toEqual([]);
    });
});

/**
 * Which stack config a dynamic provider's `configure()` sees, operation by operation. The engine
 * gives the default `pulumi-nodejs` provider the whole stack config as its inputs and stores them
 * in the state; `preview` and `up` use the current config, while `refresh` and `destroy` use the
 * config stored by the last `up` (see docs/dynamic-provider-notes.md).
 */
describe("the stack config a dynamic provider is configured with", () => {
    let ts: TestStack | undefined;
    let logFile: string;

    /** The endpoints the provider saw in `configure` and the operations since the last call. */
    const calls = (): Array<{ op: string; endpoint: string }> => {
        const lines = fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8").trim().split("\n") : [];
        fs.rmSync(logFile, { force: true });
        return lines.filter(Boolean).map((l) => {
            const { op, endpoint } = JSON.parse(l) as { op: string; endpoint: string };
            return { op, endpoint };
        });
    };
    const setEndpoint = (value: string) => ts!.stack.setConfig("proxmox:endpoint", { value });

    beforeAll(async () => {
        compileToDist([path.join(FIXTURE, "impl.ts")]);
        logFile = path.join(os.tmpdir(), `echo-calls-${process.pid}.jsonl`);
        fs.rmSync(logFile, { force: true });
        ts = await createTestStack({
            programDir: FIXTURE,
            stackName: `cfg${process.pid}`,
            config: { "proxmox:endpoint": { value: "https://a.example.test:8006" } },
            envVars: { ECHO_CALL_LOG: logFile },
        });
    });

    afterAll(async () => {
        await removeStack(ts);
        fs.rmSync(logFile, { force: true });
    });

    it("up and preview use the current config; refresh and destroy the config stored by the last up", async () => {
        const A = "https://a.example.test:8006";
        const B = "https://b.example.test:8006";
        const C = "https://c.example.test:8006";

        await ts!.stack.up();
        expect(calls()).toEqual([
            { op: "configure", endpoint: A },
            { op: "create", endpoint: A },
        ]);

        await setEndpoint(B);
        await ts!.stack.preview();
        expect(calls()).toEqual([
            { op: "configure", endpoint: B },
            { op: "diff", endpoint: B },
        ]);

        await ts!.stack.refresh();
        expect(calls()).toEqual([
            { op: "configure", endpoint: A }, // still the config of the last `up`
            { op: "read", endpoint: A },
            { op: "diff", endpoint: A },
        ]);

        await ts!.stack.up();
        expect(calls()).toEqual([
            { op: "configure", endpoint: B },
            { op: "diff", endpoint: B },
        ]);

        await setEndpoint(C);
        await ts!.stack.destroy();
        expect(calls()).toEqual([
            { op: "configure", endpoint: B }, // the config stored by the last `up`, not C
            { op: "delete", endpoint: B },
        ]);
    });
});
