// The client against the PVE simulator (test/simulator), in addition to the scripted-server
// tests: ticket login with CSRF on writes, and write retries on contention that give up
// after their bound with PVE's error.
import { PveClient } from "../../../provider/proxmox/client";
import { PveApiError } from "../../../provider/proxmox/errors";
import { destroyAgents } from "../../../provider/proxmox/http";
import type { RetryPolicy } from "../../../provider/proxmox/retry";
import { startSimulator, type RunningSimulator } from "../../simulator/index";
import { call } from "../../simulator/tests/core-http";
import { FakeClock } from "../helpers/fake-clock";

afterAll(() => destroyAgents());

describe("ticket authentication against the simulator", () => {
  let s: RunningSimulator;
  beforeAll(async () => {
    s = await startSimulator({ seed: 51 });
  });
  afterAll(() => s.stop());

  test("the simulator refuses a ticket write without CSRFPreventionToken; the client's writes carry it", async () => {
    const login = await call(s, "POST", "/access/ticket", { form: { username: "root@pam", password: s.sim.options.rootPassword } });
    expect(login.status).toBe(200);
    const { ticket, CSRFPreventionToken: csrf } = login.body.data;
    const bare = await call(s, "POST", "/pools", { ticket, form: { poolid: "nocsrf" } });
    expect([bare.status, bare.reason, bare.text]).toEqual([401, "Permission denied - invalid csrf token", ""]);
    expect((await call(s, "POST", "/pools", { ticket, csrf, form: { poolid: "withcsrf" } })).status).toBe(200);

    const client = new PveClient({
      endpoint: s.url,
      credentials: { kind: "password", username: "root@pam", password: s.sim.options.rootPassword },
      tls: { caCert: s.caCert },
    });
    const from = s.sim.requestLog.length;
    await client.post("/pools", { poolid: "viaclient", comment: "made with a ticket" });
    expect(await client.get("/pools", { poolid: "viaclient" })).toEqual([expect.objectContaining({ poolid: "viaclient", comment: "made with a ticket" })]);
    const log = s.sim.requestLog.slice(from).map((e) => [e.method, e.path, e.status, e.principal]);
    expect(log).toEqual([
      ["POST", "/access/ticket", 200, undefined],
      ["POST", "/pools", 200, "root@pam"],
      ["GET", "/pools", 200, "root@pam"],
    ]);
    const pools = (await call(s, "GET", "/pools", { token: s.rootToken })).body.data.map((p: any) => p.poolid).sort();
    expect(pools).toEqual(["viaclient", "withcsrf"]);
  });
});

describe("write retries on contention against the simulator", () => {
  let s: RunningSimulator;
  const POLICY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 1000, maxDelayMs: 8000, maxElapsedMs: 120_000 };
  beforeAll(async () => {
    // timeFactor 0.001: PVE's 10 s flock timeout takes 10 ms
    s = await startSimulator({ seed: 52, timeFactor: 0.001 });
    const st = await call(s, "POST", "/nodes/pve1/qemu", { token: s.rootToken, form: { vmid: 100, memory: 2048 } });
    expect(st.status).toBe(200);
    await s.sim.ext.cluster.tasks.idle();
  });
  afterAll(() => s.stop());
  afterEach(() => s.sim.faults.clear());

  function client(clock: FakeClock, policy = POLICY): PveClient {
    const [tokenId, secret] = [s.rootToken.slice(0, s.rootToken.indexOf("=")), s.rootToken.slice(s.rootToken.indexOf("=") + 1)];
    return new PveClient({ endpoint: s.url, credentials: { kind: "token", tokenId, secret }, tls: { caCert: s.caCert }, clock, random: () => 0.5, writeRetry: policy });
  }
  const puts = (from: number) => s.sim.requestLog.slice(from).filter((e) => e.method === "PUT").map((e) => e.status);

  test("a flock that stays busy: maxAttempts PUTs, then PVE's lock timeout surfaces", async () => {
    s.sim.faults.configure({ lockContention: 1 });
    const clock = new FakeClock();
    const from = s.sim.requestLog.length;
    const err = await client(clock).put("/nodes/pve1/qemu/100/config", { memory: 1024 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PveApiError);
    expect(err).toMatchObject({ kind: "lockTimeout", status: 500 });
    expect((err as Error).message).toContain("can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout");
    expect(puts(from)).toEqual([500, 500, 500, 500]);
    expect(clock.sleeps).toEqual([750, 1500, 3000]);
    expect(s.sim.faults.injected.lockContention).toBe(4);
    s.sim.faults.clear();
    expect((await call(s, "GET", "/nodes/pve1/qemu/100/config", { token: s.rootToken })).body.data.memory).toBe("2048");
  });

  test("the elapsed-time bound stops retries before maxAttempts", async () => {
    s.sim.faults.configure({ lockContention: 1 });
    const from = s.sim.requestLog.length;
    const err = await client(new FakeClock(), { ...POLICY, maxAttempts: 100, maxElapsedMs: 5000 }).put("/nodes/pve1/qemu/100/config", { memory: 1024 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: "lockTimeout" });
    // sleeps of 750 and 1500 fit in 5 s, the next one (3000) would not
    expect(puts(from)).toEqual([500, 500, 500]);
  });

  test("`VM is locked (backup)`: retried only when the write opts in, then surfaced", async () => {
    s.sim.ext.cluster.vms.get(100).config.current.lock = "backup";
    try {
      let from = s.sim.requestLog.length;
      const once = await client(new FakeClock()).put("/nodes/pve1/qemu/100/config", { memory: 1024 }).catch((e: unknown) => e);
      expect(once).toMatchObject({ kind: "locked", status: 500 });
      expect(puts(from)).toEqual([500]);

      from = s.sim.requestLog.length;
      const bounded = await client(new FakeClock()).put("/nodes/pve1/qemu/100/config", { memory: 1024 }, { retryOnLocked: true }).catch((e: unknown) => e);
      expect(bounded).toMatchObject({ kind: "locked" });
      expect((bounded as Error).message).toContain("VM is locked (backup)");
      expect(puts(from)).toEqual([500, 500, 500, 500]);
    } finally {
      delete s.sim.ext.cluster.vms.get(100).config.current.lock;
    }
    // once the lock is gone, the same write goes through
    await client(new FakeClock()).put("/nodes/pve1/qemu/100/config", { memory: 1024 }, { retryOnLocked: true });
    expect((await call(s, "GET", "/nodes/pve1/qemu/100/config", { token: s.rootToken })).body.data.memory).toBe("1024");
  });
});
