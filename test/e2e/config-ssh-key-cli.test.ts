/**
 * The SSH private key as a secret stack config value, set with the Pulumi CLI as the README
 * says. `pulumi config set --secret proxmox:sshPrivateKey "$(cat key)"` fails: the value starts
 * with `-----BEGIN`, which the CLI's flag parser takes for a flag ("bad flag syntax"). `--`
 * before the value ends the flags; the stored config holds it encrypted, and `config get`
 * returns it exactly (PEM lines and all).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { generateEd25519KeyPair } from "../helpers/ssh-keys";
import { execFile } from "node:child_process";
import { expectOk, runCommand, type CmdResult } from "./cli";
import { disposePulumiEnv, pulumiEnv, recordText, suiteSecrets, type PulumiEnv } from "./harness";

jest.setTimeout(5 * 60 * 1000);
afterAll(disposePulumiEnv);

test("`pulumi config set --secret proxmox:sshPrivateKey -- \"$(cat key)\"` stores the key encrypted; without `--` the CLI refuses it", async () => {
  const penv: PulumiEnv = await pulumiEnv();
  const dir = fs.mkdtempSync(path.join(penv.tmpRoot, "ssh-key-config-"));
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: sshkey\nruntime: nodejs\n");
  const env = { ...process.env, ...penv.env };
  const pulumi = (args: string[]) => runCommand(penv.pulumiPath, args, dir, env, `pulumi ${args[0]} ${args[1] ?? ""}`);
  // commands whose output holds the key by design (the CLI echoes a refused value; `config get`
  // prints it) stay out of the suite's secret scan, which then proves the rest never shows it
  const unscanned = (args: string[]) =>
    new Promise<CmdResult>((resolve) =>
      execFile(penv.pulumiPath, args, { cwd: dir, env }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })),
    );
  expectOk(await pulumi(["stack", "init", "dev", "--secrets-provider", "passphrase", "--non-interactive"]), "pulumi stack init");
  // what "$(cat key)" passes: the file's text without its final newline, as one argument
  const key = generateEd25519KeyPair({ comment: "cli" }).private.replace(/\n$/, "");
  suiteSecrets.addSecret(key, "the SSH private key set with pulumi config set");

  const refused = await unscanned(["config", "set", "--secret", "proxmox:sshPrivateKey", key]);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toContain("bad flag syntax: -----BEGIN OPENSSH PRIVATE KEY-----");

  expectOk(await pulumi(["config", "set", "--secret", "proxmox:sshPrivateKey", "--", key]), "pulumi config set -- <key>");
  const got = await unscanned(["config", "get", "proxmox:sshPrivateKey"]);
  expectOk(got, "pulumi config get");
  expect(got.stdout.replace(/\n$/, "")).toBe(key);
  const stored = fs.readFileSync(path.join(dir, "Pulumi.dev.yaml"), "utf8");
  recordText("Pulumi.dev.yaml", stored);
  expect(stored).toMatch(/proxmox:sshPrivateKey:\n\s+secure: /);
  for (const line of key.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----"))) expect(stored).not.toContain(line);
  await pulumi(["stack", "rm", "dev", "--yes", "--force", "--non-interactive"]);
});
