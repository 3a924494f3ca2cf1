/** CloudInitSnippet inputs: validation in check() (no API call), rendering, and diff. */
import { cloudInitSnippetLifecycle as life, namePrefixOf, type CloudInitSnippetInputs, type CloudInitSnippetState } from "../../../../provider/resources/cloud-init-snippet";
import { renderCloudConfig, validateCloudConfig } from "../../../../provider/resources/snippet/cloud-config";
import { UNKNOWN } from "../../../../provider/resources/diff";
import { sha256Hex } from "../../../../provider/ssh";

const check = (news: Record<string, unknown>) => life.check({}, news as unknown as CloudInitSnippetInputs);
const props = async (news: Record<string, unknown>) => ((await check(news)).failures ?? []).map((f) => f.property);

describe("CloudInitSnippet check()", () => {
  it("needs exactly one of content and cloudConfig", async () => {
    expect(await props({})).toEqual(["content"]);
    const both = await check({ content: "x", cloudConfig: { hostname: "a" } });
    expect(both.failures).toEqual([{ property: "cloudConfig", reason: "set only one of content, cloudConfig; got content and cloudConfig." }]);
  });

  it("rejects file names with separators, traversal, hidden names; bad storage ids and node names", async () => {
    expect(await props({ content: "x", fileName: "../etc/passwd" })).toEqual(["fileName"]);
    expect(await props({ content: "x", fileName: "a/b.yaml" })).toEqual(["fileName"]);
    expect(await props({ content: "x", fileName: ".hidden" })).toEqual(["fileName"]);
    expect(await props({ content: "x", fileName: "a b.yaml" })).toEqual(["fileName"]);
    expect(await props({ content: "x", storage: "9local" })).toEqual(["storage"]);
    expect(await props({ content: "x", nodes: [] })).toEqual(["nodes"]);
    expect(await props({ content: "x", nodes: ["pve1", "bad_node!"] })).toEqual(["nodes[1]"]);
    expect(await props({ content: "x", nodes: ["pve1", "pve1"] })).toEqual(["nodes"]);
    const r = await check({ content: "x", fileName: "../x" });
    expect(r.failures?.[0].reason).toContain("contains a path separator");
  });

  it("checks a cloud-config loosely, naming the path of each problem", async () => {
    const r = await check({ cloudConfig: { users: [{ sudo: "ALL" }, 3], packages: "nginx", runcmd: [["ls", 1]], write_files: [{ path: "etc/x", permissions: "rw" }], package_update: "yes" } });
    expect(r.failures?.map((f) => f.reason)).toEqual([
      "cloudConfig.packages must be a list, got a string",
      "cloudConfig.package_update must be true or false, got a string",
      "cloudConfig.users[0].name is required (a string)",
      "cloudConfig.users[1] must be a mapping (with name) or the string 'default', got a number",
      "cloudConfig.runcmd[0] must be a shell command string or a list of arguments, got a list",
      "cloudConfig.write_files[0].path must be an absolute path",
      "cloudConfig.write_files[0].permissions must be an octal string like '0644'",
    ]);
    expect(validateCloudConfig(["a"])).toEqual(["cloudConfig must be a mapping of cloud-config keys (users, packages, runcmd, write_files...), got a list"]);
    // lists inside mappings; manage_etc_hosts takes true/false or 'localhost'/'template'
    expect(validateCloudConfig({ ca_certs: { trusted: "PEM" }, ntp: { servers: "pool.ntp.org", enabled: true }, manage_etc_hosts: "localhost", final_message: 1 })).toEqual([
      "cloudConfig.final_message must be a string, got a number",
      "cloudConfig.ca_certs.trusted must be a list, got a string",
      "cloudConfig.ntp.servers must be a list, got a string",
    ]);
    expect(validateCloudConfig({ ca_certs: { trusted: ["PEM"] }, ntp: { servers: ["pool.ntp.org"] } })).toEqual([]);
  });

  it("renders deterministically, keys sorted, and names the file by the content's hash", async () => {
    const a = renderCloudConfig({ runcmd: ["echo hi"], hostname: "h", users: [{ name: "u", groups: "sudo" }] });
    const b = renderCloudConfig({ users: [{ groups: "sudo", name: "u" }], hostname: "h", runcmd: ["echo hi"] });
    expect(a).toBe(b);
    expect(a).toBe("#cloud-config\nhostname: h\nruncmd:\n  - echo hi\nusers:\n  - groups: sudo\n    name: u\n");
    const r = await check({ cloudConfig: { hostname: "h" }, namePrefix: "web" });
    expect(r.inputs).toMatchObject({ storage: "local", file: `web-${sha256Hex("#cloud-config\nhostname: h\n").slice(0, 12)}.yaml`, sha256: sha256Hex("#cloud-config\nhostname: h\n") });
    expect(namePrefixOf("my web/server")).toBe("my-web-server");
  });

  it("lets unknown values pass during preview", async () => {
    const r = await check({ content: UNKNOWN, nodes: UNKNOWN, storage: UNKNOWN });
    expect(r.failures).toEqual([]);
    expect(r.inputs).toMatchObject({ file: UNKNOWN, sha256: UNKNOWN });
  });
});

describe("CloudInitSnippet diff()", () => {
  const state = (over: Partial<CloudInitSnippetState> = {}): CloudInitSnippetState => ({
    storage: "local", content: "a", file: "f.yaml", fileName: "f.yaml", sha256: sha256Hex("a"), nodes: ["pve1", "pve2"], targetNodes: ["pve1", "pve2"],
    volumeId: "local:snippets/f.yaml", cicustom: "user=local:snippets/f.yaml", path: "/var/lib/vz/snippets/f.yaml", size: 1, ...over,
  });
  const inputs = (over: Partial<CloudInitSnippetInputs> = {}): CloudInitSnippetInputs => ({ storage: "local", content: "a", file: "f.yaml", fileName: "f.yaml", sha256: sha256Hex("a"), ...over });

  it("shows no change when nothing changed, nodes omitted meaning the nodes chosen at creation", async () => {
    expect(await life.diff("id", state(), inputs())).toMatchObject({ changes: false, replaces: [] });
    expect(await life.diff("id", state(), inputs({ nodes: ["pve2", "pve1"] }))).toMatchObject({ changes: false });
  });
  it("replaces for another storage or file name, never deleting first", async () => {
    expect(await life.diff("id", state(), inputs({ storage: "nfs" }))).toMatchObject({ changes: true, replaces: ["storage"], deleteBeforeReplace: false });
    expect(await life.diff("id", state(), inputs({ file: "g.yaml", fileName: "g.yaml" }))).toMatchObject({ replaces: ["file"] });
    expect(await life.diff("id", state(), inputs({ file: UNKNOWN }))).toMatchObject({ replaces: ["file"] });
  });
  it("updates in place for new content under a fixed name, and for node changes or drift", async () => {
    expect(await life.diff("id", state(), inputs({ content: "b", sha256: sha256Hex("b") }))).toMatchObject({ changes: true, replaces: [] });
    expect(await life.diff("id", state(), inputs({ nodes: ["pve1"] }))).toMatchObject({ changes: true, replaces: [] });
    expect(await life.diff("id", state({ nodes: ["pve1"] }), inputs())).toMatchObject({ changes: true, replaces: [] });
  });
});
