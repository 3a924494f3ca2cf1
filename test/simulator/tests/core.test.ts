// The HTTP core: TLS, routing, envelope, error mapping (against recorded fixtures),
// request parsing, validation, request log, back door.

import https from "https";
import { RunningSimulator, Sim, startSimulator } from "../index";
import { PveError, withTotal } from "../types";
import { call, readApiJson } from "./core-http";

let s: RunningSimulator;
let T: string;

beforeAll(async () => {
  s = await startSimulator({ seed: 11 });
  T = s.rootToken;
  // A probe route with every kind of parameter, for the validation tests.
  s.sim.route({
    method: "POST",
    path: "/_probe/{node}/things",
    params: {
      node: { type: "string", format: "pve-node" },
      count: { type: "integer", optional: true, minimum: 100, maximum: 200 },
      flag: { type: "boolean", optional: true },
      color: { type: "string", optional: true, enum: ["a", "b"] },
      name: { type: "string", optional: true, maxLength: 5 },
      need: { type: "string" },
      keys: { type: "string", optional: true, format: "urlencoded" },
      vmid: { type: "integer", optional: true, format: "pve-vmid" },
      tags: { type: "string", optional: true, format: "pve-tag-list" },
    },
    permissions: { user: "all" },
    handler: (req) => req.params,
  });
  s.sim.route({ method: "GET", path: "/_probe/total", params: {}, permissions: { user: "all" }, handler: () => withTotal([1, 2], 7) });
  s.sim.route({
    method: "GET",
    path: "/_probe/boom",
    params: {},
    permissions: { user: "all" },
    handler: () => {
      throw new Error("something broke\nsecond line");
    },
  });
  s.sim.route({
    method: "GET",
    path: "/_probe/pve",
    params: {},
    permissions: { user: "all" },
    handler: () => {
      throw new PveError(500, "VM 100 is running - destroy failed");
    },
  });
});
afterAll(() => s.stop());

describe("startSimulator", () => {
  test("returns url, caCert, rootToken, adminSecret, nodes [{name, sshPort, hostKeyFingerprint}], sim, stop", () => {
    expect(s).toEqual({
      url: expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+$/),
      caCert: expect.stringMatching(/^-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\r?\n?$/),
      rootToken: expect.stringMatching(/^root@pam!sim=[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      adminSecret: s.sim.options.adminSecret,
      nodes: ["pve1", "pve2", "pve3"].map((name) => ({
        name,
        sshPort: expect.any(Number),
        hostKeyFingerprint: expect.stringMatching(/^SHA256:[A-Za-z0-9+/]{43}$/),
      })),
      sim: expect.any(Sim),
      stop: expect.any(Function),
    });
    const ports = s.nodes.map((n) => n.sshPort);
    expect(ports.every((p) => p > 0 && p !== Number(new URL(s.url).port))).toBe(true);
    expect(new Set(ports).size).toBe(3);
    expect(new Set(s.nodes.map((n) => n.hostKeyFingerprint)).size).toBe(3);
  });
});

describe("TLS", () => {
  test("the server certificate verifies against the published CA", async () => {
    const r = await call(s, "GET", "/version", { token: T });
    expect(r.status).toBe(200);
  });
  test("without the CA, verification fails", async () => {
    await expect(
      new Promise((resolve, reject) => {
        https.get(`${s.url}/api2/json/version`, { agent: false }, resolve).on("error", reject);
      }),
    ).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });
});

describe("routing and envelope", () => {
  test("GET /version answers with the fixture's field set", async () => {
    const fixture = readApiJson("fixtures/version.pve9.2.10.json");
    const r = await call(s, "GET", "/version", { token: T });
    expect(Object.keys(r.body)).toEqual(["data"]);
    expect(Object.keys(r.body.data).sort()).toEqual(Object.keys(fixture.data).sort());
    expect(r.body.data.release).toBe("9.1");
    expect(r.body.data.version).toMatch(/^9\.1\.\d+$/);
    expect(r.body.data.repoid).toMatch(/^[0-9a-f]{8,64}$/);
  });
  test("8.4 reports 8.4", async () => {
    const s84 = await startSimulator({ pveVersion: "8.4" });
    try {
      const r = await call(s84, "GET", "/version", { token: s84.rootToken });
      expect(r.body.data.release).toBe("8.4");
    } finally {
      await s84.stop();
    }
  });
  test("withTotal puts total beside data", async () => {
    const r = await call(s, "GET", "/_probe/total", { token: T });
    expect(r.body).toEqual({ data: [1, 2], total: 7 });
  });
  test("a null result is {data:null} (fixture mutation-success-null)", async () => {
    const r = await call(s, "POST", "/access/users", { token: T, form: { userid: "env@pve" } });
    expect(r.body).toEqual(readApiJson("fixtures/mutation-success-null.json"));
  });
  test("unknown path gives 501 Method '... ' not implemented", async () => {
    const r = await call(s, "GET", "/foo", { token: T });
    expect(r.status).toBe(501);
    expect(r.reason).toBe("Method 'GET /foo' not implemented");
    expect(r.body).toEqual({ data: null, message: "Method 'GET /foo' not implemented\n" });
  });
  test("known path, unknown method gives 501", async () => {
    const r = await call(s, "PATCH", "/version", { token: T });
    expect(r.status).toBe(501);
    const r2 = await call(s, "DELETE", "/version", { token: T });
    expect(r2.reason).toBe("Method 'DELETE /version' not implemented");
  });
  test("another format than json gives 501", async () => {
    const r = await call(s, "GET", "/version", { token: T, prefix: "/api2/extjs" });
    expect(r.status).toBe(501);
  });
  test("non-PVE errors become 500 with the first line as reason", async () => {
    const r = await call(s, "GET", "/_probe/boom", { token: T });
    expect(r.status).toBe(500);
    expect(r.reason).toBe("something broke");
    expect(r.body).toEqual({ data: null, message: "something broke\nsecond line\n" });
  });
  test("PveError: status and reason from the message", async () => {
    const r = await call(s, "GET", "/_probe/pve", { token: T });
    expect(r.status).toBe(500);
    expect(r.reason).toBe("VM 100 is running - destroy failed");
  });
});

describe("errors match the recorded fixtures", () => {
  const keys = (o: object) => Object.keys(o).sort();
  test("500 no such user", async () => {
    const f = readApiJson("fixtures/error-500-no-such-user.json");
    const r = await call(s, "GET", "/access/users/probe-ghost-nonexistent@pve", { token: T });
    expect(r.status).toBe(500);
    expect(keys(r.body)).toEqual(keys(f));
    expect(r.body).toEqual(f);
    expect(r.reason).toBe(f.message.trim());
  });
  test("500 create user exists", async () => {
    const f = readApiJson("fixtures/error-500-create-user-exists.json");
    const userid = "probe-dup-52445741@pve";
    await call(s, "POST", "/access/users", { token: T, form: { userid } });
    const r = await call(s, "POST", "/access/users", { token: T, form: { userid } });
    expect(r.status).toBe(500);
    expect(r.body).toEqual(f);
    expect(r.reason).toBe(f.message.trim());
  });
  test("400 token already exists", async () => {
    const f = readApiJson("fixtures/error-400-token-already-exists.json");
    await call(s, "POST", "/access/users", { token: T, form: { userid: "tk@pve" } });
    await call(s, "POST", "/access/users/tk@pve/token/vault", { token: T });
    const r = await call(s, "POST", "/access/users/tk@pve/token/vault", { token: T });
    expect(r.status).toBe(400);
    expect(r.reason).toBe("Parameter verification failed.");
    expect(keys(r.body)).toEqual(keys(f));
    expect(r.body).toEqual(f);
  });
  test("403 permission check failed", async () => {
    const f = readApiJson("fixtures/error-403-permission-check-failed.json");
    await call(s, "POST", "/access/users", { token: T, form: { userid: "nobody@pve" } });
    const tok = await call(s, "POST", "/access/users/nobody@pve/token/tk", { token: T, form: { privsep: 0 } });
    const r = await call(s, "GET", "/access/permissions", { token: tok.body.data.value && `nobody@pve!tk=${tok.body.data.value}`, query: { userid: "root@pam" } });
    expect(r.status).toBe(403);
    expect(r.body).toEqual(f);
    expect(r.reason).toBe("Permission check failed (/access, Sys.Audit)");
  });
  test("400 nextid of a taken vmid", async () => {
    // the fixture predates pve-http-server 5.2.0 (SOURCES.md): the same body without `message`
    const f = readApiJson("fixtures/error-400-cluster-nextid-vm-exists.json");
    const vmid = Number(/VM (\d+) already exists/.exec(f.errors.vmid)![1]);
    const created = await call(s, "POST", "/nodes/pve1/qemu", { token: T, form: { vmid } });
    expect(created.status).toBe(200);
    const r = await call(s, "GET", "/cluster/nextid", { token: T, query: { vmid } });
    expect(r.status).toBe(400);
    expect(r.reason).toBe("Parameter verification failed.");
    expect(keys(r.body)).toEqual([...keys(f), "message"].sort());
    expect(r.body).toEqual({ ...f, message: "Parameter verification failed.\n" });
  });
  test("token create answer has the fixture's shape", async () => {
    const f = readApiJson("fixtures/access-token-create.json");
    await call(s, "POST", "/access/users", { token: T, form: { userid: "shape@pve" } });
    const r = await call(s, "POST", "/access/users/shape@pve/token/vault", { token: T, form: { privsep: 0 } });
    expect(keys(r.body.data)).toEqual(keys(f.data));
    expect(r.body.data.info).toEqual(f.data.info);
    expect(r.body.data["full-tokenid"]).toBe("shape@pve!vault");
    expect(r.body.data.value).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe("request parsing and validation", () => {
  const probe = (o: Parameters<typeof call>[3]) => call(s, "POST", "/_probe/pve1/things", { token: T, ...o });

  test("form values are coerced: integers to numbers, booleans to 0/1", async () => {
    const r = await probe({ form: { need: "x", count: "150", flag: "1" } });
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ node: "pve1", need: "x", count: 150, flag: 1 });
  });
  test("JSON bodies accept true/false and numbers", async () => {
    const r = await probe({ json: { need: "x", count: 120, flag: false } });
    expect(r.body.data).toEqual({ node: "pve1", need: "x", count: 120, flag: 0 });
  });
  test("query parameters are merged in and override the body", async () => {
    const r = await probe({ form: { need: "body", color: "a" }, query: { need: "query" } });
    expect(r.body.data.need).toBe("query");
    expect(r.body.data.color).toBe("a");
  });
  test("a path parameter repeated with another value is a conflict", async () => {
    const r = await probe({ form: { need: "x", node: "pve2" } });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({ node: "duplicate parameter (already defined in URI) with conflicting values!" });
    const same = await probe({ form: { need: "x", node: "pve1" } });
    expect(same.status).toBe(200);
  });
  test.each([
    [{}, "need", "property is missing and it is not optional"],
    [{ need: "x", bogus: "1" }, "bogus", "property is not defined in schema and the schema does not allow additional properties"],
    [{ need: "x", count: "abc" }, "count", "type check ('integer') failed - got 'abc'"],
    [{ need: "x", flag: "true" }, "flag", "type check ('boolean') failed - got 'true'"],
    [{ need: "x", color: "x" }, "color", "value 'x' does not have a value in the enumeration 'a, b'"],
    [{ need: "x", count: "99" }, "count", "value must have a minimum value of 100"],
    [{ need: "x", count: "201" }, "count", "value must have a maximum value of 200"],
    [{ need: "x", name: "toolong" }, "name", "value may only be 5 characters long"],
    [{ need: "x", keys: "ssh-ed25519 AAAA" }, "keys", "invalid format - invalid urlencoded string: ssh-ed25519 AAAA"],
    [{ need: "x", vmid: "99" }, "vmid", "invalid format - value does not look like a valid VM ID"],
    [{ need: "x", tags: "a;b c;-bad" }, "tags", "invalid format - invalid characters in tag '-bad'"],
  ])("form %j → 400 on %s", async (form, key, msg) => {
    const r = await probe({ form: form as Record<string, string> });
    expect(r.status).toBe(400);
    expect(r.reason).toBe("Parameter verification failed.");
    expect(r.body.message).toBe("Parameter verification failed.\n");
    expect(r.body.data).toBeNull();
    expect(r.body.errors[key]).toBe(msg);
  });
  test("every error is reported at once", async () => {
    const r = await probe({ form: { count: "x", flag: "yes" } });
    expect(Object.keys(r.body.errors).sort()).toEqual(["count", "flag", "need"]);
  });
  test("URL-encoded sshkeys pass", async () => {
    const r = await probe({ form: { need: "x", keys: encodeURIComponent("ssh-ed25519 AAAA+/= me@host").replace(/[!'()*]/g, "") } });
    expect(r.status).toBe(200);
  });
  test("path parameters are format-checked", async () => {
    const r = await call(s, "POST", "/_probe/bad_node!/things", { token: T, form: { need: "x" } });
    expect(r.status).toBe(400);
    expect(r.body.errors.node).toMatch(/^invalid format - /);
  });
});

describe("request log", () => {
  test("records method, template, path, status, principal, duration; no secrets", async () => {
    s.sim.clearRequestLog();
    await call(s, "GET", "/access/users/root@pam", { token: T });
    await call(s, "GET", "/nope", { token: T });
    const log = s.sim.requestLog;
    expect(log).toHaveLength(2);
    expect(log[0]).toMatchObject({ method: "GET", template: "/access/users/{userid}", path: "/access/users/root@pam", status: 200, principal: "root@pam!sim" });
    expect(typeof log[0].durationMs).toBe("number");
    expect(log[1]).toMatchObject({ status: 501, path: "/nope" });
    expect(JSON.stringify(log)).not.toContain(T.split("=")[1]);
  });
});

describe("back door", () => {
  test("refuses anonymous and non-root callers", async () => {
    const anon = await call(s, "GET", "/state", { prefix: "/_sim" });
    expect(anon.status).toBe(401);
    await call(s, "POST", "/access/users", { token: T, form: { userid: "bd@pve" } });
    const tok = await call(s, "POST", "/access/users/bd@pve/token/xx", { token: T, form: { privsep: 0 } });
    const other = await call(s, "GET", "/state", { prefix: "/_sim", token: `bd@pve!xx=${tok.body.data.value}` });
    expect(other.status).toBe(401);
  });
  test("root token and admin secret both work; drift is visible through the API", async () => {
    await call(s, "POST", "/access/users", { token: T, form: { userid: "drift@pve", email: "a@example.com" } });
    const r = await call(s, "PUT", "/users/drift@pve", { prefix: "/_sim", headers: { Authorization: `SimAdmin ${s.adminSecret}` }, json: { email: "b@example.com" } });
    expect(r.status).toBe(200);
    const u = await call(s, "GET", "/access/users/drift@pve", { token: T });
    expect(u.body.data.email).toBe("b@example.com");
    const st = await call(s, "GET", "/state", { prefix: "/_sim", token: T });
    expect(st.body.data.users.find((x: any) => x.userid === "drift@pve").email).toBe("b@example.com");
    expect(JSON.stringify(st.body.data)).not.toContain(T.split("=")[1]);
  });
  test("reads and clears the request log; advances the clock", async () => {
    const h = { Authorization: `SimAdmin ${s.adminSecret}` };
    await call(s, "GET", "/version", { token: T });
    const log = await call(s, "GET", "/log", { prefix: "/_sim", headers: h });
    expect(log.body.data.some((e: any) => e.path === "/version")).toBe(true);
    await call(s, "DELETE", "/log", { prefix: "/_sim", headers: h });
    expect(s.sim.requestLog.filter((e) => !e.path.startsWith("/_sim"))).toHaveLength(0);
    const before = s.sim.clockOffset();
    await call(s, "POST", "/clock", { prefix: "/_sim", headers: h, json: { advanceMs: 5000 } });
    expect(s.sim.clockOffset() - before).toBe(5000);
  });
});
