/**
 * Quickstart: the smallest useful stack. A cloud-init template built from a distribution's
 * cloud image, and two VMs cloned from it, started, with their IPv4 addresses as outputs.
 * Debian's cloud image ships no qemu-guest-agent, and PVE learns a VM's address only from it:
 * the VMs' user-data installs it and starts it (the package does not start itself when
 * installed on a running system), so the addresses arrive after the first boot's install.
 *
 * Config (namespace `quickstart:`, all optional):
 *   node (pve1), count (2), storage (local-lvm: the template's and clones' disks),
 *   imageStorage (local: a storage with `import` content for the downloaded image),
 *   imageUrl (Debian 12 generic cloud image), imageChecksum (its sha512, verified by PVE),
 *   bridge (vmbr0), memory (2048 MiB), cores (2), snippetStorage (local: a storage with
 *   `snippets` content on every node; a fresh install has none, see README).
 * Connection settings: `proxmox:endpoint` and `proxmox:apiToken` (set it with --secret), or
 * PROXMOX_VE_* variables (README, Configuration).
 */
import * as pulumi from "@pulumi/pulumi";
import { CloudInitSnippet, Template, VmClone } from "pulumi-pve";

export = async () => {
  const cfg = new pulumi.Config("quickstart");
  const node = cfg.get("node") ?? "pve1";
  const count = cfg.getNumber("count") ?? 2;
  const bridge = cfg.get("bridge") ?? "vmbr0";
  const checksum = cfg.get("imageChecksum");

  const template = new Template("debian-12", {
    node,
    storage: cfg.get("storage") ?? "local-lvm",
    bridge,
    image: {
      url: cfg.get("imageUrl") ?? "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2",
      storage: cfg.get("imageStorage") ?? "local",
      ...(checksum ? { checksum, checksumAlgorithm: "sha512" as const } : {}),
    },
    // `pulumi destroy` leaves nothing behind, the downloaded image included.
    removeImageOnDelete: true,
  });

  // written to every node over SFTP (proxmox:sshPrivateKey, README, Configuration)
  const userData = new CloudInitSnippet("guest-agent", {
    storage: cfg.get("snippetStorage") ?? "local",
    cloudConfig: {
      packages: ["qemu-guest-agent"],
      runcmd: [["systemctl", "start", "qemu-guest-agent"]],
    },
  });

  const vms = Array.from({ length: count }, (_, i) =>
    new VmClone(`vm-${i + 1}`, {
      template,
      cicustom: { user: userData.volumeId },
      memory: cfg.getNumber("memory") ?? 2048,
      cores: cfg.getNumber("cores") ?? 2,
      networks: [{ bridge }],
      ipConfigs: [{ ip: "dhcp" }],
    }),
  );

  return {
    templateVmid: template.vmid,
    vms: pulumi.all(vms.map((vm) => pulumi.all([vm.name, vm.vmid, vm.ipv4Address]))).apply((list) =>
      Object.fromEntries(list.map(([name, vmid, ip]) => [name, { vmid, ip }])),
    ),
    ips: pulumi.all(vms.map((vm) => vm.ipv4Address)),
  };
};
