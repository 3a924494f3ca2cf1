/**
 * Quickstart: the smallest useful stack. A cloud-init template built from a distribution's
 * cloud image, and two VMs cloned from it, started, with their IPv4 addresses as outputs.
 * Debian's cloud image ships no qemu-guest-agent, and PVE learns a VM's address only from it:
 * the VMs' user-data installs it and starts it (the package does not start itself when
 * installed on a running system), so the addresses arrive after the first boot's install.
 *
 * Config (namespace `quickstart:`, all optional):
 *   node (pve1), count (2), storage (local-lvm: the template's and clones' disks),
 *   imageStorage and snippetStorage (a storage with `import` content for the downloaded image,
 *   one with `snippets` content on every node; when either is unset the stack creates the
 *   directory storage `filesStorage` (pulumi-files) at `filesPath` (/var/lib/pulumi-files) for both),
 *   imageUrl (Debian 12 generic cloud image), imageChecksum (its sha512, verified by PVE),
 *   bridge (vmbr0), memory (2048 MiB), cores (2).
 * Connection settings: `proxmox:endpoint` and `proxmox:apiToken` (set it with --secret), or
 * PROXMOX_VE_* variables (README, Configuration).
 */
import * as pulumi from "@pulumi/pulumi";
import { CloudInitSnippet, Storage, Template, VmClone } from "pulumi-pve";

export = async () => {
  const cfg = new pulumi.Config("quickstart");
  const node = cfg.get("node") ?? "pve1";
  const count = cfg.getNumber("count") ?? 2;
  const bridge = cfg.get("bridge") ?? "vmbr0";
  const checksum = cfg.get("imageChecksum");
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

  const template = new Template("debian-12", {
    node,
    storage: cfg.get("storage") ?? "local-lvm",
    bridge,
    image: pulumi.output(imageStorage).apply((storage) => ({
      url: cfg.get("imageUrl") ?? "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2",
      storage,
      ...(checksum ? { checksum, checksumAlgorithm: "sha512" as const } : {}),
    })),
    // `pulumi destroy` leaves nothing behind, the downloaded image included.
    removeImageOnDelete: true,
  });

  // written to every node over SFTP (proxmox:sshPrivateKey, README, Configuration)
  const userData = new CloudInitSnippet("guest-agent", {
    storage: snippetStorage,
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
