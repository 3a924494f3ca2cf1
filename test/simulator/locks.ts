// The per-VM config flock PVE takes on `/var/lock/qemu-server/lock-<vmid>.conf`
// (GUEST AbstractConfig.pm `lock_config_full`/`lock_config_shared`, COMMON Tools.pm
// `lock_file_full`): shared or exclusive, with a timeout after which the caller dies with
// `can't lock file '/var/lock/qemu-server/lock-<vmid>.conf' - got timeout`.
// The config `lock` property (`VM is locked (clone)`) lives in the VM's config instead.

import { PveError } from "./types";

export type LockMode = "shared" | "exclusive";

interface Waiter {
  mode: LockMode;
  owner: string;
  grant(): void;
}

interface LockState {
  mode?: LockMode;
  holders: Map<number, string>;
  waiters: Waiter[];
}

export interface HeldLock {
  vmid: number;
  path: string;
  mode: LockMode;
  holders: string[];
  waiting: number;
}

export function lockTimeoutMessage(vmid: number): string {
  return `can't lock file '/var/lock/qemu-server/lock-${vmid}.conf' - got timeout`;
}

export class LockManager {
  private readonly locks = new Map<number, LockState>();
  private seq = 0;

  constructor(
    /** Calls `fn` when a base timeout (PVE ms) has passed; returns a cancel function. */
    private readonly timeout: (baseMs: number, fn: () => void) => () => void,
    /** Fault hook: true = this acquisition times out. */
    private readonly contention: (vmid: number) => boolean = () => false,
  ) {}

  private state(vmid: number): LockState {
    let s = this.locks.get(vmid);
    if (!s) {
      s = { holders: new Map(), waiters: [] };
      this.locks.set(vmid, s);
    }
    return s;
  }

  private compatible(s: LockState, mode: LockMode): boolean {
    return s.holders.size === 0 || (s.mode === "shared" && mode === "shared");
  }

  /** Takes the flock; resolves to a release function. Throws PveError 500 on timeout. */
  async acquire(vmid: number, mode: LockMode, timeoutBaseMs: number, owner = "api"): Promise<() => void> {
    const s = this.state(vmid);
    const id = ++this.seq;
    const contended = this.contention(vmid);
    if (!contended && this.compatible(s, mode)) return this.grant(vmid, s, id, mode, owner);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        mode,
        owner,
        grant: () => {
          cancel();
          resolve(this.grant(vmid, s, id, mode, owner));
        },
      };
      if (!contended) s.waiters.push(waiter);
      const cancel = this.timeout(timeoutBaseMs, () => {
        const i = s.waiters.indexOf(waiter);
        if (i >= 0) s.waiters.splice(i, 1);
        reject(new PveError(500, lockTimeoutMessage(vmid)));
      });
    });
  }

  private grant(vmid: number, s: LockState, id: number, mode: LockMode, owner: string): () => void {
    s.mode = mode;
    s.holders.set(id, owner);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      s.holders.delete(id);
      if (s.holders.size === 0) s.mode = undefined;
      this.wake(vmid, s);
    };
  }

  private wake(vmid: number, s: LockState): void {
    for (const w of [...s.waiters]) {
      if (!this.compatible(s, w.mode)) continue;
      s.waiters.splice(s.waiters.indexOf(w), 1);
      w.grant();
    }
    if (s.holders.size === 0 && s.waiters.length === 0) this.locks.delete(vmid);
  }

  /** Runs `fn` under the flock. */
  async with<T>(vmid: number, mode: LockMode, timeoutBaseMs: number, fn: () => Promise<T> | T, owner?: string): Promise<T> {
    const release = await this.acquire(vmid, mode, timeoutBaseMs, owner);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  held(): HeldLock[] {
    return [...this.locks.entries()]
      .filter(([, s]) => s.holders.size > 0)
      .map(([vmid, s]) => ({
        vmid,
        path: `/var/lock/qemu-server/lock-${vmid}.conf`,
        mode: s.mode!,
        holders: [...s.holders.values()],
        waiting: s.waiters.length,
      }));
  }
}
