/**
 * The host key a node presents, fetched without authenticating (like `ssh-keyscan`): for
 * showing a user what to pin.
 */
import { Client } from "ssh2";
import { DEFAULT_READY_TIMEOUT_MS } from "./connect-options";
import { classifyConnectError } from "./connect-errors";
import { SshEndpoint, SshError, describeEndpoint } from "./errors";
import { verifyHostKey } from "./hostkeys";

export interface ScannedHostKey {
  keyType: string;
  fingerprint: string;
  /** `<type> <base64>`. */
  publicKey: string;
}

/**
 * Fetches the host key a node presents (like `ssh-keyscan`), without authenticating. For
 * showing a user what to pin; trusting its answer unchecked is trust-on-first-use, so
 * compare the fingerprint with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on the node.
 */
export function scanHostKey(endpoint: SshEndpoint, opts: { readyTimeoutMs?: number } = {}): Promise<ScannedHostKey> {
  const readyTimeout = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  return new Promise<ScannedHostKey>((resolve, reject) => {
    const client = new Client();
    let found: ScannedHostKey | undefined;
    let settled = false;
    const done = (err?: SshError): void => {
      if (settled) return;
      settled = true;
      client.destroy();
      if (found) resolve(found);
      else reject(err ?? new SshError("protocol", `node ${describeEndpoint(endpoint)} presented no host key`, endpoint));
    };
    client.on("error", (err: Error & { level?: string; code?: string }) => {
      done(found ? undefined : classifyConnectError(err, endpoint, { username: "-", hostKeys: {} }, readyTimeout));
    });
    client.on("close", () => done());
    client.connect({
      host: endpoint.host,
      port: endpoint.port,
      username: "keyscan",
      readyTimeout,
      hostVerifier: (key: Buffer): boolean => {
        const accepted = verifyHostKey({ insecureSkipHostKeyCheck: true }, endpoint, key);
        found = { keyType: accepted.keyType, fingerprint: accepted.fingerprint, publicKey: accepted.publicKey };
        setImmediate(() => done());
        return false;
      },
    });
  });
}
