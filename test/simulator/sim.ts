// The composition root of the simulator: options, the seeded random streams, the virtual
// clock, the route table, the back-door table, and the state parts (access and pools are
// owned here; the cluster part sets `sim.cluster`). See README.md "Sim API".

import { Auth } from "./auth";
import { RealClock, SimClock, VirtualClock } from "./clock";
import { Faults, FaultConfig } from "./faults";
import { deriveRng, Rng, uuidFrom } from "./rng";
import { AccessState } from "./state/access";
import { PoolState } from "./state/pools";
import { ClusterView, ResourceEntry, RouteDef, SimRequest } from "./types";

export type PveVersion = "8.4" | "9.1";

export interface SimOptions {
  /** Number of nodes (named pve1..pveN) or explicit node names. Default 3. */
  nodes?: number | string[];
  /** Which PVE the simulator imitates (built-in roles, privilege list, /version). Default "9.1". */
  pveVersion?: PveVersion;
  /** Seed of every random stream. Default 1. */
  seed?: number;
  /** Scales simulated durations (task run time, modelled latency). 0 = instant. Default 0. */
  timeFactor?: number;
  /** PVE time stands still until the test moves it (`sim.virtualClock().advance(ms)`,
   *  `step()`, `runUntilIdle()`): deterministic whatever the machine's load; timeFactor is
   *  then ignored. `startMs` sets the epoch the clock starts at (default: now). */
  virtualTime?: boolean | { startMs: number };
  /** Delay before answering a 401, like pveproxy's 3 s. Default 0. */
  unauthorizedDelayMs?: number;
  /** Faults active from the start. */
  faults?: FaultConfig;
  /** root@pam's password for POST /access/ticket. Default "pve-sim-root". */
  rootPassword?: string;
  /** Token id of the root token returned by startSimulator. Default "sim". */
  rootTokenId?: string;
  /** Cluster name returned in tickets / cluster status. Default "pve-sim". */
  clusterName?: string;
  /** Secret for the back door (`Authorization: SimAdmin <secret>`); the root token is
   *  always accepted too. Default: a random UUID. */
  adminSecret?: string;
  /** Port to listen on (127.0.0.1). Default 0 = random. */
  port?: number;
  /** API worker processes: pveproxy and pvedaemon each run 3 by default (BEHAVIOURS.md,
   *  "Concurrency of the API server"). Reads are served by the proxy's workers; writes and
   *  protected reads (guest agent calls) by the pvedaemon of the node in the path (pve-manager
   *  HTTPServer.pm proxies `protected => 1` calls to it); a request holds a worker while it is
   *  processed, so excess requests queue. */
  apiWorkers?: number;
  /** Options of the cluster part (latency model, storage bandwidth, agent, SSH), defined
   *  and read by the cluster engineer's modules. */
  cluster?: any;
}

export type ResolvedSimOptions = Required<Omit<SimOptions, "faults" | "cluster" | "nodes">> & {
  nodes: string[];
  faults: FaultConfig;
  cluster: any;
};

export interface RequestLogEntry {
  /** sim.now() at arrival, ms since the epoch. */
  time: number;
  method: string;
  /** Route template, when a route matched. */
  template?: string;
  /** Concrete path under /api2/json (query string excluded). */
  path: string;
  status: number;
  /** `user@realm`, `user@realm!token`, or undefined when unauthenticated. Never a secret. */
  principal?: string;
  durationMs: number;
  /** Set when a fault rule decided the outcome (`error`, `reset`). */
  fault?: string;
  /** The request's parameters once validated (typed: booleans 0/1), path parameters
   *  included; absent when the request failed before validation. Values of secret-bearing
   *  keys (passwords, tickets, keys, OTPs...) are replaced by `[redacted]`. */
  params?: Record<string, unknown>;
}

/** Parameter names whose values never enter the request log. */
export const SECRET_PARAM = /pass|secret|otp|tfa|ticket|token|key|cert|cipher|value/i;

/** `params` with the values of secret-bearing keys replaced (the request log's copy). */
export function redactParams(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) out[k] = SECRET_PARAM.test(k) ? "[redacted]" : v;
  return out;
}

/** A back-door handler: gets the parsed JSON/form body merged with the query. */
export type BackdoorHandler = (params: Record<string, any>, pathParams: Record<string, string>) => unknown | Promise<unknown>;

export interface BackdoorRoute {
  method: string;
  /** Template under /_sim, e.g. `/vms/{vmid}`. */
  path: string;
  handler: BackdoorHandler;
}

/** SSH endpoint of one node, filled in by the cluster part's ssh.ts on start. */
export interface NodeSsh {
  sshPort: number;
  hostKeyFingerprint: string;
}

/** Used until the cluster part registers its own ClusterView: nodes exist, nothing else. */
export class StubClusterView implements ClusterView {
  constructor(private readonly nodes: string[]) {}
  nodeNames(): string[] {
    return [...this.nodes];
  }
  vmExists(_vmid: number): boolean {
    return false;
  }
  vmResource(_vmid: number): ResourceEntry | undefined {
    return undefined;
  }
  storageExists(_storage: string): boolean {
    return false;
  }
  storageResources(_storage: string): ResourceEntry[] {
    return [];
  }
}

function resolveNodes(nodes: SimOptions["nodes"]): string[] {
  if (Array.isArray(nodes)) return [...nodes];
  const n = nodes ?? 3;
  return Array.from({ length: n }, (_, i) => `pve${i + 1}`);
}

export class Sim {
  readonly options: ResolvedSimOptions;
  /** The general seeded stream. Prefer `rngFor(name)` for a module's own stream. */
  readonly rng: Rng;
  readonly routes: RouteDef[] = [];
  readonly backdoorRoutes: BackdoorRoute[] = [];
  readonly access: AccessState;
  readonly pools: PoolState;
  /** Set by the cluster part's register(); a stub until then. */
  cluster: ClusterView;
  readonly faults: Faults;
  /** Tickets, CSRF tokens, API-token and ticket verification, login. */
  readonly auth: Auth;
  readonly requestLog: RequestLogEntry[] = [];
  /** Filled by the cluster part's SSH servers during start hooks. */
  readonly nodeSsh = new Map<string, NodeSsh>();
  /** Extra latency (ms, before timeFactor) per request; the cluster part's latency.ts may
   *  replace it. Returning 0 means none. */
  latencyModel: (method: string, template: string, path: string) => number = () => 0;
  /** Extra state the cluster part wants to hang on the sim. */
  readonly ext: Record<string, any> = {};
  /** Where simulated time comes from (clock.ts). */
  readonly clock: SimClock;

  private clockOffsetMs = 0;
  private readonly startHooks: Array<() => Promise<void> | void> = [];
  private readonly stopHooks: Array<() => Promise<void> | void> = [];

  constructor(options: SimOptions = {}) {
    const seed = options.seed ?? 1;
    this.options = {
      nodes: resolveNodes(options.nodes),
      pveVersion: options.pveVersion ?? "9.1",
      seed,
      timeFactor: options.timeFactor ?? 0,
      virtualTime: options.virtualTime ?? false,
      unauthorizedDelayMs: options.unauthorizedDelayMs ?? 0,
      faults: options.faults ?? {},
      rootPassword: options.rootPassword ?? "pve-sim-root",
      rootTokenId: options.rootTokenId ?? "sim",
      clusterName: options.clusterName ?? "pve-sim",
      adminSecret: options.adminSecret ?? uuidFrom(deriveRng(seed, "admin-secret")),
      port: options.port ?? 0,
      apiWorkers: options.apiWorkers ?? 3,
      cluster: options.cluster ?? {},
    };
    if (this.options.nodes.length === 0) throw new Error("the simulator needs at least one node");
    const vt = this.options.virtualTime;
    this.clock = vt ? new VirtualClock(typeof vt === "object" ? vt.startMs : Date.now()) : new RealClock(() => this.options.timeFactor);
    this.rng = deriveRng(seed, "general");
    this.faults = new Faults(deriveRng(seed, "faults"), this.options.faults);
    this.access = new AccessState(this);
    this.pools = new PoolState(this);
    this.cluster = new StubClusterView(this.options.nodes);
    this.auth = new Auth(this);
  }

  /** An independent seeded stream for one consumer. Same name + seed = same sequence. */
  rngFor(name: string): Rng {
    return deriveRng(this.options.seed, name);
  }

  /** A fresh UUID from the given (or the general) stream. */
  uuid(rng: Rng = this.rng): string {
    return uuidFrom(rng);
  }

  /** Virtual time in ms since the epoch: the clock's time plus the offset set by advanceClock. */
  now(): number {
    return this.clock.now() + this.clockOffsetMs;
  }

  /** Virtual time in whole seconds (PVE's epoch values: expire, ctime, ticket time). */
  nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }

  advanceClock(ms: number): void {
    this.clockOffsetMs += ms;
  }

  clockOffset(): number {
    return this.clockOffsetMs;
  }

  /** Waits `ms` of PVE time: `ms * timeFactor` real milliseconds (the next tick when 0),
   *  or until a test moves the virtual clock that far. */
  delay(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.after(ms, resolve));
  }

  /** The virtual clock; throws unless the sim was created with `virtualTime`. */
  virtualClock(): VirtualClock {
    if (!(this.clock instanceof VirtualClock)) throw new Error("the simulator runs on real time (start it with virtualTime: true)");
    return this.clock;
  }

  nodeNames(): string[] {
    return [...this.options.nodes];
  }

  /** Registers an API route under /api2/json. Duplicate method+path is an error. */
  route(def: RouteDef): void {
    if (this.routes.some((r) => r.method === def.method && r.path === def.path)) {
      throw new Error(`route ${def.method} ${def.path} registered twice`);
    }
    this.routes.push(this.options.pveVersion === "8.4" ? withoutPve9Params(def) : def);
  }

  /** Registers a back-door route under /_sim (root token or admin secret required). */
  backdoor(method: string, path: string, handler: BackdoorHandler): void {
    this.backdoorRoutes.push({ method: method.toUpperCase(), path, handler });
  }

  onStart(hook: () => Promise<void> | void): void {
    this.startHooks.push(hook);
  }

  onStop(hook: () => Promise<void> | void): void {
    this.stopHooks.push(hook);
  }

  async runStartHooks(): Promise<void> {
    for (const h of this.startHooks) await h();
  }

  async runStopHooks(): Promise<void> {
    for (const h of [...this.stopHooks].reverse()) {
      try {
        await h();
      } catch {
        // keep stopping the rest
      }
    }
  }

  /** Runs a registered route in-process, bypassing HTTP, auth and validation. For tests
   *  of handlers; `params` must already be typed as validation would produce them. */
  async invoke(method: SimRequest["method"], template: string, params: Record<string, any>, principal = "root@pam"): Promise<unknown> {
    const def = this.routes.find((r) => r.method === method && r.path === template);
    if (!def) throw new Error(`no route ${method} ${template}`);
    const [userid, token] = principal.split("!");
    return def.handler({
      method,
      path: template.replace(/\{([^}]+)\}/g, (_, k) => String(params[k])),
      params,
      auth: { userid, tokenid: token ? principal : undefined, principal },
    });
  }

  clearRequestLog(): void {
    this.requestLog.length = 0;
  }
}

function withoutPve9Params(def: RouteDef): RouteDef {
  const params = Object.fromEntries(Object.entries(def.params).filter(([, p]) => !p.sincePve9));
  return { ...def, params };
}
