// PVE's storage lock: `cluster_lock_storage` (STORAGE Plugin.pm), taken around every volume
// allocation, linked clone, free, base conversion and rename (Storage.pm `vdisk_alloc`,
// `vdisk_clone`, `vdisk_free`, `vdisk_create_base`, `rename_volume`). One holder at a time:
//
// - a storage that is not shared: a flock on `/var/lock/pve-manager/pve-storage-<id>` on the node
//   (COMMON Tools.pm `lock_file` → `lock_file_full`: 10 s when no timeout is given, which none of
//   those callers gives; a waiter prints `trying to acquire lock...` to STDERR, which a worker's task
//   log shows, then ` OK`; on timeout `can't lock file '<path>' - got timeout`). The kernel wakes a
//   waiter as soon as the holder lets go.
// - a shared storage: pmxcfs' cluster-wide `storage-<id>` lock (CLUSTER Cluster.pm `$cfs_lock`):
//   a `mkdir` retried after sleeping min(remaining s, 10) × 100 ms, so a waiter looks about once a
//   second and whoever looks first after a release gets it; `trying to acquire cfs lock
//   'storage-<id>' ...` at most once a second; after 10 s `cfs-lock 'storage-<id>' error: got lock
//   request timeout`.

import type { SimClock } from "./clock";

export interface LockedStorage {
  storage: string;
  shared: boolean;
}

interface Flock {
  held: boolean;
  waiters: Array<() => void>;
}

export const STORAGE_LOCK_TIMEOUT_MS = 10_000;

export function storageFlockPath(storage: string): string {
  return `/var/lock/pve-manager/pve-storage-${storage}`;
}

export class StorageLocks {
  private readonly flocks = new Map<string, Flock>();
  private readonly cfsHeld = new Set<string>();
  /** When each lock was held (PVE ms on the clock, from, to), per lock: for measurements. */
  readonly held = new Map<string, Array<[number, number]>>();

  constructor(
    private readonly clock: SimClock,
    /** Calls `fn` once `ms` of PVE time has passed (or a real fallback when time stands still). */
    private readonly timeout: (ms: number, fn: () => void) => () => void,
    private readonly timeoutMs = STORAGE_LOCK_TIMEOUT_MS,
  ) {}

  /** Runs `fn` holding the lock of `s` as taken on `node`; `log` is the task log, if any. */
  async with<T>(s: LockedStorage, node: string, fn: () => Promise<T> | T, log?: (line: string) => void): Promise<T> {
    const key = s.shared ? s.storage : `${s.storage}@${node}`;
    const release = s.shared && this.timeFlows() ? await this.cfsLock(s.storage, log) : await this.flock(key, s, log);
    const from = this.clock.elapsed();
    try {
      return await fn();
    } finally {
      const spans = this.held.get(key) ?? [];
      spans.push([from, this.clock.elapsed()]);
      this.held.set(key, spans);
      release();
    }
  }

  /** Locks held or waited for now, for tests. */
  busy(): string[] {
    return [...this.flocks.keys(), ...[...this.cfsHeld].map((k) => `cfs:${k}`)];
  }

  private timeFlows(): boolean {
    return this.clock.virtual || this.clock.span(1) > 0;
  }

  private flock(key: string, s: LockedStorage, log?: (line: string) => void): Promise<() => void> {
    let f = this.flocks.get(key);
    if (!f) {
      f = { held: false, waiters: [] };
      this.flocks.set(key, f);
    }
    const lock = f;
    const release = (): void => {
      const next = lock.waiters.shift();
      if (next) next();
      else {
        lock.held = false;
        this.flocks.delete(key);
      }
    };
    if (!lock.held) {
      lock.held = true;
      return Promise.resolve(release);
    }
    log?.("trying to acquire lock...");
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        cancel();
        log?.(" OK");
        resolve(release);
      };
      lock.waiters.push(grant);
      const cancel = this.timeout(this.timeoutMs, () => {
        const i = lock.waiters.indexOf(grant);
        if (i < 0) return;
        lock.waiters.splice(i, 1);
        reject(new Error(s.shared ? `cfs-lock 'storage-${s.storage}' error: got lock request timeout` : `can't lock file '${storageFlockPath(s.storage)}' - got timeout`));
      });
    });
  }

  private async cfsLock(storage: string, log?: (line: string) => void): Promise<() => void> {
    const lockid = `storage-${storage}`;
    const timeoutS = this.timeoutMs / 1000;
    let sleptUs = 0;
    for (;;) {
      if (!this.cfsHeld.has(storage)) {
        this.cfsHeld.add(storage);
        return () => this.cfsHeld.delete(storage);
      }
      const sleptS = Math.floor(sleptUs / 1e6);
      const remainingS = Math.max(timeoutS - sleptS, 1);
      const sleepUs = Math.min(remainingS, 10) * 100_000;
      const nextSleptS = Math.floor((sleptUs + sleepUs) / 1e6);
      if (nextSleptS >= timeoutS) {
        throw new Error(`cfs-lock '${lockid}' error: got lock request timeout`);
      }
      if (nextSleptS > sleptS) log?.(`trying to acquire cfs lock '${lockid}' ...`);
      await new Promise<void>((r) => this.clock.after(sleepUs / 1000, r));
      sleptUs += sleepUs;
    }
  }
}
