import type { Clock } from "../util/clock";
import { systemClock } from "../util/clock";
import { PveApiError, isContention } from "./errors";

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** No retry starts once this much time has passed since the first attempt. */
  maxElapsedMs: number;
}

/** Reads: transient network trouble and 5xx clear up quickly or not at all. */
export const READ_RETRY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 250, maxDelayMs: 4_000, maxElapsedMs: 30_000 };

/** Writes refused for contention: PVE's flock waits 10 s itself, and a clone can hold a VM for minutes. */
export const CONTENTION_RETRY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 1_000, maxDelayMs: 15_000, maxElapsedMs: 120_000 };

/** GETs have no effect, so any transient failure may be retried: network, timeout, 5xx. */
export function isRetryableRead(err: unknown): boolean {
  if (!(err instanceof PveApiError)) return false;
  if (err.kind === "network" || err.kind === "timeout") return true;
  if (err.status === undefined || err.status < 500 || err.status === 501) return false;
  return err.kind === "server" || err.kind === "lockTimeout" || err.kind === "locked";
}

/**
 * A write is retried only when PVE said it did nothing for contention
 * (`can't lock file ... got timeout`, `got no worker upid`, and `VM is locked (...)` when
 * the caller says the write may wait for a lock), or when the request never left
 * this process (connection refused). A network error after sending may mean the write
 * was applied, and a 4xx or an ordinary 500 will not change by asking again.
 */
export function isRetryableWrite(err: unknown, opts: { retryOnLocked?: boolean } = {}): boolean {
  if (!(err instanceof PveApiError)) return false;
  if (err.kind === "network") return err.notSent;
  if (err.status === undefined || err.status < 500) return false;
  return isContention(err, { includeConfigLock: opts.retryOnLocked });
}

/** Exponential backoff with jitter: a delay in [d/2, d), d doubling up to maxDelayMs. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
}

export interface RetryOptions {
  policy: RetryPolicy;
  shouldRetry: (err: unknown) => boolean;
  clock?: Clock;
  random?: () => number;
  signal?: AbortSignal;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Where `policy.maxElapsedMs` counts from: the first attempt (default), or the first failure
   *  (a step that may run long before it fails keeps its whole budget for retries). */
  elapsedFrom?: "start" | "firstFailure";
}

export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const clock = opts.clock ?? systemClock;
  const started = clock.now();
  let firstFailure: number | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      firstFailure ??= clock.now();
      if (attempt >= opts.policy.maxAttempts || !opts.shouldRetry(err) || opts.signal?.aborted) throw err;
      const delay = backoffDelay(attempt, opts.policy, opts.random);
      const since = opts.elapsedFrom === "firstFailure" ? firstFailure : started;
      if (clock.now() - since + delay > opts.policy.maxElapsedMs) throw err;
      opts.onRetry?.(err, attempt, delay);
      await clock.sleep(delay, opts.signal);
    }
  }
}
