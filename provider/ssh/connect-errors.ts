/**
 * What a failed SSH connection attempt means, said so that the user knows what to change:
 * the credentials the server refused, the agent, a timeout, or the address and port.
 */
import type { SshConnectOptions } from "./connect-options";
import { SshEndpoint, SshError, describeEndpoint, formatAddress } from "./errors";

/** The SshError for an error ssh2 raised while connecting to `endpoint`. */
export function classifyConnectError(
  err: Error & { level?: string; code?: string },
  endpoint: SshEndpoint,
  opts: SshConnectOptions,
  readyTimeout: number,
): SshError {
  const where = describeEndpoint(endpoint);
  const addr = formatAddress(endpoint.host, endpoint.port);
  const who = `'${opts.username}'`;
  if (err.level === "client-authentication") {
    const offered = [
      opts.privateKey ? "sshPrivateKey" : undefined,
      opts.agentSocket ? "the agent's keys" : undefined,
      opts.password ? "the password" : undefined,
    ]
      .filter(Boolean)
      .join(" and ");
    const check = [
      "sshUsername",
      opts.privateKey ? "sshPrivateKey" : undefined,
      opts.agentSocket ? "sshAgentSocket" : undefined,
      opts.password ? "sshPassword" : undefined,
    ]
      .filter(Boolean)
      .join(", ")
      .replace(/, ([^,]*)$/, " and $1");
    return new SshError(
      "auth",
      `SSH authentication as ${who} to ${endpoint.node} (${addr}) failed: the server rejected ` +
        `${offered === "sshPrivateKey" ? "the key" : offered}; check ${check}` +
        (opts.privateKey || opts.agentSocket
          ? ` (the public key must be in ~${opts.username}/.ssh/authorized_keys on the node)`
          : ""),
      endpoint,
    );
  }
  if (err.level === "agent") {
    return new SshError(
      "auth",
      `SSH agent at sshAgentSocket could not be used for node ${where}: ${err.message}`,
      endpoint,
    );
  }
  if (err.level === "client-timeout") {
    return new SshError(
      "timeout",
      `connecting to node ${where} timed out after ${readyTimeout} ms waiting for the SSH handshake; ` +
        `check the address and port (proxmox:sshNodes overrides them per node)`,
      endpoint,
    );
  }
  const code = err.code ?? "";
  const reasons: Record<string, string> = {
    ECONNREFUSED: "connection refused (is sshd running on that port?)",
    ECONNRESET: "connection reset by the server",
    EHOSTUNREACH: "host unreachable",
    ENETUNREACH: "network unreachable",
    ETIMEDOUT: "connection timed out",
    ENOTFOUND: "host name not found",
    EAI_AGAIN: "host name lookup failed",
  };
  if (reasons[code] || err.level === "client-socket" || err.level === "client-dns") {
    return new SshError(
      code === "ETIMEDOUT" ? "timeout" : "unreachable",
      `cannot reach node '${endpoint.node}' at ${addr}: ${reasons[code] ?? err.message}; ` +
        `check the address and port (proxmox:sshNodes overrides them per node)`,
      endpoint,
    );
  }
  return new SshError("protocol", `SSH connection to node ${where} failed: ${err.message}`, endpoint);
}
