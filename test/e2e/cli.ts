/**
 * Commands run as a user runs them in a shell (the Pulumi CLI, npm), for the suites that use no
 * Automation API. Every command's output joins the suite's secret scan (harness.recordText).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { recordText, suiteSecrets, type ConfigEntry, type PulumiEnv } from "./harness";

const execFileAsync = promisify(execFile);

export interface CmdResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `file args` in `cwd`; never throws on exit codes (a timeout or signal is code -1). */
export async function runCommand(file: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, label: string): Promise<CmdResult> {
  let r: CmdResult;
  try {
    const { stdout, stderr } = await execFileAsync(file, args, { cwd, env, maxBuffer: 64 * 1024 * 1024, timeout: 5 * 60 * 1000 });
    r = { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    r = { code: typeof err.code === "number" ? err.code : -1, stdout: err.stdout ?? "", stderr: `${err.stderr ?? ""}${typeof err.code === "string" ? `\n${err.code}` : ""}` };
  }
  recordText(`${label}: stdout`, r.stdout);
  recordText(`${label}: stderr`, r.stderr);
  return r;
}

/** Asserts success, showing the command's output when it did not succeed. */
export function expectOk(r: CmdResult, what: string): void {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
}

export type PulumiCommand = (args: string[]) => Promise<CmdResult>;

/** `pulumi <args>` in `workDir`, non-interactive and without colour. */
export function pulumiIn(penv: PulumiEnv, workDir: () => string): PulumiCommand {
  return (args) => runCommand(penv.pulumiPath, [...args, "--non-interactive", "--color", "never"], workDir(), { ...process.env, ...penv.env }, `pulumi ${args[0]} ${args[1] ?? ""}`);
}

/** `pulumi config set-all` of `config` on `stack`; secret values join the secret scan. */
export async function setConfigCli(pulumi: PulumiCommand, stack: string, config: Record<string, ConfigEntry>): Promise<void> {
  const args = ["config", "set-all", "--stack", stack];
  for (const [k, { value, secret }] of Object.entries(config)) {
    if (secret) suiteSecrets.addSecret(value, `stack config ${k}`);
    args.push(secret ? "--secret" : "--plaintext", `${k}=${value}`);
  }
  expectOk(await pulumi(args), "pulumi config set-all");
}
