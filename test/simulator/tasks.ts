// PVE worker tasks (COMMON RESTEnvironment.pm `fork_worker`, UPID.pm; MGR API2/Tasks.pm):
// a call that forks a worker answers with a UPID at once; the worker runs asynchronously,
// logs lines and ends with `TASK OK`, `TASK WARNINGS: n` or `TASK ERROR: <msg>`; the
// task's `exitstatus` is `OK`, `WARNINGS: n` or the error message.

import { AbortedError, Latency } from "./latency";
import { Rng } from "./rng";

export const UPID_RE = /^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$/;

export interface Task {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  /** `user@realm` or `user@realm!token`, as in the UPID. */
  principal: string;
  status: "running" | "stopped";
  exitstatus?: string;
  endtime?: number;
  lines: string[];
  warnings: number;
  abort: AbortController;
  done: Promise<void>;
}

export interface TaskContext {
  task: Task;
  signal: AbortSignal;
  log(line: string): void;
  /** Logs `WARN: <line>` and counts a warning. */
  warn(line: string): void;
  /** Waits a base duration of the latency model (scaled by timeFactor and slow faults). */
  sleep(baseMs: number): Promise<void>;
  /** Copies `bytes` through a storage channel sharing its bandwidth. */
  transfer(channel: string, bytes: number, bandwidth?: number): Promise<void>;
}

export type Worker = (ctx: TaskContext) => Promise<void> | void;

export interface TaskHooks {
  nowSeconds(): number;
  nowMs(): number;
  slowFactor(type: string): number;
  failure(type: string): string | undefined;
}

export function splitPrincipal(principal: string): { user: string; tokenid?: string } {
  const i = principal.indexOf("!");
  return i < 0 ? { user: principal } : { user: principal.slice(0, i), tokenid: principal.slice(i + 1) };
}

const hex8 = (n: number) => (n >>> 0).toString(16).toUpperCase().padStart(8, "0");

export class TaskManager {
  private readonly tasks = new Map<string, Task>();
  private readonly order: Task[] = [];
  private readonly pids = new Map<string, number>();
  private readonly bootTicks = new Map<string, number>();
  private readonly started: number;

  constructor(
    private readonly latency: Latency,
    private readonly hooks: TaskHooks,
    private readonly rng: Rng,
  ) {
    this.started = hooks.nowMs();
  }

  private nextPid(node: string): number {
    let pid = this.pids.get(node) ?? 0x1000 + Math.floor(this.rng() * 0xf0000);
    pid += 1 + Math.floor(this.rng() * 40);
    this.pids.set(node, pid);
    return pid;
  }

  /** Process start time in clock ticks since boot (USER_HZ 100), like /proc/<pid>/stat. */
  private pstart(node: string): number {
    let boot = this.bootTicks.get(node);
    if (boot === undefined) {
      boot = 0x100000 + Math.floor(this.rng() * 0x1000000);
      this.bootTicks.set(node, boot);
    }
    return boot + Math.floor((this.hooks.nowMs() - this.started) / 10);
  }

  /** Forks a worker; returns the UPID. `id` may be empty. */
  start(node: string, type: string, id: string, principal: string, worker: Worker): string {
    const pid = this.nextPid(node);
    const pstart = this.pstart(node);
    const starttime = this.hooks.nowSeconds();
    const upid = `UPID:${node}:${hex8(pid)}:${hex8(pstart)}:${hex8(starttime)}:${type}:${id}:${principal}:`;
    const abort = new AbortController();
    const task: Task = {
      upid, node, pid, pstart, starttime, type, id, principal,
      status: "running", lines: [], warnings: 0, abort, done: Promise.resolve(),
    };
    const slow = this.hooks.slowFactor(type);
    const ctx: TaskContext = {
      task,
      signal: abort.signal,
      log: (line) => {
        for (const l of line.split("\n")) task.lines.push(l);
      },
      warn: (line) => {
        task.warnings++;
        task.lines.push(`WARN: ${line}`);
      },
      sleep: (ms) => this.latency.sleep(ms * slow, abort.signal),
      transfer: (ch, bytes, bw) => this.latency.transfer(ch, bytes * slow, abort.signal, bw),
    };
    task.done = (async () => {
      let error: string | undefined;
      try {
        await this.latency.sleep(this.latency.opts.forkMs, abort.signal);
        const injected = this.hooks.failure(type);
        if (injected) throw new Error(injected);
        await worker(ctx);
      } catch (e: any) {
        error = e instanceof AbortedError ? "received interrupt" : String(e?.message ?? e);
      }
      error = error?.replace(/\n+$/, "");
      if (error !== undefined) {
        task.lines.push(`TASK ERROR: ${error}`);
        task.exitstatus = error;
      } else if (task.warnings > 0) {
        task.lines.push(`TASK WARNINGS: ${task.warnings}`);
        task.exitstatus = `WARNINGS: ${task.warnings}`;
      } else {
        task.lines.push("TASK OK");
        task.exitstatus = "OK";
      }
      task.endtime = this.hooks.nowSeconds();
      task.status = "stopped";
    })();
    this.tasks.set(upid, task);
    this.order.push(task);
    return upid;
  }

  get(upid: string): Task | undefined {
    return this.tasks.get(upid);
  }

  all(): Task[] {
    return [...this.order];
  }

  /** Resolves when the task has stopped. */
  async wait(upid: string): Promise<Task> {
    const t = this.tasks.get(upid);
    if (!t) throw new Error(`no such task ${upid}`);
    await t.done;
    return t;
  }

  /** Resolves when every task has stopped. */
  async idle(): Promise<void> {
    for (;;) {
      const running = this.order.filter((t) => t.status === "running");
      if (running.length === 0) return;
      await Promise.all(running.map((t) => t.done));
    }
  }

  /** `GET .../tasks/{upid}/status`: the decoded UPID plus status and exitstatus. */
  statusOf(t: Task): Record<string, unknown> {
    const { user, tokenid } = splitPrincipal(t.principal);
    const out: Record<string, unknown> = {
      upid: t.upid, node: t.node, pid: t.pid, pstart: t.pstart, starttime: t.starttime,
      type: t.type, id: t.id, user, status: t.status,
    };
    if (tokenid) out.tokenid = tokenid;
    if (t.status === "stopped") out.exitstatus = t.exitstatus;
    return out;
  }

  /** An entry of `GET /nodes/{node}/tasks`. */
  listEntry(t: Task): Record<string, unknown> {
    const { user, tokenid } = splitPrincipal(t.principal);
    const out: Record<string, unknown> = {
      upid: t.upid, node: t.node, pid: t.pid, pstart: t.pstart, starttime: t.starttime,
      type: t.type, id: t.id, user,
    };
    if (tokenid) out.tokenid = tokenid;
    if (t.status === "stopped") {
      out.endtime = t.endtime;
      out.status = t.exitstatus;
    } else out.status = "RUNNING";
    return out;
  }

  /** Sends the worker SIGTERM: its sleeps and transfers reject, it cleans up and dies. */
  stop(t: Task): void {
    if (t.status === "running") t.abort.abort();
  }
}
