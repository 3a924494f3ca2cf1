import * as net from "net";
import type { AddressInfo } from "net";
import { PveClient } from "../../../provider/proxmox/client";
import { PveApiError } from "../../../provider/proxmox/errors";
import { destroyAgents } from "../../../provider/proxmox/http";
import { backoffDelay, withRetry, READ_RETRY, type RetryPolicy } from "../../../provider/proxmox/retry";
import { startHttpsServer, testPki, type TestServer, type Reply } from "../helpers/https-server";
import { FakeClock } from "../helpers/fake-clock";

let server: TestServer;
const POLICY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1000, maxElapsedMs: 60_000 };

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

function client(clock = new FakeClock(), endpoint = server.endpoint): PveClient {
  return new PveClient({
    endpoint,
    credentials: { kind: "token", tokenId: "ci@pve!retry", secret: "0f0f0f0f-1111-4222-8333-444444444444" },
    tls: { caCert: testPki().caCert },
    clock,
    random: () => 0.5,
    readRetry: POLICY,
    writeRetry: POLICY,
  });
}

/** Fails with `failure` for the first `n` requests, then answers `{data: "done"}`. */
function failFirst(n: number, failure: Reply): void {
  let count = 0;
  server.setHandler(() => (++count <= n ? failure : { body: { data: "done" } }));
}

const LOCK_TIMEOUT: Reply = { status: 500, reason: "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout", body: { data: null, message: "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout\n" } };
const VM_LOCKED: Reply = { status: 500, reason: "VM is locked (clone)", body: { data: null, message: "VM is locked (clone)\n" } };
const NO_WORKER: Reply = { status: 500, reason: "got no worker upid - start worker failed", body: { data: null } };
const SERVER_500: Reply = { status: 500, reason: "Internal Server Error", body: { data: null } };
const BAD_GATEWAY: Reply = { status: 502, reason: "Bad Gateway", body: "" };
const ALREADY_EXISTS: Reply = { status: 500, reason: "unable to create VM 100 - VM 100 already exists on node 'pve'", body: { data: null } };
const RESET: Reply = { destroy: true };

describe("retries", () => {
  it("backs off exponentially with jitter, within [d/2, d)", () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, POLICY, () => 0))).toEqual([50, 100, 200, 400, 500]);
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, POLICY, () => 0.999))).toEqual([99, 199, 399, 799, 999]);
  });

  it("retries a GET on 5xx and on a reset connection", async () => {
    failFirst(1, SERVER_500);
    const clock = new FakeClock();
    await expect(client(clock).get("/cluster/resources")).resolves.toBe("done");
    expect(server.requests).toHaveLength(2);
    expect(clock.sleeps).toEqual([75]);

    server.requests.length = 0;
    failFirst(2, RESET);
    await expect(client().get("/cluster/resources")).resolves.toBe("done");
    expect(server.requests).toHaveLength(3);

    server.requests.length = 0;
    failFirst(1, BAD_GATEWAY);
    await expect(client().get("/nodes")).resolves.toBe("done");
    expect(server.requests).toHaveLength(2);
  });

  it("gives up on a GET after maxAttempts, with the last error", async () => {
    failFirst(100, SERVER_500);
    const clock = new FakeClock();
    const err = await client(clock).get("/nodes").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PveApiError);
    expect(server.requests).toHaveLength(POLICY.maxAttempts);
    expect(clock.sleeps).toHaveLength(POLICY.maxAttempts - 1);
  });

  it("stops retrying when the total time bound would be passed", async () => {
    const clock = new FakeClock();
    let calls = 0;
    const err = await withRetry(
      async () => {
        calls++;
        clock.advance(10_000);
        throw new PveApiError({ method: "GET", path: "/x", endpoint: "https://h:8006", status: 503, reason: "busy" });
      },
      { policy: { ...READ_RETRY, maxAttempts: 100, maxElapsedMs: 25_000 }, shouldRetry: () => true, clock, random: () => 0 },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PveApiError);
    expect(calls).toBe(3);
  });

  it("counts the time bound from the first failure when asked: a step that ran long before failing keeps its budget", async () => {
    const run = async (elapsedFrom?: "start" | "firstFailure") => {
      const clock = new FakeClock();
      let calls = 0;
      await withRetry(
        async () => {
          calls++;
          if (calls === 1) clock.advance(30_000); // the first attempt works a long time, then fails
          throw new PveApiError({ method: "GET", path: "/x", endpoint: "https://h:8006", status: 503, reason: "busy" });
        },
        { policy: { maxAttempts: 5, baseDelayMs: 1_000, maxDelayMs: 1_000, maxElapsedMs: 25_000 }, shouldRetry: () => true, clock, random: () => 0, elapsedFrom },
      ).catch(() => undefined);
      return { calls, sleeps: clock.sleeps };
    };
    expect(await run()).toEqual({ calls: 1, sleeps: [] });
    // jitter from the injected source: random 0 gives the lower end, d/2
    expect(await run("firstFailure")).toEqual({ calls: 5, sleeps: [500, 500, 500, 500] });
  });

  it("never retries a 4xx or a 500 'does not exist' on a GET", async () => {
    failFirst(100, { status: 400, reason: "Parameter verification failed.", body: { data: null, errors: { vmid: "bad" } } });
    await expect(client().get("/cluster/nextid")).rejects.toMatchObject({ kind: "validation" });
    expect(server.requests).toHaveLength(1);

    server.requests.length = 0;
    failFirst(100, { status: 500, reason: "no such user ('x@pve')", body: { data: null } });
    await expect(client().get("/access/users/x@pve")).rejects.toMatchObject({ kind: "notFound" });
    expect(server.requests).toHaveLength(1);
  });

  it("retries writes on PVE's contention errors: lock timeout and no worker upid", async () => {
    failFirst(2, LOCK_TIMEOUT);
    await expect(client().post("/nodes/pve/qemu/100/clone", { newid: 101 })).resolves.toBe("done");
    expect(server.requests).toHaveLength(3);

    server.requests.length = 0;
    failFirst(1, NO_WORKER);
    await expect(client().post("/nodes/pve/qemu", { vmid: 100 })).resolves.toBe("done");
    expect(server.requests).toHaveLength(2);
  });

  it("retries 'VM is locked' only for writes that opt in", async () => {
    failFirst(1, VM_LOCKED);
    await expect(client().post("/nodes/pve/qemu/100/status/start")).rejects.toMatchObject({ kind: "locked" });
    expect(server.requests).toHaveLength(1);

    server.requests.length = 0;
    failFirst(1, VM_LOCKED);
    await expect(client().qemu.start("pve", 100)).resolves.toBe("done");
    expect(server.requests).toHaveLength(2);
  });

  it("does not retry a write on a plain 500, on 'already exists', or on a 4xx", async () => {
    for (const failure of [SERVER_500, ALREADY_EXISTS, { status: 403, reason: "Permission check failed (/vms/100, VM.Allocate)" }]) {
      server.requests.length = 0;
      failFirst(1, failure);
      await expect(client().post("/nodes/pve/qemu", { vmid: 100 })).rejects.toBeInstanceOf(PveApiError);
      expect(server.requests).toHaveLength(1);
    }
  });

  it("does not retry a write whose connection broke mid-request (it may have been applied)", async () => {
    failFirst(1, RESET);
    const err = (await client().post("/nodes/pve/qemu", { vmid: 100 }).catch((e: unknown) => e)) as PveApiError;
    expect(err.kind).toBe("network");
    expect(err.notSent).toBe(false);
    expect(server.requests).toHaveLength(1);
  });

  it("retries a write refused before sending (connection refused), within the bound", async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const clock = new FakeClock();
    const c = client(clock, `https://127.0.0.1:${port}`);
    const err = (await c.post("/pools", { poolid: "p" }).catch((e: unknown) => e)) as PveApiError;
    expect(err.kind).toBe("network");
    expect(err.code).toBe("ECONNREFUSED");
    expect(err.notSent).toBe(true);
    expect(c.stats.requests).toBe(POLICY.maxAttempts);
    expect(err.message).toContain(`127.0.0.1:${port}`);
  });

  it("times out a request with a message naming the method and path", async () => {
    server.setHandler(() => ({ delayMs: 500, body: { data: null } }));
    const c = new PveClient({
      endpoint: server.endpoint,
      credentials: { kind: "token", tokenId: "ci@pve!retry", secret: "0f0f0f0f-1111-4222-8333-444444444444" },
      tls: { caCert: testPki().caCert },
      requestTimeoutMs: 50,
      writeRetry: POLICY,
    });
    const err = (await c.put("/nodes/pve/qemu/100/config", { memory: 2048 }).catch((e: unknown) => e)) as PveApiError;
    expect(err.kind).toBe("timeout");
    expect(err.message).toContain("PUT /nodes/pve/qemu/100/config");
    expect(err.message).toContain("50 ms");
    expect(c.stats.requests).toBe(1);
  });
});
