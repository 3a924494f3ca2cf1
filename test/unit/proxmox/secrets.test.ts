import { PveClient } from "../../../provider/proxmox/client";
import { PveApiError, PveTaskError } from "../../../provider/proxmox/errors";
import { destroyAgents } from "../../../provider/proxmox/http";
import { resolveConnectionSettings, ConnectionSettingsError } from "../../../provider/config";
import { startHttpsServer, testPki, type TestServer, type Reply } from "../helpers/https-server";
import { FakeClock, RecordingLogger } from "../helpers/fake-clock";
import { listFixtures, readFixture } from "../helpers/pve-api";

const TOKEN_SECRET = "c0ffee00-dead-4bee-8f00-0123456789ab";
const PASSWORD = "Tr0ub4dor&3-horse";
const OTP = "918273";
const TICKET = "PVE:ops@pve:65000000::U0VDUkVUVElDS0VUU0lHTkFUVVJFU0VDUkVU";
const CSRF = "65000000:U0VDUkVUQ1NSRlRPS0VOU0VDUkVUQ1NSRlRPS0VOU0VD";
const CI_PASSWORD = "cloud-init-Pa55word";
const NEW_USER_PASSWORD = "n3w-user-initial-pw";
const SECRETS = [TOKEN_SECRET, PASSWORD, OTP, TICKET, CSRF, CI_PASSWORD, NEW_USER_PASSWORD];

let server: TestServer;
beforeAll(async () => {
  server = await startHttpsServer();
});
afterAll(async () => {
  await server.close();
  destroyAgents();
});

function expectNoSecret(err: unknown, logger?: RecordingLogger): void {
  expect(err).toBeInstanceOf(Error);
  const e = err as Error;
  const surfaces = [e.message, e.stack ?? "", JSON.stringify(e), String(e), ...(logger?.lines.map((l) => l.message) ?? [])];
  for (const surface of surfaces) {
    for (const secret of SECRETS) expect(surface).not.toContain(secret);
    expect(surface).not.toContain(encodeURIComponent(TICKET));
  }
}

const FAST = { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1, maxElapsedMs: 1000 };

function tokenClient(logger: RecordingLogger): PveClient {
  return new PveClient({
    endpoint: server.endpoint,
    credentials: { kind: "token", tokenId: "ci@pve!s", secret: TOKEN_SECRET },
    tls: { caCert: testPki().caCert },
    logger,
    clock: new FakeClock(),
    readRetry: FAST,
    writeRetry: FAST,
  });
}

/** A server that echoes every secret it was sent back in its error (the worst case). */
function echoing(status: number, extra: Partial<Reply> = {}): (req: { headers: Record<string, unknown>; body: string; form: URLSearchParams }) => Reply {
  return (req) => {
    const echo = `${JSON.stringify(req.headers)} ${req.body} ${decodeURIComponent(req.body)}`;
    const errors = Object.fromEntries([...req.form.entries()].map(([k, v]) => [k, `bad value '${v}'`]));
    return {
      status,
      reason: "Failure",
      body: { data: null, message: `failed: ${echo}\n`, errors },
      ...extra,
    };
  };
}

describe("secrets never appear in errors or logs", () => {
  it.each([400, 401, 403, 500, 501, 503])("HTTP %i errors that echo the request (token auth)", async (status) => {
    const logger = new RecordingLogger();
    server.setHandler(echoing(status));
    const c = tokenClient(logger);
    expectNoSecret(await c.put("/nodes/pve/qemu/100/config", { cipassword: CI_PASSWORD }).catch((e: unknown) => e), logger);
    expectNoSecret(await c.post("/access/users", { userid: "n@pve", password: NEW_USER_PASSWORD }).catch((e: unknown) => e), logger);
    expectNoSecret(await c.get("/nodes").catch((e: unknown) => e), logger);
  });

  it("every recorded error fixture, with token and with ticket auth", async () => {
    for (const file of listFixtures(/^error-/)) {
      const body = readFixture(file);
      const status = Number(/^error-(\d+)/.exec(file)?.[1]);
      server.setHandler((req) => (req.path === "/access/ticket" ? { body: { data: { username: "ops@pve", ticket: TICKET, CSRFPreventionToken: CSRF } } } : { status, reason: "x", body }));
      const logger = new RecordingLogger();
      expectNoSecret(await tokenClient(logger).post("/x", { password: NEW_USER_PASSWORD }).catch((e: unknown) => e), logger);
      const ticketClient = new PveClient({
        endpoint: server.endpoint,
        credentials: { kind: "password", username: "ops@pve", password: PASSWORD, otp: OTP },
        tls: { caCert: testPki().caCert },
        logger,
        writeRetry: FAST,
      });
      expectNoSecret(await ticketClient.post("/x", { cipassword: CI_PASSWORD }).catch((e: unknown) => e), logger);
    }
  });

  it("failed logins (password, OTP, ticket renewal)", async () => {
    server.setHandler(echoing(401, { body: "" }));
    const logger = new RecordingLogger();
    const c = new PveClient({
      endpoint: server.endpoint,
      credentials: { kind: "password", username: "ops@pve", password: PASSWORD, otp: OTP },
      tls: { caCert: testPki().caCert },
      logger,
    });
    expectNoSecret(await c.get("/nodes").catch((e: unknown) => e), logger);

    server.setHandler((req) => {
      if (req.path === "/access/ticket" && req.form.get("password") === PASSWORD) {
        return { body: { data: { username: "ops@pve", ticket: TICKET, CSRFPreventionToken: CSRF } } };
      }
      return echoing(500)(req);
    });
    const clock = new FakeClock();
    const r = new PveClient({
      endpoint: server.endpoint,
      credentials: { kind: "password", username: "ops@pve", password: PASSWORD },
      tls: { caCert: testPki().caCert },
      logger,
      clock,
      readRetry: FAST,
    });
    expectNoSecret(await r.get("/nodes").catch((e: unknown) => e), logger);
    clock.advance(70 * 60 * 1000);
    expectNoSecret(await r.get("/nodes").catch((e: unknown) => e), logger);
  });

  it("network errors, timeouts and TLS failures", async () => {
    const logger = new RecordingLogger();
    server.setHandler(() => ({ destroy: true }));
    expectNoSecret(await tokenClient(logger).get("/nodes").catch((e: unknown) => e), logger);
    server.setHandler(() => ({ delayMs: 200 }));
    const slow = new PveClient({ endpoint: server.endpoint, credentials: { kind: "token", tokenId: "ci@pve!s", secret: TOKEN_SECRET }, tls: { caCert: testPki().caCert }, requestTimeoutMs: 20, readRetry: FAST, logger });
    expectNoSecret(await slow.get("/nodes").catch((e: unknown) => e), logger);
    const tls = new PveClient({ endpoint: server.endpoint, credentials: { kind: "token", tokenId: "ci@pve!s", secret: TOKEN_SECRET }, logger });
    expectNoSecret(await tls.get("/nodes").catch((e: unknown) => e), logger);
  });

  it("task failures whose log echoes a secret", async () => {
    const upid = "UPID:pve:00000001:00000001:00000001:qmconfig:100:ci@pve!s:";
    server.setHandler((req) =>
      req.path.endsWith("/log")
        ? { body: { data: [{ n: 1, t: `set cipassword ${CI_PASSWORD}` }, { n: 2, t: `TASK ERROR: token ${TOKEN_SECRET}` }], total: 2 } }
        : { body: { data: { status: "stopped", exitstatus: `token ${TOKEN_SECRET}`, upid, node: "pve", type: "qmconfig", id: "100", user: "ci@pve", pid: 1, pstart: 1, starttime: 1 } } },
    );
    const logger = new RecordingLogger();
    const c = tokenClient(logger);
    const err = await c.tasks.wait(upid).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PveTaskError);
    const e = err as PveTaskError;
    for (const s of [e.message, e.stack ?? "", JSON.stringify(e)]) expect(s).not.toContain(TOKEN_SECRET);
  });

  it("configuration errors", () => {
    const err = (() => {
      try {
        resolveConnectionSettings({ endpoint: "http://pve:8006", apiToken: `not a token ${TOKEN_SECRET}` }, {});
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConnectionSettingsError);
    expectNoSecret(err);
  });

  it("a PveApiError built directly scrubs what it is told is secret, and credential shapes", () => {
    const e = new PveApiError({
      method: "POST",
      path: "/access/ticket",
      endpoint: "https://h:8006",
      status: 500,
      bodyMessage: `bad ticket ${TICKET} and header PVEAPIToken=ci@pve!s=${TOKEN_SECRET} pw ${PASSWORD}`,
      secrets: [PASSWORD],
    });
    expectNoSecret(e);
  });
});
