// What the QEMU guest agent reports (`guest-network-get-interfaces`), shaped like the
// recorded fixtures: `lo` plus one interface per netN, named and addressed as the guest set it
// up at boot (guest.ts: `eth<N>` when cloud-init's network config lists it, else `ens18`,
// `ens19`, ... as udev names virtio NICs at PCI slot 18+N), hardware-address = the NIC's MAC in
// lower case, an IPv4 (static, or a deterministic 10.x.y.z from the VMID for DHCP) and the
// EUI-64 link-local IPv6.

import type { Vm } from "./state/cluster";
import { parseNet } from "./qemu-config";
import { predictableName } from "./guest";
import type { GuestDisk } from "./guest";

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

// ---- qemu-ga's other commands ------------------------------------------------------------------
//
// What the guest's qemu-ga answers (QEMU qga/commands*.c, qga/qapi-schema.json). A QGA error is an
// object `{"error": {"class", "desc"}}`: PVE's QMPClient hands it back as the command's result
// (qemu-server QMPClient.pm `cmd` callback: `$result = { error => $resp->{error} }`, no die for the
// qga peer), so the generic agent endpoints answer 200 `{"result": {"error": …}}`, and only the
// endpoints built on `agent_cmd` (file-read, file-write, …) turn it into `Agent error: <desc>`
// (Agent.pm `check_agent_error`).

export interface QgaError {
  error: { class: string; desc: string };
}

export function isQgaError(x: unknown): x is QgaError {
  return typeof x === "object" && x !== null && "error" in x && typeof (x as QgaError).error?.desc === "string";
}

/** Commands qemu-ga keeps enabled while the file systems are frozen (QEMU qga/main.c
 *  `ga_freeze_allowlist`); every other one is disabled until the thaw. */
const FREEZE_ALLOWLIST = ["guest-ping", "guest-info", "guest-sync", "guest-sync-delimited", "guest-fsfreeze-status", "guest-fsfreeze-thaw"];

/** qemu-ga's commands (qga/qapi-schema.json of QEMU 7.2+); `false`: no success response. */
const QGA_COMMANDS: Record<string, boolean> = Object.fromEntries([
  "guest-sync-delimited", "guest-sync", "guest-ping", "guest-get-time", "guest-set-time", "guest-info", "guest-file-open", "guest-file-close",
  "guest-file-read", "guest-file-write", "guest-file-seek", "guest-file-flush", "guest-fsfreeze-status", "guest-fsfreeze-freeze",
  "guest-fsfreeze-freeze-list", "guest-fsfreeze-thaw", "guest-fstrim", "guest-network-get-interfaces", "guest-get-vcpus", "guest-set-vcpus",
  "guest-get-disks", "guest-get-fsinfo", "guest-set-user-password", "guest-get-memory-blocks", "guest-set-memory-blocks",
  "guest-get-memory-block-info", "guest-exec-status", "guest-exec", "guest-get-host-name", "guest-get-users", "guest-get-timezone",
  "guest-get-osinfo", "guest-get-devices", "guest-ssh-get-authorized-keys", "guest-ssh-add-authorized-keys", "guest-ssh-remove-authorized-keys",
  "guest-get-diskstats", "guest-get-cpustats",
].map((c) => [c, true] as [string, boolean]).concat(["guest-shutdown", "guest-suspend-disk", "guest-suspend-ram", "guest-suspend-hybrid"].map((c) => [c, false] as [string, boolean])));

/** The guest as the agent commands see it. */
export interface QgaGuest {
  vm: Vm;
  /** sim.now() */
  nowMs: number;
  /** Bytes of the boot disk and its drive key (`scsi0`, `virtio0`, …), if any. */
  bootDisk?: { key: string; bytes: number };
  /** Powers the guest off (guest-shutdown). */
  powerOff(): void;
}

/** The QGA error of a command qemu-ga has disabled (QEMU qapi/qmp-dispatch.c `qmp_dispatch`:
 *  `Command %s has been disabled%s%s`, class CommandNotFound; reason from qga/main.c). */
function disabled(cmd: string): QgaError {
  return { error: { class: "CommandNotFound", desc: `Command ${cmd} has been disabled: the agent is in frozen state` } };
}

/** Runs `guest-<name>` in the guest: its `return` value, or a QGA error object. */
export function qgaExecute(g: QgaGuest, cmd: string): unknown {
  const boot = g.vm.guest;
  if (!boot) throw new Error(`VM ${g.vm.vmid} not running`);
  if (boot.frozen && !FREEZE_ALLOWLIST.includes(cmd)) return disabled(cmd);
  const cur = g.vm.config.current;
  switch (cmd) {
    case "guest-ping":
      return {};
    case "guest-info":
      return {
        version: "7.2.0",
        supported_command: Object.keys(QGA_COMMANDS).sort().map((name) => ({ name, enabled: !boot.frozen || FREEZE_ALLOWLIST.includes(name), "success-response": QGA_COMMANDS[name] })),
      };
    case "guest-get-osinfo": {
      // qga/commands-posix.c qmp_guest_get_osinfo: uname fields, then os-release's
      const out: Record<string, string> = { "kernel-release": boot.os?.["kernel-release"] ?? "6.1.0-amd64", "kernel-version": boot.os?.["kernel-version"] ?? "#1 SMP", machine: "x86_64" };
      if (boot.os) for (const k of ["id", "name", "pretty-name", "version", "version-id", "variant", "variant-id"] as const) if (boot.os[k] !== undefined) out[k] = boot.os[k]!;
      return out;
    }
    case "guest-get-host-name":
      return { "host-name": boot.hostname };
    case "guest-get-time":
      return g.nowMs * 1_000_000;
    case "guest-get-timezone":
      return { zone: "UTC", offset: 0 };
    case "guest-get-users":
      return [];
    case "guest-get-vcpus": {
      const n = Number(cur.vcpus ?? Number(cur.sockets ?? 1) * Number(cur.cores ?? 1));
      // cpu0 has no `online` file in sysfs: it cannot go offline
      return Array.from({ length: n }, (_, i) => ({ online: true, "can-offline": i > 0, "logical-id": i }));
    }
    case "guest-get-memory-block-info":
      return { size: 128 * 1024 ** 2 };
    case "guest-get-memory-blocks": {
      const mib = Number(String(cur.memory ?? "512").split(",")[0].replace(/^current=/, ""));
      return Array.from({ length: Math.max(1, Math.floor(mib / 128)) }, (_, i) => ({ "phys-index": i, online: true, "can-offline": i > 0 }));
    }
    case "guest-get-fsinfo": {
      if (!g.bootDisk) return [];
      const bus = /^(scsi|virtio|sata|ide)(\d+)$/.exec(g.bootDisk.key);
      const kind = bus?.[1] ?? "scsi";
      const index = Number(bus?.[2] ?? 0);
      const dev = `${kind === "virtio" ? "vd" : "sd"}${String.fromCharCode(97 + (kind === "virtio" ? index : 0))}1`;
      const total = Math.floor((g.bootDisk.bytes * 0.96) / 4096) * 4096;
      const used = Math.min(total, 1536 * 1024 ** 2 + (g.vm.guestDisk?.installed.size ?? 0) * 64 * 1024 ** 2);
      return [{
        name: dev.replace(/^\/dev\//, ""), mountpoint: "/", type: boot.os?.rootfs ?? "ext4", "used-bytes": used, "total-bytes": total,
        disk: [{
          "pci-controller": { domain: 0, bus: 0, slot: kind === "virtio" ? 10 + index : 5, function: 0 },
          "bus-type": kind === "virtio" ? "virtio" : kind, bus: 0, target: kind === "scsi" ? index : 0, unit: 0, dev: `/dev/${dev}`,
        }],
      }];
    }
    case "guest-fsfreeze-status":
      return boot.frozen ? "frozen" : "thawed";
    case "guest-fsfreeze-freeze":
      boot.frozen = true;
      return 1;
    case "guest-fsfreeze-thaw": {
      const n = boot.frozen ? 1 : 0;
      boot.frozen = false;
      return n;
    }
    case "guest-fstrim":
      return { paths: [{ path: "/", trimmed: 0, minimum: 0 }] };
    case "guest-shutdown":
      g.powerOff();
      return undefined; // no response (`success-response: false`): the result is null
    default:
      return { error: { class: "CommandNotFound", desc: `The command ${cmd} has not been found` } };
  }
}

const DEFAULT_DIRS = ["/", "/etc", "/tmp", "/root", "/home", "/var", "/var/tmp", "/var/log", "/run", "/opt", "/srv", "/usr", "/usr/local", "/usr/local/bin"];

/** The guest's files the model knows: /etc/hostname, /etc/os-release, and what file-write wrote. */
function guestFile(g: QgaGuest, path: string, disk: GuestDisk): Buffer | undefined {
  const written = disk.files.get(path);
  if (written) return written;
  const boot = g.vm.guest!;
  if (path === "/etc/hostname") return Buffer.from(`${boot.hostname}\n`);
  if (path === "/etc/os-release" && boot.os) {
    const os = boot.os;
    const lines = [`PRETTY_NAME="${os["pretty-name"]}"`, `NAME="${os.name}"`, `VERSION_ID="${os["version-id"]}"`, `VERSION="${os.version}"`, `ID=${os.id}`];
    if (os.variant) lines.push(`VARIANT="${os.variant}"`, `VARIANT_ID=${os["variant-id"]}`);
    return Buffer.from(lines.join("\n") + "\n");
  }
  return undefined;
}

/** `guest-file-open` + read + close as file-read does (mode `r`): the bytes, or the QGA error
 *  (qga/commands-posix.c guest_file_open: `failed to open file '%s' (mode: '%s')` + strerror). */
export function qgaReadFile(g: QgaGuest, path: string): Buffer | QgaError {
  const boot = g.vm.guest;
  if (boot?.frozen) return disabled("guest-file-open");
  g.vm.guestDisk ??= { installed: new Set(), instanceIds: new Set(), files: new Map() };
  const data = guestFile(g, path, g.vm.guestDisk);
  if (!data) return { error: { class: "GenericError", desc: `failed to open file '${path}' (mode: 'r'): No such file or directory` } };
  return data;
}

/** `guest-file-open` (mode `wb`) + write + close as file-write does. */
export function qgaWriteFile(g: QgaGuest, path: string, data: Buffer): QgaError | undefined {
  if (g.vm.guest?.frozen) return disabled("guest-file-open");
  g.vm.guestDisk ??= { installed: new Set(), instanceIds: new Set(), files: new Map() };
  const disk = g.vm.guestDisk;
  const dir = path.replace(/\/[^/]*$/, "") || "/";
  const known = DEFAULT_DIRS.includes(dir) || [...disk.files.keys()].some((f) => f.startsWith(`${dir}/`));
  if (!path.startsWith("/") || !known) return { error: { class: "GenericError", desc: `failed to open file '${path}' (mode: 'wb'): No such file or directory` } };
  disk.files.set(path, data);
  return undefined;
}
