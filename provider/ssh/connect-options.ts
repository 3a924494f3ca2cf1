/**
 * What an SSH connection to a node is opened with (login, key, agent, host-key policy, time
 * bounds), and the check of those credentials made before anything is dialled. Messages never
 * contain the private key, its passphrase or the password.
 */
import { utils } from "ssh2";
import type { Logger } from "../util/logger";
import { SshError, scrubSecrets } from "./errors";
import type { HostKeyPolicy } from "./hostkeys";

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

export const DEFAULT_READY_TIMEOUT_MS = 15_000;
export const DEFAULT_OPERATION_TIMEOUT_MS = 120_000;

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
