/**
 * Errors of the snippet transport. Every message names the node and the address it was
 * reached at, says what to do next, and never carries key material or passwords.
 */

export type SshErrorKind =
  /** A setting is wrong before anything is attempted (bad name, bad path, bad key text). */
  | "invalid"
  /** The node's host key is not trusted yet (no pin and no known_hosts entry matches). */
  | "host-key-unknown"
  /** The node's host key differs from the pinned one / the known_hosts one. */
  | "host-key-changed"
  /** known_hosts marks the presented key @revoked. */
  | "host-key-revoked"
  /** The server refused every credential offered. */
  | "auth"
  /** TCP connection refused, host unreachable, name not resolvable. */
  | "unreachable"
  /** Handshake or operation took longer than the configured bound. */
  | "timeout"
  /** The remote side refused or failed a file operation (permission, missing directory...). */
  | "remote"
  /** `sudo -n` was refused (no passwordless sudo) or a sudo'd command failed. */
  | "sudo"
  /** What was written does not read back with the same size and hash. */
  | "verify"
  /** Anything else the SSH layer reported. */
  | "protocol";

/** Where an SSH operation went: the PVE node name and the address actually dialled. */
export interface SshEndpoint {
  /** PVE node name (as in `/nodes/{node}`). */
  node: string;
  /** Address dialled: an override, the node's cluster address, or the node name. */
  host: string;
  port: number;
}

export function describeEndpoint(endpoint: SshEndpoint): string {
  return `'${endpoint.node}' (${formatAddress(endpoint.host, endpoint.port)})`;
}

export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

export class SshError extends Error {
  constructor(
    readonly kind: SshErrorKind,
    message: string,
    readonly endpoint?: SshEndpoint,
  ) {
    super(message);
    this.name = "SshError";
  }
}

/** Host-key failures carry the fingerprint the server presented, so callers can show it. */
export class HostKeyError extends SshError {
  constructor(
    kind: "host-key-unknown" | "host-key-changed" | "host-key-revoked",
    message: string,
    endpoint: SshEndpoint,
    /** `SHA256:...` of the key the server presented. */
    readonly presentedFingerprint: string,
    /** Fingerprints that were expected for this node (empty for an unknown key). */
    readonly expectedFingerprints: readonly string[],
    /** `<type> <base64>` of the presented key, for a known_hosts line. */
    readonly presentedPublicKey: string,
  ) {
    super(kind, message, endpoint);
    this.name = "HostKeyError";
  }
}

/** Shortest fragment of a secret that is still replaced on its own. */
const MIN_FRAGMENT = 8;

/**
 * Removes secrets from text: each secret as a whole, and for multi-line secrets (PEM or
 * OpenSSH private keys) every line long enough to be key material, so an echo of a single
 * line of the key is caught as well.
 */
export function scrubSecrets(text: string, secrets: Iterable<string | undefined>): string {
  const fragments = new Set<string>();
  for (const secret of secrets) {
    if (typeof secret !== "string" || secret.length === 0) continue;
    if (secret.length >= 3) fragments.add(secret);
    for (const line of secret.split(/\r?\n/)) {
      const t = line.trim();
      if (t.length >= MIN_FRAGMENT && !/^-----(BEGIN|END) /.test(t)) fragments.add(t);
    }
  }
  let out = text;
  for (const f of [...fragments].sort((a, b) => b.length - a.length)) out = out.split(f).join("[redacted]");
  return out;
}

/** The same error with secrets removed from its message and stack (the original is dropped). */
export function scrubError<E extends Error>(err: E, secrets: Iterable<string | undefined>): E {
  const list = [...secrets];
  err.message = scrubSecrets(err.message, list);
  if (typeof err.stack === "string") err.stack = scrubSecrets(err.stack, list);
  return err;
}
