/**
 * What resolved connection settings look like (see provider/config.ts for where each comes
 * from), and the one error that lists every problem with them.
 */
import type { PveCredentials } from "../proxmox/client";

export type SettingSource = "config" | "env" | "credentialsFile";

export interface SshSettings {
  username?: string;
  password?: string;
  privateKey?: string;
  agent: boolean;
  agentSocket?: string;
  port: number;
  /** Pinned host key fingerprints (`SHA256:...`), any of which a node may present. */
  hostKeys: string[];
  /** Pinned fingerprints per node name (`sshHostKeys` given as a JSON object). */
  nodeHostKeys: Record<string, string[]>;
  /** A known_hosts file to verify node keys against (when `sshKnownHosts` is a path). */
  knownHostsFile?: string;
  /** known_hosts content (given inline, or read from `knownHostsFile`). */
  knownHosts?: string;
  /** Passphrase of an encrypted `privateKey` (a secret). */
  privateKeyPassphrase?: string;
  /** Per-node address and port overrides (`sshNodes`). */
  nodes: Record<string, { host?: string; port?: number }>;
  insecureSkipHostKeyCheck: boolean;
  sudo: boolean;
  /** Nodes worked on at once. */
  concurrency: number;
}

export const DEFAULT_SSH_CONCURRENCY = 4;

/** PVE tasks in flight per cluster, a ceiling (halved when PVE answers with lock contention; disk
 *  copies at most 4 of them; power tasks counted apart: resources/vm/task-slots.ts), chosen from
 *  the curve of fleet wall time against the bound (BENCHMARKS.md, "Scheduling bounds"). */
export const DEFAULT_MAX_CONCURRENT_TASKS = 64;

export interface ConnectionSettings {
  /** `https://host:port`, without /api2/json. */
  endpoint: string;
  credentials: PveCredentials;
  tls: { insecure: boolean; caCert?: string };
  maxConcurrentRequests: number;
  /** Long-running PVE tasks (clone, start, migrate, destroy...) this process runs at once per cluster. */
  maxConcurrentTasks: number;
  requestTimeoutMs?: number;
  ssh: SshSettings;
  /** Where each setting came from (never its value). */
  sources: Record<string, SettingSource>;
}

/** Every problem with the settings at once, so one run tells the user everything to fix. */
export class ConnectionSettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(`Proxmox VE connection settings are incomplete or invalid: ${problems.join("; ")}`);
    this.name = "ConnectionSettingsError";
  }
}
