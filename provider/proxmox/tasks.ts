import { PveTaskError } from "./errors";
import type { Params } from "./http";
import { apiPath } from "./path";
import { coerceNumbers } from "./coerce";
import type { RequestOptions, Requester } from "./requester";
import { TaskCohorts } from "./task-cohorts";
import { parseUpid, type Upid } from "./upid";
import type { Logger } from "../util/logger";

/** The decoded UPID fields, as the status endpoint returns them, plus the task's state. */
export interface TaskStatus extends Upid {
  tokenid?: string;
  status: "running" | "stopped";
  /** `OK`, `WARNINGS: <n>`, or the error text; only once stopped. */
  exitstatus?: string;
}

export interface TaskLogLine {
  n: number;
  t: string;
}

export interface TaskListEntry {
  upid: string;
  node: string;
  type: string;
  id: string;
  user: string;
  pid: number;
  pstart: number;
  starttime: number;
  endtime?: number;
  status?: string;
}

export interface WaitForTaskOptions {
  /** Give up after this long (the task keeps running on the node). Default 10 minutes. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** First status check after this long. Default 100 ms. */
  initialDelayMs?: number;
  /**
   * Then every this long (default 200 ms), so a task's end is seen within about that much
   * (BENCHMARKS.md: within 250 ms at the 95th percentile, request time and pveproxy's queue
   * included)...
   */
  pollIntervalMs?: number;
  /**
   * ...and, for long tasks, every this fraction of the time waited so far (default 0.005: a
   * 40 s clone is still seen within 200 ms, a 400 s one within 2 s, 0.5% late), whichever is
   * longer...
   */
  lateFraction?: number;
  /** ...up to this interval. Default 2 s. */
  maxDelayMs?: number;
  /** Instead of the above: the interval grows by this factor per poll (from initialDelayMs). */
  backoffFactor?: number;
  /** Log lines quoted when a task fails. Default 10. */
  logTailLines?: number;
  logger?: Logger;
}

export interface TaskResult {
  upid: string;
  node: string;
  type: string;
  id: string;
  exitstatus: string;
  /** The n of `WARNINGS: n`; 0 for `OK`. */
  warnings: number;
  /** The task log's `WARN…` lines, when it warned (and its log could be read). */
  warningLines?: string[];
  /** Status requests this wait made. */
  polls: number;
  elapsedMs: number;
}

export const DEFAULT_TASK_TIMEOUT_MS = 10 * 60 * 1000;
const LOG_PAGE = 50;

/** The node's task endpoints, and waiting for a task to finish. */
export class TasksApi {
  /** The waits in flight, by node and task type: a fleet's waits share what they see (task-cohorts.ts). */
  private readonly cohorts: TaskCohorts;

  constructor(private readonly r: Requester) {
    this.cohorts = new TaskCohorts(r.clock);
  }

  async status(node: string, upid: string, opts?: RequestOptions): Promise<TaskStatus> {
    const raw = await this.r.get<TaskStatus>(apiPath`/nodes/${node}/tasks/${upid}/status`, undefined, opts);
    return coerceNumbers(raw, ["pid", "pstart", "starttime"]);
  }

  async log(node: string, upid: string, range: { start?: number; limit?: number } = {}, opts?: RequestOptions): Promise<{ lines: TaskLogLine[]; total: number }> {
    const env = await this.r.request<TaskLogLine[]>("GET", apiPath`/nodes/${node}/tasks/${upid}/log`, { start: range.start ?? 0, limit: range.limit ?? LOG_PAGE }, opts);
    const lines = (env.data ?? []).map((l) => ({ n: Number(l.n), t: String(l.t) }));
    return { lines, total: env.total ?? lines.length };
  }

  /** The last `count` lines: one request for short logs, two for long ones. */
  async logTail(node: string, upid: string, count = 10, opts?: RequestOptions): Promise<string[]> {
    const first = await this.log(node, upid, { start: 0, limit: LOG_PAGE }, opts);
    if (first.total <= first.lines.length) return first.lines.slice(-count).map((l) => l.t);
    const start = Math.max(0, first.total - count);
    const tail = await this.log(node, upid, { start, limit: count }, opts);
    return tail.lines.map((l) => l.t);
  }

  async list(node: string, params: Params = {}, opts?: RequestOptions): Promise<TaskListEntry[]> {
    const rows = await this.r.get<TaskListEntry[]>(apiPath`/nodes/${node}/tasks`, params, opts);
    return rows.map((t) => coerceNumbers(t, ["pid", "pstart", "starttime", "endtime"]));
  }

  async stop(node: string, upid: string, opts?: RequestOptions): Promise<void> {
    await this.r.del(apiPath`/nodes/${node}/tasks/${upid}`, undefined, opts);
  }

  /**
   * Polls the task until it stops: first after 100 ms, then every 200 ms, or 0.5% of the time
   * waited when that is longer (up to 2 s), so the end is noticed late by at most
   * max(200 ms, 0.5%) plus one request (each poll is due on the schedule from the wait's start,
   * not from the previous answer). Waits of one node and task type in flight together
   * (a fleet's) spread their phases and share the ends they see (task-cohorts.ts), so the
   * fleet notices its ends within about interval/n.
   * `OK` and `WARNINGS: n` are success (warning lines go to the logger);
   * anything else throws PveTaskError with the end of the task log.
   */
  async wait(upid: string, opts: WaitForTaskOptions = {}): Promise<TaskResult> {
    const info = parseUpid(upid);
    const clock = this.r.clock;
    const logger = opts.logger ?? this.r.logger;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TASK_TIMEOUT_MS;
    const factor = opts.backoffFactor;
    const interval = opts.pollIntervalMs ?? 200;
    const lateFraction = opts.lateFraction ?? 0.005;
    const maxDelay = opts.maxDelayMs ?? 2_000;
    const started = clock.now();
    let delay = opts.initialDelayMs ?? 100;
    let polls = 0;
    this.r.stats.tasksWaited++;
    const waiter = this.cohorts.join(info.node, info.type);
    // the k-th wait of a cohort shifts its schedule: its second poll comes phase·interval after
    // the first instead of a whole interval (the first wait keeps the plain schedule)
    let shifted = factor !== undefined || waiter.index === 0;
    // Polls keep to their schedule from the wait's start (the next one `delay` after the last
    // one was due, not after its answer came): the phases a cohort spread do not drift together
    // by the requests' times.
    let due = started;

    try {
      for (;;) {
        const remaining = timeoutMs - (clock.now() - started);
        if (remaining <= 0) {
          throw new PveTaskError({ ...info, timedOutAfterMs: clock.now() - started });
        }
        due = Math.max(due + delay, clock.now());
        await waiter.pause(Math.min(due - clock.now(), remaining), opts.signal);
        if (waiter.wokenEarly) due = clock.now();
        delay = factor !== undefined ? Math.min(maxDelay, delay * factor) : Math.min(maxDelay, Math.max(interval, (due - started) * lateFraction));
        if (!shifted && !waiter.wokenEarly) {
          delay = Math.max(1, Math.round(interval * waiter.phase));
          shifted = true;
        }
        polls++;
        this.r.stats.taskPolls++;
        const status = await this.status(info.node, upid, { signal: opts.signal });
        if (status.status !== "stopped") continue;

        const exitstatus = String(status.exitstatus ?? "unexpected status");
        const base = { upid, node: info.node, type: info.type, id: info.id, exitstatus, polls, elapsedMs: clock.now() - started };
        const warn = /^WARNINGS: (\d+)$/.exec(exitstatus);
        if (exitstatus === "OK" || warn) this.cohorts.ended(waiter);
        if (exitstatus === "OK") return { ...base, warnings: 0 };
        if (warn) {
          const warningLines = await this.reportWarnings(info.node, upid, info.type, logger);
          return { ...base, warnings: Number(warn[1]), warningLines };
        }
        let logTail: string[] = [];
        try {
          logTail = await this.logTail(info.node, upid, opts.logTailLines ?? 10, { signal: opts.signal });
        } catch {
          logTail = ["(the task log could not be read)"];
        }
        throw new PveTaskError({ ...info, exitstatus, logTail });
      }
    } finally {
      this.cohorts.leave(waiter);
    }
  }

  private async reportWarnings(node: string, upid: string, type: string, logger: Logger): Promise<string[] | undefined> {
    try {
      const lines = (await this.logTail(node, upid, LOG_PAGE)).filter((l) => /^WARN/.test(l));
      for (const line of lines) logger.warn(`task ${type} (${upid}): ${line}`);
      return lines;
    } catch {
      logger.warn(`task ${type} (${upid}) finished with warnings; its log could not be read`);
      return undefined;
    }
  }
}
