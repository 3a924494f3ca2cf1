import { createHash } from "crypto";
import type { Clock } from "../util/clock";
import { systemClock } from "../util/clock";
import type { Logger } from "../util/logger";
import { silentLogger } from "../util/logger";
import { Semaphore } from "../util/semaphore";
import { AccessApi } from "./access";
import { TicketAuth, TokenAuth, type Authenticator, type TicketResponse } from "./auth";
import { ClusterApi } from "./cluster";
import { PveApiError, type PveIdentity } from "./errors";
import { HttpTransport, type Envelope, type HttpMethod, type Params } from "./http";
import { NodesApi } from "./nodes";
import { PoolsApi } from "./pools";
import { QemuApi } from "./qemu";
import { secretParamValues } from "./redact";
import type { ClientStats, RequestOptions, Requester } from "./requester";
import { CONTENTION_RETRY, READ_RETRY, isRetryableRead, isRetryableWrite, withRetry, type RetryPolicy } from "./retry";
import { StorageApi } from "./storage";
import { TasksApi } from "./tasks";
import { resolveTls, warnInsecureOnce, type TlsSettings } from "./tls";

export type PveCredentials =
  | { kind: "token"; tokenId: string; secret: string }
  | { kind: "password"; username: string; password: string; otp?: string; realm?: string };

export interface PveClientOptions {
  /** `https://host:8006` */
  endpoint: string;
  credentials: PveCredentials;
  tls?: TlsSettings;
  /** Requests in flight at once, per client (a PVE node serves its API with 3 workers). Default 8. */
  maxConcurrentRequests?: number;
  requestTimeoutMs?: number;
  logger?: Logger;
  clock?: Clock;
  random?: () => number;
  readRetry?: RetryPolicy;
  writeRetry?: RetryPolicy;
  /** Age at which a login ticket is renewed (tests shorten it). */
  ticketRenewAfterMs?: number;
}

export const DEFAULT_MAX_CONCURRENT_REQUESTS = 8;

/** The PVE API client: authenticated, bounded, retried calls, and one object per API area. */
export class PveClient implements Requester {
  readonly endpoint: string;
  readonly identity: PveIdentity;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly stats: ClientStats = { requests: 0, retries: 0, tasksWaited: 0, taskPolls: 0 };
  readonly limiter: Semaphore;

  readonly tasks: TasksApi;
  readonly cluster: ClusterApi;
  readonly nodes: NodesApi;
  readonly qemu: QemuApi;
  readonly storage: StorageApi;
  readonly pools: PoolsApi;
  readonly access: AccessApi;

  private readonly transport: HttpTransport;
  private readonly auth: Authenticator;
  /** The source of backoff jitter (injectable for tests). */
  readonly random: () => number;
  private readonly readRetry: RetryPolicy;
  private readonly writeRetry: RetryPolicy;

  constructor(opts: PveClientOptions) {
    this.endpoint = opts.endpoint.replace(/\/+$/, "");
    this.logger = opts.logger ?? silentLogger;
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.readRetry = opts.readRetry ?? READ_RETRY;
    this.writeRetry = opts.writeRetry ?? CONTENTION_RETRY;
    const limit = opts.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS;
    this.limiter = new Semaphore(limit);
    const tls = resolveTls(opts.tls ?? {});
    if (!tls.rejectUnauthorized) warnInsecureOnce(this.logger, this.endpoint);
    this.transport = new HttpTransport({ endpoint: this.endpoint, tls, timeoutMs: opts.requestTimeoutMs, maxSockets: limit * 2 });

    const creds = opts.credentials;
    if (creds.kind === "token") {
      this.auth = new TokenAuth(creds.tokenId, creds.secret);
    } else {
      this.auth = new TicketAuth({
        username: creds.username,
        password: creds.password,
        otp: creds.otp,
        realm: creds.realm,
        endpoint: this.endpoint,
        clock: this.clock,
        renewAfterMs: opts.ticketRenewAfterMs,
        post: (params, signal) => this.postTicket(params, signal),
      });
    }
    this.identity = this.auth.identity;

    this.tasks = new TasksApi(this);
    this.cluster = new ClusterApi(this);
    this.nodes = new NodesApi(this);
    this.qemu = new QemuApi(this, this.tasks);
    this.storage = new StorageApi(this, this.tasks);
    this.pools = new PoolsApi(this);
    this.access = new AccessApi(this);
  }

  /** Secrets this client holds now; anything shown to a user is scrubbed of them. */
  secrets(): string[] {
    return this.auth.secrets();
  }

  async request<T>(method: HttpMethod, path: string, params?: Params, opts: RequestOptions = {}): Promise<Envelope<T>> {
    const isRead = method === "GET";
    const shouldRetry = opts.noRetry
      ? () => false
      : isRead
        ? isRetryableRead
        : (err: unknown) => isRetryableWrite(err, { retryOnLocked: opts.retryOnLocked });
    return withRetry(() => this.sendAuthenticated<T>(method, path, params, opts), {
      policy: isRead ? this.readRetry : this.writeRetry,
      shouldRetry,
      clock: this.clock,
      random: this.random,
      signal: opts.signal,
      onRetry: (err, attempt, delay) => {
        this.stats.retries++;
        const reason = err instanceof PveApiError ? err.message : String(err);
        this.logger.debug(`retrying ${method} ${path} in ${delay} ms (attempt ${attempt + 1}): ${reason}`);
      },
    });
  }

  async get<T>(path: string, params?: Params, opts?: RequestOptions): Promise<T> {
    return (await this.request<T>("GET", path, params, opts)).data;
  }

  async post<T>(path: string, params?: Params, opts?: RequestOptions): Promise<T> {
    return (await this.request<T>("POST", path, params, opts)).data;
  }

  async put<T>(path: string, params?: Params, opts?: RequestOptions): Promise<T> {
    return (await this.request<T>("PUT", path, params, opts)).data;
  }

  async del<T>(path: string, params?: Params, opts?: RequestOptions): Promise<T> {
    return (await this.request<T>("DELETE", path, params, opts)).data;
  }

  /** One request; a refused ticket is replaced once (the request was not executed, so this is safe). */
  private async sendAuthenticated<T>(method: HttpMethod, path: string, params: Params | undefined, opts: RequestOptions): Promise<Envelope<T>> {
    try {
      return await this.sendOnce<T>(method, path, params, opts);
    } catch (err) {
      if (err instanceof PveApiError && err.kind === "auth" && this.auth.invalidate()) {
        return this.sendOnce<T>(method, path, params, opts);
      }
      throw err;
    }
  }

  private async sendOnce<T>(method: HttpMethod, path: string, params: Params | undefined, opts: RequestOptions): Promise<Envelope<T>> {
    const headers = await this.auth.headers(method, opts.signal);
    return this.limiter.run(() => {
      this.stats.requests++;
      return this.transport.send<T>({
        method,
        path,
        params,
        headers,
        timeoutMs: opts.timeoutMs,
        signal: opts.signal,
        identity: this.identity,
        secrets: [...this.auth.secrets(), ...secretParamValues(params as Record<string, unknown>)],
      });
    });
  }

  private async postTicket(params: Params, signal?: AbortSignal): Promise<TicketResponse> {
    const env = await this.limiter.run(() => {
      this.stats.requests++;
      return this.transport.send<TicketResponse>({
        method: "POST",
        path: "/access/ticket",
        params,
        signal,
        identity: this.identity,
        secrets: [...this.auth.secrets(), ...secretParamValues(params as Record<string, unknown>)],
      });
    });
    return env.data;
  }
}

const registry = new Map<string, PveClient>();

function registryKey(opts: PveClientOptions): string {
  const c = opts.credentials;
  const identity = c.kind === "token" ? `token:${c.tokenId}` : `user:${c.username}@${c.realm ?? ""}`;
  const material = JSON.stringify([
    c.kind === "token" ? c.secret : c.password,
    c.kind === "password" ? c.otp ?? "" : "",
    opts.tls?.insecure ?? false,
    opts.tls?.caCert ?? "",
    opts.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS,
    opts.requestTimeoutMs ?? 0,
  ]);
  const digest = createHash("sha256").update(material).digest("hex").slice(0, 24);
  return `${opts.endpoint.replace(/\/+$/, "")}|${identity}|${digest}`;
}

/**
 * The per-process client for these settings: every resource of a program shares its
 * keep-alive connections, its request bound and (later) its caches and VMID allocator.
 */
export function getClient(opts: PveClientOptions): PveClient {
  const key = registryKey(opts);
  let client = registry.get(key);
  if (!client) {
    client = new PveClient(opts);
    registry.set(key, client);
  }
  return client;
}

/** Forgets every shared client (tests; a provider process reconfigured). */
export function clearClients(): void {
  registry.clear();
}
