// The provider's task bound: every task takes a slot of its pool (storage work, or power: start,
// shutdown, stop); disk copies also take one of COPIES_IN_FLIGHT copy slots.
import { PveTaskError } from "../../../../provider/proxmox";
import { COPIES_IN_FLIGHT, MIN_TASKS, TaskBound, clearTaskSlots, taskSlots } from "../../../../provider/resources/vm/task-slots";
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
