// The root Pulumi.yaml program: a team's whole Proxmox VE footprint in one stack.
//   access     a dedicated user and API token, with roles on exactly the paths it needs
//   placement  a pool holding the template (and the clones)
//   image      a cloud-init template built from a cloud image
//   boot data  a cloud-init user-data snippet on every node
//   fleet      VMs cloned from the template, started, reported with their IPv4 addresses
//
// Stack config (namespace `fleet:`), all optional:
//   node (pve1), size (3), memory (2048, MiB), cores (2), bridge (vmbr0), storage (local-lvm),
//   imageStorage and snippetStorage (when either is unset, the stack creates the directory
//   storage filesStorage (pulumi-files) at filesPath (/var/lib/pulumi-files) with `import` and
//   `snippets` content for both: a fresh install's `local` has no snippets content),
//   pool (fleet), imageUrl (Debian 12 generic cloud image),
//   imageChecksum (sha512 of it, verified by PVE), extraPackages (comma-separated), sshKey.
// Connection settings come from `proxmox:*` config or PROXMOX_VE_* (see the README).

import * as pulumi from "@pulumi/pulumi";
import { ApiToken, CloudInitSnippet, Pool, Storage, Template, User, UserRoleBinding, VmClone } from "pulumi-pve";

export = async () => {
  const cfg = new pulumi.Config("fleet");
  const node = cfg.get("node") ?? "pve1";
  const size = cfg.getNumber("size") ?? 3;
  const memory = cfg.getNumber("memory") ?? 2048;
  const cores = cfg.getNumber("cores") ?? 2;
  const bridge = cfg.get("bridge") ?? "vmbr0";
  const storage = cfg.get("storage") ?? "local-lvm";
  const poolId = cfg.get("pool") ?? "fleet";
  const extraPackages = (cfg.get("extraPackages") ?? "").split(",").map((p) => p.trim()).filter(Boolean);
  const sshKey = cfg.get("sshKey");

  // Access: a dedicated user whose token sees the fleet's pool and nothing else of value.
  const user = new User("fleet-user", { userid: "fleet@pve", comment: "Automation for the VM fleet" });
  const token = new ApiToken("fleet-token", { userid: user.userid, tokenid: "automation", privsep: false, comment: "Used by the fleet's automation" });
  const pool = new Pool("fleet-pool", { poolid: poolId, comment: "Template and fleet VMs" });
  const grant = (name: string, path: pulumi.Input<string>, roles: string[], propagate = true) =>
    new UserRoleBinding(name, { path, roles, user: user.userid, propagate });
  grant("fleet-on-pool", pulumi.interpolate`/pool/${pool.poolid}`, ["PVEVMAdmin", "PVEPoolUser", "PVEDatastoreUser"]);
  grant("fleet-on-network", "/sdn/zones/localnetwork", ["PVESDNAdmin"]);
  grant("fleet-on-node", `/nodes/${node}`, ["PVEAuditor"], false);

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

  // The image: a cloud-init template, kept in the pool.
  const template = new Template("debian-12", {
    node,
    storage,
    pool: pool.poolid,
    bridge,
    image: pulumi.output(imageStorage).apply((storage) => ({
      url: cfg.get("imageUrl") ?? "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2",
      storage,
      ...(cfg.get("imageChecksum") ? { checksum: cfg.get("imageChecksum"), checksumAlgorithm: "sha512" as const } : {}),
    })),
    tags: ["template"],
  });

  // Boot data: user-data on every node the VMs may run on. New content is a new file; running
  // VMs read it at their next boot (pendingChanges lists cicustom until then).
  const userData = new CloudInitSnippet("fleet-user-data", {
    storage: snippetStorage,
    cloudConfig: {
      package_update: true,
      packages: ["qemu-guest-agent", ...extraPackages],
      runcmd: [["systemctl", "enable", "--now", "qemu-guest-agent"]],
      ...(sshKey ? { ssh_authorized_keys: [sshKey] } : {}),
    },
  });

  // The fleet.
  const vms = Array.from({ length: size }, (_, i) =>
    new VmClone(`fleet-${i + 1}`, {
      template,
      node,
      pool: pool.poolid,
      cores,
      memory,
      networks: [{ bridge, model: "virtio" }],
      ipConfigs: [{ ip: "dhcp" }],
      cicustom: { user: userData.volumeId },
      tags: ["fleet"],
    }),
  );

  return {
    pool: pool.poolid,
    templateVmid: template.vmid,
    userData: userData.volumeId,
    tokenId: token.fullTokenId,
    fleet: vms.map((vm) =>
      pulumi.all([vm.name, vm.vmid, vm.node, vm.ipv4Addresses, vm.memory, vm.status, vm.pendingChanges]).apply(([name, vmid, vmNode, ipv4, mem, status, pending]) => ({
        name,
        vmid,
        node: vmNode,
        ipv4,
        memory: mem,
        status,
        // Changes PVE applies at the next cold start (set allowReboot to apply them now).
        pending,
      })),
    ),
  };
};
