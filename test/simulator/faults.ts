// Fault injection, deterministic under the simulator's seed.
//
// Request-level rules match a method and a path (a route template such as
// `/nodes/{node}/qemu/{vmid}/clone`, a concrete path, or a regular expression written as
// `/.../`) and add latency, answer with an error, or reset the connection.
// Task-level knobs are read by the cluster part (tasks.ts, locks.ts) through the hooks below.

import { Rng } from "./rng";

export interface FaultRule {
  /** HTTP method, or omitted / "*" for any. */
  method?: string;
  /** Route template (`/nodes/{node}/qemu`), concrete path (`/nodes/pve1/qemu`), `*` for
   *  every path, or a regular expression between slashes matched against the concrete
   *  path (`/^\/access\//`). Matching is on the path under /api2/json. */
  path?: string;
  /** Extra latency added before the handler runs (ms, scaled by nothing: real time). */
  latencyMs?: number;
  /** Probability (0..1) of answering with `error` instead of running the handler. */
  errorRate?: number;
  /** The error to answer with. Default: 500 with a plausible PVE message. */
  error?: { status?: number; message?: string };
  /** Probability (0..1) of destroying the socket without any response. */
  resetRate?: number;
  /** Probability (0..1) that the request is carried out but its response is lost (the socket
   *  is destroyed after the handler ran): a write the client cannot tell from a reset. */
  lostResponseRate?: number;
  /** Apply to at most this many matching requests, then the rule is spent. */
  times?: number;
}

export interface TaskFaults {
  /** Multiplies task durations (2 = twice as slow). Default 1. */
  slowFactor?: number;
  /** Probability (0..1) that a task is slowed by `slowFactor`. Default: every task. */
  slowRate?: number;
  /** Probability (0..1) that a task fails with `failMessage`. */
  failRate?: number;
  failMessage?: string;
  /** Restrict task faults to these worker types (`qmclone`, `qmstart`, ...). Default all. */
  types?: string[];
}

export interface FaultConfig {
  rules?: FaultRule[];
  tasks?: TaskFaults;
  /** Probability (0..1) that taking a VM config flock times out. */
  lockContention?: number;
}

export type RequestFault =
  | { kind: "none"; latencyMs: number }
  | { kind: "error"; latencyMs: number; status: number; message: string }
  | { kind: "reset"; latencyMs: number }
  | { kind: "lostResponse"; latencyMs: number };

interface LiveRule extends FaultRule {
  used: number;
}

const DEFAULT_ERROR = "unable to read file '/etc/pve/user.cfg' - got timeout";

function templateToRegex(template: string): RegExp {
  const esc = template
    .split(/(\{[^}]+\})/)
    .map((part) => (part.startsWith("{") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${esc}$`);
}

export class Faults {
  private rules: LiveRule[] = [];
  private tasks: TaskFaults = {};
  private lockContentionRate = 0;
  /** Task-level faults injected so far (request-level ones are in the request log's `fault`). */
  readonly injected = { slowTasks: 0, failedTasks: 0, lockContention: 0 };

  constructor(
    private readonly rng: Rng,
    config?: FaultConfig,
  ) {
    if (config) this.configure(config);
  }

  /** Replaces the whole configuration. */
  configure(config: FaultConfig): void {
    this.rules = (config.rules ?? []).map((r) => ({ ...r, used: 0 }));
    this.tasks = { ...(config.tasks ?? {}) };
    this.lockContentionRate = config.lockContention ?? 0;
  }

  addRule(rule: FaultRule): void {
    this.rules.push({ ...rule, used: 0 });
  }

  clear(): void {
    this.configure({});
  }

  config(): FaultConfig {
    return {
      rules: this.rules.map(({ used: _used, ...r }) => r),
      tasks: { ...this.tasks },
      lockContention: this.lockContentionRate,
    };
  }

  private matches(rule: FaultRule, method: string, template: string | undefined, path: string): boolean {
    if (rule.method && rule.method !== "*" && rule.method.toUpperCase() !== method) return false;
    const p = rule.path;
    if (!p || p === "*") return true;
    if (p.length > 2 && p.startsWith("/") && p.lastIndexOf("/") > 0 && /\/[a-z]*$/.test(p) && /[\\^$|()[\]]/.test(p)) {
      const last = p.lastIndexOf("/");
      return new RegExp(p.slice(1, last), p.slice(last + 1)).test(path);
    }
    if (template !== undefined && p === template) return true;
    return templateToRegex(p).test(path);
  }

  /** Decides what happens to one request. Draws from the seeded stream only for rules
   *  that match, so unrelated traffic does not change the outcome for a given endpoint. */
  forRequest(method: string, template: string | undefined, path: string): RequestFault {
    let latencyMs = 0;
    for (const rule of this.rules) {
      if (rule.times !== undefined && rule.used >= rule.times) continue;
      if (!this.matches(rule, method, template, path)) continue;
      let applied = false;
      if (rule.latencyMs) {
        latencyMs += rule.latencyMs;
        applied = true;
      }
      if (rule.resetRate && this.rng() < rule.resetRate) {
        rule.used++;
        return { kind: "reset", latencyMs };
      }
      if (rule.lostResponseRate && this.rng() < rule.lostResponseRate) {
        rule.used++;
        return { kind: "lostResponse", latencyMs };
      }
      if (rule.errorRate && this.rng() < rule.errorRate) {
        rule.used++;
        return {
          kind: "error",
          latencyMs,
          status: rule.error?.status ?? 500,
          message: rule.error?.message ?? DEFAULT_ERROR,
        };
      }
      if (applied) rule.used++;
    }
    return { kind: "none", latencyMs };
  }

  // ---- hooks for the cluster part --------------------------------------------------------

  /** Factor by which a task of this type runs slower (1 = normal). */
  taskSlowFactor(type: string): number {
    if (this.tasks.types && !this.tasks.types.includes(type)) return 1;
    if (!this.tasks.slowFactor || this.tasks.slowFactor === 1) return 1;
    if (this.tasks.slowRate !== undefined && this.rng() >= this.tasks.slowRate) return 1;
    this.injected.slowTasks++;
    return this.tasks.slowFactor;
  }

  /** The failure message for this task, or undefined when it should succeed. */
  taskFailure(type: string): string | undefined {
    if (!this.tasks.failRate) return undefined;
    if (this.tasks.types && !this.tasks.types.includes(type)) return undefined;
    if (this.rng() >= this.tasks.failRate) return undefined;
    this.injected.failedTasks++;
    return this.tasks.failMessage ?? "injected failure";
  }

  /** True when taking the config flock of `vmid` should time out. */
  lockContention(_vmid: number): boolean {
    const hit = this.lockContentionRate > 0 && this.rng() < this.lockContentionRate;
    if (hit) this.injected.lockContention++;
    return hit;
  }

  /** PVE's flock timeout text (COMMON Tools.pm `lock_file_full`). */
  static lockTimeoutMessage(vmid: number): string {
    return `can't lock file '/var/lock/qemu-server/lock-${vmid}.conf' - got timeout`;
  }
}
