// Task waits of one client that run side by side (a fleet's shutdowns, deletes, clones) spread
// their poll phases and share the ends they see (provider/proxmox/task-cohorts.ts).

import { TasksApi } from "../../../provider/proxmox/tasks";
import { SHARED_POLLS } from "../../../provider/proxmox/task-cohorts";
import type { Requester } from "../../../provider/proxmox/requester";
import { EventClock } from "../helpers/event-clock";


interface FakeTask {
  endAt: number;
  exitstatus: string;
  polls: number[];
}

/** A requester whose task status answers from `tasks` (by UPID) after `rttMs` of clock time. */
function fakeRequester(clock: EventClock, tasks: Map<string, FakeTask>, rttMs = 5): Requester {
  const stats = { requests: 0, retries: 0, taskPolls: 0, tasksWaited: 0 } as unknown as Requester["stats"];
  const get = async <T>(path: string): Promise<T> => {
    const m = /\/tasks\/([^/]+)\/status$/.exec(path);
    if (!m) throw new Error(`unexpected GET ${path}`);
    const upid = decodeURIComponent(m[1]);
    const t = tasks.get(upid)!;
    t.polls.push(clock.now());
    await clock.sleep(rttMs);
    const stopped = clock.now() - rttMs / 2 >= t.endAt;
    const [, node, , , , type, id] = upid.split(":");
    return { upid, node, type, id, user: "root@pam", pid: 1, pstart: 1, starttime: 1, status: stopped ? "stopped" : "running", ...(stopped ? { exitstatus: t.exitstatus } : {}) } as T;
  };
  const request = async <T>(_m: string, path: string) => {
    if (/\/log$/.test(path)) return { data: [{ n: 1, t: "TASK ERROR: boom" }] as unknown as T, total: 1 };
    throw new Error(`unexpected request ${path}`);
  };
  return { logger: { debug() {}, info() {}, warn() {}, error() {} }, clock, stats, get, request, post: get, put: get, del: get } as unknown as Requester;
}

let seq = 0;
function upid(node: string, type: string, vmid: number): string {
  seq++;
  return `UPID:${node}:${seq.toString(16).toUpperCase().padStart(8, "0")}:00D7F9C0:6B10CA60:${type}:${vmid}:root@pam:`;
}

/** Starts `n` tasks of `type` on `node`, `gapMs` apart, each ending `durationMs(i)` after its start. */
async function fleet(api: TasksApi, clock: EventClock, tasks: Map<string, FakeTask>, n: number, o: { node?: string; type?: string; gapMs?: number; durationMs: (i: number) => number; exitstatus?: (i: number) => string }) {
  const waits: Array<Promise<{ upid: string; seenAt: number } | Error>> = [];
  for (let i = 0; i < n; i++) {
    if (i && o.gapMs) await clock.sleep(o.gapMs);
    const u = upid(o.node ?? "pve1", o.type ?? "qmshutdown", 100 + i);
    tasks.set(u, { endAt: clock.now() + o.durationMs(i), exitstatus: o.exitstatus?.(i) ?? "OK", polls: [] });
    waits.push(
      api.wait(u).then(
        () => ({ upid: u, seenAt: clock.now() }),
        (e: Error) => e,
      ),
    );
  }
  return Promise.all(waits);
}

describe("task waits of a fleet (task-cohorts.ts)", () => {
  it("a lone wait keeps the plain schedule: 100 ms, then every 200 ms", async () => {
    const clock = new EventClock();
    const tasks = new Map<string, FakeTask>();
    const api = new TasksApi(fakeRequester(clock, tasks, 0));
    const [r] = await clock.run(fleet(api, clock, tasks, 1, { durationMs: () => 3050 }));
    const t = tasks.get((r as { upid: string }).upid)!;
    expect(t.polls.slice(0, 4)).toEqual([100, 300, 500, 700]);
    expect(t.polls.at(-1)).toBe(3100);
  });

  it.each([3050, 3120, 3180])("ten shutdowns of %i ms started together: every end noticed within interval/n + the request, not up to 200 ms; about one extra poll each", async (ms) => {
    const clock = new EventClock();
    const tasks = new Map<string, FakeTask>();
    const api = new TasksApi(fakeRequester(clock, tasks));
    const results = await clock.run(fleet(api, clock, tasks, 10, { gapMs: 3, durationMs: () => ms }));
    const late = results.map((r) => {
      const ok = r as { upid: string; seenAt: number };
      return ok.seenAt - tasks.get(ok.upid)!.endAt;
    });
    // ten phases frac(k·φ) leave no gap over 0.146 of the 200 ms interval (29 ms): the first end
    // is seen within that and its request; a sibling looks at its own start plus that time,
    // one request more
    expect(Math.max(...late)).toBeLessThanOrEqual(29 + 5 + 5 + 3);
    // the plain schedule: 1 + ceil((ms - 100) / 200) polls; shifted phases and shared ends: ≤ 2 more
    const polls = [...tasks.values()].map((t) => t.polls.length);
    expect(Math.max(...polls)).toBeLessThanOrEqual(1 + Math.ceil((ms - 100) / 200) + 2);
  });

  it("a lone wait keeps to its grid: a task ending just after a poll is seen up to an interval late (what a cohort avoids)", async () => {
    const clock = new EventClock();
    const tasks = new Map<string, FakeTask>();
    const api = new TasksApi(fakeRequester(clock, tasks));
    const [r] = await clock.run(fleet(api, clock, tasks, 1, { durationMs: () => 3120 }));
    const ok = r as { upid: string; seenAt: number };
    const t = tasks.get(ok.upid)!;
    // polls due at 100, 300, ... 3100 (not drifting by the 5 ms requests), 3300
    expect(t.polls.slice(0, 3)).toEqual([100, 300, 500]);
    expect(ok.seenAt - t.endAt).toBeGreaterThan(150);
  });

  it("tasks of another type or node are not siblings", async () => {
    const clock = new EventClock();
    const tasks = new Map<string, FakeTask>();
    const api = new TasksApi(fakeRequester(clock, tasks, 0));
    const [a, b] = await clock.run(
      Promise.all([fleet(api, clock, tasks, 1, { type: "qmshutdown", durationMs: () => 450 }), fleet(api, clock, tasks, 1, { node: "pve2", type: "qmshutdown", durationMs: () => 3050 })]),
    );
    const c = await clock.run(Promise.all([fleet(api, clock, tasks, 1, { type: "qmdestroy", durationMs: () => 450 }), fleet(api, clock, tasks, 1, { type: "qmstart", durationMs: () => 3050 })]));
    // each kept the plain schedule: no early look after the other's end
    for (const r of [a[0], b[0], c[0][0], c[1][0]]) {
      const t = tasks.get((r as { upid: string }).upid)!;
      const gaps = t.polls.slice(1).map((p, i) => p - t.polls[i]);
      expect(gaps.every((g) => g === 200)).toBe(true);
    }
  });

  it("siblings of different lengths: at most SHARED_POLLS extra looks per wait", async () => {
    const clock = new EventClock();
    const tasks = new Map<string, FakeTask>();
    const api = new TasksApi(fakeRequester(clock, tasks, 0));
    // copies sharing a storage: the i-th ends i × 1.5 s after the first
    await clock.run(fleet(api, clock, tasks, 8, { type: "qmclone", durationMs: (i) => 2000 + i * 1500 }));
    for (const t of tasks.values()) {
      // all started at 0: the first poll, the 200 ms grid to the end, the shifted second poll
      const plain = 1 + Math.ceil((t.endAt - 100) / 200) + 1;
      expect(t.polls.length).toBeLessThanOrEqual(plain + SHARED_POLLS);
    }
  });

  it("a failed task does not wake its siblings", async () => {
    const clock = new EventClock();
    const tasks = new Map<string, FakeTask>();
    const api = new TasksApi(fakeRequester(clock, tasks, 0));
    const results = await clock.run(fleet(api, clock, tasks, 2, { type: "qmdestroy", durationMs: (i) => (i === 0 ? 150 : 3050), exitstatus: (i) => (i === 0 ? "boom" : "OK") }));
    expect(results[0]).toBeInstanceOf(Error);
    const second = tasks.get((results[1] as { upid: string }).upid)!;
    // the shifted second poll, then the plain grid: no look at 150 + ε after the failure
    const gaps = second.polls.slice(2).map((p, i) => p - second.polls[i + 1]);
    expect(gaps.every((g) => g === 200)).toBe(true);
  });

  it("an abort still ends a wait that sleeps", async () => {
    const clock = new EventClock();
    const tasks = new Map<string, FakeTask>();
    const api = new TasksApi(fakeRequester(clock, tasks, 0));
    const u = upid("pve1", "qmclone", 1);
    tasks.set(u, { endAt: 60_000, exitstatus: "OK", polls: [] });
    const ac = new AbortController();
    const p = api.wait(u, { signal: ac.signal }).catch((e: Error) => e);
    void clock.sleep(1000).then(() => ac.abort(new Error("stop")));
    const r = await clock.run(p);
    expect(r).toBeInstanceOf(Error);
    expect((r as Error).message).toMatch(/stop|aborted/);
  });
});
