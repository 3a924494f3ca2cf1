// Fault injection: deterministic under a seed; errors, resets, latency; runtime
// configuration through the back door; task-level hooks.

import https from "https";
import { Faults } from "../faults";
import { RunningSimulator, startSimulator } from "../index";
import { deriveRng } from "../rng";
import { call } from "./core-http";

async function statuses(seed: number, n: number): Promise<number[]> {
  const s = await startSimulator({ seed, faults: { rules: [{ method: "GET", path: "/version", errorRate: 0.5 }] } });
  try {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await call(s, "GET", "/version", { token: s.rootToken })).status);
    return out;
  } finally {
    await s.stop();
  }
}

test("the same seed gives the same fault sequence; another seed another", async () => {
  const a = await statuses(42, 24);
  const b = await statuses(42, 24);
  const c = await statuses(43, 24);
  expect(a).toEqual(b);
  expect(a).not.toEqual(c);
  expect(a).toContain(500);
  expect(a).toContain(200);
});

describe("request faults", () => {
  let s: RunningSimulator;
  const h = () => ({ Authorization: `SimAdmin ${s.adminSecret}` });
  beforeAll(async () => {
    s = await startSimulator({ seed: 1 });
  });
  afterAll(() => s.stop());
  afterEach(() => s.sim.faults.clear());

  test("an error rule answers 500 with a PVE-like message, matched by route template", async () => {
    s.sim.faults.addRule({ method: "GET", path: "/access/users/{userid}", errorRate: 1 });
    const r = await call(s, "GET", "/access/users/root@pam", { token: s.rootToken });
    expect(r.status).toBe(500);
    expect(r.body.data).toBeNull();
    expect(r.body.message).toMatch(/\n$/);
    expect((await call(s, "GET", "/version", { token: s.rootToken })).status).toBe(200);
    expect(s.sim.requestLog.at(-2)?.fault).toBe("error");
  });
  test("custom status/message; `times` limits a rule", async () => {
    s.sim.faults.addRule({ path: "/version", errorRate: 1, times: 2, error: { status: 503, message: "try again" } });
    const got = [];
    for (let i = 0; i < 3; i++) got.push((await call(s, "GET", "/version", { token: s.rootToken })).status);
    expect(got).toEqual([503, 503, 200]);
  });
  test("regex rules match concrete paths", async () => {
    s.sim.faults.addRule({ path: "/^\\/access\\//", errorRate: 1 });
    expect((await call(s, "GET", "/access/roles", { token: s.rootToken })).status).toBe(500);
    expect((await call(s, "GET", "/version", { token: s.rootToken })).status).toBe(200);
  });
  test("a reset destroys the connection without a response", async () => {
    s.sim.faults.addRule({ path: "/version", resetRate: 1 });
    await expect(call(s, "GET", "/version", { token: s.rootToken })).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect(s.sim.requestLog.at(-1)?.fault).toBe("reset");
  });
  test("latency is added", async () => {
    s.sim.faults.addRule({ path: "/version", latencyMs: 150 });
    const t0 = Date.now();
    await call(s, "GET", "/version", { token: s.rootToken });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });
  test("faults are configured at runtime through the back door", async () => {
    const put = await call(s, "PUT", "/faults", { prefix: "/_sim", headers: h(), json: { rules: [{ path: "/version", errorRate: 1 }] } });
    expect(put.status).toBe(200);
    expect((await call(s, "GET", "/version", { token: s.rootToken })).status).toBe(500);
    const cfg = await call(s, "GET", "/faults", { prefix: "/_sim", headers: h() });
    expect(cfg.body.data.rules).toEqual([{ path: "/version", errorRate: 1 }]);
    await call(s, "DELETE", "/faults", { prefix: "/_sim", headers: h() });
    expect((await call(s, "GET", "/version", { token: s.rootToken })).status).toBe(200);
  });
  test("faults apply only to authenticated, routed requests (auth happens first)", async () => {
    s.sim.faults.addRule({ path: "*", errorRate: 1 });
    expect((await call(s, "GET", "/version")).status).toBe(401);
    await new Promise<void>((resolve, reject) => {
      https.get(`${s.url}/api2/json/version`, { ca: s.caCert, agent: false }, (res) => (res.statusCode === 401 ? resolve() : reject(new Error(String(res.statusCode))))).on("error", reject);
    });
  });
});

describe("task-level hooks", () => {
  test("deterministic failure, slow factor, lock contention", () => {
    const mk = () => new Faults(deriveRng(7, "faults"), { tasks: { failRate: 0.5, failMessage: "boom", slowFactor: 3, types: ["qmclone"] }, lockContention: 0.5 });
    const a = mk();
    const b = mk();
    const seqA = Array.from({ length: 20 }, () => a.taskFailure("qmclone"));
    const seqB = Array.from({ length: 20 }, () => b.taskFailure("qmclone"));
    expect(seqA).toEqual(seqB);
    expect(seqA).toContain("boom");
    expect(seqA).toContain(undefined);
    expect(a.taskFailure("qmstart")).toBeUndefined();
    expect(a.taskSlowFactor("qmclone")).toBe(3);
    expect(a.taskSlowFactor("qmstart")).toBe(1);
    const locks = Array.from({ length: 20 }, () => a.lockContention(100));
    expect(locks).toContain(true);
    expect(locks).toContain(false);
    expect(Faults.lockTimeoutMessage(100)).toBe("can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout");
  });
});
