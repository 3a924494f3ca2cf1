/**
 * One SSH connection to one PVE node, for the length of one operation: host key verified
 * before anything is sent, authenticated with a private key and/or an agent, one SFTP channel
 * reused for every file operation, closed at the end whatever happened.
 *
 * Errors name the node and the address dialled and say what to change; they never contain
 * the private key, its passphrase, or anything the key text could leak through.
 */
import { Client, ConnectConfig, SFTPWrapper, utils } from "ssh2";
import { Logger, silentLogger } from "../util/logger";
import { SshEndpoint, SshError, describeEndpoint, formatAddress, scrubError, scrubSecrets } from "./errors";
import { HostKeyAccepted, HostKeyPolicy, preferredHostKeyAlgorithms, verifyHostKey } from "./hostkeys";

export interface SshAuthOptions {
  /** Login user on every node (`proxmox:sshUsername`), e.g. `root`. */
  username: string;
  /** Private key text, PEM or OpenSSH format (`proxmox:sshPrivateKey`, a secret). */
  privateKey?: string;
  /** Passphrase of an encrypted private key (a secret). */
  passphrase?: string;
  /** Path of an ssh-agent socket (`proxmox:sshAgentSocket`, or SSH_AUTH_SOCK read by the config layer). */
  agentSocket?: string;
  /** Login password (`proxmox:sshPassword`, a secret); keys are preferred. Never used for sudo. */
  password?: string;
}

export interface SshConnectOptions extends SshAuthOptions {
  hostKeys: HostKeyPolicy;
  /** Bound on TCP connect + handshake + authentication. Default 15 s. */
  readyTimeoutMs?: number;
  /** Bound on a whole `withSession` operation once connected. Default 120 s. */
  operationTimeoutMs?: number;
  logger?: Logger;
}

export const DEFAULT_SSH_PORT = 22;
export const DEFAULT_READY_TIMEOUT_MS = 15_000;
export const DEFAULT_OPERATION_TIMEOUT_MS = 120_000;

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

export interface ExecResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

const MAX_EXEC_OUTPUT = 64 * 1024;

/** The secrets of a set of options, for scrubbing anything that reaches a message. */
export function secretsOf(opts: SshAuthOptions): string[] {
  return [opts.privateKey, opts.passphrase, opts.password].filter((s): s is string => typeof s === "string" && s.length > 0);
}

/** Checks credentials before dialling anything, so a bad key fails fast and clearly. */
export function checkCredentials(opts: SshAuthOptions): void {
  const secrets = secretsOf(opts);
  if (!opts.username || /[\s:@/]/.test(opts.username)) {
    throw new SshError("invalid", `sshUsername '${opts.username ?? ""}' is not a valid login name`);
  }
  if (!opts.privateKey && !opts.agentSocket && !opts.password) {
    throw new SshError(
      "invalid",
      "no SSH credentials: set proxmox:sshPrivateKey (a secret) or proxmox:sshAgentSocket / SSH_AUTH_SOCK",
    );
  }
  if (opts.privateKey) {
    let parsed: ReturnType<typeof utils.parseKey>;
    try {
      parsed = utils.parseKey(opts.privateKey, opts.passphrase);
    } catch (e) {
      parsed = e instanceof Error ? e : new Error(String(e));
    }
    if (parsed instanceof Error) {
      const reason = scrubSecrets(parsed.message, secrets);
      const hint = /passphrase|decrypt|encrypted/i.test(reason)
        ? "; check sshPrivateKeyPassphrase"
        : "; it must be the private key text in OpenSSH or PEM format";
      throw new SshError("invalid", `sshPrivateKey cannot be used: ${reason}${hint}`);
    }
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (key && typeof key.isPrivateKey === "function" && !key.isPrivateKey()) {
      throw new SshError("invalid", "sshPrivateKey holds a public key; it must be the private key text");
    }
  }
}

/** An open, authenticated connection to one node. */
export class SshSession {
  private sftpPromise?: Promise<SFTPWrapper>;
  private closed = false;

  constructor(
    private readonly client: Client,
    readonly endpoint: SshEndpoint,
    readonly username: string,
    readonly hostKey: HostKeyAccepted,
    private readonly secrets: readonly string[],
  ) {
    client.on("close", () => {
      this.closed = true;
    });
  }

  /** The SFTP channel, opened once and reused. */
  sftp(): Promise<SFTPWrapper> {
    if (!this.sftpPromise) {
      this.sftpPromise = new Promise<SFTPWrapper>((resolve, reject) => {
        this.client.sftp((err, sftp) => {
          if (err) {
            reject(
              new SshError(
                "remote",
                `cannot open an SFTP session on node ${describeEndpoint(this.endpoint)}: ${this.scrub(err.message)}; ` +
                  `the node's sshd must offer the sftp subsystem`,
                this.endpoint,
              ),
            );
          } else resolve(sftp);
        });
      });
      this.sftpPromise.catch(() => {
        this.sftpPromise = undefined;
      });
    }
    return this.sftpPromise;
  }

  /** Runs a command (already shell-quoted by the caller); output is capped at 64 KiB each. */
  exec(command: string): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      this.client.exec(command, (err, stream) => {
        if (err) {
          reject(
            new SshError(
              "remote",
              `cannot run a command on node ${describeEndpoint(this.endpoint)}: ${this.scrub(err.message)}`,
              this.endpoint,
            ),
          );
          return;
        }
        let stdout = "";
        let stderr = "";
        stream.on("data", (d: Buffer) => {
          if (stdout.length < MAX_EXEC_OUTPUT) stdout += d.toString("utf8");
        });
        stream.stderr.on("data", (d: Buffer) => {
          if (stderr.length < MAX_EXEC_OUTPUT) stderr += d.toString("utf8");
        });
        stream.on("close", (code: number | null, signal?: string) => {
          resolve({ code: code ?? null, signal: signal ?? undefined, stdout, stderr });
        });
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.client.end();
    } catch {
      // already gone
    }
    // end() waits for the server; make sure the socket cannot outlive the operation.
    setTimeout(() => this.client.destroy(), 2000).unref();
  }

  /** Forcibly drops the connection (used when an operation overruns its bound). */
  destroy(): void {
    this.closed = true;
    this.client.destroy();
  }

  scrub(text: string): string {
    return scrubSecrets(text, this.secrets);
  }
}

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

function classifyConnectError(
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
