// Simulated time. Every duration the simulator models (task run times, flock timeouts,
// disk copies, the boot-to-agent delay) goes through a SimClock, in milliseconds of
// "PVE time".
//
// - RealClock (default): PVE time runs on the wall clock, scaled by `timeFactor`
//   (a 1000 ms start takes 1000 × timeFactor real ms; 0 = next tick).
// - VirtualClock (`virtualTime: true`): PVE time stands still until a test moves it
//   (`advance`, `step`, `runUntilIdle`). Timers fire in time order, ties in the order they
//   were set, and each firing's consequences run before the next timer fires, so a run is
//   the same whatever the load of the machine: a discrete-event simulation.

export interface SimClock {
  readonly virtual: boolean;
  /** Wall time as PVE reports it, ms since the epoch (before the back door's offset). */
  now(): number;
  /** PVE ms elapsed since the clock started (only meaningful while time flows). */
  elapsed(): number;
  /** The wall-clock span `ms` of PVE time takes (RealClock: ms × timeFactor). */
  span(ms: number): number;
  /** Runs `fn` once `ms` of PVE time has passed; returns a function that cancels it. */
  after(ms: number, fn: () => void): () => void;
}

export class RealClock implements SimClock {
  readonly virtual = false;
  private readonly t0 = Date.now();

  constructor(private readonly timeFactor: () => number) {}

  now(): number {
    return Date.now();
  }

  elapsed(): number {
    return (Date.now() - this.t0) / this.timeFactor();
  }

  span(ms: number): number {
    return ms * this.timeFactor();
  }

  after(ms: number, fn: () => void): () => void {
    const real = this.span(ms);
    if (real > 0) {
      const t = setTimeout(fn, real);
      return () => clearTimeout(t);
    }
    const t = setImmediate(fn);
    return () => clearImmediate(t);
  }
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

/** Lets the promise chains started by a timer run to their next wait. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
}

export class VirtualClock implements SimClock {
  readonly virtual = true;
  private t = 0;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(private readonly epochMs: number) {}

  now(): number {
    return this.epochMs + Math.floor(this.t);
  }

  elapsed(): number {
    return this.t;
  }

  span(ms: number): number {
    return ms;
  }

  after(ms: number, fn: () => void): () => void {
    const timer: Timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }

  /** Timers waiting to fire. */
  pending(): number {
    return this.timers.length;
  }

  private next(): Timer | undefined {
    let best: Timer | undefined;
    for (const x of this.timers) if (!best || x.at < best.at || (x.at === best.at && x.seq < best.seq)) best = x;
    return best;
  }

  private async fire(x: Timer): Promise<void> {
    this.timers = this.timers.filter((y) => y !== x);
    this.t = Math.max(this.t, x.at);
    x.fn();
    await settle();
  }

  /** Moves time forward by `ms`, firing every timer due on the way. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await settle();
    for (let x = this.next(); x && x.at <= end; x = this.next()) await this.fire(x);
    this.t = end;
  }

  /** Moves time to the next timer and fires it; false when none is pending. */
  async step(): Promise<boolean> {
    await settle();
    const x = this.next();
    if (!x) return false;
    await this.fire(x);
    return true;
  }

  /** Fires timers until none is left (or `limitMs` of PVE time has passed). */
  async runUntilIdle(limitMs = 24 * 3600 * 1000): Promise<void> {
    const end = this.t + limitMs;
    await settle();
    for (let x = this.next(); x && x.at <= end; x = this.next()) await this.fire(x);
  }
}
