// check() rules and PVE config values of the cloud-init network and custom-data inputs
// (`ipConfigs`, `cicustom`), shared by VmClone and Template.

import { codecs, type QemuConfig } from "../../proxmox";
import { known, type InputChecker } from "../check";
import { normalizeCiCustom, normalizeIpConfig, settingsFromConfig, type CiCustom, type IpConfigInput } from "./config-map";

export const SNIPPET_VOLID = /^[a-zA-Z][\w\-.]*:snippets\/[^\s,;=]+$/;
export const IPV4_CIDR = /^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/;
export const IPV4 = /^(\d{1,3}\.){3}\d{1,3}$/;
const CICUSTOM_KEYS = ["user", "network", "meta", "vendor"] as const;


/** `ipConfigs`: a list of `{ ip?, gw?, ip6?, gw6? }`, one per NIC. */
export function checkIpConfigs(c: InputChecker): void {
  c.list<IpConfigInput>("ipConfigs", {
    item: (i) => {
      if (!i || typeof i !== "object") return "each ipConfig must be an object { ip?, gw?, ip6?, gw6? }.";
      if (known(i.ip) && i.ip !== "dhcp" && !IPV4_CIDR.test(i.ip as string)) return `ip '${i.ip}' must be 'dhcp' or an IPv4 address with prefix, e.g. 10.0.0.5/24.`;
      if (known(i.gw) && !IPV4.test(i.gw as string)) return `gw '${i.gw}' must be an IPv4 address.`;
      if (known(i.ip6) && !["dhcp", "auto"].includes(i.ip6 as string) && !/^[0-9a-fA-F:]+\/\d{1,3}$/.test(i.ip6 as string)) return `ip6 '${i.ip6}' must be 'dhcp', 'auto' or an IPv6 address with prefix.`;
      return undefined;
    },
  });
}

/** `cicustom`: `{ user?, network?, meta?, vendor? }` of snippet volume ids. */
export function checkCicustom(c: InputChecker, value: unknown): void {
  if (!known(value)) return;
  if (typeof value !== "object" || Array.isArray(value)) {
    c.fail("cicustom", "cicustom must be an object { user?, network?, meta?, vendor? } of snippet volume ids.");
    return;
  }
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (!(CICUSTOM_KEYS as readonly string[]).includes(k)) c.fail(`cicustom.${k}`, `cicustom has no '${k}'; use user, network, meta or vendor.`);
    else if (known(v) && (typeof v !== "string" || !SNIPPET_VOLID.test(v))) c.fail(`cicustom.${k}`, `cicustom.${k} '${String(v)}' must be a snippet volume id such as local:snippets/user.yaml.`);
  }
}

export interface CloudInitData {
  ipConfigs?: IpConfigInput[];
  cicustom?: CiCustom;
}

/** The canonical form check() stores (so a refresh right after create shows no change). */
export function normalizeCloudInitData(d: CloudInitData): CloudInitData {
  const out: CloudInitData = {};
  if (Array.isArray(d.ipConfigs)) out.ipConfigs = d.ipConfigs.map(normalizeIpConfig);
  const custom = d.cicustom ? normalizeCiCustom(d.cicustom) : undefined;
  if (custom) out.cicustom = custom;
  return out;
}

/** `ipconfigN` and `cicustom` as PVE takes them. */
export function cloudInitValues(d: CloudInitData): Record<string, string> {
  const v: Record<string, string> = {};
  d.ipConfigs?.forEach((c, i) => {
    if (Object.keys(c).length) v[`ipconfig${i}`] = codecs.formatIpConfig(c);
  });
  const entries = CICUSTOM_KEYS.filter((k) => d.cicustom?.[k]).map((k) => `${k}=${d.cicustom?.[k]}`);
  if (entries.length) v.cicustom = entries.join(",");
  return v;
}

/** What to set and delete to go from `prev`'s cloud-init data to `next`'s. */
export function cloudInitChange(prev: CloudInitData, next: CloudInitData): { set: Record<string, string>; delete: string[] } {
  const before = cloudInitValues(prev);
  const after = cloudInitValues(next);
  const set = Object.fromEntries(Object.entries(after).filter(([k, v]) => before[k] !== v));
  return { set, delete: Object.keys(before).filter((k) => after[k] === undefined) };
}

/** The declared cloud-init data as the PVE config shows it (only what `like` declares; a
 *  declared key PVE no longer has is present as undefined, so it overrides the old state). */
export function cloudInitFromConfig(config: QemuConfig, like: CloudInitData): CloudInitData {
  const s = settingsFromConfig(config, { ipConfigs: like.ipConfigs, cicustom: like.cicustom, name: undefined });
  const out: CloudInitData = {};
  if (like.ipConfigs !== undefined) out.ipConfigs = s.ipConfigs ?? [];
  if (like.cicustom !== undefined) out.cicustom = s.cicustom;
  return out;
}
