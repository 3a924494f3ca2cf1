// What the task waits of one client learn from each other. A fleet's tasks of one type on one
// node (ten shutdowns of a destroy, fifty linked clones, their starts) start within
// milliseconds of each other and take about as long. Each wait polls on its own schedule
// (tasks.ts: every 200 ms), so with every schedule in the same phase the whole fleet notices
// its ends up to one interval late together. Two things fix that at no cost in polls:
//
// - Phases spread: the k-th wait of a cohort (same node and task type, in flight together)
//   shifts its schedule by frac(k·φ) of the interval (its second poll comes that much sooner:
//   one extra poll at most, and no poll later than before), so together the cohort looks every
//   interval/n.
// - Ends shared: a wait that sees its task end OK tells the others of its cohort. Each of them
//   looks once at its own start plus the time the ended task took (at once when that has
//   passed): a task as long as its sibling has ended by then. A wait takes at most
//   SHARED_POLLS such looks, so a cohort whose durations differ (copies sharing a storage)
//   pays at most that many extra polls per task.
//
// The first wait of a cohort keeps the plain schedule (a lone task polls as before).

import type { Clock } from "../util/clock";

/** Extra polls one wait makes on its siblings' word, at most. */
export const SHARED_POLLS = 3;

/** The golden ratio's fraction: k·φ mod 1 spreads any number of phases evenly. */
const PHI = 0.6180339887498949;

export class TaskWaiter {
  /** Whether the last pause ended early for a sibling's end (not the plain schedule). */
  wokenEarly = false;
  /** Sibling-prompted polls so far. */
  sharedPolls = 0;
  private wakeAt: number | undefined;
  private interrupt: (() => void) | undefined;

  constructor(
    readonly key: string,
    /** Index in its cohort when it joined (0: alone). */
    readonly index: number,
    readonly started: number,
    private readonly clock: Clock,
  ) {}

  /** The fraction of an interval this wait's schedule is shifted by (0 for the first). */
  get phase(): number {
    return (this.index * PHI) % 1;
  }

  /** Sleeps `ms`, or less when a sibling's end says the task has probably ended sooner. */
  async pause(ms: number, signal?: AbortSignal): Promise<void> {
    this.wokenEarly = false;
    const end = this.clock.now() + ms;
    for (;;) {
      const wake = this.wakeAt;
      const target = wake !== undefined && wake < end ? wake : end;
      const left = target - this.clock.now();
      if (left <= 0) {
        if (wake !== undefined && wake < end) {
          this.wakeAt = undefined;
          this.sharedPolls++;
          this.wokenEarly = true;
        }
        return;
      }
      const ac = new AbortController();
      const onAbort = (): void => ac.abort(signal?.reason);
      if (signal?.aborted) onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.interrupt = () => ac.abort();
      try {
        await this.clock.sleep(left, ac.signal);
      } catch (err) {
        if (signal?.aborted) throw err;
        // interrupted by wake(): look again at the target
      } finally {
        this.interrupt = undefined;
        signal?.removeEventListener("abort", onAbort);
      }
    }
  }

  /** A sibling says: look at `at` (clock ms). Ignored past the budget or after a sooner one. */
  wake(at: number): void {
    if (this.sharedPolls >= SHARED_POLLS) return;
    if (this.wakeAt !== undefined && this.wakeAt <= at) return;
    this.wakeAt = at;
    this.interrupt?.();
  }
}

/** The waits of one client in flight, by node and task type. */
interface Cohort {
  waiters: Set<TaskWaiter>;
  /** Joins since the cohort was last empty: the next wait's index. */
  joined: number;
}

export class TaskCohorts {
  private readonly cohorts = new Map<string, Cohort>();

  constructor(private readonly clock: Clock) {}

  join(node: string, type: string): TaskWaiter {
    const key = `${node}\u0000${type}`;
    let c = this.cohorts.get(key);
    if (!c) {
      c = { waiters: new Set(), joined: 0 };
      this.cohorts.set(key, c);
    }
    const w = new TaskWaiter(key, c.joined++, this.clock.now(), this.clock);
    c.waiters.add(w);
    return w;
  }

  leave(w: TaskWaiter): void {
    const c = this.cohorts.get(w.key);
    if (!c) return;
    c.waiters.delete(w);
    if (!c.waiters.size) this.cohorts.delete(w.key);
  }

  /**
   * `w`'s task was seen ended OK by a poll answered now: its siblings look at their own start
   * plus the time it took (at most: from its wait's start to this answer).
   */
  ended(w: TaskWaiter): void {
    const c = this.cohorts.get(w.key);
    if (!c) return;
    const took = this.clock.now() - w.started;
    for (const other of c.waiters) if (other !== w) other.wake(other.started + took);
  }

  /** Waits in flight (tests). */
  get size(): number {
    let n = 0;
    for (const c of this.cohorts.values()) n += c.waiters.size;
    return n;
  }
}
