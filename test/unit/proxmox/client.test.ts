import { PveClient, getClient, clearClients } from "../../../provider/proxmox/client";
import { destroyAgents, encodeParams } from "../../../provider/proxmox/http";
import { isNotFound } from "../../../provider/proxmox/errors";
import { startHttpsServer, testPki, type TestServer } from "../helpers/https-server";
import { readFixture } from "../helpers/pve-api";

let server: TestServer;
beforeAll(async () => {
  server = await startHttpsServer();
});
afterAll(async () => {
  await server.close();
  destroyAgents();
});
beforeEach(() => {
  server.requests.length = 0;
  clearClients();
});

const credentials = { kind: "token" as const, tokenId: "ci@pve!c", secret: "abababab-1111-4222-8333-444444444444" };
const client = (max?: number): PveClient => new PveClient({ endpoint: server.endpoint, credentials, tls: { caCert: testPki().caCert }, maxConcurrentRequests: max });

/** Serves fixture bodies by path. */
function serveFixtures(routes: Record<string, string | { data: unknown }>): void {
  server.setHandler((req) => {
    const route = routes[`${req.method} ${req.path}`];
    if (route === undefined) return { status: 501, reason: `Method '${req.method} ${req.path}' not implemented` };
    if (typeof route === "string") {
      const body = readFixture(route);
      return { body: route.endsWith(".data.json") ? { data: body } : body };
    }
    return { body: route };
  });
}

describe("request encoding", () => {
  it("encodes booleans as 1/0, lists comma-separated, and leaves out undefined", () => {
    expect(encodeParams({ full: true, purge: false, vms: [100, 101], roles: ["A", "B"], skip: undefined, n: null, name: "a b" }).toString()).toBe(
      "full=1&purge=0&vms=100%2C101&roles=A%2CB&name=a+b",
    );
  });

  it("puts GET/DELETE parameters in the query string and POST/PUT parameters in a form body", async () => {
    server.setHandler(() => ({ body: { data: null } }));
    const c = client();
    await c.get("/cluster/resources", { type: "vm" });
    await c.del("/nodes/pve/qemu/100", { purge: true });
    await c.post("/nodes/pve/qemu", { vmid: 100, start: false, sshkeys: "ssh-ed25519%20AAAA" });
    const [get, del, post] = server.requests;
    expect(get.query.get("type")).toBe("vm");
    expect(get.body).toBe("");
    expect(del.query.get("purge")).toBe("1");
    expect(post.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(post.form.get("start")).toBe("0");
    expect(post.form.get("sshkeys")).toBe("ssh-ed25519%20AAAA");
    expect([...post.query.keys()]).toEqual([]);
  });

  it("URL-encodes path segments", async () => {
    server.setHandler(() => ({ body: { data: null } }));
    await client().access.deleteToken("ci@pve", "deploy");
    expect(server.requests[0].path).toBe("/access/users/ci%40pve/token/deploy");
  });
});

describe("concurrency bound", () => {
  it("keeps at most maxConcurrentRequests in flight", async () => {
    let inFlight = 0;
    let peak = 0;
    server.setHandler(async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 20));
      inFlight--;
      return { body: { data: null } };
    });
    const c = client(3);
    await Promise.all(Array.from({ length: 12 }, (_, i) => c.get(`/nodes/n${i}`)));
    expect(peak).toBe(3);
    expect(c.limiter.peakInFlight).toBe(3);
    expect(server.requests).toHaveLength(12);
  });
});

describe("API areas over the recorded responses", () => {
  it("nextid accepts the string PVE returns", async () => {
    serveFixtures({ "GET /cluster/nextid": "cluster-nextid.json" });
    await expect(client().cluster.nextId()).resolves.toBe(100);
  });

  it("cluster resources, nodes, version", async () => {
    serveFixtures({ "GET /cluster/resources": "cluster-resources.json", "GET /nodes": "nodes.json", "GET /version": "version.pve9.2.10.json" });
    const c = client();
    const resources = await c.cluster.resources("vm");
    expect(server.requests[0].query.get("type")).toBe("vm");
    const template = resources.find((r) => r.id === "qemu/101");
    expect(template).toMatchObject({ vmid: 101, template: true, node: "node1" });
    expect((await c.nodes.list()).map((n) => n.node)).toEqual(["node1", "node2", "node3", "node4"]);
    expect(await c.cluster.version()).toEqual({ version: "9.2.10", release: "9.2", repoid: "43df2e01f27a1a19" });
  });

  it("VM status, config and agent interfaces", async () => {
    serveFixtures({
      "GET /nodes/pve/qemu/101/status/current": "qemu-status-current-running.json",
      "GET /nodes/pve/qemu/101/config": "qemu-config-cloudinit.data.json",
      "GET /nodes/pve/qemu/101/agent/network-get-interfaces": "agent-network-get-interfaces.json",
      "GET /nodes/pve/qemu/102/agent/network-get-interfaces": "agent-network-get-interfaces-unsupported.data.json",
    });
    const c = client();
    const status = await c.qemu.status("pve", 101);
    expect(status.status).toBe("running");
    expect(status.agent).toBe(true);
    const config = await c.qemu.getConfig("pve", 101, { current: true });
    expect(server.requests[1].query.get("current")).toBe("1");
    expect(config.net0).toBe("virtio=ff:ff:ff:ff:ff:ff,bridge=vmbr0,firewall=1");
    const ok = await c.qemu.agentNetworkInterfaces("pve", 101);
    expect(ok.ok && ok.interfaces.map((i) => i.name)).toEqual(["lo", "enp6s18", "vmbr0", "CloudflareWARP"]);
    const unsupported = await c.qemu.agentNetworkInterfaces("pve", 102);
    expect(unsupported).toEqual({ ok: false, errorClass: "Unsupported", description: "this feature or command is not currently supported" });
  });

  it("access: token creation returns the secret, privsep coerced from a string", async () => {
    serveFixtures({ "POST /access/users/probe-clean-dcq47dxi@pve/token/vault": "access-token-create.json" });
    server.setHandler((req) => ({ body: req.method === "POST" ? readFixture("access-token-create.json") : { data: null } }));
    const created = await client().access.createToken("probe-clean-dcq47dxi@pve", "vault", { privsep: false });
    expect(server.requests[0].form.get("privsep")).toBe("0");
    expect(created).toEqual({
      fullTokenId: "probe-clean-dcq47dxi@pve!vault",
      info: { tokenid: "vault", privsep: false },
      secret: "11111111-2222-4333-8444-555555555555",
    });
  });

  it("access: users, tokens, roles, ACLs, permissions", async () => {
    serveFixtures({
      "GET /access/users": "access-users.json",
      "GET /access/users/u%40pve/token": "access-user-tokens.json",
      "GET /access/roles": "access-roles.json",
      "GET /access/acl": "access-acl.json",
      "GET /access/permissions": "access-permissions.json",
      "PUT /access/acl": "mutation-success-null.json",
    });
    const a = client().access;
    expect((await a.listUsers()).find((u) => u.userid === "root@pam")).toMatchObject({ enable: true, expire: 0 });
    expect(await a.listTokens("u@pve")).toEqual([
      { tokenid: "test", comment: "comment", expire: 100, privsep: false },
      { tokenid: "test2", comment: "comment", expire: 0, privsep: true },
    ]);
    const roles = await a.listRoles();
    expect(roles.find((r) => r.roleid === "PVEPoolUser")).toEqual({ roleid: "PVEPoolUser", privs: ["Pool.Audit"], special: true });
    expect(await a.getAcl()).toEqual([{ path: "/", roleid: "PVEAdmin", ugid: "cloud-init", type: "group", propagate: true }]);
    expect((await a.permissions({ userid: "u@pve", path: "/access" }))["/access/groups"]).toMatchObject({ "User.Modify": 1 });
    await a.updateAcl({ path: "/pool/ci", roles: ["PVEVMAdmin", "PVEPoolUser"], tokens: ["ci@pve!xy"], propagate: false });
    const put = server.requests[server.requests.length - 1];
    expect(put.form.get("roles")).toBe("PVEVMAdmin,PVEPoolUser");
    expect(put.form.get("tokens")).toBe("ci@pve!xy");
    expect(put.form.get("propagate")).toBe("0");
  });

  it("pools: new style by query, falling back to the deprecated path on old nodes", async () => {
    serveFixtures({ "GET /pools": "pools-get-by-poolid.json", "GET /pools/test-pool": "pools-poolid-deprecated.json" });
    const c = client();
    const pool = await c.pools.get("test-pool");
    expect(server.requests[0].query.get("poolid")).toBe("test-pool");
    expect(pool.members.map((m) => m.id)).toEqual(["qemu/100", "qemu/106", "storage/node1/local"]);

    server.setHandler((req) =>
      req.path === "/pools"
        ? { status: 400, reason: "Parameter verification failed.", body: { data: null, errors: { poolid: "property is not defined in schema and the schema does not allow additional properties" } } }
        : { body: readFixture("pools-poolid-deprecated.json") },
    );
    const legacy = await c.pools.getCompat("test-pool");
    expect(legacy.poolid).toBe("test-pool");
    expect(legacy.members).toHaveLength(3);
  });

  it("storage content and the not-found helper", async () => {
    serveFixtures({ "GET /nodes/pve/storage/myshared/content": "storage-content-with-snippets.data.json" });
    const content = await client().storage.content("pve", "myshared", { content: "snippets" });
    expect(content.find((e) => e.content === "snippets")).toMatchObject({ volid: "myshared:snippets/cloud-config-ubuntu-vendor-data", format: "snippet", size: 182 });
    server.setHandler(() => ({ status: 500, reason: "no such user ('x@pve')", body: readFixture("error-500-no-such-user.json") }));
    expect(isNotFound(await client().access.getUser("x@pve").catch((e: unknown) => e))).toBe(true);
  });
});

describe("client registry", () => {
  it("shares one client per endpoint and identity", () => {
    const opts = { endpoint: server.endpoint, credentials, tls: { caCert: testPki().caCert } };
    const a = getClient(opts);
    expect(getClient({ ...opts, endpoint: `${server.endpoint}/` })).toBe(a);
    expect(getClient({ ...opts, credentials: { ...credentials, tokenId: "ci@pve!other" } })).not.toBe(a);
    expect(getClient({ ...opts, credentials: { ...credentials, secret: "rotated" } })).not.toBe(a);
  });
});
