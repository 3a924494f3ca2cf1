/**
 * Bounds how many operations run at once; waiters are served first come, first served, except
 * that priority waiters go before the others (still in their own arrival order). The bound may
 * be changed while in use (`setLimit`): a higher one lets waiters in at once, a lower one lets
 * the holders finish and admits no one until fewer than the new limit hold it.
 */
export class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  /** How many of `waiters`, at the front, are priority waiters. */
  private priorityWaiting = 0;
  private peak = 0;
  private current: number;

  constructor(limit: number) {
    Semaphore.check(limit);
    this.current = limit;
  }

  private static check(limit: number): void {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`semaphore limit must be a positive integer, got ${limit}`);
    }
  }

  get limit(): number {
    return this.current;
  }

  get inFlight(): number {
    return this.active;
  }

  /** The highest number of holders seen at once (for tests and benchmarks). */
  get peakInFlight(): number {
    return this.peak;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  setLimit(limit: number): void {
    Semaphore.check(limit);
    this.current = limit;
    while (this.active < this.current && this.waiters.length) this.handOver();
  }

  /** Gives a free slot to the first waiter. */
  private handOver(): void {
    const next = this.waiters.shift()!;
    if (this.priorityWaiting > 0) this.priorityWaiting--;
    this.active++;
    next();
  }

  async acquire(priority = false): Promise<() => void> {
    if (this.active >= this.current) {
      await new Promise<void>((resolve) => {
        if (priority) this.waiters.splice(this.priorityWaiting++, 0, resolve);
        else this.waiters.push(resolve);
      });
    } else {
      this.active++;
    }
    this.peak = Math.max(this.peak, this.active);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      if (this.active < this.current && this.waiters.length) this.handOver();
    };
  }

  async run<T>(fn: () => Promise<T>, opts: { priority?: boolean } = {}): Promise<T> {
    const release = await this.acquire(opts.priority);
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
