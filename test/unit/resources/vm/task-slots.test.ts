// The provider's task bound: every task takes a slot of its pool (storage work, or power: start,
// shutdown, stop); disk copies also take one of COPIES_IN_FLIGHT copy slots.
import { PveTaskError } from "../../../../provider/proxmox";
import { COPIES_IN_FLIGHT, LOCK_TASK_TARGET_MS, LOCK_WINDOW_START, MIN_TASKS, TaskBound, clearTaskSlots, taskSlots } from "../../../../provider/resources/vm/task-slots";
import { EventClock } from "../../helpers/event-clock";
import { FakeClock } from "../../helpers/fake-clock";

/** Runs `n` tasks of a kind that each hold their slot until `gate` opens; counts them running. */
function hold(bound: TaskBound, n: number, opts: Parameters<TaskBound["run"]>[1], gate: Promise<void>, running: { now: number }) {
  return Array.from({ length: n }, () =>
    bound.run(async () => {
      running.now++;
      await gate;
      running.now--;
    }, opts),
  );
}

const tick = () => new Promise((r) => setImmediate(r));

describe("TaskBound", () => {
  test(`at most ${COPIES_IN_FLIGHT} disk copies at once; other tasks use the rest of the bound`, async () => {
    const bound = new TaskBound(8);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const copies = { now: 0 };
    const others = { now: 0 };
    const all = hold(bound, 6, { copy: true }, gate, copies);
    await tick();
    all.push(...hold(bound, 10, {}, gate, others));
    await tick();
    expect(copies.now).toBe(COPIES_IN_FLIGHT);
    expect(others.now).toBe(8 - COPIES_IN_FLIGHT);
    expect(bound.inFlight).toBe(8);
    open();
    await Promise.all(all);
    expect(bound.peakCopiesInFlight).toBe(COPIES_IN_FLIGHT);
    expect(bound.peakInFlight).toBe(8);
  });

  test("power tasks (start, shutdown, stop) are bounded apart: they never queue behind clones or deletes", async () => {
    const bound = new TaskBound(4);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const storage = { now: 0 };
    const power = { now: 0 };
    const all = [...hold(bound, 10, {}, gate, storage), ...hold(bound, 6, { power: true }, gate, power)];
    await tick();
    expect(storage.now).toBe(4);
    expect(power.now).toBe(4);
    open();
    await Promise.all(all);
    expect(bound.peakPowerInFlight).toBe(4);
  });

  test("a bound lower than the copy bound holds copies to it", async () => {
    const bound = new TaskBound(2);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const copies = { now: 0 };
    const all = hold(bound, 5, { copy: true }, gate, copies);
    await tick();
    expect(copies.now).toBe(2);
    open();
    await Promise.all(all);
  });

  test("contention halves the bound (not below MIN_TASKS); each task that ends well gives one back", async () => {
    const bound = new TaskBound(32);
    const lockTimeout = () =>
      new PveTaskError({
        upid: "UPID:pve1:00001234:00ABCDEF:65000000:qmclone:9000:root@pam:",
        node: "pve1", type: "qmclone", id: "9000",
        exitstatus: "clone failed: can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout",
        logTail: [],
      });
    await expect(bound.run(async () => Promise.reject(lockTimeout()))).rejects.toThrow(/got timeout/);
    expect(bound.current).toBe(16);
    for (let i = 0; i < 3; i++) await bound.run(async () => Promise.reject(lockTimeout())).catch(() => undefined);
    expect(bound.current).toBe(MIN_TASKS);
    // another failure is no contention: the bound stays
    await bound.run(async () => Promise.reject(new Error("disk full"))).catch(() => undefined);
    expect(bound.current).toBe(MIN_TASKS);
    for (let i = 0; i < 5; i++) await bound.run(async () => "ok");
    expect(bound.current).toBe(MIN_TASKS + 5);
    for (let i = 0; i < 40; i++) await bound.run(async () => "ok");
    expect(bound.current).toBe(32);
    // power tasks neither shrink nor grow it
    await bound.run(async () => Promise.reject(lockTimeout()), { power: true }).catch(() => undefined);
    expect(bound.current).toBe(32);
  });

  test("copies do not start together once a copy was seen: 1/(2·copy slots) of its duration apart", async () => {
    const clock = new FakeClock();
    const bound = new TaskBound(16, clock);
    // a copy that takes 80 ms, then three more at once: they start 80/(2·4) = 10 ms apart (this
    // clock moves on at each sleep: the 2nd copy's 10 ms pass before the 3rd asks, which then
    // waits 10 ms more, 20 ms after the 1st)
    await bound.run(async () => clock.advance(80), { copy: true });
    const t0 = clock.now();
    await Promise.all(Array.from({ length: 3 }, () => bound.run(async () => undefined, { copy: true })));
    const pace = 80 / (2 * COPIES_IN_FLIGHT);
    expect(clock.sleeps).toEqual([pace, pace]);
    expect(clock.now() - t0).toBe(2 * pace);
    // other tasks are not paced
    await Promise.all([bound.run(async () => undefined), bound.run(async () => undefined)]);
    expect(clock.sleeps).toHaveLength(2);
  });

  test("one bound per cluster endpoint and limit", () => {
    clearTaskSlots();
    const a = taskSlots("https://pve:8006/", 16);
    expect(taskSlots("https://pve:8006", 16)).toBe(a);
    expect(taskSlots("https://pve:8006", 8)).not.toBe(a);
    clearTaskSlots();
  });
});

/**
 * PVE's storage lock as a node serves it (STORAGE Plugin.pm cluster_lock_storage, a flock): one
 * holder at a time, waiters in turn, a wait of more than 10 s fails the task. Each task forks and
 * sets up (`setupMs`), then holds the lock `holdMs`, then ends.
 */
class NodeStorageLock {
  private busyUntil = 0;
  readonly waits: number[] = [];
  timeouts = 0;
  busyMs = 0;
  firstAt = Infinity;
  lastAt = 0;

  constructor(private readonly clock: EventClock) {}

  async task(setupMs: number, holdMs: number): Promise<void> {
    await this.clock.sleep(setupMs);
    const asked = this.clock.now();
    const start = Math.max(asked, this.busyUntil);
    if (start - asked > 10_000) {
      await this.clock.sleep(10_000);
      this.timeouts++;
      throw new PveTaskError({
        upid: "UPID:pve1:00001234:00ABCDEF:65000000:qmclone:9000:root@pam:", node: "pve1", type: "qmclone", id: "9000",
        exitstatus: "clone failed: can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout", logTail: [],
      });
    }
    this.busyUntil = start + holdMs;
    this.waits.push(start - asked);
    this.firstAt = Math.min(this.firstAt, start);
    this.lastAt = Math.max(this.lastAt, start + holdMs);
    this.busyMs += holdMs;
    await this.clock.sleep(start + holdMs - asked);
  }
}

describe("LockWindow: the storage-lock tasks of a node", () => {
  test("50 linked clones whose lock work is 800 ms each: none waits 10 s for the lock, and the lock never idles", async () => {
    const clock = new EventClock();
    const bound = new TaskBound(64, clock);
    const lock = new NodeStorageLock(clock);
    await clock.run(Promise.all(Array.from({ length: 50 }, () => bound.run(() => lock.task(550, 800), { storageLockOn: "pve1" }))));
    expect(lock.timeouts).toBe(0);
    // the first window waits up to 7 holds; once the window has learned, a wait is one target at most
    expect(Math.max(...lock.waits)).toBeLessThanOrEqual((LOCK_WINDOW_START - 1) * 800 + 550);
    expect(Math.max(...lock.waits.slice(-25))).toBeLessThanOrEqual(LOCK_TASK_TARGET_MS);
    // throughput: the lock was busy all the time between the first hold and the last
    expect(lock.busyMs / (lock.lastAt - lock.firstAt)).toBeGreaterThan(0.99);
    expect(bound.lockWindow("pve1").peakInFlight).toBeLessThanOrEqual(LOCK_WINDOW_START + 1);
    expect(bound.lockWindow("pve1").limit).toBeLessThan(LOCK_WINDOW_START);
    // without the window (every task let in at once), the same node fails most of them
    const bare = new NodeStorageLock(clock);
    await clock.run(Promise.all(Array.from({ length: 50 }, () => bound.run(() => bare.task(550, 800)).catch(() => undefined))));
    expect(bare.timeouts).toBeGreaterThan(30);
  });

  test("the first task of a burst, which waited behind the tasks that joined it, shrinks the window by what it shared at its end", async () => {
    const clock = new EventClock();
    const bound = new TaskBound(64, clock);
    const window = bound.lockWindow("pve1");
    // the first task starts alone; 7 join it at once; it ends after 5 s, when all 8 are in flight
    const first = bound.run(() => clock.sleep(5000), { storageLockOn: "pve1" });
    await tick();
    const others = Array.from({ length: 7 }, () => bound.run(() => clock.sleep(6000), { storageLockOn: "pve1" }));
    await clock.run(first);
    // 8 sharing the lock for 5 s: about 625 ms each, so 6 fit in the 4 s target (not 1)
    expect(window.limit).toBe(Math.floor((LOCK_WINDOW_START * LOCK_TASK_TARGET_MS) / 5000));
    await clock.run(Promise.all(others));
  });

  test("where the lock is quick, the window grows while tasks wait for it, up to the bound", async () => {
    const clock = new EventClock();
    const bound = new TaskBound(32, clock);
    const lock = new NodeStorageLock(clock);
    await clock.run(Promise.all(Array.from({ length: 200 }, () => bound.run(() => lock.task(550, 20), { storageLockOn: "pve1" }))));
    expect(lock.timeouts).toBe(0);
    expect(bound.lockWindow("pve1").limit).toBe(32);
    expect(bound.lockWindow("pve1").peakInFlight).toBe(32);
  });

  test("each node has its own window; a copy takes none; a lock timeout halves the window", async () => {
    const clock = new EventClock();
    const bound = new TaskBound(64, clock);
    const locks = { pve1: new NodeStorageLock(clock), pve2: new NodeStorageLock(clock) };
    await clock.run(Promise.all((["pve1", "pve2"] as const).flatMap((n) => Array.from({ length: 10 }, () => bound.run(() => locks[n].task(550, 800), { storageLockOn: n })))));
    for (const n of ["pve1", "pve2"]) expect(bound.lockWindow(n).peakInFlight).toBeLessThanOrEqual(LOCK_WINDOW_START + 2);
    expect(bound.peakInFlight).toBeGreaterThanOrEqual(2 * LOCK_WINDOW_START);
    const before = bound.lockWindow("pve3").limit;
    await Promise.all(Array.from({ length: 12 }, () => bound.run(async () => undefined, { storageLockOn: "pve3", copy: true })));
    expect(bound.lockWindow("pve3").peakInFlight).toBe(0);
    const timeout = new NodeStorageLock(clock);
    // a task that finds the lock taken for 11 s (by another client of the node)
    const [, refused] = await clock.run(Promise.all([timeout.task(0, 11_000), bound.run(() => timeout.task(0, 100), { storageLockOn: "pve3" }).catch((e: Error) => e)]));
    expect(String(refused)).toMatch(/got timeout/);
    expect(bound.lockWindow("pve3").limit).toBe(before / 2);
  });
});
