/** Commands run through `sudo -n` on a node (the `sshSudo` path), with errors that say what sudo needs. */
import { SshError, describeEndpoint } from "./errors";
import type { SshSession } from "./session";

/** Single-quotes a string for a POSIX shell. */
export function shellQuote(s: string): string {
  if (s.includes("\u0000")) throw new SshError("invalid", "a NUL byte cannot be passed on a command line");
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs `sudo -n -- <args>` (each argument quoted); `what` names the step in the error. */
export async function runSudo(session: SshSession, args: string[], what: string): Promise<void> {
  const command = ["sudo", "-n", "--", ...args].map((a, i) => (i < 3 ? a : shellQuote(a))).join(" ");
  const res = await session.exec(command);
  if (res.code === 0) return;
  const endpoint = session.endpoint;
  const stderr = session.scrub(res.stderr.trim()).slice(0, 500);
  const noPassword = /password is required|a terminal is required|no tty present|askpass/i.test(stderr);
  const notInstalled = res.code === 127 && /sudo/.test(stderr);
  const hint = notInstalled
    ? "sudo is not installed on the node"
    : noPassword
      ? `'${session.username}' needs passwordless sudo (sudo -n) for install, mv and rm on the node`
      : `the command failed${stderr ? `: ${stderr}` : ` with exit code ${res.code}`}`;
  throw new SshError(
    "sudo",
    `${what} with sudo -n on node ${describeEndpoint(endpoint)} as '${session.username}' failed: ${hint}`,
    endpoint,
  );
}
