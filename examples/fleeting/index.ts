/**
 * GitLab's fleeting plugin for Proxmox VE, set up as its README asks: a DEDICATED user, pool
 * and storage; the template VM and the storage as pool members; PVEVMAdmin, PVEPoolUser and
 * PVEDatastoreUser on the pool; PVESDNAdmin on the network zone; PVEAuditor on the node
 * without propagation. The stack's outputs are the plugin's settings, ready for the runner's
 * config.toml, and (a secret) the content of the plugin's credentials file.
 *
 * - The storage is a `dir` storage on the node holding `images` (the instances' disks: the
 *   plugin full-clones the template onto it), `import` (the downloaded cloud image the
 *   template is built from) and `snippets` (the template's user-data). Being a pool member, it
 *   is where PVEDatastoreUser applies: the plugin may allocate disks there and nowhere else.
 * - The plugin wants "a bootable VM with enabled DHCP and QEMU guest agent installed": it clones
 *   and starts the template and reads the instance's address from the agent. Debian's cloud
 *   image ships no agent, and PVE's cloud-init gives a NIC without ipconfig no address, so the
 *   template carries `ipconfig0: ip=dhcp` and user-data (a CloudInitSnippet, placed over SSH)
 *   that installs and starts the agent at each instance's first boot. cloud-init names the NIC
 *   it configures `eth0` (PVE's network config lists it by MAC with that name), which is the
 *   interface the plugin must read: `instance_network_interface = "eth0"`, not its `ens18` default.
 * - The plugin logs in with a password (its credentials file has realm, username, password,
 *   otp). An API token of the same user is made too (privilege separation on, so every role is
 *   bound to the token as well), for tools that prefer tokens; set `createToken: false` to skip it.
 * - A PermissionCheck proves, at `up`, that the user has what cloning into the pool needs.
 *
 * Config (namespace `fleeting:`):
 *   password (SECRET, required: 8-64 characters), node (pve1), user (fleeting), realm (pve),
 *   pool (fleeting), storage (fleeting), storagePath (/var/lib/fleeting), bridge (vmbr0),
 *   zone (localnetwork), imageUrl (Debian 12 generic cloud image), imageChecksum (sha512),
 *   templateMemory (2048 MiB), templateCores (2), maxInstances (10), createToken (true),
 *   url (default: proxmox:endpoint), credentialsFilePath (/etc/gitlab-runner/proxmox-credentials.json).
 * Connection (the administrator's, used to create all this): proxmox:endpoint, proxmox:apiToken
 * (--secret), proxmox:insecure, proxmox:caCert, or PROXMOX_VE_* variables; for the snippet, SSH
 * to the node: proxmox:sshUsername, proxmox:sshPrivateKey (--secret), proxmox:sshKnownHosts.
 */
import * as pulumi from "@pulumi/pulumi";
import { ApiToken, CloudInitSnippet, PermissionCheck, Pool, Storage, Template, User, UserRoleBinding } from "pulumi-pve";

export = async () => {
  const cfg = new pulumi.Config("fleeting");
  const proxmox = new pulumi.Config("proxmox");
  const node = cfg.get("node") ?? "pve1";
  const realm = cfg.get("realm") ?? "pve";
  const username = cfg.get("user") ?? "fleeting";
  const userid = `${username}@${realm}`;
  const poolId = cfg.get("pool") ?? "fleeting";
  const storageId = cfg.get("storage") ?? "fleeting";
  const bridge = cfg.get("bridge") ?? "vmbr0";
  const zone = cfg.get("zone") ?? "localnetwork";
  const checksum = cfg.get("imageChecksum");
  const password = cfg.requireSecret("password");
  const createToken = cfg.getBoolean("createToken") ?? true;

  // The dedicated storage: instances' disks, the template's image and its user-data, on the template's node.
  const storage = new Storage("fleeting", {
    storage: storageId,
    type: "dir",
    path: cfg.get("storagePath") ?? "/var/lib/fleeting",
    content: ["images", "import", "snippets"],
    nodes: [node],
  });

  // Every instance installs and starts the guest agent at its first boot (the plugin reads the
  // instance's address from it; Debian's cloud image does not ship it).
  const userData = new CloudInitSnippet("fleeting-user-data", {
    storage: storage.storage,
    nodes: [node],
    cloudConfig: { packages: ["qemu-guest-agent"], runcmd: [["systemctl", "start", "qemu-guest-agent"]] },
  });

  // The template the instances are cloned from: cloud image, cloud-init drive with DHCP on net0
  // and the user-data above, guest agent on.
  const template = new Template("fleeting-template", {
    node,
    storage: storage.storage,
    bridge,
    memory: cfg.getNumber("templateMemory") ?? 2048,
    cores: cfg.getNumber("templateCores") ?? 2,
    image: storage.storage.apply((s) => ({
      url: cfg.get("imageUrl") ?? "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2",
      storage: s,
      ...(checksum ? { checksum, checksumAlgorithm: "sha512" as const } : {}),
    })),
    ipConfigs: [{ ip: "dhcp" }],
    cicustom: { user: userData.volumeId },
    tags: ["fleeting", "template"],
    removeImageOnDelete: true,
  });

  // The dedicated pool, holding the template and the storage (README steps 1 and 2). The
  // instances the plugin creates join it too; the stack never touches those.
  const pool = new Pool("fleeting", {
    poolid: poolId,
    comment: "GitLab fleeting plugin instances",
    vms: [template.vmid],
    storage: [storage.storage],
  });

  // The dedicated user (its password goes into the credentials file) and, optionally, a token.
  const user = new User("fleeting", { userid, comment: "GitLab fleeting plugin", password });
  const token = createToken ? new ApiToken("fleeting", { userid: user.userid, tokenid: "fleeting", comment: "GitLab fleeting plugin" }) : undefined;

  // README steps 3 to 5, for the user and (privilege separation) for its token.
  const poolPath = pulumi.interpolate`/pool/${pool.poolid}`;
  const principals: Array<[string, { user?: pulumi.Input<string>; token?: pulumi.Input<string> }]> = [["user", { user: user.userid }]];
  if (token) principals.push(["token", { token: token.fullTokenId }]);
  const bindings = principals.flatMap(([key, principal]) => [
    new UserRoleBinding(`fleeting-${key}-pool`, { ...principal, path: poolPath, roles: ["PVEVMAdmin", "PVEPoolUser", "PVEDatastoreUser"] }),
    new UserRoleBinding(`fleeting-${key}-network`, { ...principal, path: `/sdn/zones/${zone}`, roles: ["PVESDNAdmin"] }),
    new UserRoleBinding(`fleeting-${key}-node`, { ...principal, path: `/nodes/${node}`, roles: ["PVEAuditor"], propagate: false }),
  ]);

  // Fail the `up` here, with the list of what is missing, rather than at the runner's first job.
  const preflight = new PermissionCheck(
    "fleeting-can-clone",
    {
      principal: user.userid,
      requirements: [
        { path: `/pool/${poolId}`, privileges: ["VM.Allocate", "Pool.Audit"] },
        { path: pulumi.interpolate`/vms/${template.vmid}`, privileges: ["VM.Clone", "VM.Audit"] },
        { path: `/storage/${storageId}`, privileges: ["Datastore.AllocateSpace"] },
        { path: `/sdn/zones/${zone}/${bridge}`, privileges: ["SDN.Use"] },
        { path: `/nodes/${node}`, privileges: ["Sys.Audit"] },
      ],
    },
    { dependsOn: [...bindings, pool] },
  );

  const url = cfg.get("url") ?? proxmox.get("endpoint") ?? "https://pve.example.com:8006";
  const insecure = proxmox.getBoolean("insecure") ?? false;
  const credentialsFilePath = cfg.get("credentialsFilePath") ?? "/etc/gitlab-runner/proxmox-credentials.json";
  const maxInstances = cfg.getNumber("maxInstances") ?? 10;

  // The plugin's settings (its README's table), as they go into [runners.autoscaler.plugin_config].
  const settings = pulumi.all([pool.poolid, storage.storage, template.vmid, preflight.missing]).apply(([p, s, vmid]) => ({
    url,
    insecure_skip_tls_verify: insecure,
    credentials_file_path: credentialsFilePath,
    pool: p,
    storage: s,
    template_id: vmid,
    max_instances: maxInstances,
    // the NIC cloud-init configured (PVE's network config names it eth0); ens18 would have no address
    instance_network_interface: "eth0",
  }));

  return {
    settings,
    /** The same, as TOML to paste under `[runners.autoscaler.plugin_config]`. */
    pluginConfigToml: settings.apply((s) =>
      Object.entries(s)
        .map(([k, v]) => `${k} = ${typeof v === "string" ? JSON.stringify(v) : String(v)}`)
        .join("\n"),
    ),
    /** SECRET: the credentials file's content; write it to `credentials_file_path` (mode 0600). */
    credentialsFile: pulumi.secret(pulumi.all([password]).apply(([pw]) => JSON.stringify({ realm, username, password: pw, otp: "" }, null, 2))),
    userid: user.userid,
    tokenId: token?.fullTokenId,
    /** SECRET: `user@realm!tokenid=value`. */
    apiToken: token?.apiToken,
    poolMembers: pool.members,
    missingPermissions: preflight.missing,
  };
};
