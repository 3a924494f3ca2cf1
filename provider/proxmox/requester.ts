import type { Clock } from "../util/clock";
import type { Logger } from "../util/logger";
import type { Envelope, HttpMethod, Params } from "./http";

export interface RequestOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Writes only: also retry `VM is locked (...)`, for writes that may simply wait for the lock. */
  retryOnLocked?: boolean;
  /** Do not retry at all (the caller handles failures itself). */
  noRetry?: boolean;
}

/** Counters a benchmark or a test may read. */
export interface ClientStats {
  requests: number;
  retries: number;
  tasksWaited: number;
  taskPolls: number;
}

/** What the API-area modules need from a client: authenticated, bounded, retried calls. */
export interface Requester {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly stats: ClientStats;
  request<T>(method: HttpMethod, path: string, params?: Params, opts?: RequestOptions): Promise<Envelope<T>>;
  get<T>(path: string, params?: Params, opts?: RequestOptions): Promise<T>;
  post<T>(path: string, params?: Params, opts?: RequestOptions): Promise<T>;
  put<T>(path: string, params?: Params, opts?: RequestOptions): Promise<T>;
  del<T>(path: string, params?: Params, opts?: RequestOptions): Promise<T>;
}
