/**
 * Where each setting is looked up (stack config, then environment, then the credentials file;
 * the table is in provider/config.ts), and the typed reads that collect every problem at once.
 */
import * as fs from "fs";
import type { SettingSource } from "./types";
import { parseBool } from "./values";

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

export interface ResolveOptions {
  readFile?: (path: string) => string;
}

export interface SettingHit {
  value: string;
  source: SettingSource;
}

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

/** How strongly a source binds: config beats the environment beats the credentials file. */
export function rankOf(source: SettingSource | undefined): number {
  return source === "config" ? 0 : source === "env" ? 1 : source === "credentialsFile" ? 2 : 9;
}

/** The settings of one resolution: every lookup by key, the source of each value used, every problem. */
export class SettingLookup {
  /** The stack config, keys without their `proxmox:` prefix. */
  readonly cfg: Record<string, string>;
  readonly problems: string[] = [];
  /** Where each setting read through get() came from. */
  readonly sources: Record<string, SettingSource> = {};
  readonly readFile: (path: string) => string;
  private file: Partial<Record<(typeof FILE_KEYS)[number], string>> = {};

  constructor(
    config: Record<string, string | undefined>,
    private readonly env: NodeJS.ProcessEnv,
    opts: ResolveOptions,
  ) {
    this.cfg = normaliseConfig(config);
    this.readFile = opts.readFile ?? ((p: string) => fs.readFileSync(p, "utf8"));
    this.readCredentialsFile();
  }

  private fromConfigOrEnv(key: string): SettingHit | undefined {
    if (this.cfg[key] !== undefined) return { value: this.cfg[key], source: "config" };
    for (const name of ENV[key] ?? []) {
      const v = this.env[name];
      if (v !== undefined && v !== "") return { value: v, source: "env" };
    }
    return undefined;
  }

  private readCredentialsFile(): void {
    const fileRef = this.fromConfigOrEnv("credentialsFile");
    if (!fileRef) return;
    try {
      const parsed: unknown = JSON.parse(this.readFile(fileRef.value));
      if (!parsed || typeof parsed !== "object") throw new SyntaxError("not an object");
      for (const key of FILE_KEYS) {
        const v = (parsed as Record<string, unknown>)[key];
        if (v !== undefined && v !== null && v !== "") this.file[key] = String(v);
      }
    } catch (err) {
      const why = err instanceof SyntaxError ? "it is not a JSON object" : `it cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`;
      this.problems.push(`credentials file '${fileRef.value}' (from ${fileRef.source === "config" ? "proxmox:credentialsFile" : "PROXMOX_VE_CREDENTIALS_FILE"}) is unusable: ${why}; it must be JSON with username, password, and optionally realm and otp`);
      this.file = {};
    }
  }

  /** The first source that has `key`, without recording it as used. */
  find(key: string): SettingHit | undefined {
    const hit = this.fromConfigOrEnv(key);
    if (hit) return hit;
    const fv = (this.file as Record<string, string | undefined>)[key];
    return fv !== undefined ? { value: fv, source: "credentialsFile" } : undefined;
  }

  /** The value of `key`, recording where it came from. */
  get(key: string): string | undefined {
    const hit = this.find(key);
    if (hit) this.sources[key] = hit.source;
    return hit?.value;
  }

  /** A boolean setting; absent is false, anything else than a boolean is a problem. */
  bool(key: string): boolean {
    const raw = this.get(key);
    if (raw === undefined) return false;
    const b = parseBool(raw);
    if (b === undefined) this.problems.push(`${key} must be true or false, not '${raw}'`);
    return b ?? false;
  }

  /** An integer setting from `min` to `max` (`what` names the range in the problem); else `fallback`. */
  int<T extends number | undefined>(key: string, fallback: T, range: { min: number; max?: number; what?: string }): number | T {
    const raw = this.get(key);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (Number.isInteger(n) && n >= range.min && (range.max === undefined || n <= range.max)) return n;
    const what = range.what ?? (range.max === undefined ? `an integer of at least ${range.min}` : `an integer from ${range.min} to ${range.max}`);
    this.problems.push(`${key} must be ${what}, not '${raw}'`);
    return fallback;
  }
}
