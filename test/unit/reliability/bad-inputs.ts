// Bad input, per resource and property: the data both the bad-input test and the README's
// table are made from (`renderBadInputTable()`), so the two cannot drift apart.
//
// `api: "none"`: the input alone shows the mistake, so check() fails without any API call.
// `api: "lookup"`: a reference to something that does not exist (or cannot serve); check() fails
//   after read-only calls (`via`), made only when the input changed: unchanged references, and
//   unknown values at preview, are not looked up. What another resource of the same run declares
//   (a Pool, Storage or Role checked before it) passes without a lookup (provider/resources/declared.ts).

export type ResourceName = "Pool" | "User" | "ApiToken" | "Role" | "UserRoleBinding" | "PermissionCheck" | "Storage" | "CloudInitSnippet" | "Template" | "VmClone";

export interface BadInput {
  resource: ResourceName;
  /** The property check() must name (a failure's `property`). */
  property: string;
  /** What is wrong, for the table. */
  problem: string;
  /** Inputs merged over the resource's valid inputs (`undefined` removes a key). */
  inputs: Record<string, unknown>;
  /** A fragment the failure's reason must contain (case-insensitive). */
  reason: RegExp;
  api: "none" | "lookup";
  /** The read-only calls a lookup makes, for the table. */
  via?: string;
}

/** Inputs each resource accepts (the test checks that they do), against the test simulator. */
export const VALID: Record<ResourceName, Record<string, unknown>> = {
  Pool: { poolid: "fleet" },
  User: { userid: "ci@pve", password: "a-long-test-password" },
  ApiToken: { userid: "ci@pve", tokenid: "fleet" },
  Role: { roleid: "FleetRole", privileges: ["VM.Audit"] },
  UserRoleBinding: { path: "/pool/fleet", roles: ["PVEVMAdmin"], user: "ci@pve" },
  PermissionCheck: { principal: "ci@pve", requirements: [{ path: "/pool/fleet", privileges: ["VM.Audit"] }] },
  Storage: { storage: "snip", type: "dir", content: ["snippets"], path: "/var/lib/snip", nodes: ["pve1"] },
  CloudInitSnippet: { storage: "local", nodes: ["pve1"], content: "#cloud-config\n", fileName: "user.yaml" },
  Template: { node: "pve1", name: "noble", resourceName: "noble", image: { url: "https://example.com/noble.img" } },
  VmClone: { name: "web", resourceName: "web", stack: "proj/dev", templateVmid: 9000, templateNode: "pve1" },
};

const row = (resource: ResourceName, property: string, problem: string, inputs: Record<string, unknown>, reason: RegExp, api: BadInput["api"] = "none", via?: string): BadInput => ({
  resource, property, problem, inputs, reason, api, ...(via ? { via } : {}),
});

const CLUSTER = "`GET /cluster/resources` (cached per provider process)";
const POOLS = "`GET /pools?poolid=`";

export const BAD_INPUTS: BadInput[] = [
  row("Pool", "poolid", "missing", { poolid: undefined }, /required/i),
  row("Pool", "poolid", "format: `1fleet`, `a/b/c/d`", { poolid: "1fleet" }, /pool id/i),
  row("Pool", "poolid", "type: a number", { poolid: 42 }, /string/i),
  row("Pool", "vms", "type: not a list", { vms: "100" }, /list/i),

  row("User", "userid", "missing", { userid: undefined }, /required/i),
  row("User", "userid", "format: no realm (`ci`)", { userid: "ci" }, /<name>@<realm>/),
  row("User", "email", "format: `not-an-email`", { email: "not-an-email" }, /e-mail/i),
  row("User", "expire", "range: negative", { expire: -1 }, /0/),
  row("User", "enable", "type: `\"yes\"`", { enable: "yes" }, /boolean|true|false/i),
  row("User", "password", "range: shorter than 8", { password: "short" }, /8 to 64/),
  row("User", "password", "password for a non-`pve` realm", { userid: "ci@pam" }, /realm/i),

  row("ApiToken", "tokenid", "missing", { tokenid: undefined }, /required/i),
  row("ApiToken", "tokenid", "format: `1x`", { tokenid: "1x" }, /token id/i),
  row("ApiToken", "userid", "format: `ci`", { userid: "ci" }, /<name>@<realm>/),
  row("ApiToken", "privsep", "type: `1`", { privsep: 1 }, /boolean|true|false/i),

  row("Role", "roleid", "format: `bad role`", { roleid: "bad role" }, /role id/i),
  row("Role", "roleid", "a built-in role (`PVEAdmin`)", { roleid: "PVEAdmin" }, /built-in/i),
  row("Role", "privileges", "missing", { privileges: undefined }, /required/i),
  row("Role", "privileges[0]", "unknown privilege `VM.Fly`", { privileges: ["VM.Fly"] }, /VM\.Fly/),

  row("UserRoleBinding", "path", "format: `pool/fleet` (relative), `/nope/x`", { path: "/nope/x" }, /not valid/i),
  row("UserRoleBinding", "roles", "empty list", { roles: [] }, /empty|at least/i),
  row("UserRoleBinding", "roles[0]", "wrong case of a built-in role (`pvevmadmin`)", { roles: ["pvevmadmin"] }, /did you mean/i),
  row("UserRoleBinding", "roles[0]", "unknown `PVE*` role", { roles: ["PVESuperUser"] }, /built-in/i),
  row("UserRoleBinding", "user", "format: `ci`", { user: "ci" }, /<name>@<realm>/),
  row("UserRoleBinding", "group", "two principals (user and group)", { group: "ops" }, /one of|only one|exactly one/i),
  row("UserRoleBinding", "roles[1]", "reference: a custom role that does not exist (nor is declared by the stack)", { roles: ["PVEVMAdmin", "NoSuchRole"] }, /role 'NoSuchRole' does not exist/, "lookup", "`GET /access/roles`"),

  row("PermissionCheck", "requirements", "missing", { requirements: undefined }, /required/i),
  row("PermissionCheck", "requirements", "empty list", { requirements: [] }, /empty/i),
  row("PermissionCheck", "requirements[0]", "not an object (`\"/\"`)", { requirements: ["/"] }, /path, privileges/),
  row("PermissionCheck", "requirements[0].path", "format: `/nope/x`", { requirements: [{ path: "/nope/x", privileges: ["VM.Audit"] }] }, /not valid/i),
  row("PermissionCheck", "requirements[0].privileges", "empty list", { requirements: [{ path: "/", privileges: [] }] }, /non-empty/i),
  row("PermissionCheck", "requirements[0].privileges[0]", "unknown privilege `VM.Fly`", { requirements: [{ path: "/", privileges: ["VM.Fly"] }] }, /not a Proxmox VE privilege/),
  row("PermissionCheck", "principal", "format: `ci`", { principal: "ci" }, /<name>@<realm>/),
  row("PermissionCheck", "principal", "format: token id without user (`!ci`)", { principal: "!ci" }, /not valid/i),
  row("PermissionCheck", "failOnMissing", "type: `\"yes\"`", { failOnMissing: "yes" }, /true or false/i),

  row("Storage", "storage", "format: `-bad`", { storage: "-bad" }, /storage id/i),
  row("Storage", "type", "not a supported type (`zfs`)", { type: "zfs" }, /one of|dir/i),
  row("Storage", "content[0]", "unknown content type", { content: ["movies"] }, /unknown content type/i),
  row("Storage", "content", "content the type cannot hold (lvmthin + snippets)", { type: "lvmthin", content: ["snippets"], path: undefined, vgname: "pve", thinpool: "data" }, /cannot hold/i),
  row("Storage", "path", "missing for a dir storage", { path: undefined }, /required/i),
  row("Storage", "path", "format: relative path", { path: "var/lib/snip" }, /absolute/i),
  row("Storage", "nodes[0]", "reference: a node not in the cluster", { nodes: ["pve9"] }, /not in the cluster/i, "lookup", "`GET /nodes`"),

  row("CloudInitSnippet", "fileName", "path traversal `../../etc/passwd`", { fileName: "../../etc/passwd" }, /./),
  row("CloudInitSnippet", "fileName", "shell metacharacters `a;rm -rf.yaml`", { fileName: "a;rm -rf.yaml" }, /./),
  row("CloudInitSnippet", "storage", "format: `../local`", { storage: "../local" }, /storage id/i),
  row("CloudInitSnippet", "nodes", "a node listed twice", { nodes: ["pve1", "pve1"] }, /more than once/i),
  row("CloudInitSnippet", "cloudConfig", "both content and cloudConfig", { cloudConfig: { packages: ["curl"] } }, /one of|only one|exactly one|not both/i),
  row("CloudInitSnippet", "storage", "reference: a storage that does not exist", { storage: "nosuch" }, /does not exist/, "lookup", "`GET /storage`"),
  row("CloudInitSnippet", "storage", "reference: a storage without `snippets` content (`local-lvm`)", { storage: "local-lvm" }, /snippets/, "lookup", "`GET /storage`"),

  row("Template", "node", "missing", { node: undefined }, /required/i),
  row("Template", "image", "missing (and not adopting)", { image: undefined }, /image is required/i),
  row("Template", "image.url", "not an http(s) URL", { image: { url: "ftp://example.com/x.img" } }, /http/i),
  row("Template", "image.checksum", "not a hex digest", { image: { url: "https://example.com/x.img", checksum: "xyz" } }, /hex/i),
  row("Template", "vmid", "range: 99", { vmid: 99 }, /100/),
  row("Template", "memory", "range: 8 MiB", { memory: 8 }, /16/),
  row("Template", "diskSize", "format: `ten gigs`", { diskSize: "ten gigs" }, /size/i),
  row("Template", "image", "type: a string instead of `{ url }`", { image: "https://example.com/x.img" }, /must be an object/),
  row("Template", "image.url", "missing (`image: {}`)", { image: {} }, /image\.url is required/),
  row("Template", "image.url", "type: a number", { image: { url: 5 } }, /must be a string/),
  row("Template", "image.checksum", "a sha256 checksum of the wrong length", { image: { url: "https://example.com/x.img", checksum: "ab".repeat(20) } }, /64/),
  row("Template", "image.checksumAlgorithm", "not one of PVE's (`crc32`)", { image: { url: "https://example.com/x.img", checksumAlgorithm: "crc32" } }, /one of/),
  row("Template", "image.fileName", "a path (`../x.qcow2`)", { image: { url: "https://example.com/x.img", fileName: "../x.qcow2" } }, /file name/),
  row("Template", "image.storage", "format: `../local`", { image: { url: "https://example.com/x.img", storage: "../local" } }, /storage id/),
  row("Template", "image.sha", "an unknown key", { image: { url: "https://example.com/x.img", sha: "x" } }, /has no 'sha'/),
  row("Template", "cores", "range: 0", { cores: 0 }, /at least 1/),
  row("Template", "bridge", "format: `vm br0`", { bridge: "vm br0" }, /bridge/),
  row("Template", "pool", "format: `1pool`", { pool: "1pool" }, /pool id/),
  row("Template", "vmid", "adopt without vmid", { adopt: true, image: undefined }, /vmid/),
  row("Template", "node", "reference: a node not in the cluster", { node: "pve9" }, /not in the cluster/, "lookup", CLUSTER),
  row("Template", "storage", "reference: a storage that does not exist", { storage: "nosuch" }, /does not exist/, "lookup", CLUSTER),
  row("Template", "storage", "reference: a storage not on the node", { storage: "only-pve2" }, /not available on node 'pve1'/, "lookup", CLUSTER),
  row("Template", "storage", "reference: a storage without `images` content (`local`)", { storage: "local" }, /'images'/, "lookup", CLUSTER),
  row("Template", "image.storage", "reference: a storage that does not exist", { image: { url: "https://example.com/x.img", storage: "nosuch" } }, /does not exist/, "lookup", CLUSTER),
  row("Template", "image.storage", "reference: a storage without `import` content (`local-lvm`)", { image: { url: "https://example.com/x.img", storage: "local-lvm" } }, /'import'/, "lookup", CLUSTER),
  row("Template", "pool", "reference: a pool that does not exist", { pool: "nosuch" }, /pool 'nosuch' does not exist/, "lookup", POOLS),
  row("Template", "vmid", "reference (adopt): no such VM", { adopt: true, image: undefined, vmid: 9999 }, /no VM 9999/, "lookup", CLUSTER),
  row("Template", "vmid", "reference (adopt): a VM that is not a template", { adopt: true, image: undefined, vmid: 100 }, /not a template/, "lookup", CLUSTER),

  row("VmClone", "name", "format: `web_1` (not a DNS name)", { name: "web_1" }, /DNS/i),
  row("VmClone", "templateVmid", "missing", { templateVmid: undefined }, /required/i),
  row("VmClone", "templateVmid", "range: 50 (VMIDs start at 100)", { templateVmid: 50 }, /100/),
  row("VmClone", "cores", "range: 0", { cores: 0 }, /1/),
  row("VmClone", "memory", "range: 8 MiB", { memory: 8 }, /16/),
  row("VmClone", "sockets", "range: 17 (1 to 16)", { sockets: 17 }, /at most 16/),
  row("VmClone", "balloon", "range: negative", { balloon: -1 }, /at least 0/),
  row("VmClone", "sshKeys[0]", "not an OpenSSH public key line", { sshKeys: ["AAAAC3NzaC1lZDI1NTE5"] }, /OpenSSH public key/),
  row("VmClone", "tags[0]", "format: `-web`", { tags: ["-web"] }, /not valid/),
  row("VmClone", "networks[0]", "macAddress not a MAC (`BC:24:11`)", { networks: [{ bridge: "vmbr0", macAddress: "BC:24:11" }] }, /MAC address/),
  row("VmClone", "networks[0]", "model not a PVE NIC model (`e1001`)", { networks: [{ bridge: "vmbr0", model: "e1001" }] }, /NIC model/),
  row("VmClone", "networks[0]", "bridge missing", { networks: [{ model: "virtio" }] }, /bridge is required/),
  row("VmClone", "storage", "storage with a linked clone", { storage: "local-lvm", full: false }, /full/i),
  row("VmClone", "diskSize", "format: `big`", { diskSize: "big" }, /./),
  row("VmClone", "networks[0]", "vlanTag out of range (5000)", { networks: [{ bridge: "vmbr0", vlanTag: 5000 }] }, /4094/),
  row("VmClone", "ipConfigs[0]", "ip without prefix", { ipConfigs: [{ ip: "10.0.0.5" }] }, /prefix/i),
  row("VmClone", "cicustom.user", "not a snippet volume (`/etc/passwd`)", { cicustom: { user: "/etc/passwd" } }, /snippet volume/i),
  row("VmClone", "vmidRange", "min > max", { vmidRange: { min: 500, max: 400 } }, /min/i),
  row("VmClone", "templateVmid", "reference: no such VM (9999)", { templateVmid: 9999 }, /no VM 9999/, "lookup", CLUSTER),
  row("VmClone", "templateVmid", "reference: a VM that is not a template", { templateVmid: 100 }, /not a template/, "lookup", CLUSTER),
  row("VmClone", "templateNode", "reference: a node not in the cluster", { templateNode: "pve9" }, /not in the cluster/, "lookup", CLUSTER),
  row("VmClone", "templateNode", "reference: not the template's node", { templateNode: "pve2" }, /template 9000 is on node 'pve1'/, "lookup", CLUSTER),
  row("VmClone", "node", "reference: a node not in the cluster", { node: "pve9" }, /not in the cluster/, "lookup", CLUSTER),
  row("VmClone", "storage", "reference: a storage that does not exist", { full: true, storage: "nosuch" }, /does not exist/, "lookup", CLUSTER),
  row("VmClone", "storage", "reference: a storage without `images` content (`local`)", { full: true, storage: "local" }, /'images'/, "lookup", CLUSTER),
  row("VmClone", "storage", "reference: a storage not on the template's node", { full: true, storage: "only-pve2" }, /not available on node 'pve1'/, "lookup", CLUSTER),
];

/** The inputs of a row: the resource's valid inputs with the row's changes. */
export function inputsOf(r: BadInput): Record<string, unknown> {
  const out: Record<string, unknown> = { ...VALID[r.resource], ...r.inputs };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

/** What the table says catches a row. */
export function caughtBy(r: BadInput): string {
  return r.api === "none" ? "check(), no API call" : `check(), read-only ${r.via ?? "lookup"}, only when the input changed`;
}

/** The README table (markdown). */
export function renderBadInputTable(rows: BadInput[] = BAD_INPUTS): string {
  const lines = ["| resource | property | bad input | caught by |", "| --- | --- | --- | --- |"];
  for (const r of rows) lines.push(`| ${r.resource} | \`${r.property}\` | ${r.problem} | ${caughtBy(r)} |`);
  return lines.join("\n");
}
