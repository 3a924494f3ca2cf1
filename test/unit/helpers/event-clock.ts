// A discrete-event clock for tests of waits that run side by side.

import type { Clock } from "../../../provider/util/clock";

/**
 * A discrete-event clock for waits that run side by side: `sleep` resolves in time order, the
 * earliest timer firing only once every promise chain has settled (so `run` is deterministic).
 */
export class EventClock implements Clock {
  t = 0;
  private seq = 0;
  private timers: Array<{ at: number; seq: number; fire: () => void }> = [];

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(new Error("aborted"));
      const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fire: () => resolve() };
      this.timers.push(timer);
      signal?.addEventListener(
        "abort",
        () => {
          const i = this.timers.indexOf(timer);
          if (i >= 0) this.timers.splice(i, 1);
          reject(new Error("aborted"));
        },
        { once: true },
      );
    });
  }

  /** Moves time from timer to timer until `p` settles. */
  async run<T>(p: Promise<T>): Promise<T> {
    let settled = false;
    p.then(
      () => (settled = true),
      () => (settled = true),
    );
    for (;;) {
      await new Promise((r) => setImmediate(r));
      if (settled) return p;
      if (!this.timers.length) throw new Error("nothing scheduled: the waits are stuck");
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers.shift()!;
      this.t = Math.max(this.t, next.at);
      next.fire();
    }
  }
}
