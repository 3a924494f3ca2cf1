// Authentication: API tokens, tickets (cookie, header), CSRF, renewal, expiry, 401 shape,
// allowtoken=0, OTP.

import { totp } from "../auth";
import { RunningSimulator, startSimulator } from "../index";
import { call } from "./core-http";

let s: RunningSimulator;
let T: string;

async function mkUser(userid: string, extra: Record<string, string | number> = {}): Promise<void> {
  const r = await call(s, "POST", "/access/users", { token: T, form: { userid, ...extra } });
  expect(r.status).toBe(200);
}

async function login(username: string, password: string, extra: Record<string, string> = {}) {
  return call(s, "POST", "/access/ticket", { form: { username, password, ...extra } });
}

beforeAll(async () => {
  s = await startSimulator({ seed: 3, rootPassword: "rootpass1" });
  T = s.rootToken;
  await mkUser("alice@pve", { password: "alicepass1" });
  await call(s, "PUT", "/access/acl", { token: T, form: { path: "/", roles: "PVEAuditor", users: "alice@pve" } });
});
afterAll(() => s.stop());

describe("API tokens", () => {
  test("root token string is root@pam!<id>=<uuid> and works", async () => {
    expect(T).toMatch(/^root@pam!sim=[0-9a-f-]{36}$/);
    expect((await call(s, "GET", "/version", { token: T })).status).toBe(200);
  });
  test("the space variant of the header is accepted", async () => {
    const r = await call(s, "GET", "/version", { headers: { Authorization: `PVEAPIToken ${T}` } });
    expect(r.status).toBe(200);
  });
  test("a wrong secret: 401, empty body, reason 'Authentication failed!' (9.1)", async () => {
    const r = await call(s, "GET", "/version", { token: "root@pam!sim=00000000-0000-4000-8000-000000000000" });
    expect(r.status).toBe(401);
    expect(r.text).toBe("");
    expect(r.reason).toBe("Authentication failed!");
  });
  test("no credentials: 401 'No ticket'", async () => {
    const r = await call(s, "GET", "/version");
    expect(r.status).toBe(401);
    expect(r.reason).toBe("No ticket");
    expect(r.text).toBe("");
  });
  test("unknown path without credentials is 401, not 501", async () => {
    expect((await call(s, "GET", "/nope")).status).toBe(401);
  });
  test("8.4 gives the detailed reason", async () => {
    const s84 = await startSimulator({ pveVersion: "8.4" });
    try {
      const r = await call(s84, "GET", "/version", { token: "root@pam!sim=00000000-0000-4000-8000-000000000000" });
      expect(r.status).toBe(401);
      expect(r.reason).toBe("invalid token value!");
      const r2 = await call(s84, "GET", "/version", { token: "root@pam!nope=00000000-0000-4000-8000-000000000000" });
      expect(r2.reason).toBe("no such token 'nope' for user 'root@pam'");
    } finally {
      await s84.stop();
    }
  });
  test("an expired token and an expired user are refused", async () => {
    await mkUser("exp@pve");
    const now = s.sim.nowSeconds();
    const tok = await call(s, "POST", "/access/users/exp@pve/token/soon", { token: T, form: { privsep: 0, expire: now + 60 } });
    const full = `exp@pve!soon=${tok.body.data.value}`;
    expect((await call(s, "GET", "/version", { token: full })).status).toBe(200);
    s.sim.advanceClock(120_000);
    expect((await call(s, "GET", "/version", { token: full })).status).toBe(401);
    const tok2 = await call(s, "POST", "/access/users/exp@pve/token/never", { token: T, form: { privsep: 0, expire: 0 } });
    const full2 = `exp@pve!never=${tok2.body.data.value}`;
    expect((await call(s, "GET", "/version", { token: full2 })).status).toBe(200);
    await call(s, "PUT", "/access/users/exp@pve", { token: T, form: { expire: s.sim.nowSeconds() - 1 } });
    expect((await call(s, "GET", "/version", { token: full2 })).status).toBe(401);
  });
  test("a disabled user's token is refused", async () => {
    await mkUser("dis@pve");
    const tok = await call(s, "POST", "/access/users/dis@pve/token/tok1", { token: T, form: { privsep: 0 } });
    const full = `dis@pve!tok1=${tok.body.data.value}`;
    await call(s, "PUT", "/access/users/dis@pve", { token: T, form: { enable: 0 } });
    expect((await call(s, "GET", "/version", { token: full })).status).toBe(401);
  });
  test("allowtoken=0 endpoints refuse tokens with 403", async () => {
    const r = await call(s, "PUT", "/access/password", { token: T, form: { userid: "alice@pve", password: "whatever12" } });
    expect(r.status).toBe(403);
    expect(r.reason).toBe("Permission check failed (URI '/access/password' not available with API token, need proper ticket.");
    const r2 = await call(s, "POST", "/access/ticket", { token: T, form: { username: "root@pam", password: "rootpass1" } });
    expect(r2.status).toBe(403);
  });
});

describe("tickets", () => {
  test("login returns username, ticket, CSRF token, cap, clustername", async () => {
    const r = await login("root@pam", "rootpass1");
    expect(r.status).toBe(200);
    const d = r.body.data;
    expect(d.username).toBe("root@pam");
    expect(d.ticket).toMatch(/^PVE:root@pam:[0-9A-F]{8}::[A-Za-z0-9+/]+$/);
    expect(d.CSRFPreventionToken).toMatch(/^[0-9A-F]{8}:\S+$/);
    expect(d.cap.vms["VM.Allocate"]).toBe(1);
    expect(d.clustername).toBe("pve-sim");
  });
  test("username and realm may come separately", async () => {
    const r = await login("alice", "alicepass1", { realm: "pve" });
    expect(r.body.data.username).toBe("alice@pve");
  });
  test("failed login: 401 authentication failure", async () => {
    const r = await login("alice@pve", "wrong-password");
    expect(r.status).toBe(401);
    expect(r.reason).toBe("authentication failure");
    const r2 = await login("ghost@pve", "whatever");
    expect(r2.status).toBe(401);
  });
  test("the ticket works as a cookie (URL-encoded or not) and as Authorization header", async () => {
    const { ticket } = (await login("alice@pve", "alicepass1")).body.data;
    expect((await call(s, "GET", "/access/users/alice@pve", { ticket })).status).toBe(200);
    expect((await call(s, "GET", "/access/users/alice@pve", { cookie: ticket })).status).toBe(200);
    const r = await call(s, "GET", "/access/users/alice@pve", { headers: { Authorization: `PVEAuthCookie=${ticket}` } });
    expect(r.status).toBe(200);
  });
  test("writes with a ticket need the CSRF token", async () => {
    const { ticket, CSRFPreventionToken } = (await login("root@pam", "rootpass1")).body.data;
    const no = await call(s, "POST", "/access/users", { ticket, form: { userid: "csrf1@pve" } });
    expect(no.status).toBe(401);
    expect(no.reason).toBe("Permission denied - invalid csrf token");
    expect(no.text).toBe("");
    const bad = await call(s, "POST", "/access/users", { ticket, csrf: "00000000:bogus", form: { userid: "csrf1@pve" } });
    expect(bad.status).toBe(401);
    const ok = await call(s, "POST", "/access/users", { ticket, csrf: CSRFPreventionToken, form: { userid: "csrf1@pve" } });
    expect(ok.status).toBe(200);
    // Tokens need no CSRF token.
    expect((await call(s, "POST", "/access/users", { token: T, form: { userid: "csrf2@pve" } })).status).toBe(200);
  });
  test("a forged ticket is refused", async () => {
    const { ticket } = (await login("alice@pve", "alicepass1")).body.data;
    const forged = ticket.replace("alice@pve", "root@pam");
    const r = await call(s, "GET", "/version", { ticket: forged });
    expect(r.status).toBe(401);
    expect(r.reason).toBe("Authentication failed!");
  });
  test("tickets live 2 h on the virtual clock; renewal with password=<ticket>", async () => {
    const { ticket } = (await login("alice@pve", "alicepass1")).body.data;
    s.sim.advanceClock(90 * 60_000);
    const renewed = await login("alice@pve", ticket);
    expect(renewed.status).toBe(200);
    const t2 = renewed.body.data.ticket;
    s.sim.advanceClock(40 * 60_000);
    expect((await call(s, "GET", "/version", { ticket })).status).toBe(401);
    expect((await call(s, "GET", "/version", { ticket: t2 })).status).toBe(200);
    expect((await login("alice@pve", ticket)).status).toBe(401);
  });
  test("PUT /access/password with a ticket changes the own password", async () => {
    await mkUser("pw@pve", { password: "firstpass1" });
    const { ticket, CSRFPreventionToken } = (await login("pw@pve", "firstpass1")).body.data;
    const r = await call(s, "PUT", "/access/password", { ticket, csrf: CSRFPreventionToken, form: { userid: "pw@pve", password: "secondpass2" } });
    expect(r.status).toBe(200);
    expect((await login("pw@pve", "firstpass1")).status).toBe(401);
    expect((await login("pw@pve", "secondpass2")).status).toBe(200);
    // Someone else's password needs Realm.AllocateUser + User.Modify.
    const other = await call(s, "PUT", "/access/password", { ticket, csrf: CSRFPreventionToken, form: { userid: "alice@pve", password: "hijacked12" } });
    expect(other.status).toBe(403);
  });
});

describe("OTP", () => {
  test("static OTP: without it a partial ticket (NeedTFA), then tfa-challenge + code", async () => {
    await mkUser("otp@pve", { password: "otppass12" });
    s.sim.access.user("otp@pve")!.otp = { type: "static", secret: "123456" };
    const first = await login("otp@pve", "otppass12");
    expect(first.status).toBe(200);
    expect(first.body.data.NeedTFA).toBe(1);
    expect(first.body.data.CSRFPreventionToken).toBeUndefined();
    const partial = first.body.data.ticket;
    expect((await call(s, "GET", "/version", { ticket: partial })).status).toBe(401);
    const wrong = await login("otp@pve", "totp:000000", { "tfa-challenge": partial });
    expect(wrong.status).toBe(401);
    const second = await login("otp@pve", "totp:123456", { "tfa-challenge": partial });
    expect(second.status).toBe(200);
    expect((await call(s, "GET", "/version", { ticket: second.body.data.ticket })).status).toBe(200);
  });
  test("TOTP via the otp parameter, against the virtual clock", async () => {
    await mkUser("totp@pve", { password: "totppass12" });
    const secret = "JBSWY3DPEHPK3PXP";
    s.sim.access.user("totp@pve")!.otp = { type: "totp", secret };
    const code = totp(secret, s.sim.now());
    expect((await login("totp@pve", "totppass12", { otp: code })).status).toBe(200);
    expect((await login("totp@pve", "totppass12", { otp: code === "000000" ? "111111" : "000000" })).status).toBe(401);
  });
  test("RFC 6238 test vector", () => {
    // Secret "12345678901234567890" in base32; T = 59 s → 94287082 (8 digits) → 287082.
    expect(totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59_000)).toBe("287082");
  });
});

describe("unauthorized delay", () => {
  test("401s are delayed by unauthorizedDelayMs", async () => {
    const slow = await startSimulator({ unauthorizedDelayMs: 300 });
    try {
      const t0 = Date.now();
      const r = await call(slow, "GET", "/version");
      expect(r.status).toBe(401);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
    } finally {
      await slow.stop();
    }
  });
});
