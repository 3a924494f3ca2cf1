/**
 * What kubermatic's machine-controller needs on Proxmox VE, as code:
 *
 * - a custom Role with the privilege list its docs give (plus SDN.Use, which PVE 8 and later
 *   require on the bridge to clone a VM with a NIC), bound on `/` to a dedicated user whose
 *   API token (privilege separation off: the token has exactly the user's role) is what the
 *   machine-controller is configured with (`user_id` = `USER@REALM!TOKENID`, `token` = the UUID);
 *   the list includes VM.Monitor, which exists only on PVE 8: `translatePrivileges` applies
 *   VM.GuestAgent.Audit instead on PVE 9 (the output `appliedPrivileges` says what was applied);
 * - a cloud-init template built from a cloud image, added to HA (`state=stopped`) so that it is
 *   available on every node, as the docs' `ha-manager add vm:<id> -state stopped` does;
 * - cloud-init user-data as a snippet on every node (the PVE API cannot upload snippets; the
 *   provider copies it over SFTP), in a storage with `snippets` content;
 * - machines cloned from the template that boot with that user-data (`cicustom`).
 *
 * Config (namespace `machine-controller:`, all optional):
 *   node (pve1), machines (2), storage (local-lvm), imageStorage and snippetStorage (when either
 *   is unset, the stack creates the directory storage filesStorage (pulumi-files) at filesPath
 *   (/var/lib/pulumi-files) with `import` and `snippets` content for both: a fresh install's
 *   `local` has no snippets content),
 *   imageUrl (Ubuntu 24.04 cloud image), imageChecksum (sha256), bridge (vmbr0),
 *   memory (2048 MiB), cores (2), sshKey (an OpenSSH public key for the machines' user).
 * Connection: proxmox:endpoint, proxmox:apiToken (--secret), and for the snippets SSH to the
 * nodes: proxmox:sshUsername, proxmox:sshPrivateKey (--secret), proxmox:sshHostKeys or
 * proxmox:sshKnownHosts (README, Configuration).
 */
import * as pulumi from "@pulumi/pulumi";
import { ApiToken, CloudInitSnippet, Role, Storage, Template, User, UserRoleBinding, VmClone } from "pulumi-pve";

/** The privileges machine-controller's Proxmox provider documents for its token, plus SDN.Use:
 *  the list predates PVE 8, which checks SDN.Use on the bridge (`/sdn/zones/<zone>/<bridge>`)
 *  whenever a VM with a NIC is cloned or configured; without it every clone is refused (403). */
const MACHINE_CONTROLLER_PRIVILEGES = [
  "SDN.Use",
  "Datastore.AllocateSpace",
  "Pool.Allocate",
  "Pool.Audit",
  "VM.Allocate",
  "VM.Audit",
  "VM.Clone",
  "VM.Config.CDROM",
  "VM.Config.CPU",
  "VM.Config.Cloudinit",
  "VM.Config.Disk",
  "VM.Config.HWType",
  "VM.Config.Memory",
  "VM.Config.Network",
  "VM.Config.Options",
  "VM.Monitor",
  "Sys.Audit",
  "Sys.Console",
];

export = async () => {
  const cfg = new pulumi.Config("machine-controller");
  const node = cfg.get("node") ?? "pve1";
  const machines = cfg.getNumber("machines") ?? 2;
  const bridge = cfg.get("bridge") ?? "vmbr0";
  const checksum = cfg.get("imageChecksum");
  const sshKey = cfg.get("sshKey");

  // Access: the role, the user, its token, the role on `/`.
  const role = new Role("machine-controller", {
    roleid: "MachineController",
    privileges: MACHINE_CONTROLLER_PRIVILEGES,
    translatePrivileges: true,
  });
  const user = new User("machine-controller", { userid: "machine-controller@pve", comment: "kubermatic machine-controller" });
  const token = new ApiToken("machine-controller", { userid: user.userid, tokenid: "mc", privsep: false, comment: "kubermatic machine-controller" });
  new UserRoleBinding("machine-controller-root", { path: "/", user: user.userid, roles: [role.roleid] });

  // A fresh install's `local` holds no `snippets` (and on 8.x no `import`) content: unless told
  // to use storages that have them, the stack declares one directory storage for both, on every
  // node (PVE creates the directory).
  const imageStorageCfg = cfg.get("imageStorage");
  const snippetStorageCfg = cfg.get("snippetStorage");
  const files =
    imageStorageCfg !== undefined && snippetStorageCfg !== undefined
      ? undefined
      : new Storage("files", { storage: cfg.get("filesStorage") ?? "pulumi-files", type: "dir", path: cfg.get("filesPath") ?? "/var/lib/pulumi-files", content: ["import", "snippets"] });
  const imageStorage: pulumi.Input<string> = imageStorageCfg ?? files!.storage;
  const snippetStorage: pulumi.Input<string> = snippetStorageCfg ?? files!.storage;

  // The template, in HA so that every node can clone it.
  const template = new Template("ubuntu-2404", {
    node,
    storage: cfg.get("storage") ?? "local-lvm",
    bridge,
    image: pulumi.output(imageStorage).apply((storage) => ({
      url: cfg.get("imageUrl") ?? "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
      storage,
      ...(checksum ? { checksum, checksumAlgorithm: "sha256" as const } : {}),
    })),
    ha: true,
    tags: ["machine-controller", "template"],
    removeImageOnDelete: true,
  });

  // User-data on every node (nodes unset: every node online when it is created).
  const userData = new CloudInitSnippet("machine-user-data", {
    storage: snippetStorage,
    cloudConfig: {
      package_update: true,
      packages: ["qemu-guest-agent"],
      runcmd: [["systemctl", "enable", "--now", "qemu-guest-agent"]],
      ...(sshKey ? { ssh_authorized_keys: [sshKey] } : {}),
    },
  });

  const vms = Array.from({ length: machines }, (_, i) =>
    new VmClone(`machine-${i + 1}`, {
      template,
      memory: cfg.getNumber("memory") ?? 2048,
      cores: cfg.getNumber("cores") ?? 2,
      networks: [{ bridge }],
      ipConfigs: [{ ip: "dhcp" }],
      cicustom: { user: userData.volumeId },
      tags: ["machine-controller"],
    }),
  );

  return {
    /** machine-controller's `user_id`. */
    tokenId: token.fullTokenId,
    /** SECRET: machine-controller's `token` (the UUID). */
    token: token.value,
    appliedPrivileges: role.appliedPrivileges,
    templateVmid: template.vmid,
    userData: userData.volumeId,
    userDataNodes: userData.nodes,
    machines: pulumi.all(vms.map((vm) => pulumi.all([vm.name, vm.vmid, vm.node, vm.ipv4Address]))).apply((list) =>
      list.map(([name, vmid, vmNode, ip]) => ({ name, vmid, node: vmNode, ip })),
    ),
  };
};
