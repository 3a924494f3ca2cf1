// Fault injection seen through the API: connection resets and 500s, lost responses, failed
// tasks, slow tasks and flock contention, each driven over HTTPS against a started simulator,
// and each the same for the same seed (and different for another one).
import { startSimulator } from "../index";
import type { FaultConfig } from "../faults";
import { Api, createVm, startApi } from "./cluster-helpers";
import { call } from "./core-http";

const START = Date.UTC(2026, 0, 5, 9, 0, 0);
const LOCK_TIMEOUT = "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout";

/** Runs `scenario` for seeds a, a, b and checks: same seed, same result; other seed, other result. */
async function reproducible<T>(scenario: (seed: number) => Promise<T>, a = 31, b = 32): Promise<T> {
  const first = await scenario(a);
  expect(await scenario(a)).toEqual(first);
  expect(await scenario(b)).not.toEqual(first);
  return first;
}

describe("request faults over HTTPS", () => {
  test("resets and 500s hit the same requests for the same seed; the request log says which", async () => {
    const outcomes = await reproducible(async (seed) => {
      const s = await startSimulator({ seed, faults: { rules: [{ method: "GET", path: "/version", resetRate: 0.2, errorRate: 0.3 }] } });
      try {
        const out: string[] = [];
        for (let i = 0; i < 30; i++) {
          const r = await call(s, "GET", "/version", { token: s.rootToken }).then(
            (x) => `${x.status} ${x.reason}`,
            (e: NodeJS.ErrnoException) => (/socket hang up|ECONNRESET/.test(e.message) ? "reset" : `unexpected ${e.message}`),
          );
          out.push(r);
        }
        const logged = s.sim.requestLog.filter((e) => e.path === "/version").map((e) => e.fault ?? String(e.status));
        expect(logged).toEqual(out.map((o) => (o === "reset" ? "reset" : o.startsWith("500") ? "error" : "200")));
        return out;
      } finally {
        await s.stop();
      }
    });
    expect(new Set(outcomes)).toEqual(new Set(["200 OK", "reset", "500 unable to read file '/etc/pve/user.cfg' - got timeout"]));
  });

  test("a reset write did nothing; a lost response's write was carried out", async () => {
    const s = await startSimulator({ seed: 33 });
    try {
      s.sim.faults.addRule({ method: "POST", path: "/pools", resetRate: 1, times: 1 });
      await expect(call(s, "POST", "/pools", { token: s.rootToken, form: { poolid: "reset" } })).rejects.toThrow(/socket hang up|ECONNRESET/);
      s.sim.faults.addRule({ method: "POST", path: "/pools", lostResponseRate: 1, times: 1 });
      await expect(call(s, "POST", "/pools", { token: s.rootToken, form: { poolid: "lost" } })).rejects.toThrow(/socket hang up|ECONNRESET/);
      const pools = (await call(s, "GET", "/pools", { token: s.rootToken })).body.data.map((p: any) => p.poolid);
      expect(pools).toEqual(["lost"]);
      expect(s.sim.requestLog.filter((e) => e.method === "POST").map((e) => e.fault)).toEqual(["reset", "lostResponse"]);
    } finally {
      await s.stop();
    }
  });
});

/** Starts and stops VM 100 `n` times; returns each start task's exit status and last log line. */
async function startCycles(api: Api, n: number): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < n; i++) {
    const upid = await api.ok("POST", "/nodes/pve1/qemu/100/status/start");
    const st = await api.waitTask("pve1", upid);
    out.push([st.exitstatus, (await api.log("pve1", upid)).at(-1)!]);
    const running = (await api.ok("GET", "/nodes/pve1/qemu/100/status/current")).status === "running";
    expect(running).toBe(st.exitstatus === "OK");
    if (running) expect((await api.task("POST", "/nodes/pve1/qemu/100/status/stop")).exitstatus).toBe("OK");
  }
  return out;
}

/** Puts a fault configuration in place through the back door. */
async function setFaults(api: Api, config: FaultConfig): Promise<void> {
  const r = await call(api.s, "PUT", "/faults", { prefix: "/_sim", token: api.s.rootToken, json: config });
  expect(r.status).toBe(200);
}

describe("task faults over HTTPS", () => {
  test("failed tasks end with TASK ERROR and the message as exitstatus; the same ones for the same seed", async () => {
    const message = "injected: storage 'local-lvm' is not online";
    const results = await reproducible(async (seed) => {
      const api = await startApi({ seed });
      try {
        await createVm(api, 100);
        await setFaults(api, { tasks: { failRate: 0.4, failMessage: message, types: ["qmstart"] } });
        const out = await startCycles(api, 12);
        expect(api.s.sim.faults.injected.failedTasks).toBe(out.filter(([st]) => st !== "OK").length);
        return out;
      } finally {
        await api.stop();
      }
    });
    expect(results).toContainEqual(["OK", "TASK OK"]);
    expect(results).toContainEqual([message, `TASK ERROR: ${message}`]);
    expect(results.every(([st, last]) => (st === "OK" ? last === "TASK OK" : st === message && last === `TASK ERROR: ${message}`))).toBe(true);
  });

  test("slow tasks take slowFactor times their PVE time; the same ones for the same seed", async () => {
    const spans = await reproducible(async (seed) => {
      const api = await startApi({ seed, virtualTime: { startMs: START }, cluster: { latency: { forkMs: 0, startMs: 6000 } } });
      try {
        await createVm(api, 100);
        await setFaults(api, { tasks: { slowFactor: 4, slowRate: 0.5, types: ["qmstart"] } });
        await startCycles(api, 10);
        const list = await api.ok("GET", "/nodes/pve1/tasks", { typefilter: "qmstart", limit: 100 });
        const out = list.map((t: any) => t.endtime - t.starttime).reverse();
        expect(api.s.sim.faults.injected.slowTasks).toBe(out.filter((d: number) => d >= 24).length);
        return out;
      } finally {
        await api.stop();
      }
    });
    expect(spans).toHaveLength(10);
    expect(spans.every((d: number) => d === 6 || d === 24)).toBe(true);
    expect(spans).toContain(6);
    expect(spans).toContain(24);
  });
});

describe("lock contention over HTTPS", () => {
  test("a contended flock fails the write with PVE's timeout and changes nothing; the same writes for the same seed", async () => {
    const results = await reproducible(async (seed) => {
      // timeFactor 0.001: the 10 s flock timeout takes 10 ms
      const api = await startApi({ seed, timeFactor: 0.001 });
      try {
        await createVm(api, 100);
        await setFaults(api, { lockContention: 0.4 });
        const out: string[] = [];
        for (let i = 0; i < 12; i++) {
          const r = await api.req("PUT", "/nodes/pve1/qemu/100/config", { description: `write ${i}` });
          out.push(`${r.status} ${r.reason}`);
          const desc = (await api.ok("GET", "/nodes/pve1/qemu/100/config")).description;
          if (r.status === 200) expect(desc).toBe(`write ${i}`);
          else expect(desc).not.toBe(`write ${i}`);
        }
        expect(api.s.sim.faults.injected.lockContention).toBe(out.filter((o) => o.startsWith("500")).length);
        return out;
      } finally {
        await api.stop();
      }
    });
    expect(new Set(results)).toEqual(new Set(["200 OK", `500 ${LOCK_TIMEOUT}`]));
  });
});
