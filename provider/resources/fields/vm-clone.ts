// The properties of a VmClone, declared once (../fields.ts explains what derives from this table).

import { codecs } from "../../proxmox";
import { adoptionRules } from "../adoption";
import { known, pveNames, VMID_RANGE } from "../check";
import { isUnknown, normalize } from "../diff";
import { table } from "../fields";
import { cicustomField, ipConfigsField, tagsField } from "./vm-common";
import type { NetworkDevice } from "../vm/vm-types";

export type { TemplateRef, VmidRange } from "../vm/vm-types";

/** The disk `diskSize` grows when `disk` is not given. */
export const GROWN_DISK = "scsi0";

const MAC = /^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/;

function checkNetwork(d: NetworkDevice): string | undefined {
  if (!d || typeof d !== "object") return "each network must be an object { bridge, model?, vlanTag?, firewall?, macAddress?, mtu? }.";
  if (!known(d.bridge)) return isUnknown(d.bridge) ? undefined : "bridge is required (e.g. vmbr0).";
  if (known(d.model) && !codecs.NET_MODELS.has(d.model)) return `model '${d.model}' is not a PVE NIC model (${[...codecs.NET_MODELS].join(", ")}).`;
  if (known(d.vlanTag) && (!Number.isInteger(d.vlanTag) || d.vlanTag < 1 || d.vlanTag > 4094)) return `vlanTag must be 1-4094, got ${d.vlanTag}.`;
  if (known(d.macAddress) && !MAC.test(d.macAddress)) return `macAddress '${d.macAddress}' is not a MAC address (XX:XX:XX:XX:XX:XX).`;
  return undefined;
}

function sizeProblem(v: string): string | undefined {
  try {
    codecs.parseSize(v);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

const NODE = { kind: "string", pattern: pveNames.node, describe: "a node name" } as const;

export const vmCloneTable = table({
  resource: "VmClone",
  module: "vm-clone",
  summary: "A VM cloned from a template (see the top of provider/resources/vm-clone.ts).",
  argsDoc: "What the user writes: the template to clone, the VM's settings, and how the provider runs it.",
  id: "`<node>/<vmid>`, the node at creation (`pve1/101`)",
  imports: { "../vm/vm-types": ["CiCustom", "IpConfigInput", "NetworkDevice", "TemplateRef", "VmidRange"] },
  fields: {
    template: {
      kind: "custom",
      role: "args",
      type: "TemplateRef",
      argsType: "pulumi.Input<TemplateRef> | TemplateRef",
      change: "replaces",
      doc: "The template to clone: a Template resource, or `{ node, vmid }` of an existing one (its vmid replaces the VM when it changes; its node does not).",
    },
    templateVmid: { kind: "integer", present: true, change: "replaces", ...VMID_RANGE, doc: "Alternative to `template`: the template's VMID. Required unless `template` or `adopt` is set." },
    templateNode: { ...NODE, present: true, defaultDoc: "the node the cluster shows the template on", doc: "With `templateVmid`: the template's node. Not a replacement." },
    name: { kind: "string", present: true, pattern: pveNames.dnsName, describe: "a DNS name (letters, digits, hyphens, dots)", defaultDoc: "the resource name", doc: "VM name (a DNS name)." },
    node: {
      ...NODE,
      present: true,
      change: "migrates",
      defaultDoc: "the template's node",
      doc: "Node the VM runs on. A different node than the template's at creation clones there (`target`) from shared storage, else beside the template and migrates the new VM (../vm/clone-placement.ts).",
    },
    full: { kind: "boolean", default: false, change: "replaces", normalize: normalize.flag, doc: "Full clone (copy the disks) instead of a linked clone." },
    storage: { kind: "string", change: "replaces", pattern: pveNames.storageId, describe: "a storage id", doc: "Target storage for a full clone." },
    pool: { kind: "string", pattern: pveNames.poolid, describe: "a pool id", doc: "Resource pool to put the VM in (a change moves it between pools)." },
    vmid: { kind: "integer", present: "state", change: "replaces", ...VMID_RANGE, defaultDoc: "allocated (the lowest free id, safe at any parallelism)", doc: "Explicit VMID." },
    vmidRange: {
      kind: "custom",
      type: "VmidRange",
      normalize: () => undefined,
      normalizeDoc: "not at all: it only matters when a VMID is allocated",
      check: (c, property) => {
        const r = c.inputs[property];
        if (!known(r)) return undefined;
        if (!Number.isInteger(r.min) || !Number.isInteger(r.max) || r.min < 100 || r.max < r.min) {
          c.fail(property, `vmidRange must be { min, max } with 100 <= min <= max; got ${JSON.stringify(r)}.`);
          return undefined;
        }
        return r;
      },
      doc: "Allocate the VMID from this range (`min` >= 100, `max` >= `min`) instead of PVE's nextid.",
    },
    cores: { kind: "integer", min: 1, max: 1024, defaultDoc: "the template's", doc: "CPU cores per socket (needs a restart without CPU hotplug: see `allowReboot`)." },
    sockets: { kind: "integer", min: 1, max: 16, defaultDoc: "the template's", doc: "CPU sockets (needs a restart: see `allowReboot`)." },
    memory: { kind: "integer", min: 16, unit: "MiB", defaultDoc: "the template's", doc: "Memory." },
    balloon: { kind: "integer", min: 0, unit: "MiB", defaultDoc: "the template's", doc: "Minimum memory with ballooning; 0 disables the balloon device." },
    disk: { kind: "string", pattern: codecs.DISK_KEY, describe: "a disk key such as scsi0 or virtio0", defaultDoc: `\`${GROWN_DISK}\` when \`diskSize\` is set`, doc: "The disk `diskSize` grows." },
    diskSize: { kind: "string", rule: sizeProblem, normalize: (v: string) => codecs.normalizeSize(v), normalizeDoc: "as a size (`20480M` is `20G`)", doc: "Size of `disk`, e.g. `20G` (grow only: PVE does not shrink disks)." },
    networks: { kind: "list", of: "NetworkDevice", item: checkNetwork, defaultDoc: "the template's", doc: "The NICs, `net0`, `net1`, ... in order." },
    ipConfigs: ipConfigsField({ defaultDoc: "the template's", doc: "Cloud-init network config per NIC (`ipconfigN`), e.g. `[{ ip: \"dhcp\" }]` (the guest reads it at its next boot)." }),
    nameserver: { kind: "string", defaultDoc: "the template's (else the host's)", doc: "Cloud-init DNS server(s)." },
    searchdomain: { kind: "string", defaultDoc: "the template's (else the host's)", doc: "Cloud-init DNS search domain." },
    ciuser: { kind: "string", defaultDoc: "the template's (else the image's)", doc: "Cloud-init default user name." },
    sshKeys: {
      kind: "list",
      of: "string",
      item: (k: unknown) => (typeof k === "string" && /^\S+ \S+/.test(k.trim()) ? undefined : "each SSH key must be an OpenSSH public key line ('ssh-ed25519 AAAA... comment')."),
      defaultDoc: "the template's",
      doc: "OpenSSH public keys for the cloud-init user, one key a line.",
    },
    cicustom: cicustomField({ doc: "Snippet volumes (`local:snippets/user.yaml`), e.g. a CloudInitSnippet's volume id." }),
    tags: tagsField({ defaultDoc: "the template's", doc: "PVE tags." }),
    description: { kind: "string", maxLength: 8000, doc: "The VM's notes (the provider's marker line is appended to them)." },
    onBoot: { kind: "boolean", normalize: normalize.flag, defaultDoc: "the template's (off)", doc: "Start the VM when its node boots (`onboot`)." },
    started: { kind: "boolean", default: true, doc: "Running, or stopped." },
    allowReboot: { kind: "boolean", default: false, change: "behaviour", doc: "Apply changes that need a restart by shutting the VM down and starting it." },
    waitForIp: { kind: "boolean", present: true, change: "behaviour", defaultDoc: "`started`", doc: "Wait for the guest agent to report an IPv4 address." },
    agentInterface: {
      kind: "string",
      pattern: /^[\w.\-@]+$/,
      describe: "an interface name such as ens18 or eth0",
      change: "behaviour",
      defaultDoc: "none: the NIC is found by net0's MAC address",
      doc: "The guest's name of the NIC whose IPv4 is awaited and reported (its name depends on cloud-init: `eth0` with ipConfigs, else the udev name such as `ens18`).",
    },
    agentTimeoutSeconds: { kind: "integer", min: 1, max: 86_400, default: 300, unit: "s", change: "behaviour", doc: "How long to wait for that address." },
    shutdownTimeoutSeconds: { kind: "integer", min: 0, max: 3_600, default: 60, unit: "s", change: "behaviour", doc: "Graceful shutdown time before a hard stop (delete, reboot)." },
    adopt: {
      kind: "boolean",
      change: "replaces",
      normalize: normalize.flag,
      defaultDoc: "false",
      doc: "Take the existing VM `vmid` on `node` under management instead of cloning (see the top of provider/resources/vm-clone.ts).",
    },
    destroyOnDelete: {
      kind: "boolean",
      change: "behaviour",
      normalize: adoptionRules.destroyOnDelete.normalize,
      defaultDoc: "true for a cloned VM, false for an adopted one (then delete only removes the marker line: the VM is released, untouched)",
      doc: "Destroy the VM when the resource is deleted.",
    },
    resourceName: { kind: "string", role: "internal", doc: "The resource's name (set by the VmClone class): part of the marker." },
    stack: { kind: "string", role: "internal", pattern: /^[^\s/]+\/[^\s/]+$/, describe: "<project>/<stack>", doc: "`<project>/<stack>` of the program (set by the VmClone class): part of the marker." },
    vmidAllocated: { kind: "boolean", role: "output", doc: "The VMID was allocated (not given as an input): a refresh must not turn it into one." },
    status: { kind: "string", role: "output", present: true, doc: "Power state as last read: `running` or `stopped`." },
    ipv4Address: { kind: "string", role: "output", doc: "First IPv4 of net0 (found by its MAC), or of `agentInterface`, as the guest agent reported it; undefined without an answer." },
    ipv4Addresses: { kind: "list", of: "string", role: "output", present: true, doc: "Every non-loopback IPv4 the guest agent reported." },
    macAddresses: { kind: "list", of: "string", role: "output", present: true, doc: "The MAC addresses of net0, net1, ... in order." },
    pendingChanges: {
      kind: "list",
      of: "string",
      role: "output",
      present: true,
      doc: "Config keys waiting for the VM's next cold start (allowReboot false): those PVE holds as pending, and cloud-init keys changed while the VM ran (the guest reads its cloud-init data only at boot).",
    },
    cloudInitBoot: { kind: "integer", role: "output", unit: "epoch s", doc: "When cloud-init keys are pending: the start they wait after, so a refresh knows a restart since has applied them." },
  },
});
