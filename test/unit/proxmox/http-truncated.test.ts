import * as net from "net";
import * as tls from "tls";
import type { AddressInfo } from "net";
import { PveClient } from "../../../provider/proxmox/client";
import { PveApiError } from "../../../provider/proxmox/errors";
import { HttpTransport, destroyAgents } from "../../../provider/proxmox/http";
import { isRetryableRead, isRetryableWrite, type RetryPolicy } from "../../../provider/proxmox/retry";
import { resolveTls } from "../../../provider/proxmox/tls";
import { testPki } from "../helpers/https-server";

/**
 * A response whose body is cut short (the status line and headers arrive, then the connection
 * closes or is reset mid-body) must fail at once as a network error, not hang until the
 * request timeout.
 */

/** How the server answers one request: raw bytes after the request head, then how it hangs up. */
interface RawReply {
  head: string;
  body: string;
  /** `destroy`: drop the TCP connection; `end`: close it cleanly (TLS close_notify, FIN); `reset`: RST. */
  hangUp?: "destroy" | "end" | "reset";
}

const JSON_BODY = '{"data":{"version":"9.2.10","release":"9.2","repoid":"43df2e01"}}';
const COMPLETE: RawReply = {
  head: `HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: ${JSON_BODY.length}\r\n\r\n`,
  body: JSON_BODY,
};
const cutLength = (hangUp: RawReply["hangUp"]): RawReply => ({
  head: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
  body: '{"data":{"version":"9.2',
  hangUp,
});
const cutChunked = (hangUp: RawReply["hangUp"]): RawReply => ({
  head: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
  // a 0x40-byte chunk announced, 11 bytes of it sent
  body: '40\r\n{"data":{"v',
  hangUp,
});

let server: net.Server;
let endpoint: string;
let replies: (n: number) => RawReply = () => COMPLETE;
let requestCount = 0;

beforeAll(async () => {
  const pki = testPki();
  const secureContext = tls.createSecureContext({ key: pki.serverKey, cert: pki.serverCert });
  // TLS over a plain TCP server, so that a reply can end with a TCP RST (raw.resetAndDestroy())
  server = net.createServer((raw) => {
    raw.on("error", () => undefined);
    const socket = new tls.TLSSocket(raw, { isServer: true, secureContext });
    socket.on("error", () => undefined);
    let buffered = "";
    socket.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("latin1");
      // one request per connection is enough here: answer once the head (and any form body) is in
      const end = buffered.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0);
      if (buffered.length < end + 4 + length) return;
      buffered = buffered.slice(end + 4 + length);
      const reply = replies(++requestCount);
      socket.write(reply.head + reply.body, () => {
        if (reply.hangUp === "destroy") socket.destroy();
        else if (reply.hangUp === "end") socket.end();
        else if (reply.hangUp === "reset") raw.resetAndDestroy();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  destroyAgents();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(() => {
  requestCount = 0;
  replies = () => COMPLETE;
  // each test on fresh sockets: a cut connection must not leave a pooled one behind
  destroyAgents();
});

const TOKEN_SECRET = "5e5e5e5e-1111-4222-8333-444444444444";
const AUTH_HEADER = `PVEAPIToken=ci@pve!cut=${TOKEN_SECRET}`;
const GUARD_MS = 2_000;
const TIMEOUT_MS = 10_000;

/**
 * Settles `promise` or gives up after GUARD_MS (far below the 10 s request timeout), then aborts
 * the request so that a hanging one does not outlive the test.
 */
async function settleWithinGuard(promise: (signal: AbortSignal) => Promise<unknown>): Promise<{ settled: boolean; error?: unknown }> {
  const controller = new AbortController();
  let guard: NodeJS.Timeout | undefined;
  const pending = new Promise<"pending">((resolve) => {
    guard = setTimeout(() => resolve("pending"), GUARD_MS);
  });
  try {
    const outcome = await Promise.race([
      promise(controller.signal).then(
        () => ({ settled: true }),
        (error: unknown) => ({ settled: true, error }),
      ),
      pending,
    ]);
    return outcome === "pending" ? { settled: false } : outcome;
  } finally {
    clearTimeout(guard);
    controller.abort();
  }
}

function transport(): HttpTransport {
  return new HttpTransport({ endpoint, tls: resolveTls({ caCert: testPki().caCert }), timeoutMs: TIMEOUT_MS });
}

async function sendCut(reply: RawReply, method: "GET" | "POST" = "GET"): Promise<PveApiError> {
  replies = () => reply;
  const path = "/nodes/pve/qemu/100/status/current";
  const outcome = await settleWithinGuard((signal) =>
    transport().send({ method, path, headers: { Authorization: AUTH_HEADER }, signal, secrets: [TOKEN_SECRET], params: method === "POST" ? { vmid: 100 } : undefined }),
  );
  expect(outcome.settled).toBe(true);
  expect(outcome.error).toBeInstanceOf(PveApiError);
  const err = outcome.error as PveApiError;
  expect(err.kind).toBe("network");
  expect(err.code).toBe("ECONNRESET");
  expect(err.notSent).toBe(false);
  expect(err.message).toContain(`${method} ${path}`);
  expect(err.message).toContain(endpoint);
  expect(err.message).toMatch(/closed before the end of the response body|premature close|ECONNRESET/i);
  expect(err.message).not.toContain(TOKEN_SECRET);
  expect(err.message).not.toContain("PVEAPIToken");
  return err;
}

describe("a response body cut short", () => {
  it("with Content-Length 1000 and the socket destroyed mid-body: fails at once as ECONNRESET", async () => {
    const err = await sendCut(cutLength("destroy"));
    expect(err.message).toContain("connection closed before the end of the response body (Content-Length 1000)");
    expect(isRetryableRead(err)).toBe(true);
  });

  it("with Content-Length 1000 and the connection closed cleanly mid-body: fails at once as ECONNRESET", async () => {
    await sendCut(cutLength("end"));
  });

  it("with Content-Length 1000 and the connection reset (RST) mid-body: fails at once as ECONNRESET", async () => {
    await sendCut(cutLength("reset"));
  });

  it("with Transfer-Encoding chunked cut off mid-chunk: fails at once as ECONNRESET", async () => {
    const err = await sendCut(cutChunked("destroy"));
    expect(err.message).toMatch(/connection closed before the end of the response body \(chunked\)|premature close/i);
    expect(isRetryableRead(err)).toBe(true);
  });

  it("with Transfer-Encoding chunked and the connection closed cleanly mid-chunk: fails at once as ECONNRESET", async () => {
    await sendCut(cutChunked("end"));
  });

  it("on a POST: a network error after sending, which a write does not retry", async () => {
    const err = await sendCut(cutLength("destroy"), "POST");
    expect(isRetryableWrite(err)).toBe(false);
  });
});

describe("a response body that stalls, the connection open", () => {
  it("still ends at the request timeout, as a timeout (the abort's own close is not a cut)", async () => {
    replies = () => cutLength(undefined);
    const t = new HttpTransport({ endpoint, tls: resolveTls({ caCert: testPki().caCert }), timeoutMs: 100 });
    const outcome = await settleWithinGuard(() => t.send({ method: "GET", path: "/nodes" }));
    expect(outcome.settled).toBe(true);
    expect(outcome.error).toMatchObject({ kind: "timeout", code: "ETIMEDOUT" });
    expect((outcome.error as Error).message).toContain("GET /nodes");
  });
});

describe("the client on a body cut short", () => {
  const POLICY: RetryPolicy = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2, maxElapsedMs: 5_000 };
  const client = (): PveClient =>
    new PveClient({
      endpoint,
      credentials: { kind: "token", tokenId: "ci@pve!cut", secret: TOKEN_SECRET },
      tls: { caCert: testPki().caCert },
      requestTimeoutMs: TIMEOUT_MS,
      readRetry: POLICY,
      writeRetry: POLICY,
    });

  it("retries a GET, as after a reset, and succeeds on the next complete answer", async () => {
    replies = (n) => (n === 1 ? cutLength("destroy") : n === 2 ? cutChunked("destroy") : COMPLETE);
    const c = client();
    const outcome = await settleWithinGuard(() => c.cluster.version());
    expect(outcome).toEqual({ settled: true });
    expect(c.stats.requests).toBe(3);
    expect(c.stats.retries).toBe(2);
  });

  it("does not retry a POST whose answer was cut short (it may have been applied)", async () => {
    replies = () => cutLength("destroy");
    const c = client();
    const outcome = await settleWithinGuard(() => c.post("/pools", { poolid: "p" }));
    expect(outcome.settled).toBe(true);
    expect(outcome.error).toMatchObject({ kind: "network", code: "ECONNRESET", notSent: false });
    expect((outcome.error as Error).message).toContain("POST /pools");
    expect((outcome.error as Error).message).not.toContain(TOKEN_SECRET);
    expect(c.stats.requests).toBe(1);
  });
});
