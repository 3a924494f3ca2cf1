import { formatWithSpec, joinPropertyString, parseWithSpec, splitPropertyString, type PropertyExtras, type PropertySpec } from "./propertyString";

/** NIC models PVE knows; `<model>=<MAC>` is how PVE writes model and MAC together. */
export const NET_MODELS: ReadonlySet<string> = new Set([
  "e1000", "e1000-82540em", "e1000-82544gc", "e1000-82545em", "e1000e", "i82551", "i82557b",
  "i82559er", "ne2k_isa", "ne2k_pci", "pcnet", "rtl8139", "virtio", "vmxnet3",
]);

/** `netN`: `virtio=BC:24:11:2A:3B:4C,bridge=vmbr0,firewall=1,tag=10`. */
export interface NetDevice extends PropertyExtras {
  model?: string;
  macaddr?: string;
  bridge?: string;
  firewall?: boolean;
  link_down?: boolean;
  mtu?: number;
  queues?: number;
  rate?: number;
  tag?: number;
  /** VLAN ids, as PVE writes them: `10;20;30`. */
  trunks?: string;
}

const SPEC: PropertySpec = {
  defaultKey: "model",
  fields: {
    model: "string",
    macaddr: "string",
    bridge: "string",
    firewall: "boolean",
    link_down: "boolean",
    mtu: "integer",
    queues: "integer",
    rate: "number",
    tag: "integer",
    trunks: "string",
  },
};

export function parseNet(text: string): NetDevice {
  const entries = splitPropertyString(text);
  let shorthand = false;
  const rewritten = entries.map(([k, v]): [string, string | undefined] => {
    if (!shorthand && NET_MODELS.has(k) && v !== undefined) {
      shorthand = true;
      return ["model", k];
    }
    return [k, v];
  });
  const parsed = parseWithSpec(rewritten, SPEC) as NetDevice;
  if (shorthand) {
    const original = entries.find(([k, v]) => NET_MODELS.has(k) && v !== undefined);
    parsed.macaddr = original?.[1];
    delete parsed.defaultKeyExplicit;
  }
  return parsed;
}

export function formatNet(net: NetDevice): string {
  const folded = net.model !== undefined && net.macaddr !== undefined && !net.defaultKeyExplicit;
  const entries = formatWithSpec(net, SPEC, folded ? new Set(["macaddr"]) : new Set());
  if (folded) {
    const i = entries.findIndex(([k, v]) => k === net.model && v === undefined);
    if (i >= 0) entries[i] = [net.model as string, net.macaddr];
  }
  return joinPropertyString(entries);
}

/** MACs compare upper-case with colons, the way PVE generates them. */
export function normalizeMac(mac: string): string {
  return mac.trim().toUpperCase().replace(/-/g, ":");
}
