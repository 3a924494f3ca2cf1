// Which failures of a VM step are transient, and how a step that looks before it acts is run
// again after one.

import { PveApiError, PveTaskError, isLocked } from "../../proxmox";
import { isCloneRefused } from "../../proxmox/errors";
import { withRetry } from "../../proxmox/retry";
import { providerLogger } from "../context";
import type { VmContext } from "./vm-context";

/**
 * A failure after which PVE may or may not have carried the request out: the connection broke
 * after the request was sent, no answer came in time, or a 5xx that is not one of PVE's
 * definite refusals. A write that failed this way must be checked, not blindly repeated.
 */
export function isAmbiguousFailure(err: unknown): boolean {
  if (!(err instanceof PveApiError)) return false;
  if (err.kind === "network") return !err.notSent;
  if (err.kind === "timeout") return true;
  return err.kind === "server" && err.status !== undefined && err.status >= 500 && err.status !== 501 && !isCloneRefused(err);
}


/** A failure that asking again may clear: ambiguous network/5xx trouble, or lock contention. */
export function isTransient(err: unknown): boolean {
  if (err instanceof PveApiError) return isAmbiguousFailure(err) || (err.kind === "network" && err.notSent) || isLocked(err);
  if (err instanceof PveTaskError) return !err.timedOut && isLocked(err);
  return false;
}

/**
 * How long a convergent step keeps being retried for transient trouble. PVE documents lock
 * contention (`can't lock file ... got timeout`, `VM is locked`) as transient, and a dropped
 * connection is too: for those the budget is time, not a handful of attempts, so retries go on,
 * with capped exponential backoff, until `budgetMs` have passed since the first failure (or
 * `maxAttempts` ran, a bound for pathological fast failures). Other ambiguous failures (a 5xx
 * that is not contention, a request timeout) may well be permanent: at most `otherAttempts`.
 */
export interface ConvergentRetry {
  maxAttempts: number;
  budgetMs: number;
  otherAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const CONVERGENT_RETRY: ConvergentRetry = { maxAttempts: 25, budgetMs: 120_000, otherAttempts: 4, baseDelayMs: 250, maxDelayMs: 5_000 };

/** Lock contention or a dropped/refused connection: transient by nature, retried on a time budget. */
function isContentionOrNetwork(err: unknown): boolean {
  if (isLocked(err)) return true;
  return err instanceof PveApiError && err.kind === "network";
}

/**
 * Runs an idempotent, convergent step (read the VM, change what differs) again when it failed
 * for a transient reason. Not for bare writes: only for steps that look before they act.
 */
export async function retryConvergent<T>(ctx: VmContext, what: string, step: () => Promise<T>, policy: ConvergentRetry = CONVERGENT_RETRY): Promise<T> {
  let others = 0;
  let attempts = 0;
  let firstFailure: number | undefined;
  try {
    return await withRetry(
      (attempt) => {
        attempts = attempt;
        return step();
      },
      {
        policy: { maxAttempts: policy.maxAttempts, baseDelayMs: policy.baseDelayMs, maxDelayMs: policy.maxDelayMs, maxElapsedMs: policy.budgetMs },
        elapsedFrom: "firstFailure",
        shouldRetry: (err) => isTransient(err) && (isContentionOrNetwork(err) || ++others < policy.otherAttempts),
        clock: ctx.api.clock,
        random: ctx.api.random,
        onRetry: (err, attempt, delay) => {
          firstFailure ??= ctx.api.clock.now();
          providerLogger.debug(`${what}: ${err instanceof Error ? err.message : String(err)}; checking the VM and trying again in ${delay} ms (attempt ${attempt + 1})`);
        },
      },
    );
  } catch (err) {
    // a lock that outlasted the retries: say which step waited how long (others pass as they are)
    throw gaveUp(what, err, attempts, ctx.api.clock.now() - (firstFailure ?? ctx.api.clock.now()));
  }
}

/** The error once retries for a lock ran out: which step, which VM, how long it waited. Other
 *  errors are passed on as they are. */
function gaveUp(what: string, err: unknown, attempts: number, waitedMs: number): unknown {
  if (!isLocked(err)) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new Error(
    `${what}: ${why}; still locked after ${attempts} attempts over ${Math.round(waitedMs / 1000)} s.`,
    { cause: err },
  );
}
