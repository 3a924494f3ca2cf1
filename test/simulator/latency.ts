// The latency model: how long simulated PVE operations take. Every duration is a base value
// in milliseconds of "PVE time", run on the simulator's clock (clock.ts): multiplied by
// `timeFactor` on the real clock (0 = instant), or exact on the virtual clock.
// Disk copies (clone, import, migration of local disks) move bytes through a per-storage
// channel whose bandwidth is shared fairly by all concurrent transfers on that storage, so
// 10 parallel full clones from one storage each take ~10x as long as one alone.

import type { SimClock } from "./clock";

export interface LatencyOptions {
  /** Time between the API call returning a UPID and the forked worker starting. */
  forkMs: number;
  /** qmcreate without disk allocation / per allocated disk. */
  createMs: number;
  allocateDiskMs: number;
  /** qmconfig (POST config) worker. */
  configMs: number;
  /** qmstart until the VM is running / qmstop / qmshutdown (guest with ACPI). */
  startMs: number;
  stopMs: number;
  shutdownMs: number;
  /** Running → guest agent answering. */
  bootToAgentMs: number;
  templateMs: number;
  resizeMs: number;
  /** qmdestroy apart from freeing the volumes (config, access, jobs). */
  destroyMs: number;
  /** Freeing one volume (LvmThinPlugin.pm free_image: `lvs`, `lvremove`), under the storage lock. */
  freeDiskMs: number;
  /** Fixed part of a migration; local disks additionally move at `storageBandwidth`. */
  migrateMs: number;
  /** A linked clone (thin snapshot of the base volume: `lvs` for a free name, `lvcreate -s`), per
   *  disk, all of it under the storage lock (Storage.pm vdisk_clone). A volume allocation
   *  (`allocateDiskMs`, vdisk_alloc) is also under that lock; the copy of a full clone is not. */
  linkedCloneMs: number;
  /** Fixed part of a full clone, before copying. */
  cloneBaseMs: number;
  /** Bytes per second a storage delivers, shared by concurrent copies on it. */
  storageBandwidth: number;
  /** Bytes per second for download-url. */
  downloadBandwidth: number;
  /** Size of a simulated download (bytes) and the virtual size of a downloaded disk image. */
  downloadSize: number;
  importVirtualSize: number;
  /** flock timeouts: `lock_config` default and the 1 s used by clone/create workers. */
  lockTimeoutMs: number;
  workerLockTimeoutMs: number;
  /** The storage lock's timeout (`cluster_lock_storage` passes none: lock_file's and cfs_lock's 10 s). */
  storageLockTimeoutMs: number;
  /** Timeout of a shutdown without `timeout` param (PVE: 600 s in qm shutdown task). */
  shutdownTimeoutMs: number;
}

export const DEFAULT_LATENCY: LatencyOptions = {
  forkMs: 50,
  createMs: 500,
  allocateDiskMs: 300,
  configMs: 200,
  startMs: 1000,
  stopMs: 300,
  shutdownMs: 3000,
  bootToAgentMs: 8000,
  templateMs: 500,
  resizeMs: 300,
  destroyMs: 500,
  freeDiskMs: 250,
  migrateMs: 3000,
  linkedCloneMs: 500,
  cloneBaseMs: 500,
  storageBandwidth: 1024 ** 3,
  downloadBandwidth: 100 * 1024 ** 2,
  downloadSize: 600 * 1024 ** 2,
  importVirtualSize: 2 * 1024 ** 3,
  lockTimeoutMs: 10000,
  workerLockTimeoutMs: 1000,
  storageLockTimeoutMs: 10000,
  shutdownTimeoutMs: 600000,
};

export class AbortedError extends Error {}

interface Transfer {
  remaining: number;
  resolve(): void;
  reject(e: Error): void;
}

/** A storage's bandwidth, shared fairly by the transfers in flight on it. Works in PVE
 *  time: bytes per PVE millisecond, progress measured on the clock. */
class SharedChannel {
  private readonly active = new Set<Transfer>();
  private last: number;
  private cancelTimer: (() => void) | undefined;

  constructor(
    private readonly clock: SimClock,
    private readonly bytesPerMs: number,
  ) {
    this.last = clock.elapsed();
  }

  get inFlight(): number {
    return this.active.size;
  }

  add(bytes: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      this.progress();
      const t: Transfer = { remaining: bytes, resolve, reject };
      this.active.add(t);
      signal?.addEventListener("abort", () => {
        if (!this.active.has(t)) return;
        this.progress();
        this.active.delete(t);
        reject(new AbortedError("interrupted by signal"));
        this.schedule();
      });
      this.schedule();
    });
  }

  private progress(): void {
    const now = this.clock.elapsed();
    const n = this.active.size;
    if (n > 0) {
      const share = (this.bytesPerMs * (now - this.last)) / n;
      for (const t of this.active) t.remaining -= share;
    }
    this.last = now;
  }

  private schedule(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    for (const t of [...this.active]) {
      if (t.remaining <= 1) {
        this.active.delete(t);
        t.resolve();
      }
    }
    if (this.active.size === 0) return;
    const min = Math.min(...[...this.active].map((t) => t.remaining));
    const wait = min / (this.bytesPerMs / this.active.size);
    // a real timer fires no sooner than 1 ms: keep the old rounding there
    const ms = this.clock.virtual ? wait : Math.max(1, Math.ceil(this.clock.span(wait))) / this.clock.span(1);
    this.cancelTimer = this.clock.after(ms, () => {
      this.progress();
      this.schedule();
    });
  }
}

export class Latency {
  readonly opts: LatencyOptions;
  private readonly channels = new Map<string, SharedChannel>();

  constructor(
    opts: Partial<LatencyOptions> | undefined,
    readonly clock: SimClock,
  ) {
    this.opts = { ...DEFAULT_LATENCY, ...(opts ?? {}) };
  }

  /** Real (wall-clock) milliseconds a base duration takes. */
  real(baseMs: number): number {
    return this.clock.span(baseMs);
  }

  /** True when PVE time does not flow (real clock, timeFactor 0): everything is instant. */
  private instant(): boolean {
    return !this.clock.virtual && this.clock.span(1) <= 0;
  }

  /** Waits a base duration (scaled); rejects with AbortedError when `signal` aborts. */
  sleep(baseMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new AbortedError("interrupted by signal"));
      const cancel = this.clock.after(baseMs, () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
      function onAbort() {
        cancel();
        reject(new AbortedError("interrupted by signal"));
      }
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Moves `bytes` through the channel `key` (a storage id, or `storage@node` for local
   *  storage), sharing its bandwidth with the other transfers in flight there. */
  transfer(key: string, bytes: number, signal?: AbortSignal, bandwidth = this.opts.storageBandwidth): Promise<void> {
    if (this.instant() || bytes <= 0) return this.sleep(0, signal);
    let ch = this.channels.get(key);
    if (!ch) {
      ch = new SharedChannel(this.clock, bandwidth / 1000);
      this.channels.set(key, ch);
    }
    return ch.add(bytes, signal);
  }

  /** Transfers in flight on a channel (for the back door / tests). */
  inFlight(key: string): number {
    return this.channels.get(key)?.inFlight ?? 0;
  }
}
