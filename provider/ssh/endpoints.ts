/** Where a PVE node's sshd is reached: an override per node, the cluster's address, or the node name. */
import { SshEndpoint, SshError } from "./errors";

export const DEFAULT_SSH_PORT = 22;

/** Per-node address and port overrides (`proxmox:sshNodes`). */
export interface NodeAddressOverride {
  host?: string;
  port?: number;
}

/**
 * Where to reach a node: an override wins, then the address the cluster reports for the
 * node, then the node name itself; the port is the override's, the default, or 22.
 */
export function resolveEndpoint(
  node: string,
  opts: { address?: string; overrides?: Readonly<Record<string, NodeAddressOverride>>; defaultPort?: number } = {},
): SshEndpoint {
  const o = opts.overrides?.[node];
  const host = o?.host ?? opts.address ?? node;
  const port = o?.port ?? opts.defaultPort ?? DEFAULT_SSH_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new SshError("invalid", `SSH port for node '${node}' must be an integer from 1 to 65535, got ${port}`);
  }
  if (host.trim() === "" || /\s/.test(host)) {
    throw new SshError("invalid", `SSH address for node '${node}' is not a host name or IP address: '${host}'`);
  }
  return { node, host, port };
}
