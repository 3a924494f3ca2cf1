// The secret scan the end-to-end suites rely on (test/e2e/secret-scan.ts, wired into every
// stack by test/e2e/harness.ts) must be able to fail: a secret deliberately leaked in any form
// and any place it watches is found, the report names where without showing the secret, and a
// suite whose engine leaks fails even though its own tests pass.
// It lives with that harness, in the e2e tier; it needs no Pulumi CLI (the stacks are fakes).
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { assertNoSecrets, findSecrets, secretForms, secretParts, SecretLedger } from "./secret-scan";
import { LEAKED_KEY, LEAKED_PASSWORD, LEAKED_TOKEN_SECRET } from "./fixtures/secret-scan/secrets";

const execFileAsync = promisify(execFile);
const REPO = path.join(__dirname, "..", "..");

describe("secret forms and findSecrets", () => {
  test.each([
    ["verbatim", (s: string) => `Authorization: PVEAPIToken=root@pam!x=${s}`],
    ["base64", (s: string) => `basic ${Buffer.from(s).toString("base64")}`],
    ["URL-encoded", (s: string) => `?password=${encodeURIComponent(s)}`],
    ["JSON-escaped", (s: string) => JSON.stringify({ p: s })],
  ])("finds a secret leaked %s", (_form, leak) => {
    for (const secret of [LEAKED_PASSWORD, LEAKED_KEY]) {
      const leaks = findSecrets(["nothing here", leak(secret)], [secret]);
      expect(leaks.length).toBeGreaterThan(0);
      expect(leaks[0].text).toBe(1);
    }
  });

  test("finds one line of a private key on its own, not the key's armour", () => {
    const body = LEAKED_KEY.split("\n")[2];
    expect(findSecrets([`debug: ${body}`], [LEAKED_KEY])).toHaveLength(1);
    expect(findSecrets(["-----BEGIN OPENSSH PRIVATE KEY-----"], [LEAKED_KEY])).toEqual([]);
  });

  test("refuses secrets too short to be found reliably, and a scan of nothing", () => {
    expect(() => secretForms("short")).toThrow(/at least 8/);
    expect(() => assertNoSecrets([], [LEAKED_PASSWORD])).toThrow(/no text/);
    expect(() => assertNoSecrets(["text"], [])).toThrow(/no secrets/);
  });

  test("assertNoSecrets reports the place, masking the secret", () => {
    const err = (() => {
      try {
        assertNoSecrets(["clean", `token ${LEAKED_TOKEN_SECRET} in a log`], [LEAKED_TOKEN_SECRET]);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).toMatch(/1 secret occurrence\(s\) found/);
    expect(err?.message).toMatch(/text #1, secret #0/);
    expect(err?.message).toContain("«SECRET»");
    expect(err?.message).not.toContain(LEAKED_TOKEN_SECRET);
  });

  test("an API token's secret part is a secret of its own; its id is not", () => {
    expect(secretParts(`root@pam!ci=${LEAKED_TOKEN_SECRET}`)).toEqual([`root@pam!ci=${LEAKED_TOKEN_SECRET}`, LEAKED_TOKEN_SECRET]);
    expect(secretParts(LEAKED_PASSWORD)).toEqual([LEAKED_PASSWORD]);
  });
});

describe("SecretLedger", () => {
  /** A `pulumi stack export --show-secrets` document: config secrets and a token value marked
   *  secret, a User's password NOT marked (a provider bug the ledger must still catch). */
  const exported = () => ({
    version: 3,
    deployment: {
      resources: [
        {
          type: "pulumi:providers:pulumi-nodejs",
          inputs: { "proxmox:apiToken": { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", plaintext: JSON.stringify(`root@pam!ci=${LEAKED_TOKEN_SECRET}`) } },
        },
        {
          type: "pulumi-nodejs:dynamic/proxmox:ApiToken",
          outputs: { fullTokenId: "ci@pve!fleet", value: { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", plaintext: JSON.stringify("0d3c9a8e-1111-2222-3333-444455556666") } },
        },
        { type: "pulumi-nodejs:dynamic/proxmox:User", inputs: { userid: "ci@pve", password: "an-unmarked-password" }, outputs: { userid: "ci@pve", password: "an-unmarked-password" } },
      ],
    },
  });

  test("learns every secret of a state: marked ones, a token's secret part, and secret-by-nature properties", () => {
    const l = new SecretLedger();
    l.harvestState(JSON.stringify(exported()), "after up");
    expect(l.secrets.sort()).toEqual([`root@pam!ci=${LEAKED_TOKEN_SECRET}`, LEAKED_TOKEN_SECRET, "0d3c9a8e-1111-2222-3333-444455556666", "an-unmarked-password"].sort());
    // names that are not secret are not learnt (they appear in plaintext legitimately)
    expect(l.secrets).not.toContain("ci@pve!fleet");
    expect(l.secrets).not.toContain("ci@pve");
  });

  test("fails on a leak in any text, naming the text and the secret's source, never the secret", () => {
    const l = new SecretLedger();
    l.harvestState(exported(), "after up");
    l.addSecret(LEAKED_KEY, "stack config proxmox:sshPrivateKey");
    l.addText("stack x up: stdout", "Outputs: tokenValue: [secret]");
    l.addText("stack x up: stderr", `I0101 provider: user ci@pve password=an-unmarked-password`);
    l.addError("stack x preview", new Error(`ssh handshake with key ${LEAKED_KEY.split("\n")[1]}`));
    const err = (() => {
      try {
        l.assertClean();
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeDefined();
    expect(err!.message).toMatch(/3 secret occurrence\(s\) found/); // the error's message and its stack
    expect(err!.message).toMatch(/stack x up: stderr holds the secret from after up: User\.password/);
    expect(err!.message).toMatch(/stack x preview: error message holds the secret from stack config proxmox:sshPrivateKey/);
    for (const s of l.secrets) for (const form of secretForms(s)) expect(err!.message).not.toContain(form);
  });

  test("exempts a stack-made secret inside @pulumi/pulumi's own RPC debug record only; never a credential", () => {
    const record = (secret: string) =>
      `{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"RegisterResource RPC finished: resource:ci[pulumi-nodejs:dynamic/proxmox:ApiToken]; err: null, resp: urn:x,value,,,${secret},comment"}`;
    const l = new SecretLedger();
    l.harvestState(exported(), "after up");
    const tokenValue = "0d3c9a8e-1111-2222-3333-444455556666";
    l.addText("stack x up: stderr", `I0101 start\n${record(tokenValue)}\nI0101 done`);
    expect(l.leaks()).toEqual([]);
    expect(l.exempted).toBe(1);
    // the same value on any other line is a leak
    l.addText("stack x up: stderr (2)", `[pulumi-pve] created token ${tokenValue}`);
    expect(l.leaks()).toHaveLength(1);
    // a credential (the stack config's token, not a resource's output) is never exempt
    const creds = new SecretLedger();
    creds.addSecret(`root@pam!ci=${LEAKED_TOKEN_SECRET}`, "stack config proxmox:apiToken");
    creds.addText("stack x up: stderr", record(LEAKED_TOKEN_SECRET));
    expect(creds.leaks()).toHaveLength(1);
    expect(creds.exempted).toBe(0);
  });

  test("passes when nothing leaks, and refuses to pass on nothing", () => {
    const l = new SecretLedger();
    expect(l.used).toBe(false);
    expect(() => l.assertClean()).toThrow(/no text/);
    l.addText("export", "{}");
    expect(() => l.assertClean()).toThrow(/no secret/);
    l.addSecret(LEAKED_PASSWORD, "password");
    expect(() => l.assertClean()).not.toThrow();
    expect(() => l.addSecret("short", "a test secret")).toThrow(/at least 8/);
  });
});

describe("the harness's per-suite scan", () => {
  /** Runs one fixture suite in a child jest (its own module registry, its own afterAll). */
  async function runSuite(file: string): Promise<{ code: number; output: string }> {
    const config = {
      rootDir: REPO,
      roots: ["<rootDir>/test/e2e/fixtures/secret-scan"],
      testMatch: [`**/${file}`],
      testEnvironment: "node",
      transform: { "^.+\\.ts$": ["ts-jest", { isolatedModules: true }] },
    };
    try {
      const { stdout, stderr } = await execFileAsync(process.execPath, [path.join(REPO, "node_modules", "jest", "bin", "jest.js"), "--config", JSON.stringify(config), "--runInBand", "--ci", "--colors=false"], {
        cwd: REPO,
        env: { ...process.env, FORCE_COLOR: "0" },
        maxBuffer: 16 * 1024 * 1024,
      });
      return { code: 0, output: stdout + stderr };
    } catch (e) {
      const err = e as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof err.code === "number" ? err.code : -1, output: `${err.stdout ?? ""}${err.stderr ?? ""}` };
    }
  }

  test("fails a suite whose engine leaked secrets (error, stdout, stderr), though its tests passed", async () => {
    const { code, output } = await runSuite("leaky.suite.ts");
    expect(code).not.toBe(0);
    expect(output).toMatch(/Tests:\s+1 passed, 1 total/);
    expect(output).toMatch(/Test suite failed to run/);
    expect(output).toMatch(/secret scan: \d+ secret occurrence\(s\) found/);
    expect(output).toMatch(/stack leaky \(leaky\) up: error message holds the secret from simulator https:\/\/127\.0\.0\.1:1 root token/);
    expect(output).toMatch(/stack leaky \(leaky\) preview: stdout holds the secret from simulator https:\/\/127\.0\.0\.1:1 root password/);
    expect(output).toMatch(/stack leaky \(leaky\) preview: stderr holds the secret from stack config proxmox:sshPrivateKey/);
    for (const s of [LEAKED_TOKEN_SECRET, LEAKED_PASSWORD, ...LEAKED_KEY.split("\n").slice(1, -1)]) for (const form of secretForms(s)) expect(output).not.toContain(form);
  }, 120_000);

  test("lets the same suite pass when nothing leaked", async () => {
    const { code, output } = await runSuite("clean.suite.ts");
    expect(output).toMatch(/Tests:\s+1 passed, 1 total/);
    expect(output).not.toMatch(/secret scan/);
    expect(code).toBe(0);
  }, 120_000);
});
