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
// per task that ends well. The simulator has no storage lock, so its curve rewards any bound up
// to the fleet's size; a real node that serialises allocations says so with lock timeouts, and
// the provider then backs off instead of retrying into the same queue.

import { isContention } from "../../proxmox";
import { systemClock, type Clock } from "../../util/clock";
import { Semaphore } from "../../util/semaphore";

/** Disk-copying tasks in flight at most (or the task bound, when lower). */
export const COPIES_IN_FLIGHT = 4;
/** The bound never backs off below this (or the setting, when lower). */
export const MIN_TASKS = 4;

export interface TaskOptions {
  /** Goes before queued tasks of its pool that are not priority tasks. */
  priority?: boolean;
  /** Copies disks through a storage (a full clone, a migration): also takes a copy slot. */
  copy?: boolean;
  /** A start, shutdown or stop: counted in the power pool instead. */
  power?: boolean;
}

/** The task bound of a cluster: every task takes a slot of its pool (storage work or power); a
 *  disk copy also takes a copy slot. */
export class TaskBound {
  private readonly all: Semaphore;
  private readonly copies: Semaphore;
  private readonly power: Semaphore;

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

  /** Runs `fn` once it holds its slot(s): a copy waits for a copy slot before it takes a task slot. */
  async run<T>(fn: () => Promise<T>, opts: TaskOptions = {}): Promise<T> {
    const pool = opts.power ? this.power : this.all;
    const run = () => pool.run(fn, { priority: opts.priority });
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
