import { PveClient } from "../../../provider/proxmox/client";
import { destroyAgents } from "../../../provider/proxmox/http";
import { startHttpsServer, testPki, type TestServer } from "../helpers/https-server";
import { FakeClock } from "../helpers/fake-clock";

const TICKET_1 = "PVE:ops@pve:65000000::c2lnbmF0dXJlLW9uZQ==";
const TICKET_2 = "PVE:ops@pve:65001C20::c2lnbmF0dXJlLXR3bw==";
const CSRF_1 = "65000000:Y3NyZi1vbmUtMTExMTExMTExMTExMTExMTExMTExMTExMTE";
const CSRF_2 = "65001C20:Y3NyZi10d28tMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjI";

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
});

describe("API token authentication", () => {
  it("sends Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET on every request, and no CSRF token", async () => {
    server.setHandler(() => ({ body: { data: "ok" } }));
    const client = new PveClient({
      endpoint: server.endpoint,
      credentials: { kind: "token", tokenId: "ci@pve!pulumi", secret: "11111111-2222-4333-8444-555555555555" },
      tls: { caCert: testPki().caCert },
    });
    await client.get("/version");
    await client.post("/access/users", { userid: "x@pve" });
    expect(server.requests.map((r) => r.headers.authorization)).toEqual([
      "PVEAPIToken=ci@pve!pulumi=11111111-2222-4333-8444-555555555555",
      "PVEAPIToken=ci@pve!pulumi=11111111-2222-4333-8444-555555555555",
    ]);
    expect(server.requests.every((r) => r.headers.csrfpreventiontoken === undefined)).toBe(true);
    expect(server.requests.every((r) => r.headers.cookie === undefined)).toBe(true);
    expect(server.requests[0].path).toBe("/version");
  });
});

describe("ticket authentication", () => {
  function ticketServer(): void {
    server.setHandler((req) => {
      if (req.path === "/access/ticket") {
        const password = req.form.get("password");
        if (password === "s3cret-pw") return { body: { data: { username: "ops@pve", ticket: TICKET_1, CSRFPreventionToken: CSRF_1 } } };
        if (password === TICKET_1) return { body: { data: { username: "ops@pve", ticket: TICKET_2, CSRFPreventionToken: CSRF_2 } } };
        return { status: 401, reason: "authentication failure", body: { data: null } };
      }
      return { body: { data: null } };
    });
  }

  it("logs in once, then sends the cookie on every request and the CSRF token only on writes", async () => {
    ticketServer();
    const client = new PveClient({
      endpoint: server.endpoint,
      credentials: { kind: "password", username: "ops@pve", password: "s3cret-pw" },
      tls: { caCert: testPki().caCert },
    });
    await client.get("/nodes");
    await client.put("/access/acl", { path: "/", roles: ["PVEAuditor"], users: ["x@pve"] });
    await client.del("/access/users/x@pve");
    await client.get("/cluster/resources");

    const [login, ...rest] = server.requests;
    expect(login.method).toBe("POST");
    expect(login.path).toBe("/access/ticket");
    expect(login.form.get("username")).toBe("ops@pve");
    expect(login.form.get("password")).toBe("s3cret-pw");
    expect(login.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(rest.map((r) => [r.method, r.headers.cookie, r.headers.csrfpreventiontoken])).toEqual([
      ["GET", `PVEAuthCookie=${TICKET_1}`, undefined],
      ["PUT", `PVEAuthCookie=${TICKET_1}`, CSRF_1],
      ["DELETE", `PVEAuthCookie=${TICKET_1}`, CSRF_1],
      ["GET", `PVEAuthCookie=${TICKET_1}`, undefined],
    ]);
    expect(rest[1].form.get("roles")).toBe("PVEAuditor");
  });

  it("renews the ticket (password=<current ticket>) once the clock passes the renewal point", async () => {
    ticketServer();
    const clock = new FakeClock();
    const client = new PveClient({
      endpoint: server.endpoint,
      credentials: { kind: "password", username: "ops@pve", password: "s3cret-pw" },
      tls: { caCert: testPki().caCert },
      clock,
    });
    await client.get("/nodes");
    clock.advance(59 * 60 * 1000);
    await client.get("/nodes");
    expect(server.requests.filter((r) => r.path === "/access/ticket")).toHaveLength(1);

    clock.advance(2 * 60 * 1000);
    await client.post("/pools", { poolid: "p" });
    const tickets = server.requests.filter((r) => r.path === "/access/ticket");
    expect(tickets).toHaveLength(2);
    expect(tickets[1].form.get("username")).toBe("ops@pve");
    expect(tickets[1].form.get("password")).toBe(TICKET_1);
    const last = server.requests[server.requests.length - 1];
    expect(last.headers.cookie).toBe(`PVEAuthCookie=${TICKET_2}`);
    expect(last.headers.csrfpreventiontoken).toBe(CSRF_2);
  });

  it("logs in with the password again when the ticket is too old to renew", async () => {
    ticketServer();
    const clock = new FakeClock();
    const client = new PveClient({
      endpoint: server.endpoint,
      credentials: { kind: "password", username: "ops@pve", password: "s3cret-pw" },
      tls: { caCert: testPki().caCert },
      clock,
    });
    await client.get("/nodes");
    clock.advance(3 * 60 * 60 * 1000);
    await client.get("/nodes");
    const tickets = server.requests.filter((r) => r.path === "/access/ticket");
    expect(tickets.map((t) => t.form.get("password"))).toEqual(["s3cret-pw", "s3cret-pw"]);
  });

  it("shares one login between concurrent first requests", async () => {
    ticketServer();
    const client = new PveClient({
      endpoint: server.endpoint,
      credentials: { kind: "password", username: "ops@pve", password: "s3cret-pw" },
      tls: { caCert: testPki().caCert },
    });
    await Promise.all([client.get("/a"), client.get("/b"), client.get("/c")]);
    expect(server.requests.filter((r) => r.path === "/access/ticket")).toHaveLength(1);
  });

  it("combines username and realm when the username has no realm", async () => {
    ticketServer();
    const client = new PveClient({
      endpoint: server.endpoint,
      credentials: { kind: "password", username: "ops", realm: "pve", password: "s3cret-pw" },
      tls: { caCert: testPki().caCert },
    });
    await client.get("/nodes");
    expect(server.requests[0].form.get("username")).toBe("ops@pve");
    expect(client.identity).toEqual({ kind: "user", id: "ops@pve" });
  });
});

describe("two-factor (TOTP) login", () => {
  const CHALLENGE = "PVE:!tfa!%7B%22totp%22%3Atrue%7D:65000000::Y2hhbGxlbmdl";

  it("sends otp first, and answers a TFA challenge with tfa-challenge and password=totp:<otp>", async () => {
    server.setHandler((req) => {
      if (req.path === "/access/ticket" && !req.form.has("tfa-challenge")) {
        return { body: { data: { username: "ops@pve", ticket: CHALLENGE, NeedTFA: 1 } } };
      }
      if (req.path === "/access/ticket") {
        const ok = req.form.get("tfa-challenge") === CHALLENGE && req.form.get("password") === "totp:123456";
        return ok
          ? { body: { data: { username: "ops@pve", ticket: TICKET_1, CSRFPreventionToken: CSRF_1 } } }
          : { status: 401, reason: "authentication failure", body: { data: null } };
      }
      return { body: { data: [] } };
    });
    const client = new PveClient({
      endpoint: server.endpoint,
      credentials: { kind: "password", username: "ops@pve", password: "s3cret-pw", otp: "123456" },
      tls: { caCert: testPki().caCert },
    });
    await client.get("/nodes");
    const [first, second, call] = server.requests;
    expect(first.form.get("otp")).toBe("123456");
    expect(first.form.get("password")).toBe("s3cret-pw");
    expect(second.form.get("tfa-challenge")).toBe(CHALLENGE);
    expect(second.form.get("password")).toBe("totp:123456");
    expect(call.headers.cookie).toBe(`PVEAuthCookie=${TICKET_1}`);
  });

  it("fails with an auth error that asks for an OTP when TFA is required and none is configured", async () => {
    server.setHandler(() => ({ body: { data: { username: "ops@pve", ticket: CHALLENGE, NeedTFA: 1 } } }));
    const client = new PveClient({
      endpoint: server.endpoint,
      credentials: { kind: "password", username: "ops@pve", password: "s3cret-pw" },
      tls: { caCert: testPki().caCert },
    });
    await expect(client.get("/nodes")).rejects.toMatchObject({ kind: "auth", message: expect.stringContaining("proxmox:otp") });
  });
});
