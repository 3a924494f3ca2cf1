/**
 * The inputs the preview-vs-up property test (preview-property.test.ts) changes, per example and
 * resource: each resource's list is applied one entry per round, cumulatively (round k adds the
 * k-th entry of every resource's list to what the earlier rounds set), so every entry changes one
 * input of one resource (or two: the pairs) from the value it had to another valid one. Resources
 * of one program change in the same round; what a change does to resources that use its outputs
 * (a replaced template's clones) is part of the steps compared.
 *
 * The order within a list matters where one change prepares another (failOnMissing: false before
 * the bindings move; removeMembersOnDelete before the pool is replaced; propagate before
 * destroyOnDelete: false).
 */
import { generateEd25519KeyPair } from "../helpers/ssh-keys";
import type { ConfigEntry } from "./harness";

export type Change = Record<string, unknown>;

export interface ProgramPlan {
  example: "full-stack" | "fleeting" | "machine-controller" | "quickstart";
  /** The example's own config (beyond the connection). */
  config: Record<string, ConfigEntry>;
  /** `<Type>::<resource name>` -> the changes, one per round. */
  changes: Record<string, Change[]>;
}

/** Inputs that are not changed, and why (the README lists them with the figures). */
export const NOT_TRIED: Record<string, string> = {
  "Storage.storage, Storage.type, Storage.path": "replacing the storage that holds the stack's own image and snippets deletes them first: not a change made to a live stack",
  "Storage.enabled: false": "disables the storage the stack's own template image and snippets live on",
  "Storage.shared": "says every node sees the same files: only true of a network file system",
  "VmClone.adopt, Template.adopt": "take over an existing VM/template: another object, not a changed one",
  "VmClone.cicustom, Template.cicustom": "follow the snippet's volume id (changed through the snippet)",
  "VmClone.disk": "the clones have one disk (scsi0): there is no other to name",
  "User.password, Role.translatePrivileges: false": "refused by PVE with these credentials: tried as refusals (preview and up fail alike, nothing changes)",
};

const KEY = generateEd25519KeyPair({ comment: "property-test" }).public;

export const PLANS: ProgramPlan[] = [
  {
    example: "quickstart",
    config: {
      "quickstart:count": { value: "3" },
      "quickstart:filesStorage": { value: "pp-quick" },
      "quickstart:filesPath": { value: "/var/lib/pp-quick" },
    },
    changes: {
      "Storage::files": [{ content: ["images", "import", "iso", "snippets"] }, { removeVolumesOnDelete: true }, { nodes: ["pve1", "pve2", "pve3"] }, { adopt: true }, { destroyOnDelete: true }],
      "Template::debian-12": [{ name: "debian-12-pp" }, { description: "built by the property test", removeImageOnDelete: false }, { memory: 1024 }, { tags: ["pp"] }, { node: "pve2" }, { storage: "pp-quick" }],
      "CloudInitSnippet::guest-agent": [{ namePrefix: "agent" }, { nodes: ["pve1", "pve2"] }, { cloudConfig: { packages: ["qemu-guest-agent", "curl"], runcmd: [["systemctl", "start", "qemu-guest-agent"]] } }, { fileName: "pp-agent.yaml" }, { content: "#cloud-config\npackages:\n  - qemu-guest-agent\nruncmd:\n  - [systemctl, start, qemu-guest-agent]\n", cloudConfig: null }, { storage: "local" }],
      "VmClone::vm-1": [{ memory: 1024 }, { tags: ["pp"] }, { description: "changed" }, { full: true, storage: "local-lvm" }, { agentTimeoutSeconds: 120 }, { destroyOnDelete: false }],
      "VmClone::vm-2": [{ cores: 3 }, { sockets: 2 }, { onBoot: true }, { balloon: 512 }, { nameserver: "10.0.0.53" }, { started: false }],
      "VmClone::vm-3": [{ name: "vm-3-pp" }, { searchdomain: "example.org" }, { ciuser: "ops" }, { sshKeys: [KEY] }, { pool: "pp-pool" }, { vmid: 7103 }],
    },
  },
  {
    example: "full-stack",
    config: {
      "fleet:size": { value: "3" },
      "fleet:filesStorage": { value: "pp-full" },
      "fleet:filesPath": { value: "/var/lib/pp-full" },
    },
    changes: {
      "User::fleet-user": [{ comment: "changed" }, { email: "ops@example.com" }, { firstname: "Fleet", lastname: "Ops" }, { expire: 4102444800 }, { groups: ["pp-ops"] }, { enable: false }],
      "ApiToken::fleet-token": [{ comment: "changed" }, { expire: 4102444800 }, { privsep: true }, { tokenid: "automation2" }],
      "Pool::fleet-pool": [{ comment: "changed" }, { removeMembersOnDelete: true }, { allowMove: true }, { storage: ["local-lvm"] }, { vms: [9001] }, { adopt: true }],
      "UserRoleBinding::fleet-on-pool": [{ roles: ["PVEDatastoreUser", "PVEPoolUser", "PVETemplateUser", "PVEVMAdmin"] }, { propagate: false }, { adopt: true }],
      "UserRoleBinding::fleet-on-network": [{ propagate: false }, { user: null, group: "pp-ops" }, { destroyOnDelete: false }],
      "UserRoleBinding::fleet-on-node": [{ path: "/nodes/pve2" }, { propagate: true }],
      "Storage::files": [{ nodes: ["pve1", "pve2", "pve3"] }, { content: ["import", "iso", "snippets"] }, { removeVolumesOnDelete: true }],
      "Template::debian-12": [{ cores: 2 }, { tags: ["template", "pp"] }, { diskSize: "12G" }, { name: "debian-pp", description: "pair" }, { bridge: "vmbr1", pool: "pp-pool" }, { destroyOnDelete: true }],
      "CloudInitSnippet::fleet-user-data": [{ nodes: ["pve1", "pve2", "pve3"] }, { cloudConfig: { package_update: false, packages: ["qemu-guest-agent"], runcmd: [["systemctl", "enable", "--now", "qemu-guest-agent"]] } }, { storage: "local" }],
      "VmClone::fleet-1": [{ diskSize: "20G" }, { networks: [{ bridge: "vmbr0", model: "virtio" }, { bridge: "vmbr0", model: "e1000" }] }, { allowReboot: true }, { ipConfigs: [{ ip: "10.20.0.11/24", gw: "10.20.0.1" }] }, { shutdownTimeoutSeconds: 30 }, { memory: 3072 }],
      "VmClone::fleet-2": [{ waitForIp: false }, { templateVmid: 9000, templateNode: "pve1" }, { tags: ["fleet", "pp"] }, { cores: 1 }, { description: "changed" }, { onBoot: true }],
      "VmClone::fleet-3": [{ vmidRange: { min: 7300, max: 7399 } }, { agentInterface: "eth0" }, { name: "fleet-3-pp" }, { started: false }, { balloon: 1024 }, { destroyOnDelete: false }],
    },
  },
  {
    example: "machine-controller",
    config: {
      "machine-controller:machines": { value: "2" },
      "machine-controller:filesStorage": { value: "pp-mc" },
      "machine-controller:filesPath": { value: "/var/lib/pp-mc" },
    },
    changes: {
      "Role::machine-controller": [{ privileges: ["Datastore.AllocateSpace", "Pool.Allocate", "Pool.Audit", "SDN.Use", "Sys.Audit", "Sys.Console", "VM.Allocate", "VM.Audit", "VM.Clone", "VM.Config.CDROM", "VM.Config.CPU", "VM.Config.Cloudinit", "VM.Config.Disk", "VM.Config.HWType", "VM.Config.Memory", "VM.Config.Network", "VM.Config.Options", "VM.Console", "VM.Monitor"] }, { roleid: "MachineController2" }, { adopt: true }, { destroyOnDelete: true }],
      "User::machine-controller": [{ comment: "changed" }, { adopt: true }, { email: "mc@example.com" }],
      "ApiToken::machine-controller": [{ expire: 4102444800 }, { comment: "changed" }, { privsep: true }],
      "UserRoleBinding::machine-controller-root": [{ propagate: false }, { adopt: true }],
      "Storage::files": [{ content: ["images", "import", "snippets"] }, { nodes: ["pve1", "pve2", "pve3"] }],
      "Template::ubuntu-2404": [{ ha: false }, { description: "changed" }, { tags: ["pp"] }, { image: { url: "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64-disk-kvm.img", storage: "pp-mc" } }, { removeImageOnDelete: false }, { name: "ubuntu-pp" }],
      "CloudInitSnippet::machine-user-data": [{ namePrefix: "mc" }, { nodes: ["pve1", "pve2"] }, { fileName: "mc.yaml" }],
      "VmClone::machine-1": [{ memory: 1536 }, { node: "pve2" }, { tags: ["pp"] }, { sshKeys: [KEY] }, { cores: 1 }, { shutdownTimeoutSeconds: 10 }],
      "VmClone::machine-2": [{ full: true }, { balloon: 0 }, { ciuser: "ubuntu" }, { nameserver: "10.0.0.53" }, { searchdomain: "example.org" }, { allowReboot: true }],
    },
  },
  {
    example: "fleeting",
    config: {},
    changes: {
      "PermissionCheck::fleeting-can-clone": [{ failOnMissing: false }, { principal: "root@pam" }, { requirements: [{ path: "/pool/fleeting", privileges: ["Pool.Audit"] }, { path: "/storage/fleeting", privileges: ["Datastore.AllocateSpace"] }] }],
      "Storage::fleeting": [{ nodes: ["pve1", "pve2"] }, { content: ["images", "import", "iso", "snippets"] }, { removeVolumesOnDelete: true }],
      "CloudInitSnippet::fleeting-user-data": [{ cloudConfig: { packages: ["qemu-guest-agent", "curl"], runcmd: [["systemctl", "start", "qemu-guest-agent"]] } }, { namePrefix: "fleeting" }, { nodes: ["pve1", "pve2"] }],
      "Template::fleeting-template": [{ memory: 1024 }, { cores: 1 }, { diskSize: "10G" }, { vmid: 8500 }, { ipConfigs: [{ ip: "10.30.0.5/24", gw: "10.30.0.1" }] }, { description: "changed", tags: ["pp"] }],
      "Pool::fleeting": [{ removeMembersOnDelete: true }, { comment: "changed" }, { storage: ["fleeting", "local"] }, { allowMove: true }, { poolid: "fleeting2" }, { destroyOnDelete: false }],
      "User::fleeting": [{ comment: "changed" }, { firstname: "Runner", lastname: "Fleet" }, { expire: 4102444800 }, { userid: "fleeting2@pve" }, { email: "runner@example.com" }, { destroyOnDelete: true }],
      "ApiToken::fleeting": [{ comment: "changed" }, { tokenid: "fleeting2" }],
      "UserRoleBinding::fleeting-user-pool": [{ roles: ["PVEDatastoreUser", "PVEPoolUser", "PVETemplateUser", "PVEVMAdmin"] }],
      "UserRoleBinding::fleeting-user-network": [{ path: "/sdn/zones/localnetwork/vmbr0" }],
      "UserRoleBinding::fleeting-user-node": [{ adopt: true }],
      "UserRoleBinding::fleeting-token-pool": [{ propagate: false }],
      "UserRoleBinding::fleeting-token-network": [{ roles: ["PVEAuditor", "PVESDNAdmin"] }],
      "UserRoleBinding::fleeting-token-node": [{ destroyOnDelete: false }],
    },
  },
];

/**
 * Changes PVE is certain to refuse with the stack's credentials (a token): the preview must fail
 * with the words `up` fails with, and change nothing. Each is applied after the rounds, then
 * taken back.
 */
export const REFUSALS: Array<{ example: ProgramPlan["example"]; key: string; change: Change; says: RegExp }> = [
  { example: "fleeting", key: "User::fleeting", change: { password: "Another-Pass-2two" }, says: /cannot change the password of 'fleeting2@pve': PVE changes passwords only through PUT \/access\/password/ },
  { example: "machine-controller", key: "Role::machine-controller", change: { translatePrivileges: false }, says: /'VM\.Monitor' does not exist on this server \(PVE 9/ },
];

/** The mutations of round `k` (1-based): every resource's first k changes, merged. */
export function mutationsAt(plan: ProgramPlan, k: number): Record<string, Change> {
  const out: Record<string, Change> = {};
  for (const [key, list] of Object.entries(plan.changes)) {
    const applied = list.slice(0, k);
    if (applied.length) out[key] = Object.assign({}, ...applied);
  }
  return out;
}

/** Rounds a plan takes: its longest list. */
export function roundsOf(plan: ProgramPlan): number {
  return Math.max(...Object.values(plan.changes).map((l) => l.length));
}

/** `Type.input` names a round changes (for the table). */
export function inputsChangedAt(plan: ProgramPlan, k: number): string[] {
  return Object.entries(plan.changes).flatMap(([key, list]) => (list[k - 1] ? Object.keys(list[k - 1]).map((i) => `${key.split("::")[0]}.${i}`) : []));
}
