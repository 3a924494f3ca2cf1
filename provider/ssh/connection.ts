/**
 * One SSH connection to one PVE node, for the length of one operation: host key verified
 * before anything is sent, authenticated with a private key and/or an agent, one SFTP channel
 * reused for every file operation, closed at the end whatever happened.
 *
 * Errors name the node and the address dialled and say what to change; they never contain
 * the private key, its passphrase, or anything the key text could leak through.
 *
 * This module opens and bounds sessions; the options and the credential check are in
 * connect-options.ts, the session in session.ts, what a failed connect means in
 * connect-errors.ts, node addresses in endpoints.ts, the key scan in keyscan.ts (all
 * re-exported here).
 */
import { Client, ConnectConfig } from "ssh2";
import { silentLogger } from "../util/logger";
import { DEFAULT_OPERATION_TIMEOUT_MS, DEFAULT_READY_TIMEOUT_MS, SshConnectOptions, checkCredentials, secretsOf } from "./connect-options";
import { classifyConnectError } from "./connect-errors";
import { SshEndpoint, SshError, describeEndpoint, scrubError } from "./errors";
import { HostKeyAccepted, preferredHostKeyAlgorithms, verifyHostKey } from "./hostkeys";
import { SshSession } from "./session";

export {
  DEFAULT_OPERATION_TIMEOUT_MS,
  DEFAULT_READY_TIMEOUT_MS,
  checkCredentials,
  secretsOf,
  type SshAuthOptions,
  type SshConnectOptions,
} from "./connect-options";
export { DEFAULT_SSH_PORT, resolveEndpoint, type NodeAddressOverride } from "./endpoints";
export { scanHostKey, type ScannedHostKey } from "./keyscan";
export { SshSession, type ExecResult } from "./session";

/** Connects, verifies the host key, authenticates. Rejects with an SshError. */
export async function openSession(endpoint: SshEndpoint, opts: SshConnectOptions): Promise<SshSession> {
  checkCredentials(opts);
  const logger = opts.logger ?? silentLogger;
  const secrets = secretsOf(opts);
  const readyTimeout = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const where = describeEndpoint(endpoint);

  return new Promise<SshSession>((resolve, reject) => {
    const client = new Client();
    let accepted: HostKeyAccepted | undefined;
    let hostKeyFailure: SshError | undefined;
    let settled = false;
    // A hard stop in case the handshake stalls somewhere ssh2's readyTimeout does not cover.
    const guard = setTimeout(() => {
      fail(
        new SshError(
          "timeout",
          `connecting to node ${where} timed out after ${readyTimeout} ms; check the address and port ` +
            `(proxmox:sshNodes overrides them per node) and that sshd is running`,
          endpoint,
        ),
      );
      client.destroy();
    }, readyTimeout + 1000);

    const fail = (err: SshError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      client.destroy();
      reject(scrubError(err, secrets));
    };

    client.on("ready", () => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      if (!accepted) {
        client.destroy();
        reject(new SshError("protocol", `node ${where}: connection became ready without a verified host key`, endpoint));
        return;
      }
      logger.debug(`SSH connected to node ${where} as '${opts.username}' (host key ${accepted.fingerprint} via ${accepted.via})`);
      resolve(new SshSession(client, endpoint, opts.username, accepted, secrets));
    });
    client.on("error", (err: Error & { level?: string; code?: string }) => {
      if (settled) return; // after ready: the operation in progress reports it
      if (hostKeyFailure) return fail(hostKeyFailure);
      fail(classifyConnectError(err, endpoint, opts, readyTimeout));
    });
    client.on("close", () => {
      if (!settled) {
        fail(
          hostKeyFailure ??
            new SshError("protocol", `node ${where} closed the SSH connection during the handshake`, endpoint),
        );
      }
    });

    const preferred = preferredHostKeyAlgorithms(opts.hostKeys, endpoint);
    const config: ConnectConfig = {
      host: endpoint.host,
      port: endpoint.port,
      username: opts.username,
      readyTimeout,
      keepaliveInterval: 10_000,
      keepaliveCountMax: 3,
      tryKeyboard: false,
      hostVerifier: (key: Buffer): boolean => {
        try {
          accepted = verifyHostKey(opts.hostKeys, endpoint, key, logger);
          return true;
        } catch (e) {
          hostKeyFailure =
            e instanceof SshError ? e : new SshError("protocol", `host key check failed: ${String(e)}`, endpoint);
          return false;
        }
      },
    };
    if (preferred.length > 0) {
      // Move the types known for this node to the front (prepend alone does not reorder).
      config.algorithms = { serverHostKey: { remove: preferred, prepend: preferred } as any };
    }
    if (opts.privateKey) config.privateKey = opts.privateKey;
    if (opts.passphrase) config.passphrase = opts.passphrase;
    if (opts.agentSocket) config.agent = opts.agentSocket;
    if (opts.password) config.password = opts.password;
    try {
      client.connect(config);
    } catch (e) {
      fail(classifyConnectError(e instanceof Error ? e : new Error(String(e)), endpoint, opts, readyTimeout));
    }
  });
}

/**
 * Opens a session, runs `fn`, and always closes the session. The whole operation is bounded
 * by `operationTimeoutMs`: past it the connection is dropped and a timeout error raised.
 */
export async function withSession<T>(
  endpoint: SshEndpoint,
  opts: SshConnectOptions,
  fn: (session: SshSession) => Promise<T>,
): Promise<T> {
  const session = await openSession(endpoint, opts);
  const limit = opts.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const overrun = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      session.destroy();
      reject(
        new SshError(
          "timeout",
          `operation on node ${describeEndpoint(endpoint)} did not finish within ${limit} ms; the connection was dropped`,
          endpoint,
        ),
      );
    }, limit);
  });
  const work = fn(session);
  work.catch(() => undefined);
  try {
    return await Promise.race([work, overrun]);
  } catch (e) {
    throw scrubError(e instanceof Error ? e : new Error(String(e)), secretsOf(opts));
  } finally {
    if (timer) clearTimeout(timer);
    session.close();
  }
}
