// The guest inside a simulated VM. PVE is not the guest: `agent: 1` only adds a virtio-serial
// channel, the NIC names and addresses are whatever cloud-init makes of the data PVE generated
// at the last start, and that data is read once per boot. This module decides, at each start,
// what the guest will look like until the next one (REALISM.md, "Guest"):
//
// - NIC names: a NIC that PVE's network-config lists (one with ipconfigN, qemu-server
//   Cloudinit.pm `nocloud_network`: `name: eth<N>` + `mac_address`), or that a `cicustom`
//   network file names by MAC, is renamed by cloud-init to that name (cloud-init
//   `cloudinit/net/__init__.py` `_rename_interfaces`); the others keep the name udev gives a
//   virtio NIC on i440fx PCI slot 18+N: `ens18`, `ens19`, ...
// - Addresses: as the network-config at boot says (static, or DHCP). A NIC it does not list gets
//   none: PVE's generated config always holds a nameserver entry (Cloudinit.pm get_dns_conf
//   returns lists, from the host's resolv.conf when unset), and cloud-init uses a non-empty
//   datasource config instead of its DHCP fallback (cloud-init stages.py
//   `_find_networking_config`). So a clone without ipconfig0 gets no address. Without a
//   cloud-init drive the image's own config takes DHCP. A change made while the VM runs is not
//   seen until the next boot.
// - The agent: answers only if qemu-guest-agent is in the guest: shipped by the image (see
//   `DEFAULT_IMAGES`), installed at an earlier boot, or installed now by cloud-init user-data
//   (`packages:` on the first boot of an instance-id, cloud-init `cc_package_update_upgrade_install`),
//   then started by `runcmd` (`systemctl start|restart|enable --now qemu-guest-agent`); the
//   Debian package's unit is started by udev when the virtio port appears at boot, so without
//   such a runcmd it answers from the next boot on.
// - A disk made without an image (a blank `scsi0: local-lvm:10`, as API tests create) stands for
//   a prepared image with cloud-init and the agent: the agent answers `bootToAgentMs` after start.

import { createHash } from "crypto";
import * as YAML from "yaml";

export interface ImageRule {
  /** Regular expression (source) matched against the image's file name. */
  match: string;
  /** Whether the image ships qemu-guest-agent, enabled. */
  agent: boolean;
}

/** What common cloud images ship. An image no rule matches ships no agent. */
export const DEFAULT_IMAGES: ImageRule[] = [
  // Debian's cloud images (debian-cloud-images, config_space/*/package_config): no qemu-guest-agent
  { match: "^debian-\\d+-(generic|genericcloud|nocloud)", agent: false },
  // Ubuntu's server cloud images: no qemu-guest-agent
  { match: "(ubuntu|jammy|noble|focal).*cloudimg", agent: false },
  // Fedora Cloud Base and the EL GenericCloud images include it
  { match: "^Fedora-Cloud-Base", agent: true },
  { match: "^(Rocky|AlmaLinux|CentOS-Stream)-.*GenericCloud", agent: true },
];

export interface GuestOptions {
  /** Image rules tried before `DEFAULT_IMAGES`. */
  images?: ImageRule[];
  /** Boot to the end of cloud-init's package install (apt update + install), PVE time. */
  packageInstallMs?: number;
}

/** What stays on the guest's disk across boots. */
export interface GuestDisk {
  installed: Set<string>;
  instanceIds: Set<string>;
  /** Files written through the agent (`file-write`), by absolute path. */
  files: Map<string, Buffer>;
}

export interface GuestNic {
  mac: string;
  name: string;
  ipv4?: { address: string; prefix: number } | "dhcp";
  ipv6?: { address: string; prefix: number };
}

/** The guest as it booted: what it will report until the next start. */
export interface GuestBoot {
  /** By lower-case MAC. */
  nics: Map<string, GuestNic>;
  /** PVE-time ms after the start from which the agent answers; undefined: never this boot. */
  agentAfterMs?: number;
  /** Why the agent answers or not (for the back door and test messages). */
  agent: string;
  /** The host name cloud-init set from the user-data (`hostname:`), else `localhost`. */
  hostname: string;
  /** The OS as /etc/os-release describes it (`guestOs`); undefined for an unknown image. */
  os?: GuestOs;
  /** qemu-ga's file systems are frozen (`guest-fsfreeze-freeze` until `-thaw`). */
  frozen?: boolean;
}

/** /etc/os-release of the guest (what qemu-ga's `guest-get-osinfo` reads) and the root file
 *  system's type. The values are the distributions' os-release fields for the release the image
 *  name carries; the kernel strings are illustrative. */
export interface GuestOs {
  id: string;
  name: string;
  "pretty-name": string;
  version: string;
  "version-id": string;
  variant?: string;
  "variant-id"?: string;
  "kernel-release": string;
  "kernel-version": string;
  rootfs: string;
}

const DEBIAN_CODENAMES: Record<string, string> = { "10": "buster", "11": "bullseye", "12": "bookworm", "13": "trixie" };
const UBUNTU: Record<string, [string, string]> = { focal: ["20.04", "Focal Fossa"], jammy: ["22.04", "Jammy Jellyfish"], noble: ["24.04", "Noble Numbat"] };

/** The guest OS of an image (by its file name); a blank disk (`undefined`) stands for a prepared
 *  Debian 12 image; an image no rule knows has no os-release the model can tell. */
export function guestOs(image: string | undefined): GuestOs | undefined {
  const file = image === undefined ? "debian-12-genericcloud-amd64.qcow2" : image.split("/").pop() ?? image;
  let m = /^debian-(\d+)-/i.exec(file);
  if (m) {
    const code = DEBIAN_CODENAMES[m[1]] ?? "";
    const v = code ? `${m[1]} (${code})` : m[1];
    return { id: "debian", name: "Debian GNU/Linux", "pretty-name": `Debian GNU/Linux ${v}`, version: v, "version-id": m[1], "kernel-release": "6.1.0-cloud-amd64", "kernel-version": "#1 SMP PREEMPT_DYNAMIC Debian", rootfs: "ext4" };
  }
  m = /(focal|jammy|noble)/i.exec(file);
  if (m && /cloudimg|ubuntu/i.test(file)) {
    const [v, name] = UBUNTU[m[1].toLowerCase()];
    return { id: "ubuntu", name: "Ubuntu", "pretty-name": `Ubuntu ${v} LTS`, version: `${v} LTS (${name})`, "version-id": v, "kernel-release": "6.8.0-generic", "kernel-version": "#1-Ubuntu SMP PREEMPT_DYNAMIC", rootfs: "ext4" };
  }
  m = /^Fedora-Cloud-Base-(?:Generic[.-])?(\d+)/i.exec(file);
  if (m) {
    return { id: "fedora", name: "Fedora Linux", "pretty-name": `Fedora Linux ${m[1]} (Cloud Edition)`, version: `${m[1]} (Cloud Edition)`, "version-id": m[1], variant: "Cloud Edition", "variant-id": "cloud", "kernel-release": `6.11.0-${m[1]}.fc${m[1]}.x86_64`, "kernel-version": "#1 SMP PREEMPT_DYNAMIC", rootfs: "btrfs" };
  }
  m = /^(Rocky|AlmaLinux|CentOS-Stream)-(\d+)/i.exec(file);
  if (m) {
    const [id, name] = m[1].toLowerCase() === "rocky" ? ["rocky", "Rocky Linux"] : m[1].toLowerCase() === "almalinux" ? ["almalinux", "AlmaLinux"] : ["centos", "CentOS Stream"];
    return { id, name, "pretty-name": `${name} ${m[2]}`, version: m[2], "version-id": m[2], "kernel-release": `5.14.0.el${m[2]}.x86_64`, "kernel-version": "#1 SMP PREEMPT_DYNAMIC", rootfs: "xfs" };
  }
  return undefined;
}

export interface BootInput {
  vmid: number;
  /** Config as the VM starts (pending applied). */
  config: Record<string, string>;
  /** File name of the image the boot disk was imported from; undefined for a blank disk. */
  image?: string;
  /** The cloud-init data PVE generates now (user, network, meta), or undefined without a drive. */
  cloudinit?: { user: string; network: string; meta: string };
  disk: GuestDisk;
  bootToAgentMs: number;
  /** `agent` enabled in the config at start: the virtio-serial port exists. */
  agentChannel: boolean;
  /** Name of the first NIC without a cloud-init rename (default `ens18`). */
  firstNicName?: string;
}

export function newGuestDisk(): GuestDisk {
  return { installed: new Set(), instanceIds: new Set(), files: new Map() };
}

export function imageShipsAgent(image: string, rules: ImageRule[] = []): boolean {
  const file = image.split("/").pop() ?? image;
  for (const r of [...rules, ...DEFAULT_IMAGES]) if (new RegExp(r.match, "i").test(file)) return r.agent;
  return false;
}

function parseYaml(text: string): any {
  try {
    return YAML.parse(text.replace(/^#cloud-config\s*\n/, ""));
  } catch {
    return undefined;
  }
}

function prefixOfNetmask(mask: string): number {
  return mask.split(".").reduce((n, o) => n + (Number(o) >>> 0).toString(2).replace(/0/g, "").length, 0);
}

function staticAddress(address: string, netmask?: string): { address: string; prefix: number } {
  const [a, p] = address.split("/");
  return { address: a, prefix: p !== undefined ? Number(p) : netmask ? prefixOfNetmask(netmask) : 24 };
}

interface NetEntry {
  name?: string;
  ipv4?: GuestNic["ipv4"];
  ipv6?: GuestNic["ipv6"];
}

/** ENI network data as PVE writes it for configdrive2 (Cloudinit.pm `configdrive2_network`,
 *  `cloudbase_network_eni`): `auto eth<N>`, `iface eth<N> inet dhcp|static` + `address`/`netmask`,
 *  `iface eth<N> inet6 ...`. ENI names no MAC: entries are keyed `#<N>`, the N of `eth<N>`, which
 *  PVE takes from `net<N>`; the model assumes the guest applies `eth<N>` to that NIC (it keeps the
 *  name it has: nothing renames it without a MAC). */
function parseEni(text: string): Map<string, NetEntry> {
  const out = new Map<string, NetEntry>();
  let cur: { entry: NetEntry; family: string; method: string; address?: string; netmask?: string } | undefined;
  const flush = () => {
    if (!cur) return;
    if (cur.family === "inet") {
      if (cur.method === "dhcp") cur.entry.ipv4 = "dhcp";
      else if (cur.method === "static" && cur.address) cur.entry.ipv4 = staticAddress(cur.address, cur.netmask);
    } else if (cur.family === "inet6" && cur.method === "static" && cur.address) {
      cur.entry.ipv6 = staticAddress(cur.netmask !== undefined && !cur.address.includes("/") ? `${cur.address}/${cur.netmask}` : cur.address);
    }
    cur = undefined;
  };
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const iface = /^iface\s+eth(\d+)\s+(inet6?)\s+(\S+)/.exec(line);
    if (iface) {
      flush();
      const key = `#${iface[1]}`;
      const entry = out.get(key) ?? {};
      out.set(key, entry);
      cur = { entry, family: iface[2], method: iface[3] };
      continue;
    }
    if (/^(auto|iface|allow-|mapping|source)\b/.test(line)) {
      flush();
      continue;
    }
    const opt = /^(address|netmask)\s+(\S+)/.exec(line);
    if (opt && cur) cur[opt[1] as "address" | "netmask"] = opt[2];
  }
  flush();
  return out;
}

/** Network-config (v1 as PVE writes it, or v2) by lower-case MAC; ENI (configdrive2) by `#<N>`. */
export function parseNetworkConfig(text: string): Map<string, NetEntry> {
  if (/^\s*(auto|iface)\s/m.test(text) && !/^\s*(version|network|config)\s*:/m.test(text)) return parseEni(text);
  const out = new Map<string, NetEntry>();
  const doc = parseYaml(text);
  const root = doc?.network ?? doc;
  if (!root || typeof root !== "object") return out;
  if (Number(root.version) === 2 && root.ethernets && typeof root.ethernets === "object") {
    for (const [id, e] of Object.entries<any>(root.ethernets)) {
      const mac = String(e?.match?.macaddress ?? "").toLowerCase();
      if (!mac) continue;
      const entry: NetEntry = { name: e["set-name"] ?? id };
      const addrs: string[] = Array.isArray(e.addresses) ? e.addresses.map(String) : [];
      const v4 = addrs.find((a) => !a.includes(":"));
      const v6 = addrs.find((a) => a.includes(":"));
      if (v4) entry.ipv4 = staticAddress(v4);
      else if (e.dhcp4 === true || e.dhcp4 === "true") entry.ipv4 = "dhcp";
      if (v6) entry.ipv6 = staticAddress(v6);
      out.set(mac, entry);
    }
    return out;
  }
  for (const e of Array.isArray(root.config) ? root.config : []) {
    if (e?.type !== "physical" || !e.mac_address) continue;
    const entry: NetEntry = { name: e.name };
    for (const s of Array.isArray(e.subnets) ? e.subnets : []) {
      if (s?.type === "dhcp4" || s?.type === "dhcp") entry.ipv4 = "dhcp";
      else if (s?.type === "static" && s.address) entry.ipv4 = staticAddress(String(s.address), s.netmask);
      else if (s?.type === "static6" && s.address) entry.ipv6 = staticAddress(String(s.address));
    }
    out.set(String(e.mac_address).toLowerCase(), entry);
  }
  return out;
}

const AGENT_PACKAGE = "qemu-guest-agent";

/** Whether user-data installs the agent, and whether it starts it in the same boot. */
export function userDataAgent(text: string): { installs: boolean; starts: boolean } {
  if (/^#!/.test(text)) {
    // a shell script: what it runs
    const installs = new RegExp(`(apt-get|apt|dnf|yum|zypper)\\b[^\\n]*\\binstall\\b[^\\n]*\\b${AGENT_PACKAGE}\\b`).test(text);
    return { installs, starts: installs && startsAgent(text) };
  }
  const doc = parseYaml(text);
  if (!doc || typeof doc !== "object") return { installs: false, starts: false };
  const packages = Array.isArray(doc.packages) ? doc.packages.map((p: unknown) => (Array.isArray(p) ? String(p[0]) : String(p))) : [];
  const installs = packages.includes(AGENT_PACKAGE);
  const runcmd = Array.isArray(doc.runcmd) ? doc.runcmd.map((c: unknown) => (Array.isArray(c) ? c.join(" ") : String(c))).join("\n") : "";
  return { installs, starts: installs && startsAgent(runcmd) };
}

function startsAgent(commands: string): boolean {
  return new RegExp(`systemctl\\s+(start|restart|enable\\s+--now|--now\\s+enable)\\s+(\\S+\\s+)*${AGENT_PACKAGE}`).test(commands);
}

/** The guest of one start of a VM (mutates `disk`: packages installed, instance-ids seen). */
export function bootGuest(b: BootInput, opts: GuestOptions = {}): GuestBoot {
  const nics = new Map<string, GuestNic>();
  const netCfg = b.cloudinit ? parseNetworkConfig(b.cloudinit.network) : new Map<string, NetEntry>();
  const netKeys = Object.keys(b.config).filter((k) => /^net\d+$/.test(k)).sort((x, y) => Number(x.slice(3)) - Number(y.slice(3)));
  for (const k of netKeys) {
    const i = Number(k.slice(3));
    const mac = (/(?:^|,)(?:[a-z0-9]+=)?([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})/.exec(b.config[k])?.[1] ?? "").toLowerCase();
    const entry = netCfg.get(mac) ?? netCfg.get(`#${i}`);
    const nic: GuestNic = { mac, name: entry?.name ?? predictableName(i, b.firstNicName) };
    if (entry) {
      if (entry.ipv4) nic.ipv4 = entry.ipv4;
      if (entry.ipv6) nic.ipv6 = entry.ipv6;
    } else if (!b.cloudinit) nic.ipv4 = "dhcp";
    nics.set(mac, nic);
  }

  const channel = b.agentChannel;
  const ships = b.image === undefined || imageShipsAgent(b.image, opts.images);
  let agentAfterMs: number | undefined;
  let why: string;
  if (ships) {
    agentAfterMs = b.bootToAgentMs;
    why = b.image === undefined ? "blank disk: a prepared image with the agent" : `image ${b.image} ships ${AGENT_PACKAGE}`;
  } else if (b.disk.installed.has(AGENT_PACKAGE)) {
    agentAfterMs = b.bootToAgentMs;
    why = `${AGENT_PACKAGE} installed at an earlier boot`;
  } else {
    why = `image ${b.image} ships no ${AGENT_PACKAGE}`;
  }
  if (b.cloudinit) {
    const instanceId = (/instance-id:\s*(\S+)/.exec(b.cloudinit.meta) ?? /"uuid":\s*"([^"]+)"/.exec(b.cloudinit.meta))?.[1] ?? createHash("sha1").update(b.cloudinit.user + b.cloudinit.network).digest("hex");
    const firstBoot = !b.disk.instanceIds.has(instanceId);
    b.disk.instanceIds.add(instanceId);
    if (firstBoot) {
      const ud = userDataAgent(b.cloudinit.user);
      if (ud.installs && !b.disk.installed.has(AGENT_PACKAGE) && !ships) {
        b.disk.installed.add(AGENT_PACKAGE);
        const installedAt = b.bootToAgentMs + (opts.packageInstallMs ?? 40_000);
        if (ud.starts) {
          agentAfterMs = installedAt;
          why = `cloud-init installs and starts ${AGENT_PACKAGE} (user-data)`;
        } else {
          why = `cloud-init installs ${AGENT_PACKAGE} but nothing starts it: it runs from the next boot`;
        }
      }
    }
  }
  if (!channel) {
    agentAfterMs = undefined;
    why = "no agent channel (agent not enabled at start)";
  }
  // cloud-init cc_set_hostname: the user-data's `hostname` (PVE writes the VM name's first label)
  const ud = b.cloudinit ? parseYaml(b.cloudinit.user) : undefined;
  const hostname = ud && typeof ud === "object" && ud.hostname ? String(ud.hostname) : "localhost";
  return { nics, agentAfterMs, agent: why, hostname, os: guestOs(b.image) };
}

/** The name udev gives virtio NIC N on the i440fx machine (PCI slot 18+N). */
export function predictableName(index: number, first = "ens18"): string {
  const m = /^(.*?)(\d+)$/.exec(first);
  return m ? `${m[1]}${Number(m[2]) + index}` : index === 0 ? first : `${first}${index}`;
}
