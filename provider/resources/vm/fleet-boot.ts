// What VMs that boot alike (one template on one node: a fleet) learn together about the time from
// their start to the guest agent's first answer, so that each asks the agent when an answer is
// likely instead of on its own schedule (agent-wait.ts uses it; the top of that file explains).

import type { PveClient } from "../../proxmox";

/** Scouts per fleet while no agent of it has answered. */
export const FLEET_SCOUTS = 1;
/** The learned bracket is tested while wider than this (ms), or this fraction of its upper end. */
const BISECT_MIN_MS = 100;
const BISECT_FRACTION = 0.05;

/**
 * What VMs that boot alike (one template on one node) have shown about the time from their start
 * to the agent's first answer, in ms since each VM's wait began (its start task seen to end):
 * `hi`, the soonest an answer came (the boot was done by then), and `lo`, the latest a call went
 * out and found the agent not running (not done then). Boot times vary a little from VM to VM
 * (and the wait begins up to one task poll after the start ended), so a VM asks first at `hi`, or
 * just after `lo` when a sibling was seen not ready later than `hi`.
 */
export class FleetBoot {
  lo = 0;
  hi: number | undefined;
  /** When each VM of the fleet still waiting for its first answer began. */
  readonly waiting = new Map<object, number>();
  /** A call testing the middle of [lo, hi] is in flight. */
  probing = false;
  private news = new AbortController();

  /** Aborted when something was learned or a VM left: sleepers plan again. */
  get changed(): AbortSignal {
    return this.news.signal;
  }

  notify(): void {
    const n = this.news;
    this.news = new AbortController();
    n.abort();
  }

  answeredAt(elapsed: number): void {
    if (this.hi === undefined || elapsed < this.hi) {
      this.hi = elapsed;
      this.notify();
    }
  }

  notReadyAt(elapsed: number): void {
    if (elapsed > this.lo) {
      this.lo = elapsed;
      if (this.hi !== undefined) this.notify();
    }
  }

  /** The first call's time for a VM, once an agent of the fleet answered. */
  target(): number | undefined {
    if (this.hi === undefined) return undefined;
    return this.lo < this.hi ? this.hi : this.lo + this.resolution();
  }

  /**
   * Where a VM at `elapsed` tests the bracket, while it is wider than its resolution: at its
   * middle, or now when the VM is past the middle but still well before `hi` (one such call in
   * flight per fleet).
   */
  testAt(elapsed: number): number | undefined {
    if (this.hi === undefined || this.probing || this.lo >= this.hi) return undefined;
    const r = this.resolution();
    if (this.hi - this.lo <= r) return undefined;
    const at = Math.max(elapsed, (this.lo + this.hi) / 2);
    return this.hi - at > r / 2 ? at : undefined;
  }

  /** The VMs waiting longest are the scouts (the likeliest to answer). */
  isScout(token: object): boolean {
    const mine = this.waiting.get(token);
    if (mine === undefined) return false;
    let before = 0;
    let passed = false;
    for (const [t, since] of this.waiting) {
      if (t === token) passed = true;
      else if (since < mine || (since === mine && !passed)) before++;
    }
    return before < FLEET_SCOUTS;
  }

  private resolution(): number {
    return Math.max(BISECT_MIN_MS, BISECT_FRACTION * (this.hi ?? 0));
  }
}

const fleets = new WeakMap<PveClient, Map<string, FleetBoot>>();

/** The fleet `key` of a client (one per provider process and cluster). */
export function fleetOf(api: PveClient, key: string): FleetBoot {
  let perClient = fleets.get(api);
  if (!perClient) fleets.set(api, (perClient = new Map()));
  let f = perClient.get(key);
  if (!f) perClient.set(key, (f = new FleetBoot()));
  return f;
}
