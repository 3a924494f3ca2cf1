// The object types of VM inputs (NICs, cloud-init network config, custom cloud-init data, the
// template reference, the VMID range): leaves that the field tables, the generated types and the
// config mapping all name, so they import nothing.

import type * as pulumi from "@pulumi/pulumi";

/** A NIC (`netN`). */
export interface NetworkDevice {
  /** The bridge the NIC is attached to, e.g. `vmbr0`. Required. */
  bridge: string;
  /** NIC model; default `virtio`. */
  model?: string;
  /** VLAN tag (`tag=`). */
  vlanTag?: number;
  /** PVE firewall on this NIC; default false. */
  firewall?: boolean;
  /** Fixed MAC; PVE generates one (prefix BC:24:11) when omitted. */
  macAddress?: string;
  /** Forced MTU in bytes (PVE `mtu=`, virtio NICs only; 1: the bridge's MTU). Default unset (PVE's default). */
  mtu?: number;
}

/** Cloud-init network config for NIC N (`ipconfigN`). */
export interface IpConfigInput {
  /** `dhcp` or an IPv4 CIDR (`10.0.0.5/24`). */
  ip?: string;
  /** IPv4 default gateway (an address, e.g. `10.0.0.1`), with a static `ip`. Default none. */
  gw?: string;
  /** `dhcp`, `auto` or an IPv6 CIDR. */
  ip6?: string;
  /** IPv6 default gateway (an address, e.g. `fd00::1`), with a static `ip6`. Default none. */
  gw6?: string;
}

/** `cicustom`: snippet volume ids (`local:snippets/user.yaml`), e.g. a CloudInitSnippet's volumeId. */
export interface CiCustom {
  /** Volume id of the user-data snippet, e.g. `local:snippets/user.yaml`. Default: PVE's generated user-data. */
  user?: string;
  /** Volume id of the network-config snippet. Default: PVE's, generated from `ipConfigs`. */
  network?: string;
  /** Volume id of the meta-data snippet. Default: PVE's generated meta-data. */
  meta?: string;
  /** Volume id of the vendor-data snippet. Default: none. */
  vendor?: string;
}

/** The template a {@link VmClone} is cloned from (its `template` input). */
export interface TemplateRef {
  /** The node the template is on. */
  node: pulumi.Input<string>;
  /** The template's VMID. Changing it replaces the VM. */
  vmid: pulumi.Input<number>;
}

/** The range a {@link VmClone}'s VMID is allocated from. */
export interface VmidRange {
  /** Lowest VMID to allocate (>= 100). */
  min: number;
  /** Highest VMID to allocate (>= min). */
  max: number;
}
