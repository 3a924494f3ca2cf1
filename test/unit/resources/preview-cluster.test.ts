/**
 * What check() and diff() learn from the cluster for a preview that is the plan (issue 16),
 * against the simulator:
 * - a CloudInitSnippet's nodes are predicted (kept from its inputs, or the online nodes for a new
 *   one), so a replacement's `preview --diff` shows no `- nodes` / `- targetNodes`;
 * - a VmClone given only templateVmid finds the template's node instead of being refused;
 * - a preview fails where `up` would: wrong token, untrusted certificate, unreachable endpoint,
 *   each with the client's own message, while unchanged inputs still cost no request;
 * - a read-only principal's 403 on a lookup is tolerated and named as a warning.
 */
import { invoke } from "../../../provider/resources/dynamic";
import { cloudInitSnippetLifecycle as snippets, type CloudInitSnippetInputs } from "../../../provider/resources/cloud-init-snippet";
import { vmCloneLifecycle as clones } from "../../../provider/resources/vm-clone";
import { roleLifecycle as roles } from "../../../provider/resources/role";
import { userLifecycle as users, type UserState } from "../../../provider/resources/user";
import { apiTokenLifecycle as tokens, type ApiTokenInputs, type ApiTokenState } from "../../../provider/resources/api-token";
import { clearPreviewAccess } from "../../../provider/resources/preview-access";
import { clearReferenceCache } from "../../../provider/resources/vm/references";
import { configureForTests } from "../../../provider/resources/context";
import { clearClients } from "../../../provider/proxmox/client";
import { makeTemplate, startVmSim, type VmSim } from "./vm/sim-setup";

jest.setTimeout(60_000);

const VM_CLONE = require.resolve("../../../provider/resources/vm-clone");
const TEMPLATE = require.resolve("../../../provider/resources/template");
let v: VmSim;
let adminToken: string;
const requests = () => v.s.sim.requestLog.length;
const callsSince = (from: number) => v.s.sim.requestLog.slice(from).map((e) => `${e.method} ${e.path}`);

function useCredentials(extra: Record<string, string | undefined>): void {
  clearClients();
  clearReferenceCache();
  clearPreviewAccess();
  configureForTests({ endpoint: v.s.url, apiToken: adminToken, caCert: v.s.caCert, ...extra });
}

async function stderrOf(fn: () => Promise<unknown>): Promise<string> {
  const chunks: string[] = [];
  const spy = jest.spyOn(process.stderr, "write").mockImplementation((c: string | Uint8Array) => {
    chunks.push(String(c));
    return true;
  });
  try {
    await fn();
  } finally {
    spy.mockRestore();
  }
  return chunks.join("");
}

const errorOf = (p: Promise<unknown>) => p.then(() => "no error", (e: Error) => e.message);

beforeAll(async () => {
  v = await startVmSim({ seed: 161 });
  adminToken = v.s.rootToken;
  await makeTemplate(v.api, 9000);
  await makeTemplate(v.api, 9002, {}, "pve2");
});
afterAll(async () => {
  clearReferenceCache();
  clearPreviewAccess();
  await v?.stop();
});
beforeEach(() => useCredentials({}));

describe("CloudInitSnippet: where the file goes is known before it is written", () => {
  const news = (text: string): CloudInitSnippetInputs => ({ content: text, namePrefix: "motd" }) as CloudInitSnippetInputs;

  it("a new snippet is planned on every online node holding the storage; a replacement keeps those nodes, asking nothing", async () => {
    const created = await snippets.check({}, news("a"));
    expect(created.failures).toEqual([]);
    expect(created.inputs).toMatchObject({ nodes: ["pve1", "pve2", "pve3"], targetNodes: ["pve1", "pve2", "pve3"], volumeId: expect.stringMatching(/^local:snippets\/motd-/), path: expect.stringMatching(/^\/var\/lib\/vz\/snippets\/motd-/) });
    // new content (a replacement: another content-addressed file): every output the state has is predicted
    const from = requests();
    const replaced = await snippets.check(created.inputs as CloudInitSnippetInputs, news("b"));
    expect(requests()).toBe(from);
    const keys = Object.keys(replaced.inputs ?? {});
    for (const output of ["nodes", "targetNodes", "volumeId", "cicustom", "path", "size", "file", "sha256", "storage"]) expect(keys).toContain(output);
    expect(replaced.inputs).toMatchObject({ nodes: ["pve1", "pve2", "pve3"], targetNodes: ["pve1", "pve2", "pve3"] });
    expect(replaced.inputs?.file).not.toBe(created.inputs?.file);
    // nodes given win; an unknown list predicts nothing
    expect((await snippets.check(created.inputs as CloudInitSnippetInputs, { ...news("b"), nodes: ["pve2"] })).inputs).toMatchObject({ nodes: ["pve2"], targetNodes: ["pve2"] });
  });
});

describe("VmClone: templateVmid alone", () => {
  it("finds the template's node in the cluster view, and defaults node to it", async () => {
    const r = await clones.check({}, { name: "web", resourceName: "web", stack: "p/s", templateVmid: 9002 } as never);
    expect(r.failures).toEqual([]);
    expect(r.inputs).toMatchObject({ templateVmid: 9002, templateNode: "pve2", node: "pve2" });
    // the same template again: the previous inputs' node, no request
    const from = requests();
    const again = await clones.check(r.inputs as never, { name: "web", resourceName: "web", stack: "p/s", templateVmid: 9002, memory: 2048 } as never);
    expect(again.inputs).toMatchObject({ templateNode: "pve2", node: "pve2" });
    expect(requests()).toBe(from);
  });

  it("a template that does not exist is still refused, naming templateVmid", async () => {
    const r = await clones.check({}, { name: "web", resourceName: "web", templateVmid: 9555 } as never);
    expect(r.failures).toEqual([{ property: "templateVmid", reason: expect.stringMatching(/^there is no VM 9555 on the cluster/) }]);
  });
});

describe("a preview fails where up would, and only there", () => {
  const create = { name: "web", resourceName: "web", stack: "p/s", templateVmid: 9000, templateNode: "pve1" };

  it("a wrong token: check() of a new resource fails with the authentication error, secret-free", async () => {
    const wrong = `${adminToken.split("=")[0]}=00000000-0000-4000-8000-000000000000`;
    useCredentials({ apiToken: wrong });
    const msg = await errorOf(invoke(VM_CLONE, "vmCloneLifecycle", "check", [{}, create]));
    expect(msg).toMatch(/^authentication failed for token 'root@pam!\w+' at https:\/\/127\.0\.0\.1:\d+/);
    expect(msg).not.toContain("00000000-0000-4000");
    // `up` runs the same check() first: it stops with the same words, before changing anything
  });

  it("an untrusted certificate and an unreachable endpoint fail the same way", async () => {
    useCredentials({ caCert: undefined });
    expect(await errorOf(invoke(VM_CLONE, "vmCloneLifecycle", "check", [{}, create]))).toMatch(/^TLS verification of https:\/\/127\.0\.0\.1:\d+ failed for GET \/version .*Set `proxmox:caCert`/);
    useCredentials({ endpoint: "https://127.0.0.1:9" });
    expect(await errorOf(invoke(VM_CLONE, "vmCloneLifecycle", "check", [{}, create]))).toMatch(/^could not complete GET \/version at https:\/\/127\.0\.0\.1:9: ECONNREFUSED/);
  });

  it("unchanged inputs cost no request, even with a wrong token; a change is probed once per process", async () => {
    const checked = await clones.check({}, create as never);
    const state = { ...(checked.inputs as object), vmid: 4242, status: "running" };
    useCredentials({ apiToken: `${adminToken.split("=")[0]}=00000000-0000-4000-8000-000000000000` });
    const from = requests();
    const same = (await invoke(VM_CLONE, "vmCloneLifecycle", "check", [checked.inputs, create])) as { inputs: object };
    expect(await invoke(VM_CLONE, "vmCloneLifecycle", "diff", ["pve1/4242", state, same.inputs])).toMatchObject({ changes: false });
    expect(requests()).toBe(from);
    // a change: the diff fails like the update would
    const more = (await invoke(VM_CLONE, "vmCloneLifecycle", "check", [checked.inputs, { ...create, memory: 4096 }])) as { inputs: object };
    expect(await errorOf(invoke(VM_CLONE, "vmCloneLifecycle", "diff", ["pve1/4242", state, more.inputs]))).toMatch(/^authentication failed/);
    // with the right token: one probe, then none
    useCredentials({});
    const from2 = requests();
    await invoke(VM_CLONE, "vmCloneLifecycle", "diff", ["pve1/4242", state, more.inputs]);
    await invoke(VM_CLONE, "vmCloneLifecycle", "diff", ["pve1/4242", state, more.inputs]);
    expect(callsSince(from2)).toEqual(["GET /version"]);
  });
});

describe("changes the server is certain to refuse fail the preview too", () => {
  it("a Role listing a privilege this server lacks (VM.Monitor on PVE 9): check() says so, as create would", async () => {
    const r = await roles.check({}, { roleid: "MC", privileges: ["VM.Audit", "VM.Monitor"] });
    expect(r.failures).toEqual([{ property: "privileges", reason: expect.stringMatching(/^'VM\.Monitor' does not exist on this server \(PVE 9\.\d/) }]);
    // the same list, unchanged since the last check: nothing asked
    const from = requests();
    await roles.check({ roleid: "MC", privileges: ["VM.Audit", "VM.Monitor"], translatePrivileges: true }, { roleid: "MC", privileges: ["VM.Monitor", "VM.Audit"], translatePrivileges: true });
    expect(requests()).toBe(from);
  });

  it("a User's new password under token auth: the diff fails with update's words, naming no password", async () => {
    const olds = { userid: "fid@pve", enable: true, expire: 0, password: "first-Secret-pw1" } as UserState;
    const news = { ...olds, password: "second-Secret-pw2" };
    const msg = await errorOf(users.diff("fid@pve", olds, news));
    expect(msg).toMatch(/^cannot change the password of 'fid@pve': .*token 'root@pam!\w+'.*Nothing was changed\.$/);
    expect(msg).not.toMatch(/Secret-pw/);
    expect(await users.diff("fid@pve", olds, { ...olds, comment: "x" } as UserState)).toMatchObject({ changes: true });
  });
});

describe("a no-op preview after up stays a no-op", () => {
  it("a token of a user with an expiry, declared without one: no change after create, nor after a refresh", async () => {
    // found by the property test: PVE gives a token created without `expire` its user's expiry
    await v.api.access.createUser("until@pve", { expire: 4102444800 });
    const checked = await tokens.check({}, { userid: "until@pve", tokenid: "ci" } as ApiTokenInputs);
    const { id, outs } = await tokens.create(checked.inputs as ApiTokenInputs);
    expect(outs.expire).toBe(0);
    expect(await tokens.diff(id, outs, checked.inputs as ApiTokenInputs)).toMatchObject({ changes: false });
    const read = await tokens.read(id, outs);
    expect(await tokens.diff(id, read.props as ApiTokenState, checked.inputs as ApiTokenInputs)).toMatchObject({ changes: false });
  });
});

describe("a read-only principal's 403 on a lookup", () => {
  it("is tolerated, and the warning names what could not be checked and the privilege", async () => {
    await v.api.access.createUser("peek@pve");
    const token = await v.api.access.createToken("peek@pve", "ci", { privsep: false });
    await v.api.access.updateAcl({ path: "/vms", roles: ["PVEAuditor"], users: ["peek@pve"] });
    await v.api.pools.create("fleet");
    useCredentials({ apiToken: `${token.fullTokenId}=${token.secret}` });
    let clone: { failures?: unknown[] } | undefined;
    let template: { failures?: unknown[] } | undefined;
    const err = await stderrOf(async () => {
      clone = (await invoke(VM_CLONE, "vmCloneLifecycle", "check", [{}, { name: "web", resourceName: "web", templateVmid: 9000, templateNode: "pve1", node: "pve3" }])) as typeof clone;
      template = (await invoke(TEMPLATE, "templateLifecycle", "check", [{}, { name: "base", resourceName: "base", node: "pve1", image: { url: "https://example.org/a.img" }, pool: "fleet" }])) as typeof template;
    });
    expect(clone?.failures).toEqual([]);
    expect(template?.failures).toEqual([]);
    expect(err).toMatch(/\[pulumi-pve\] warning: could not check pool 'fleet': permission denied for GET \/pools: token 'peek@pve!ci' lacks Pool\.Audit on '\/pool\/fleet'/);
    expect(err).toMatch(/\[pulumi-pve\] warning: could not check node 'pve1' \(templateNode\), node 'pve3' \(node\): token 'peek@pve!ci' sees no node in the cluster \(that needs Sys\.Audit on \/nodes\)/);
    expect(err).not.toContain(token.secret);
  });
});
