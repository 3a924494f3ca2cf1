/**
 * Connection settings, resolved inside the provider process (never resource inputs).
 *
 * Each setting is looked up, per key, in this order; the first source that has it wins:
 *   1. the stack config given to the provider's configure() (`proxmox:<key>`),
 *   2. environment variables (the names bpg's Terraform provider uses, `PROXMOX_VE_*`),
 *   3. the credentials file of GitLab's fleeting plugin (JSON: `realm`, `username`, `password`, `otp`),
 *      whose path is `proxmox:credentialsFile` or PROXMOX_VE_CREDENTIALS_FILE.
 *
 * An API token and a username/password may both be present: the token is used unless the
 * password credentials come from a higher-precedence source than the token.
 *
 * | key (proxmox:)        | environment                        | credentials file |
 * |-----------------------|------------------------------------|------------------|
 * | endpoint              | PROXMOX_VE_ENDPOINT                |                  |
 * | apiToken (secret)     | PROXMOX_VE_API_TOKEN               |                  |
 * | apiTokenId, apiTokenSecret (secret) | (config only)        |                  |
 * | username              | PROXMOX_VE_USERNAME                | username         |
 * | password (secret)     | PROXMOX_VE_PASSWORD                | password         |
 * | otp                   | PROXMOX_VE_OTP                     | otp              |
 * | realm                 |                                    | realm            |
 * | insecure              | PROXMOX_VE_INSECURE                |                  |
 * | caCert (PEM or path)  | PROXMOX_VE_CA_CERT                 |                  |
 * | credentialsFile       | PROXMOX_VE_CREDENTIALS_FILE        |                  |
 * | maxConcurrentRequests | PROXMOX_VE_MAX_CONCURRENT_REQUESTS |                  |
 * | maxConcurrentTasks    | PROXMOX_VE_MAX_CONCURRENT_TASKS    |                  |
 * | requestTimeoutMs      | PROXMOX_VE_REQUEST_TIMEOUT_MS      |                  |
 * | sshUsername           | PROXMOX_VE_SSH_USERNAME            |                  |
 * | sshPassword (secret)  | PROXMOX_VE_SSH_PASSWORD            |                  |
 * | sshPrivateKey (secret)| PROXMOX_VE_SSH_PRIVATE_KEY         |                  |
 * | sshAgent              | PROXMOX_VE_SSH_AGENT               |                  |
 * | sshAgentSocket        | PROXMOX_VE_SSH_AUTH_SOCK, SSH_AUTH_SOCK |             |
 * | sshPort               | PROXMOX_VE_SSH_PORT                |                  |
 * | sshHostKeys           | PROXMOX_VE_SSH_HOST_KEYS           |                  |
 * | sshKnownHosts         | PROXMOX_VE_SSH_KNOWN_HOSTS         |                  |
 * | sshPrivateKeyPassphrase (secret) | PROXMOX_VE_SSH_PRIVATE_KEY_PASSPHRASE |   |
 * | sshNodes              | PROXMOX_VE_SSH_NODES               |                  |
 * | sshInsecureSkipHostKeyCheck | PROXMOX_VE_SSH_INSECURE_SKIP_HOST_KEY_CHECK | |
 * | sshSudo               | PROXMOX_VE_SSH_SUDO                |                  |
 * | sshConcurrency        | PROXMOX_VE_SSH_CONCURRENCY         |                  |
 *
 * SSH settings (used by CloudInitSnippet only):
 * - `sshHostKeys`: fingerprints (`SHA256:...`) as a comma/space separated list or a JSON list
 *   (trusted for every node), or a JSON object `{"pve1": "SHA256:...", "pve2": ["SHA256:..."]}`
 *   (per node; a node listed there must present one of its own).
 * - `sshKnownHosts`: known_hosts content (several lines), or the path of a known_hosts file.
 * - `sshNodes`: JSON `{"pve1": {"host": "10.0.0.1", "port": 22}}`: where each node's sshd is
 *   reached. Nodes not listed are dialled at the API endpoint's host when the cluster has a
 *   single node, else at their node name (as PVE nodes reach each other), on `sshPort`.
 * - `sshInsecureSkipHostKeyCheck`: accept any host key (a visible choice: each connection logs a warning).
 * - `sshSudo`: write through `sudo -n` (a non-root `sshUsername` with passwordless sudo).
 * - `sshConcurrency`: nodes worked on at once (1 to 64, default 4).
 *
 * PROXMOX_VE_CA_CERT and the settings past PROXMOX_VE_SSH_AUTH_SOCK are this provider's own;
 * the rest are bpg's names, so an environment set up for that provider works unchanged.
 *
 * This module resolves them (resolveConnectionSettings) from parts in provider/settings/:
 * types.ts (what the result looks like), sources.ts (where each key is looked up, typed reads),
 * values.ts (single values), credentials.ts and ssh.ts. Names callers use are re-exported here.
 */
import type { PveClientOptions } from "./proxmox/client";
import { DEFAULT_MAX_CONCURRENT_REQUESTS } from "./proxmox/client";
import type { Logger } from "./util/logger";
import { resolveCredentials } from "./settings/credentials";
import { SettingLookup, type ResolveOptions } from "./settings/sources";
import { resolveSshSettings } from "./settings/ssh";
import { ConnectionSettingsError, DEFAULT_MAX_CONCURRENT_TASKS, type ConnectionSettings } from "./settings/types";
import { normaliseEndpoint } from "./settings/values";

export { CONFIG_KEYS, type ResolveOptions } from "./settings/sources";
export { splitApiToken } from "./settings/values";
export {
  ConnectionSettingsError,
  DEFAULT_MAX_CONCURRENT_TASKS,
  DEFAULT_SSH_CONCURRENCY,
  type ConnectionSettings,
  type SettingSource,
  type SshSettings,
} from "./settings/types";

export function resolveConnectionSettings(
  config: Record<string, string | undefined> = {},
  env: NodeJS.ProcessEnv = process.env,
  opts: ResolveOptions = {},
): ConnectionSettings {
  const s = new SettingLookup(config, env, opts);

  const rawEndpoint = s.get("endpoint");
  let endpoint: string | undefined;
  if (rawEndpoint === undefined) {
    s.problems.push("missing endpoint (set `pulumi config set proxmox:endpoint https://pve.example.com:8006` or PROXMOX_VE_ENDPOINT)");
  } else {
    endpoint = normaliseEndpoint(rawEndpoint, s.problems);
  }
  const credentials = resolveCredentials(s);
  const insecure = s.bool("insecure");
  const caCert = s.get("caCert");
  const maxConcurrentRequests = s.int("maxConcurrentRequests", DEFAULT_MAX_CONCURRENT_REQUESTS, { min: 1, max: 256 });
  const maxConcurrentTasks = s.int("maxConcurrentTasks", DEFAULT_MAX_CONCURRENT_TASKS, { min: 1, max: 64 });
  const requestTimeoutMs = s.int("requestTimeoutMs", undefined, { min: 1000 });
  const ssh = resolveSshSettings(s);

  if (s.problems.length || !endpoint || !credentials) throw new ConnectionSettingsError(s.problems);

  return {
    endpoint,
    credentials,
    tls: { insecure, ...(caCert ? { caCert } : {}) },
    maxConcurrentRequests,
    maxConcurrentTasks,
    ...(requestTimeoutMs ? { requestTimeoutMs } : {}),
    ssh,
    sources: s.sources,
  };
}

/** The options for getClient() from resolved settings. */
export function clientOptions(settings: ConnectionSettings, logger?: Logger): PveClientOptions {
  return {
    endpoint: settings.endpoint,
    credentials: settings.credentials,
    tls: settings.tls,
    maxConcurrentRequests: settings.maxConcurrentRequests,
    requestTimeoutMs: settings.requestTimeoutMs,
    logger,
  };
}
