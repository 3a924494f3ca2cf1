import * as fs from "fs";
import { TOKEN_ID_PATTERN } from "./proxmox/auth";
import type { PveClientOptions, PveCredentials } from "./proxmox/client";
import { DEFAULT_MAX_CONCURRENT_REQUESTS } from "./proxmox/client";
import { toBool } from "./proxmox/coerce";
import type { Logger } from "./util/logger";

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
 */

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

const ENV: Record<string, string[]> = {
  endpoint: ["PROXMOX_VE_ENDPOINT"],
  apiToken: ["PROXMOX_VE_API_TOKEN"],
  username: ["PROXMOX_VE_USERNAME"],
  password: ["PROXMOX_VE_PASSWORD"],
  otp: ["PROXMOX_VE_OTP"],
  insecure: ["PROXMOX_VE_INSECURE"],
  caCert: ["PROXMOX_VE_CA_CERT"],
  credentialsFile: ["PROXMOX_VE_CREDENTIALS_FILE"],
  maxConcurrentRequests: ["PROXMOX_VE_MAX_CONCURRENT_REQUESTS"],
  maxConcurrentTasks: ["PROXMOX_VE_MAX_CONCURRENT_TASKS"],
  requestTimeoutMs: ["PROXMOX_VE_REQUEST_TIMEOUT_MS"],
  sshUsername: ["PROXMOX_VE_SSH_USERNAME"],
  sshPassword: ["PROXMOX_VE_SSH_PASSWORD"],
  sshPrivateKey: ["PROXMOX_VE_SSH_PRIVATE_KEY"],
  sshAgent: ["PROXMOX_VE_SSH_AGENT"],
  sshAgentSocket: ["PROXMOX_VE_SSH_AUTH_SOCK", "SSH_AUTH_SOCK"],
  sshPort: ["PROXMOX_VE_SSH_PORT"],
  sshHostKeys: ["PROXMOX_VE_SSH_HOST_KEYS"],
  sshKnownHosts: ["PROXMOX_VE_SSH_KNOWN_HOSTS"],
  sshPrivateKeyPassphrase: ["PROXMOX_VE_SSH_PRIVATE_KEY_PASSPHRASE"],
  sshNodes: ["PROXMOX_VE_SSH_NODES"],
  sshInsecureSkipHostKeyCheck: ["PROXMOX_VE_SSH_INSECURE_SKIP_HOST_KEY_CHECK"],
  sshSudo: ["PROXMOX_VE_SSH_SUDO"],
  sshConcurrency: ["PROXMOX_VE_SSH_CONCURRENCY"],
};

const FILE_KEYS = ["username", "password", "otp", "realm"] as const;

/** Every `proxmox:` stack config key this provider reads (the provider's configure() copies these). */
export const CONFIG_KEYS: readonly string[] = [...Object.keys(ENV), "apiTokenId", "apiTokenSecret", "realm"];

/** Stack config arrives as `proxmox:key`, `proxmox:config:key` or plain `key`. */
function normaliseConfig(config: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rawKey, value] of Object.entries(config)) {
    if (value === undefined || value === null || value === "") continue;
    const key = rawKey.replace(/^proxmox:(config:)?/, "");
    if (key.includes(":")) continue;
    out[key] = String(value);
  }
  return out;
}

/** A boolean setting: PVE's spellings (1/0, true/false, yes/no, on/off); empty is false. */
function parseBool(value: string): boolean | undefined {
  return value.trim() === "" ? false : toBool(value.trim());
}

export interface ResolveOptions {
  readFile?: (path: string) => string;
}

/** `user@realm!tokenid=secret` (PVE also accepts a space for the first `=`). */
export function splitApiToken(token: string): { tokenId: string; secret: string } | undefined {
  const m = /^([^=\s]+)[=\s](.+)$/.exec(token.trim());
  if (!m || !TOKEN_ID_PATTERN.test(m[1]) || !m[2].trim()) return undefined;
  return { tokenId: m[1], secret: m[2].trim() };
}

function normaliseEndpoint(raw: string, problems: string[]): string | undefined {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    problems.push(`endpoint is not a URL: expected https://<host>:8006`);
    return undefined;
  }
  const before = problems.length;
  if (url.protocol !== "https:") problems.push(`endpoint must use https (PVE serves its API over TLS only), e.g. https://${url.hostname || "pve.example.com"}:8006`);
  if (!url.hostname) problems.push("endpoint has no host name");
  if (url.username || url.password) problems.push("endpoint must not contain credentials; set apiToken, or username and password, instead");
  if (url.search || url.hash) problems.push("endpoint must not have a query string or fragment");
  if (!/^\/?(api2\/json\/?)?$/.test(url.pathname)) problems.push(`endpoint must be the server root (https://<host>:8006), not the path '${url.pathname}'`);
  if (problems.length > before) return undefined;
  return `https://${url.host}`;
}

export function resolveConnectionSettings(
  config: Record<string, string | undefined> = {},
  env: NodeJS.ProcessEnv = process.env,
  opts: ResolveOptions = {},
): ConnectionSettings {
  const cfg = normaliseConfig(config);
  const problems: string[] = [];
  const sources: Record<string, SettingSource> = {};

  const fromConfigOrEnv = (key: string): { value: string; source: SettingSource } | undefined => {
    if (cfg[key] !== undefined) return { value: cfg[key], source: "config" };
    for (const name of ENV[key] ?? []) {
      const v = env[name];
      if (v !== undefined && v !== "") return { value: v, source: "env" };
    }
    return undefined;
  };

  const fileRef = fromConfigOrEnv("credentialsFile");
  let file: Partial<Record<(typeof FILE_KEYS)[number], string>> = {};
  if (fileRef) {
    const readFile = opts.readFile ?? ((p: string) => fs.readFileSync(p, "utf8"));
    try {
      const parsed: unknown = JSON.parse(readFile(fileRef.value));
      if (!parsed || typeof parsed !== "object") throw new SyntaxError("not an object");
      for (const key of FILE_KEYS) {
        const v = (parsed as Record<string, unknown>)[key];
        if (v !== undefined && v !== null && v !== "") file[key] = String(v);
      }
    } catch (err) {
      const why = err instanceof SyntaxError ? "it is not a JSON object" : `it cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`;
      problems.push(`credentials file '${fileRef.value}' (from ${fileRef.source === "config" ? "proxmox:credentialsFile" : "PROXMOX_VE_CREDENTIALS_FILE"}) is unusable: ${why}; it must be JSON with username, password, and optionally realm and otp`);
      file = {};
    }
  }

  const lookup = (key: string): { value: string; source: SettingSource } | undefined => {
    const hit = fromConfigOrEnv(key);
    if (hit) return hit;
    const fv = (file as Record<string, string | undefined>)[key];
    return fv !== undefined ? { value: fv, source: "credentialsFile" } : undefined;
  };
  const get = (key: string): string | undefined => {
    const hit = lookup(key);
    if (hit) sources[key] = hit.source;
    return hit?.value;
  };
  const rank = (s: SettingSource | undefined): number => (s === "config" ? 0 : s === "env" ? 1 : s === "credentialsFile" ? 2 : 9);

  // Endpoint
  const rawEndpoint = get("endpoint");
  let endpoint: string | undefined;
  if (rawEndpoint === undefined) {
    problems.push("missing endpoint (set `pulumi config set proxmox:endpoint https://pve.example.com:8006` or PROXMOX_VE_ENDPOINT)");
  } else {
    endpoint = normaliseEndpoint(rawEndpoint, problems);
  }

  // Credentials
  let credentials: PveCredentials | undefined;
  const tokenHit = lookup("apiToken");
  const tokenIdHit = cfg.apiTokenId !== undefined ? { value: cfg.apiTokenId, source: "config" as const } : undefined;
  const userHit = lookup("username");
  const passwordHit = lookup("password");
  const tokenRank = Math.min(rank(tokenHit?.source), tokenIdHit ? 0 : 9);
  const userRank = rank(userHit?.source);
  const useToken = (tokenHit || tokenIdHit) && !(userHit && passwordHit && userRank < tokenRank);

  if (useToken) {
    if (tokenIdHit) {
      sources.apiTokenId = "config";
      const secret = cfg.apiTokenSecret;
      if (!TOKEN_ID_PATTERN.test(tokenIdHit.value)) {
        problems.push(`apiTokenId '${tokenIdHit.value}' is not a token id: expected USER@REALM!TOKENID, e.g. ci@pve!pulumi`);
      } else if (!secret) {
        problems.push(`missing apiTokenSecret for token '${tokenIdHit.value}' (set \`pulumi config set --secret proxmox:apiTokenSecret <uuid>\`)`);
      } else {
        sources.apiTokenSecret = "config";
        credentials = { kind: "token", tokenId: tokenIdHit.value, secret };
      }
    } else if (tokenHit) {
      sources.apiToken = tokenHit.source;
      const split = splitApiToken(tokenHit.value);
      if (!split) {
        const where = tokenHit.source === "config" ? "proxmox:apiToken" : "PROXMOX_VE_API_TOKEN";
        problems.push(`${where} is not an API token: expected USER@REALM!TOKENID=SECRET, e.g. ci@pve!pulumi=xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (the value is not shown because it may be secret)`);
      } else {
        credentials = { kind: "token", ...split };
      }
    }
  } else if (userHit || passwordHit) {
    const username = get("username");
    const password = get("password");
    const realm = get("realm") ?? cfg.realm;
    const otp = get("otp");
    if (!username) {
      problems.push("missing username for the password (set `pulumi config set proxmox:username root@pam` or PROXMOX_VE_USERNAME)");
    } else if (!username.includes("@") && !realm) {
      problems.push(`username '${username}' has no realm: write it as user@realm (e.g. ${username}@pam or ${username}@pve)`);
    }
    if (!password) {
      problems.push(`missing password${username ? ` for user '${username}'` : ""} (set \`pulumi config set --secret proxmox:password ...\` or PROXMOX_VE_PASSWORD, or use an API token)`);
    }
    if (username && password) {
      credentials = { kind: "password", username, password, ...(otp ? { otp } : {}), ...(realm ? { realm } : {}) };
    }
  } else {
    problems.push(
      "missing credentials (set an API token with `pulumi config set --secret proxmox:apiToken 'user@realm!tokenid=SECRET'` or PROXMOX_VE_API_TOKEN; " +
        "or a username and password with proxmox:username and `pulumi config set --secret proxmox:password ...`, or PROXMOX_VE_USERNAME and PROXMOX_VE_PASSWORD; " +
        "or a credentials file with proxmox:credentialsFile or PROXMOX_VE_CREDENTIALS_FILE)",
    );
  }

  // TLS
  let insecure = false;
  const rawInsecure = get("insecure");
  if (rawInsecure !== undefined) {
    const b = parseBool(rawInsecure);
    if (b === undefined) problems.push(`insecure must be true or false, not '${rawInsecure}'`);
    else insecure = b;
  }
  const caCert = get("caCert");

  // Limits
  let maxConcurrentRequests = DEFAULT_MAX_CONCURRENT_REQUESTS;
  const rawMax = get("maxConcurrentRequests");
  if (rawMax !== undefined) {
    const n = Number(rawMax);
    if (!Number.isInteger(n) || n < 1 || n > 256) problems.push(`maxConcurrentRequests must be an integer from 1 to 256, not '${rawMax}'`);
    else maxConcurrentRequests = n;
  }
  let maxConcurrentTasks = DEFAULT_MAX_CONCURRENT_TASKS;
  const rawTasks = get("maxConcurrentTasks");
  if (rawTasks !== undefined) {
    const n = Number(rawTasks);
    if (!Number.isInteger(n) || n < 1 || n > 64) problems.push(`maxConcurrentTasks must be an integer from 1 to 64, not '${rawTasks}'`);
    else maxConcurrentTasks = n;
  }
  let requestTimeoutMs: number | undefined;
  const rawTimeout = get("requestTimeoutMs");
  if (rawTimeout !== undefined) {
    const n = Number(rawTimeout);
    if (!Number.isInteger(n) || n < 1000) problems.push(`requestTimeoutMs must be an integer of at least 1000, not '${rawTimeout}'`);
    else requestTimeoutMs = n;
  }

  // SSH (for snippets)
  let sshAgent = false;
  const rawAgent = get("sshAgent");
  if (rawAgent !== undefined) {
    const b = parseBool(rawAgent);
    if (b === undefined) problems.push(`sshAgent must be true or false, not '${rawAgent}'`);
    else sshAgent = b;
  }
  let sshPort = 22;
  const rawPort = get("sshPort");
  if (rawPort !== undefined) {
    const n = Number(rawPort);
    if (!Number.isInteger(n) || n < 1 || n > 65535) problems.push(`sshPort must be a port number, not '${rawPort}'`);
    else sshPort = n;
  }
  const ssh = resolveSshSettings(get, problems, opts.readFile ?? ((p: string) => fs.readFileSync(p, "utf8")));
  ssh.agent = sshAgent;
  ssh.port = sshPort;

  if (problems.length || !endpoint || !credentials) throw new ConnectionSettingsError(problems);

  return {
    endpoint,
    credentials,
    tls: { insecure, ...(caCert ? { caCert } : {}) },
    maxConcurrentRequests,
    maxConcurrentTasks,
    ...(requestTimeoutMs ? { requestTimeoutMs } : {}),
    ssh,
    sources,
  };
}

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;

function fingerprintList(value: unknown, where: string, problems: string[]): string[] {
  const list = typeof value === "string" ? value.split(/[\s,;]+/).filter(Boolean) : value;
  if (!Array.isArray(list) || !list.every((v) => typeof v === "string")) {
    problems.push(`${where} must be a fingerprint or a list of fingerprints`);
    return [];
  }
  for (const fp of list as string[]) {
    if (!FINGERPRINT.test(fp.trim())) problems.push(`${where}: '${fp}' is not a SHA256 fingerprint like SHA256:<43 base64 characters> (see \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` on the node)`);
  }
  return (list as string[]).map((fp) => fp.trim());
}

/** The SSH part of the settings; every problem goes to `problems` (nothing is dialled here). */
function resolveSshSettings(get: (key: string) => string | undefined, problems: string[], readFile: (p: string) => string): SshSettings {
  const bool = (key: string): boolean => {
    const raw = get(key);
    if (raw === undefined) return false;
    const b = parseBool(raw);
    if (b === undefined) problems.push(`${key} must be true or false, not '${raw}'`);
    return b ?? false;
  };

  // Host keys: a list for every node, or a JSON object keyed by node name.
  let hostKeys: string[] = [];
  const nodeHostKeys: Record<string, string[]> = {};
  const rawKeys = get("sshHostKeys")?.trim();
  if (rawKeys) {
    if (rawKeys.startsWith("{") || rawKeys.startsWith("[")) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(rawKeys);
      } catch {
        problems.push(`sshHostKeys starts like JSON but is not valid JSON: give a list of fingerprints, or an object {"<node>": "SHA256:..."}`);
      }
      if (Array.isArray(parsed)) hostKeys = fingerprintList(parsed, "sshHostKeys", problems);
      else if (parsed && typeof parsed === "object") {
        for (const [node, v] of Object.entries(parsed as Record<string, unknown>)) nodeHostKeys[node] = fingerprintList(v, `sshHostKeys.${node}`, problems);
      }
    } else {
      hostKeys = fingerprintList(rawKeys, "sshHostKeys", problems);
    }
  }

  // known_hosts: content when it has several words or lines, else a file path.
  let knownHosts: string | undefined;
  let knownHostsFile: string | undefined;
  const rawKnown = get("sshKnownHosts");
  if (rawKnown !== undefined && rawKnown.trim() !== "") {
    if (/\s/.test(rawKnown.trim())) knownHosts = rawKnown;
    else {
      knownHostsFile = rawKnown.trim();
      try {
        knownHosts = readFile(knownHostsFile);
      } catch (e) {
        problems.push(`sshKnownHosts file '${knownHostsFile}' cannot be read (${(e as NodeJS.ErrnoException).code ?? "error"}); give the path of a known_hosts file, or its content`);
      }
    }
  }

  // Per-node addresses.
  const nodes: Record<string, { host?: string; port?: number }> = {};
  const rawNodes = get("sshNodes")?.trim();
  if (rawNodes) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawNodes);
    } catch {
      parsed = undefined;
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      problems.push(`sshNodes must be a JSON object like {"pve1": {"host": "10.0.0.1", "port": 22}}`);
    } else {
      for (const [node, v] of Object.entries(parsed as Record<string, unknown>)) {
        const entry = typeof v === "string" ? { host: v } : v;
        if (!entry || typeof entry !== "object" || Array.isArray(entry)) {
          problems.push(`sshNodes.${node} must be {"host": "<address>", "port": <port>} or an address`);
          continue;
        }
        const { host, port, ...rest } = entry as Record<string, unknown>;
        const out: { host?: string; port?: number } = {};
        if (Object.keys(rest).length > 0) problems.push(`sshNodes.${node} has unknown keys ${Object.keys(rest).join(", ")}: only host and port are read`);
        if (host !== undefined) {
          if (typeof host !== "string" || host.trim() === "" || /\s/.test(host)) problems.push(`sshNodes.${node}.host must be a host name or IP address`);
          else out.host = host;
        }
        if (port !== undefined) {
          const n = typeof port === "string" ? Number(port) : port;
          if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 65535) problems.push(`sshNodes.${node}.port must be a port number, not '${String(port)}'`);
          else out.port = n;
        }
        nodes[node] = out;
      }
    }
  }

  let concurrency = DEFAULT_SSH_CONCURRENCY;
  const rawConc = get("sshConcurrency");
  if (rawConc !== undefined) {
    const n = Number(rawConc);
    if (!Number.isInteger(n) || n < 1 || n > 64) problems.push(`sshConcurrency must be an integer from 1 to 64, not '${rawConc}'`);
    else concurrency = n;
  }

  return {
    username: get("sshUsername"),
    password: get("sshPassword"),
    privateKey: get("sshPrivateKey"),
    privateKeyPassphrase: get("sshPrivateKeyPassphrase"),
    agent: false,
    agentSocket: get("sshAgentSocket"),
    port: 22,
    hostKeys,
    nodeHostKeys,
    ...(knownHostsFile ? { knownHostsFile } : {}),
    ...(knownHosts !== undefined ? { knownHosts } : {}),
    nodes,
    insecureSkipHostKeyCheck: bool("sshInsecureSkipHostKeyCheck"),
    sudo: bool("sshSudo"),
    concurrency,
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
