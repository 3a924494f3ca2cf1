/**
 * Bounds how many operations run at once; waiters are served first come, first served, except
 * that priority waiters go before the others (still in their own arrival order).
 */
export class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  /** How many of `waiters`, at the front, are priority waiters. */
  private priorityWaiting = 0;
  private peak = 0;

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`semaphore limit must be a positive integer, got ${limit}`);
    }
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

  async acquire(priority = false): Promise<() => void> {
    if (this.active >= this.limit) {
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
      const next = this.waiters.shift();
      if (next && this.priorityWaiting > 0) this.priorityWaiting--;
      if (next) next();
      else this.active--;
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
