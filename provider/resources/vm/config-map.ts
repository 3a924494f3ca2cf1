// How VmClone inputs map to PVE config keys and back, with the normalisation PVE applies.
// One canonical form is used everywhere: check() returns it, read() produces it from a PVE
// config, and diff() compares it, so a refresh right after create shows no change.

import { codecs, type QemuConfig } from "../../proxmox";
import type { VmCloneInputs } from "../generated/vm-clone";
import type { CiCustom, IpConfigInput, NetworkDevice } from "./vm-types";

export type { CiCustom, IpConfigInput, NetworkDevice } from "./vm-types";

/** The part of VmClone's inputs that is VM configuration (kept in sync with PVE). */
export const SETTINGS_KEYS = [
  "name", "cores", "sockets", "memory", "balloon", "networks", "ipConfigs", "nameserver", "searchdomain",
  "ciuser", "sshKeys", "cicustom", "tags", "description", "onBoot",
] as const;

export type VmSettings = Partial<Pick<VmCloneInputs, (typeof SETTINGS_KEYS)[number]>>;

/** The settings part of a resource's inputs (what configChange() and settingsFromConfig() take). */
export function settingsOf(i: VmSettings): VmSettings {
  const s: VmSettings = {};
  for (const k of SETTINGS_KEYS) if (i[k] !== undefined) (s as Record<string, unknown>)[k] = i[k];
  return s;
}

/** The size of drive `disk` in a PVE config, normalised (`20G`); undefined without that drive. */
export function driveSize(config: Record<string, unknown>, disk: string): string | undefined {
  const text = config[disk];
  if (text === undefined) return undefined;
  const size = codecs.parseDrive(String(text)).size;
  return size ? codecs.normalizeSize(size) : undefined;
}

// ---- the provider's marker ---------------------------------------------------------------

/**
 * The description line stamped on every VM this provider creates (see README: "Marker"):
 * `managed-by=pulumi-pve resource=<name>`, plus ` stack=<project>/<stack>` when the program
 * gave it (VmClone does), so that a VM created but never recorded (an interrupted `pulumi up`)
 * can be recognised as this stack's own and adopted, and never another stack's; plus
 * ` origin=<template>:linked|full[:<storage>]`, how the VM was cloned, so that a half-made VM
 * is told apart from the VM a replacement replaces without reading volume names (a linked
 * clone on LVM-thin is `vm-<id>-disk-<n>`, naming no template).
 */
export function markerLine(resourceName: string, stack?: string, origin?: string): string {
  return `managed-by=pulumi-pve resource=${resourceName}${stack ? ` stack=${stack}` : ""}${origin ? ` origin=${origin}` : ""}`;
}

const MARKER = /^managed-by=pulumi-pve resource=(\S*)(?: stack=(\S+?))?(?: origin=(\S+))?\s*$/;

export interface Marker {
  description?: string;
  resourceName?: string;
  stack?: string;
  origin?: string;
}

/** The user's description and the marker's resource name (and stack, origin), from a PVE description. */
export function splitDescription(text: string | undefined): Marker {
  if (text === undefined) return {};
  let found: RegExpExecArray | undefined;
  const lines = text.split("\n").filter((line) => {
    const m = MARKER.exec(line);
    if (m) found = m;
    return !m;
  });
  const description = normalizeDescription(lines.join("\n"));
  return {
    ...(description !== undefined ? { description } : {}),
    ...(found?.[1] !== undefined ? { resourceName: found[1] } : {}),
    ...(found?.[2] !== undefined ? { stack: found[2] } : {}),
    ...(found?.[3] !== undefined ? { origin: found[3] } : {}),
  };
}

/** The description a PVE config holds, as text. */
export function descriptionOf(config: QemuConfig): string | undefined {
  return config.description === undefined ? undefined : String(config.description);
}

/** The user's description and the marker of a PVE config (see splitDescription). */
export function markerOf(config: QemuConfig): Marker {
  return splitDescription(descriptionOf(config));
}

/** A description without this provider's marker line (a released VM's). */
export function withoutMarker(text: string | undefined): string | undefined {
  return splitDescription(text).description;
}

/** The description PVE stores: the user's text, then the marker line. */
export function composeDescription(description: string | undefined, resourceName: string | undefined, stack?: string, origin?: string): string | undefined {
  const parts = [normalizeDescription(description), resourceName ? markerLine(resourceName, stack, origin) : undefined].filter((p) => p !== undefined);
  return parts.length ? parts.join("\n") : undefined;
}

/** PVE keeps the description as comment lines: trailing blank lines and spaces do not survive. */
export function normalizeDescription(text: string | undefined): string | undefined {
  if (text === undefined || text === null) return undefined;
  const t = text.replace(/\r\n/g, "\n").replace(/\s+$/, "");
  return t === "" ? undefined : t;
}

// ---- canonical forms ----------------------------------------------------------------------

export function normalizeNetwork(n: NetworkDevice): NetworkDevice {
  const out: NetworkDevice = { bridge: n.bridge, model: n.model ?? "virtio", firewall: n.firewall === true };
  if (n.vlanTag !== undefined && n.vlanTag !== null) out.vlanTag = Number(n.vlanTag);
  if (n.macAddress) out.macAddress = codecs.normalizeMac(n.macAddress);
  if (n.mtu !== undefined && n.mtu !== null) out.mtu = Number(n.mtu);
  return out;
}

export function normalizeIpConfig(c: IpConfigInput): IpConfigInput {
  const out: IpConfigInput = {};
  for (const k of ["ip", "gw", "ip6", "gw6"] as const) if (c[k]) out[k] = String(c[k]).trim();
  return out;
}

export function normalizeCiCustom(c: CiCustom): CiCustom | undefined {
  const out: CiCustom = {};
  for (const k of ["meta", "network", "user", "vendor"] as const) if (c[k]) out[k] = c[k];
  return Object.keys(out).length ? out : undefined;
}

export function normalizeSshKeys(keys: string[] | string): string[] {
  const list = typeof keys === "string" ? keys.split(/\r?\n/) : keys.flatMap((k) => k.split(/\r?\n/));
  return list.map((k) => k.trim().replace(/\s+/g, " ")).filter(Boolean);
}

/** Name servers as PVE passes them on: separated by single spaces. */
export function normalizeNameserver(text: string): string {
  return text.split(/[\s,;]+/).filter(Boolean).join(" ");
}

export function normalizeSettings(s: VmSettings): VmSettings {
  const out: VmSettings = { ...s };
  if (s.networks) out.networks = s.networks.map(normalizeNetwork);
  if (s.ipConfigs) out.ipConfigs = s.ipConfigs.map(normalizeIpConfig);
  if (s.cicustom) out.cicustom = normalizeCiCustom(s.cicustom);
  if (s.sshKeys) out.sshKeys = normalizeSshKeys(s.sshKeys);
  if (s.tags) out.tags = codecs.parseTags(s.tags);
  if (s.nameserver !== undefined) out.nameserver = normalizeNameserver(s.nameserver);
  if (s.description !== undefined) out.description = normalizeDescription(s.description);
  return out;
}

// ---- PVE config -> settings --------------------------------------------------------------

function int(value: unknown): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const m = /^(?:current=)?(\d+)/.exec(String(value));
  return m ? Number(m[1]) : undefined;
}

function netIndexes(config: QemuConfig, prefix: string): number[] {
  const re = new RegExp(`^${prefix}(\\d+)$`);
  return Object.keys(config)
    .map((k) => re.exec(k))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

export function networkFromConfig(text: string): NetworkDevice {
  const n = codecs.parseNet(text);
  return normalizeNetwork({
    bridge: n.bridge ?? "",
    model: n.model,
    vlanTag: n.tag,
    firewall: n.firewall,
    macAddress: n.macaddr,
    mtu: n.mtu,
  });
}

/** MACs of netN in index order (outputs). */
export function macAddresses(config: QemuConfig): string[] {
  return netIndexes(config, "net").map((i) => codecs.normalizeMac(codecs.parseNet(String(config[`net${i}`])).macaddr ?? ""));
}

/**
 * The settings a PVE config shows. `like` says which settings to report and how (a MAC the
 * user did not set is not reported, since PVE generated it); without `like` (import) every
 * setting present in the config is reported.
 */
export function settingsFromConfig(config: QemuConfig, like?: VmSettings): VmSettings {
  const want = (k: keyof VmSettings) => !like || like[k] !== undefined;
  const out: VmSettings = {};
  if (want("name") && config.name !== undefined) out.name = String(config.name);
  if (want("cores")) out.cores = int(config.cores) ?? (like ? 1 : undefined);
  if (want("sockets")) out.sockets = int(config.sockets) ?? (like ? 1 : undefined);
  if (want("memory")) out.memory = int(config.memory) ?? (like ? 512 : undefined);
  if (want("balloon") && config.balloon !== undefined) out.balloon = int(config.balloon);
  if (want("networks")) {
    const nets = netIndexes(config, "net").map((i) => networkFromConfig(String(config[`net${i}`])));
    out.networks = nets.map((n, i) => {
      const wanted = like?.networks?.[i];
      if (like && !wanted?.macAddress) {
        const { macAddress: _mac, ...rest } = n;
        return rest;
      }
      return n;
    });
  }
  if (want("ipConfigs")) {
    const idx = netIndexes(config, "ipconfig");
    const max = idx.length ? idx[idx.length - 1] : -1;
    const list: IpConfigInput[] = [];
    for (let i = 0; i <= max; i++) {
      const text = config[`ipconfig${i}`];
      list.push(text === undefined ? {} : normalizeIpConfig(codecs.parseIpConfig(String(text))));
    }
    if (like?.ipConfigs) while (list.length < like.ipConfigs.length && Object.keys(like.ipConfigs[list.length]).length === 0) list.push({});
    if (list.length || like) out.ipConfigs = list;
  }
  if (want("nameserver") && config.nameserver !== undefined) out.nameserver = normalizeNameserver(String(config.nameserver));
  if (want("searchdomain") && config.searchdomain !== undefined) out.searchdomain = String(config.searchdomain);
  if (want("ciuser") && config.ciuser !== undefined) out.ciuser = String(config.ciuser);
  if (want("sshKeys") && config.sshkeys !== undefined) out.sshKeys = normalizeSshKeys(codecs.decodeSshKeys(String(config.sshkeys)));
  if (want("cicustom") && config.cicustom !== undefined) {
    const parsed = codecs.splitPropertyString(String(config.cicustom));
    out.cicustom = normalizeCiCustom(Object.fromEntries(parsed.map(([k, v]) => [k, v ?? ""])) as CiCustom);
  }
  if (want("tags")) out.tags = codecs.parseTags(config.tags === undefined ? "" : String(config.tags));
  if (want("description")) {
    const d = splitDescription(config.description === undefined ? undefined : String(config.description)).description;
    if (d !== undefined) out.description = d;
  }
  if (want("onBoot")) out.onBoot = String(config.onboot ?? "0") === "1";
  return out;
}

// ---- settings -> PVE config changes ---------------------------------------------------------

export interface ConfigChange {
  /** Options to set, as PVE takes them. */
  set: Record<string, string | number>;
  /** Options to remove. */
  delete: string[];
}

/** The PVE value each setting maps to (only keys the settings define). */
function desiredValues(s: VmSettings, config: QemuConfig, resourceName: string | undefined, stack?: string, keepDescription = false): Record<string, string | number> {
  const v: Record<string, string | number> = {};
  if (s.name !== undefined) v.name = s.name;
  if (s.cores !== undefined) v.cores = s.cores;
  if (s.sockets !== undefined) v.sockets = s.sockets;
  if (s.memory !== undefined) v.memory = s.memory;
  if (s.balloon !== undefined) v.balloon = s.balloon;
  s.networks?.forEach((n, i) => {
    const current = config[`net${i}`] !== undefined ? codecs.parseNet(String(config[`net${i}`])) : undefined;
    const mac = n.macAddress ?? current?.macaddr;
    v[`net${i}`] = codecs.formatNet({
      model: n.model ?? "virtio",
      ...(mac ? { macaddr: codecs.normalizeMac(mac) } : {}),
      bridge: n.bridge,
      ...(n.firewall ? { firewall: true } : {}),
      ...(n.mtu !== undefined ? { mtu: n.mtu } : {}),
      ...(n.vlanTag !== undefined ? { tag: n.vlanTag } : {}),
    });
  });
  s.ipConfigs?.forEach((c, i) => {
    if (Object.keys(c).length) v[`ipconfig${i}`] = codecs.formatIpConfig(c);
  });
  if (s.nameserver !== undefined) v.nameserver = s.nameserver;
  if (s.searchdomain !== undefined) v.searchdomain = s.searchdomain;
  if (s.ciuser !== undefined) v.ciuser = s.ciuser;
  if (s.sshKeys !== undefined && s.sshKeys.length) v.sshkeys = codecs.encodeSshKeys(s.sshKeys);
  if (s.cicustom) {
    const entries = (["meta", "network", "user", "vendor"] as const).filter((k) => s.cicustom?.[k]).map((k) => `${k}=${s.cicustom?.[k]}`);
    if (entries.length) v.cicustom = entries.join(",");
  }
  if (s.tags !== undefined && s.tags.length) v.tags = codecs.formatTags(s.tags);
  // An undeclared description (never declared) is not the provider's: its text is kept as it is
  // (an adopted VM's), and only the marker line is maintained.
  const current = splitDescription(config.description === undefined ? undefined : String(config.description));
  const text = keepDescription ? current.description : s.description;
  // the origin was stamped at the clone and stays while the marker names this resource
  const origin = current.resourceName === resourceName && current.stack === stack ? current.origin : undefined;
  const description = composeDescription(text, resourceName, stack, origin);
  if (description !== undefined) v.description = description;
  if (s.onBoot !== undefined) v.onboot = s.onBoot ? 1 : 0;
  return v;
}

/** PVE keys a setting owns (for removals when the user drops a setting). */
function ownedKeys(s: VmSettings, config: QemuConfig): string[] {
  const keys: string[] = [];
  const map: Partial<Record<keyof VmSettings, string>> = {
    balloon: "balloon", nameserver: "nameserver", searchdomain: "searchdomain", ciuser: "ciuser", sshKeys: "sshkeys",
    cicustom: "cicustom", tags: "tags", onBoot: "onboot",
  };
  for (const [setting, key] of Object.entries(map)) if (s[setting as keyof VmSettings] !== undefined) keys.push(key as string);
  if (s.networks) keys.push(...netIndexes(config, "net").map((i) => `net${i}`));
  if (s.ipConfigs) keys.push(...netIndexes(config, "ipconfig").map((i) => `ipconfig${i}`));
  return keys;
}

function canonical(key: string, value: unknown): string {
  const text = String(value);
  if (/^net\d+$/.test(key)) return JSON.stringify(networkFromConfig(text));
  if (key === "tags") return codecs.formatTags(text);
  if (key === "memory") return String(int(text));
  if (key === "description") return normalizeDescription(text) ?? "";
  if (key === "onboot") return text === "1" || text === "true" ? "1" : "0";
  if (/^ipconfig\d+$/.test(key)) return JSON.stringify(normalizeIpConfig(codecs.parseIpConfig(text)));
  return text;
}

/**
 * The PUT that brings `config` to the settings `next`. Keys owned by `prev` but no longer by
 * `next` (a NIC removed, tags dropped) are deleted; everything else PVE keeps as it is.
 */
export function configChange(config: QemuConfig, next: VmSettings, resourceName: string | undefined, prev?: VmSettings, stack?: string): ConfigChange {
  const want = desiredValues(next, config, resourceName, stack, next.description === undefined && prev?.description === undefined);
  const set: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(want)) {
    if (config[k] === undefined || canonical(k, config[k]) !== canonical(k, v)) set[k] = v;
  }
  const owned = new Set([...ownedKeys(prev ?? {}, config), ...ownedKeys(next, config)]);
  if (prev?.description !== undefined || next.description !== undefined) owned.add("description");
  const del = [...owned].filter((k) => want[k] === undefined && config[k] !== undefined);
  return { set, delete: del.sort() };
}
