/**
 * At most `limit` holders at once; waiters are served lowest key first (ties in arrival order),
 * not first come first served. The guest-agent polls use it keyed by when each VM started
 * waiting: the VM that has waited longest is the likeliest to answer, so the few calls PVE can
 * afford go to it first.
 */
export class OrderedSlots {
  private active = 0;
  private seq = 0;
  private readonly waiting: Array<{ key: number; seq: number; grant: () => void }> = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`slot limit must be a positive integer, got ${limit}`);
  }

  get inFlight(): number {
    return this.active;
  }

  async acquire(key: number): Promise<() => void> {
    if (this.active < this.limit) this.active++;
    else {
      await new Promise<void>((grant) => {
        const w = { key, seq: this.seq++, grant };
        const at = this.waiting.findIndex((x) => x.key > key);
        if (at < 0) this.waiting.push(w);
        else this.waiting.splice(at, 0, w);
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next.grant();
      else this.active--;
    };
  }
}
