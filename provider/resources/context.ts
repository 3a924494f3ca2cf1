// The provider process's connection to Proxmox VE: settings from configure() (stack config),
// the environment or a credentials file, resolved once and shared by every resource.
// Module-level state lives here, in the provider process, never in serialised providers.

import { CONFIG_KEYS, clientOptions, resolveConnectionSettings, type ConnectionSettings } from "../config";
import { getClient, type PveClient } from "../proxmox/client";
import type { Logger } from "../util/logger";

interface ConfigSource {
  get(key: string): string | undefined;
}

let stackConfig: Record<string, string | undefined> = {};
let resolved: { settings: ConnectionSettings; client: PveClient } | undefined;

/** Writes to stderr, which the engine keeps in its logs; secrets never reach a logger. */
export const providerLogger: Logger = {
  debug: () => undefined,
  info: (m) => process.stderr.write(`[pulumi-pve] ${m}\n`),
  warn: (m) => process.stderr.write(`[pulumi-pve] warning: ${m}\n`),
  error: (m) => process.stderr.write(`[pulumi-pve] error: ${m}\n`),
};

/** Called by every resource stub's configure(); the stack config is the same for all. */
export function configure(config: ConfigSource): void {
  const next: Record<string, string | undefined> = {};
  for (const key of CONFIG_KEYS) next[key] = config.get(`proxmox:${key}`);
  stackConfig = next;
  resolved = undefined;
}

/** Settings and the shared client; throws one error listing every missing setting. */
export function connection(): { settings: ConnectionSettings; client: PveClient } {
  if (!resolved) {
    const settings = resolveConnectionSettings(stackConfig, process.env);
    resolved = { settings, client: getClient(clientOptions(settings, providerLogger)) };
  }
  return resolved;
}

export function client(): PveClient {
  return connection().client;
}

/** For tests that drive lifecycles directly: use these settings instead of the environment. */
export function configureForTests(config: Record<string, string | undefined>): void {
  stackConfig = { ...config };
  resolved = undefined;
}
