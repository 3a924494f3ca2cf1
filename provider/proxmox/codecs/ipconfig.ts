import { formatWithSpec, joinPropertyString, parseWithSpec, splitPropertyString, type PropertyExtras, type PropertySpec } from "./propertyString";

/** `ipconfigN`: `ip=dhcp`, `ip=10.0.0.5/24,gw=10.0.0.1`, `ip6=auto`, `ip6=fd00::5/64,gw6=fd00::1`. */
export interface IpConfig extends PropertyExtras {
  /** `dhcp`, or an IPv4 address in CIDR notation. */
  ip?: string;
  gw?: string;
  /** `dhcp`, `auto` (SLAAC), or an IPv6 address in CIDR notation. */
  ip6?: string;
  gw6?: string;
}

const SPEC: PropertySpec = { fields: { ip: "string", gw: "string", ip6: "string", gw6: "string" } };

export function parseIpConfig(text: string): IpConfig {
  return parseWithSpec(splitPropertyString(text), SPEC) as IpConfig;
}

export function formatIpConfig(config: IpConfig): string {
  return joinPropertyString(formatWithSpec(config, SPEC));
}
