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
    warnShadowedCredentials(settings);
    resolved = { settings, client: getClient(clientOptions(settings, providerLogger)) };
  }
  return resolved;
}

/** Stack config wins over the environment; say so when that hides credentials the environment
 *  gives (a CI job's read-only PROXMOX_VE_API_TOKEN would otherwise be ignored silently).
 *  Names only, never values. */
let warnedShadowed = false;
function warnShadowedCredentials(settings: ConnectionSettings): void {
  if (warnedShadowed) return;
  const shadowed: string[] = [];
  const fromConfig = (k: string) => settings.sources[k] === "config";
  if ((fromConfig("apiToken") || fromConfig("apiTokenId")) && process.env.PROXMOX_VE_API_TOKEN) shadowed.push("PROXMOX_VE_API_TOKEN");
  if (settings.credentials.kind === "password" && settings.sources.password === "config" && process.env.PROXMOX_VE_PASSWORD) shadowed.push("PROXMOX_VE_PASSWORD");
  if (shadowed.length === 0) return;
  warnedShadowed = true;
  providerLogger.warn(
    `${shadowed.join(" and ")} in the environment ${shadowed.length > 1 ? "are" : "is"} ignored: the stack config's proxmox: credentials win. ` +
      "To let the environment choose the credentials (e.g. a read-only token in CI), remove them from the stack config (`pulumi config rm proxmox:apiToken`) and run `pulumi up` once.",
  );
}

export function client(): PveClient {
  return connection().client;
}

/** For tests that drive lifecycles directly: use these settings instead of the environment. */
export function configureForTests(config: Record<string, string | undefined>): void {
  stackConfig = { ...config };
  resolved = undefined;
}
