// What the QEMU guest agent reports (`guest-network-get-interfaces`), shaped like the
// recorded fixtures: `lo` plus one interface per netN, named and addressed as the guest set it
// up at boot (guest.ts: `eth<N>` when cloud-init's network config lists it, else `ens18`,
// `ens19`, ... as udev names virtio NICs at PCI slot 18+N), hardware-address = the NIC's MAC in
// lower case, an IPv4 (static, or a deterministic 10.x.y.z from the VMID for DHCP) and the
// EUI-64 link-local IPv6.

import type { Vm } from "./state/cluster";
import { parseNet } from "./qemu-config";
import { predictableName } from "./guest";

function linkLocal(mac: string): string {
  const b = mac.split(":").map((x) => parseInt(x, 16));
  b[0] ^= 0x02;
  const words = [(b[0] << 8) | b[1], (b[2] << 8) | 0xff, (0xfe << 8) | b[3], (b[4] << 8) | b[5]];
  return `fe80::${words.map((w) => w.toString(16)).join(":")}`;
}

/** Deterministic DHCP-style address of NIC `index` of VM `vmid`. */
export function dhcpAddress(vmid: number, index: number): string {
  const x = 16 + ((vmid >> 16) & 0x0f) + index * 16;
  const y = (vmid >> 8) & 0xff;
  let z = vmid & 0xff;
  if (z === 0 || z === 255) z = 254;
  return `10.${x}.${y}.${z}`;
}

export function networkInterfaces(vm: Vm, firstName: string): unknown[] {
  const cur = vm.config.current;
  const out: unknown[] = [
    {
      name: "lo",
      "hardware-address": "00:00:00:00:00:00",
      "ip-addresses": [
        { "ip-address-type": "ipv4", "ip-address": "127.0.0.1", prefix: 8 },
        { "ip-address-type": "ipv6", "ip-address": "::1", prefix: 128 },
      ],
      statistics: { "rx-bytes": 0, "rx-dropped": 0, "rx-errs": 0, "rx-packets": 0, "tx-bytes": 0, "tx-dropped": 0, "tx-errs": 0, "tx-packets": 0 },
    },
  ];
  // The NICs present now (a hot-plugged one included); names and addresses as the guest set
  // them up at its last boot (guest.ts): a NIC added since has its udev name and no address.
  const nets = Object.keys(cur).filter((k) => /^net\d+$/.test(k)).sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
  for (const k of nets) {
    const i = Number(k.slice(3));
    const nic = parseNet(cur[k]);
    if (nic.rest.link_down === "1") continue;
    const mac = (nic.macaddr ?? "00:00:00:00:00:00").toLowerCase();
    const booted = vm.guest?.nics.get(mac) ?? { mac, name: predictableName(i, firstName) };
    const addrs: unknown[] = [];
    if (booted.ipv4 === "dhcp") addrs.push({ "ip-address-type": "ipv4", "ip-address": dhcpAddress(vm.vmid, i), prefix: 16 });
    else if (booted.ipv4) addrs.push({ "ip-address-type": "ipv4", "ip-address": booted.ipv4.address, prefix: booted.ipv4.prefix });
    if (booted.ipv6) addrs.push({ "ip-address-type": "ipv6", "ip-address": booted.ipv6.address, prefix: booted.ipv6.prefix });
    addrs.push({ "ip-address-type": "ipv6", "ip-address": linkLocal(mac), prefix: 64 });
    out.push({
      name: booted.name,
      "hardware-address": mac,
      "ip-addresses": addrs,
      statistics: { "rx-bytes": 1024 * (i + 1), "rx-dropped": 0, "rx-errs": 0, "rx-packets": 12, "tx-bytes": 2048, "tx-dropped": 0, "tx-errs": 0, "tx-packets": 20 },
    });
  }
  return out;
}
