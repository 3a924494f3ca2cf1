// Bounds the long-running PVE tasks (clone, start, shutdown, migrate, destroy, resize) this
// provider process runs at once per cluster, so a program of hundreds of VMs does not fork
// hundreds of workers on a node that serialises storage allocations under one storage lock
// (PVE's cluster_lock_storage, 10 s timeout: `can't lock file ... got timeout`). Setting:
// `proxmox:maxConcurrentTasks` (PROXMOX_VE_MAX_CONCURRENT_TASKS), default
// DEFAULT_MAX_CONCURRENT_TASKS (config.ts), chosen from the curve of a fleet's wall time
// against the bound (BENCHMARKS.md, "Scheduling bounds").
//
// Disk copies (full clones, migrations) are bounded tighter, at COPIES_IN_FLIGHT: copies from
// one storage share its bandwidth, so more of them at once end no sooner in total and only
// delay the first VMs (and what the fleet learns from them, such as its boot time). Copies that
// start together share the bandwidth equally and so end together, and the storage then idles
// while the next ones are set up (fork, allocation, PVE's clone setup): so copies do not start
// together once one has been seen, but at least 1/(2·COPIES_IN_FLIGHT) of the last copy's
// duration apart, which keeps their ends apart (the storage never idles between them) and
// costs nothing (a lone copy gets the whole bandwidth).
// Power tasks (start, shutdown, stop) take no storage lock: they are bounded apart, by the same
// number, so a fleet's starts never queue behind its clones nor a destroy's deletes behind the
// guests' shutdowns.
//
// The setting is a ceiling: when PVE refuses a task for contention (a lock wait that timed out,
// a worker it could not fork), the bound halves (not below MIN_TASKS), and it grows back by one
// per task that ends well.
//
// Below that ceiling, the tasks that do their volume work under a node's storage lock (linked
// clones, deletes, the removal of a disk a destroy left behind: STORAGE Storage.pm vdisk_alloc,
// vdisk_clone, vdisk_free under cluster_lock_storage) run in a window per node (LockWindow). PVE serves that lock one task at a
// time, and a task that waits more than 10 s for it fails (`clone failed: can't lock file
// '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout`) or, in a destroy, leaves its disk
// behind with a warning. n such tasks in flight wait up to n lock holds, so the window is sized
// from how long they take: it starts at LOCK_WINDOW_START, a task that took longer than
// LOCK_TASK_TARGET_MS shrinks it in proportion, and one that took less than half that grows it by
// one while others wait for it. Two or three in flight already keep the lock busy, so the window
// costs no throughput where the lock is the bottleneck, and grows to the ceiling where it is not.
// Disk copies are not in it: their tasks last as long as their copy, which runs outside the lock.

import { isContention } from "../../proxmox";
import { systemClock, type Clock } from "../../util/clock";
import { Semaphore } from "../../util/semaphore";

/** Disk-copying tasks in flight at most (or the task bound, when lower). */
export const COPIES_IN_FLIGHT = 4;
/** The bound never backs off below this (or the setting, when lower). */
export const MIN_TASKS = 4;
/** Storage-lock tasks in flight per node at first (LockWindow). */
export const LOCK_WINDOW_START = 8;
/** A storage-lock task that takes longer than this shrinks its node's window: well inside PVE's
 *  10 s lock timeout, so that the last of a window still gets the lock in time. */
export const LOCK_TASK_TARGET_MS = 4000;

export interface TaskOptions {
  /** Goes before queued tasks of its pool that are not priority tasks. */
  priority?: boolean;
  /** Copies disks through a storage (a full clone, a migration): also takes a copy slot. */
  copy?: boolean;
  /** A start, shutdown or stop: counted in the power pool instead. */
  power?: boolean;
  /** The node whose storage lock the task takes (a linked clone, a create, a delete): it also
   *  runs in that node's lock window. */
  storageLockOn?: string;
}

/** The storage-lock tasks of one node in flight at once, sized from how long they take. */
export class LockWindow {
  private readonly slots: Semaphore;

  constructor(
    private readonly max: number,
    private readonly clock: Clock,
  ) {
    this.slots = new Semaphore(Math.min(LOCK_WINDOW_START, max));
  }

  get limit(): number {
    return this.slots.limit;
  }

  get peakInFlight(): number {
    return this.slots.peakInFlight;
  }

  /** Runs `fn` in a slot of the window; `admit` runs what it is given inside the task bound's own
   *  pool, so that only the task's time, not a wait for that pool, teaches the window. */
  async run<T>(fn: () => Promise<T>, admit: (timed: () => Promise<T>) => Promise<T>): Promise<T> {
    return this.slots.run(() =>
      admit(async () => {
        const started = this.clock.now();
        const atStart = this.slots.inFlight;
        try {
          const r = await fn();
          // the first tasks of a burst start before the rest join them, then wait behind them
          this.learn(this.clock.now() - started, Math.max(atStart, this.slots.inFlight));
          return r;
        } catch (err) {
          if (isContention(err)) this.slots.setLimit(Math.max(1, Math.floor(this.slots.limit / 2)));
          throw err;
        }
      }),
    );
  }

  /** A task that shared the lock with up to `sharing` - 1 others and took `tookMs` waited about
   *  that many holds of tookMs / sharing: the window that keeps a task under the target is shrunk to; one
   *  that was quick lets one more in while others wait. */
  private learn(tookMs: number, sharing: number): void {
    const limit = this.slots.limit;
    if (tookMs > LOCK_TASK_TARGET_MS) {
      const fits = Math.max(1, Math.floor((sharing * LOCK_TASK_TARGET_MS) / tookMs));
      if (fits < limit) this.slots.setLimit(fits);
    } else if (tookMs < LOCK_TASK_TARGET_MS / 2 && this.slots.waiting > 0 && limit < this.max) this.slots.setLimit(limit + 1);
  }
}

/** The task bound of a cluster: every task takes a slot of its pool (storage work or power); a
 *  disk copy also takes a copy slot. */
export class TaskBound {
  private readonly all: Semaphore;
  private readonly copies: Semaphore;
  private readonly power: Semaphore;
  private readonly lockWindows = new Map<string, LockWindow>();

  /** Spacing between copy starts (ms): the last copy's duration / (2 · copy slots). */
  private copyPaceMs = 0;
  /** The soonest the next copy may start (clock ms). */
  private nextCopyAt = 0;

  constructor(
    readonly limit: number,
    private readonly clock: Clock = systemClock,
  ) {
    this.all = new Semaphore(limit);
    this.copies = new Semaphore(Math.min(COPIES_IN_FLIGHT, limit));
    this.power = new Semaphore(limit);
  }

  get inFlight(): number {
    return this.all.inFlight;
  }

  get peakInFlight(): number {
    return this.all.peakInFlight;
  }

  get copiesInFlight(): number {
    return this.copies.inFlight;
  }

  get peakCopiesInFlight(): number {
    return this.copies.peakInFlight;
  }

  get peakPowerInFlight(): number {
    return this.power.peakInFlight;
  }

  /** The bound of storage tasks now (the setting, or less after contention). */
  get current(): number {
    return this.all.limit;
  }

  /** The storage-lock window of `node`. */
  lockWindow(node: string): LockWindow {
    let w = this.lockWindows.get(node);
    if (!w) {
      w = new LockWindow(this.limit, this.clock);
      this.lockWindows.set(node, w);
    }
    return w;
  }

  /** Runs `fn` once it holds its slot(s): a copy waits for a copy slot before it takes a task slot;
   *  a storage-lock task (not a copy) waits for its node's window first. */
  async run<T>(fn: () => Promise<T>, opts: TaskOptions = {}): Promise<T> {
    const pool = opts.power ? this.power : this.all;
    const inPool = (f: () => Promise<T>) => pool.run(f, { priority: opts.priority });
    const window = opts.storageLockOn !== undefined && !opts.copy ? this.lockWindow(opts.storageLockOn) : undefined;
    const run = window ? () => window.run(fn, inPool) : () => inPool(fn);
    try {
      const r = await (opts.copy ? this.copies.run(() => this.paced(run)) : run());
      if (pool === this.all && this.all.limit < this.limit) this.all.setLimit(this.all.limit + 1);
      return r;
    } catch (err) {
      if (pool === this.all && isContention(err)) this.all.setLimit(Math.max(Math.min(MIN_TASKS, this.limit), Math.floor(this.all.limit / 2)));
      throw err;
    }
  }

  /** A copy starts no sooner than the pace allows after the previous one, then teaches the pace. */
  private async paced<T>(run: () => Promise<T>): Promise<T> {
    const now = this.clock.now();
    const at = Math.max(now, this.nextCopyAt);
    this.nextCopyAt = at + this.copyPaceMs;
    if (at > now) await this.clock.sleep(at - now);
    const started = this.clock.now();
    try {
      return await run();
    } finally {
      this.copyPaceMs = (this.clock.now() - started) / (2 * COPIES_IN_FLIGHT);
    }
  }
}

const slots = new Map<string, TaskBound>();

/** The task bound of this process for a cluster (keyed by endpoint). */
export function taskSlots(endpoint: string, limit: number): TaskBound {
  const key = endpoint.replace(/\/+$/, "");
  let s = slots.get(key);
  if (!s || s.limit !== limit) {
    // A different limit (reconfigured process, tests) gets a fresh bound; tasks already
    // holding the old one finish under it.
    s = new TaskBound(limit);
    slots.set(key, s);
  }
  return s;
}

/** Forgets every bound (tests). */
export function clearTaskSlots(): void {
  slots.clear();
}
