import { PveClient } from "../../../provider/proxmox/client";
import { PveTaskError } from "../../../provider/proxmox/errors";
import { destroyAgents } from "../../../provider/proxmox/http";
import { parseUpid, isUpid } from "../../../provider/proxmox/upid";
import { startHttpsServer, testPki, type TestServer, type RecordedRequest } from "../helpers/https-server";
import { FakeClock, RecordingLogger } from "../helpers/fake-clock";
import { readFixture, readReferenceText } from "../helpers/pve-api";

const UPID = "UPID:pve:00061CB3:010BA69C:64EFECB0:qmclone:9000:ci@pve!deploy:";
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

function client(clock?: FakeClock, logger?: RecordingLogger): PveClient {
  return new PveClient({
    endpoint: server.endpoint,
    credentials: { kind: "token", tokenId: "ci@pve!deploy", secret: "12345678-1234-4234-8234-123456789abc" },
    tls: { caCert: testPki().caCert },
    clock,
    logger,
  });
}

function status(extra: Record<string, unknown>): { body: unknown } {
  return { body: { data: { upid: UPID, node: "pve", pid: 400563, pstart: 17539740, starttime: 1693445296, type: "qmclone", id: "9000", user: "ci@pve", tokenid: "deploy", ...extra } } };
}

/** Answers `running` for the first `runningPolls` status checks, then `final`. */
function taskServer(runningPolls: number, exitstatus: string, log: string[]): void {
  let polls = 0;
  server.setHandler((req: RecordedRequest) => {
    if (req.path.endsWith("/status")) {
      polls++;
      return polls <= runningPolls ? status({ status: "running" }) : status({ status: "stopped", exitstatus });
    }
    if (req.path.endsWith("/log")) {
      const start = Number(req.query.get("start") ?? 0);
      const limit = Number(req.query.get("limit") ?? 50);
      const lines = log.map((t, i) => ({ n: i + 1, t })).slice(start, start + limit);
      return { body: { data: lines, total: log.length } };
    }
    return { status: 501, reason: "not implemented" };
  });
}

describe("UPIDs", () => {
  it("parses the example from BEHAVIOURS.md, with the trailing colon, and token users", () => {
    expect(readReferenceText("BEHAVIOURS.md")).toContain("UPID:pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam:");
    expect(parseUpid("UPID:pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam:")).toEqual({
      upid: "UPID:pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam:",
      node: "pve",
      pid: 0x61cb3,
      pstart: 0x10ba69c,
      starttime: 0x64efecb0,
      type: "qmcreate",
      id: "101",
      user: "root@pam",
    });
    expect(parseUpid(UPID).user).toBe("ci@pve!deploy");
    expect(parseUpid("UPID:node-1:0000ABCD:123456789:64EFECB0:imgcopy::root@pam:").id).toBe("");
  });

  it("parses every UPID in the fixtures and rejects malformed ones", () => {
    const tasks = readFixture<Array<{ upid: string; node: string; type: string }>>("node-tasks-list.data.json");
    for (const t of tasks) expect(parseUpid(t.upid)).toMatchObject({ node: t.node, type: t.type });
    expect(isUpid("UPID:pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam")).toBe(false);
    expect(isUpid("UPID:-pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam:")).toBe(false);
    expect(() => parseUpid("not-a-upid")).toThrow(/not a PVE task id/);
  });
});

describe("waitForTask", () => {
  it("returns on OK, polling the URL-encoded status path after 100 ms, then every 200 ms", async () => {
    taskServer(3, "OK", ["TASK OK"]);
    const clock = new FakeClock();
    const c = client(clock);
    const result = await c.tasks.wait(UPID);
    expect(result).toMatchObject({ exitstatus: "OK", warnings: 0, polls: 4, node: "pve", type: "qmclone", id: "9000" });
    expect(clock.sleeps[0]).toBeLessThanOrEqual(100);
    // a task's end is noticed within 200 ms (250 ms at the 95th percentile with the request: BENCHMARKS.md)
    expect(clock.sleeps).toEqual([100, 200, 200, 200]);
    expect(server.requests[0].path).toBe(`/nodes/pve/tasks/${encodeURIComponent(UPID)}/status`);
    expect(c.stats.taskPolls).toBe(4);
    expect(c.stats.tasksWaited).toBe(1);
  });

  it("polls long tasks every 0.5% of the time waited, capped at 2 s", async () => {
    taskServer(800, "OK", ["TASK OK"]);
    const clock = new FakeClock();
    await client(clock).tasks.wait(UPID, { timeoutMs: 20 * 60_000 });
    expect(clock.sleeps.slice(1, 200).every((s) => s === 200)).toBe(true); // first 40 s: 200 ms
    let waited = clock.sleeps[0];
    for (const s of clock.sleeps.slice(1)) {
      expect(s).toBeCloseTo(Math.min(2000, Math.max(200, waited * 0.005)), 3);
      waited += s;
    }
    expect(Math.max(...clock.sleeps)).toBe(2000);
    expect(clock.sleeps.filter((s) => s === 2000).length).toBeGreaterThan(5);
  });

  it("makes the first status check within ~100 ms of real time", async () => {
    taskServer(0, "OK", ["TASK OK"]);
    const started = Date.now();
    let firstPollAt = 0;
    server.setHandler(() => {
      firstPollAt ||= Date.now();
      return status({ status: "stopped", exitstatus: "OK" });
    });
    await client().tasks.wait(UPID);
    expect(firstPollAt - started).toBeGreaterThanOrEqual(90);
    expect(firstPollAt - started).toBeLessThan(2000);
  });

  it("treats WARNINGS: n as success and logs the warning lines", async () => {
    taskServer(1, "WARNINGS: 2", ["starting", "WARN: volume 'x' is not active", "WARN: disk is full-ish", "TASK WARNINGS: 2"]);
    const logger = new RecordingLogger();
    const result = await client(new FakeClock(), logger).tasks.wait(UPID);
    expect(result.warnings).toBe(2);
    expect(result.exitstatus).toBe("WARNINGS: 2");
    expect(logger.warnings).toEqual([
      `task qmclone (${UPID}): WARN: volume 'x' is not active`,
      `task qmclone (${UPID}): WARN: disk is full-ish`,
    ]);
  });

  it("throws PveTaskError with the type, the exit status and the last 10 log lines", async () => {
    const log = Array.from({ length: 120 }, (_, i) => `line ${i + 1}`);
    log.push("TASK ERROR: clone failed: can't lock file '/var/lock/qemu-server/lock-9000.conf' - got timeout");
    taskServer(2, "clone failed: can't lock file '/var/lock/qemu-server/lock-9000.conf' - got timeout", log);
    const err = (await client(new FakeClock()).tasks.wait(UPID).catch((e: unknown) => e)) as PveTaskError;
    expect(err).toBeInstanceOf(PveTaskError);
    expect(err.type).toBe("qmclone");
    expect(err.exitstatus).toMatch(/^clone failed/);
    expect(err.kind).toBe("lockTimeout");
    expect(err.logTail).toHaveLength(10);
    expect(err.logTail[9]).toMatch(/^TASK ERROR: clone failed/);
    expect(err.logTail[0]).toBe("line 112");
    expect(err.message).toContain("task qmclone 9000 on node 'pve'");
    const logRequests = server.requests.filter((r) => r.path.endsWith("/log"));
    expect(logRequests.map((r) => [r.query.get("start"), r.query.get("limit")])).toEqual([
      ["0", "50"],
      ["111", "10"],
    ]);
  });

  it("reads a short log in one request", async () => {
    taskServer(0, "some error occurred", ["task started", "TASK ERROR: some error occurred"]);
    const err = (await client(new FakeClock()).tasks.wait(UPID).catch((e: unknown) => e)) as PveTaskError;
    expect(err.logTail).toEqual(["task started", "TASK ERROR: some error occurred"]);
    expect(server.requests.filter((r) => r.path.endsWith("/log"))).toHaveLength(1);
  });

  it("times out naming the task, the UPID, how long it waited, and that it may still run", async () => {
    taskServer(10_000, "OK", []);
    const clock = new FakeClock();
    const err = (await client(clock).tasks.wait(UPID, { timeoutMs: 30_000 }).catch((e: unknown) => e)) as PveTaskError;
    expect(err).toBeInstanceOf(PveTaskError);
    expect(err.timedOut).toBe(true);
    expect(err.kind).toBe("timeout");
    expect(err.message).toContain(UPID);
    expect(err.message).toContain("qmclone");
    expect(err.message).toContain("within 30 s");
    expect(err.message).toContain("may still be running");
  });

  it("accepts the recorded task-status fixtures", async () => {
    const ok = readFixture<{ data: Record<string, unknown> }>("task-status-stopped-ok.json");
    const upid = String(ok.data.upid);
    server.setHandler(() => ({ body: ok }));
    await expect(client(new FakeClock()).tasks.wait(upid)).resolves.toMatchObject({ exitstatus: "OK" });
    const failed = readFixture<{ data: Record<string, unknown> }>("task-status-stopped-error.json");
    const log = readFixture("task-log.json");
    server.setHandler((req) => (req.path.endsWith("/log") ? { body: log } : { body: failed }));
    const err = (await client(new FakeClock()).tasks.wait(String(failed.data.upid)).catch((e: unknown) => e)) as PveTaskError;
    expect(err.exitstatus).toBe("some error occurred");
    expect(err.logTail).toEqual(["task started", "processing step 1", "processing step 2", "processing step 3", "task completed successfully"]);
  });
});
