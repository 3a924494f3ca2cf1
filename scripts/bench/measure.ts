// What the benchmark measures from the simulator and from /proc: requests by endpoint, how late
// each task's end was noticed, and the dynamic provider process's peak memory.

import * as fs from "node:fs";
import type { RequestLogEntry, Sim } from "../../test/simulator";

/** Task polls and guest-agent polls are counted apart from the other requests. */
export const TASK_POLL = "GET /nodes/{node}/tasks/{upid}/status";
export const AGENT_POLL = "GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces";

export interface RequestCounts {
  total: number;
  taskPolls: number;
  agentPolls: number;
  other: number;
  /** `METHOD /template` → count. */
  byEndpoint: Record<string, number>;
}

/** API requests (not the simulator's /_sim back door) in a slice of the request log. */
export function apiEntries(log: RequestLogEntry[]): RequestLogEntry[] {
  return log.filter((e) => !e.path.startsWith("/_sim"));
}

export function countRequests(entries: RequestLogEntry[]): RequestCounts {
  const byEndpoint: Record<string, number> = {};
  let taskPolls = 0;
  let agentPolls = 0;
  for (const e of entries) {
    const key = `${e.method} ${e.template ?? e.path}`;
    byEndpoint[key] = (byEndpoint[key] ?? 0) + 1;
    if (key === TASK_POLL) taskPolls++;
    else if (key === AGENT_POLL) agentPolls++;
  }
  return { total: entries.length, taskPolls, agentPolls, other: entries.length - taskPolls - agentPolls, byEndpoint };
}

/** First request's arrival to the last request's answer (ms); 0 when none. */
export function apiWindowMs(entries: RequestLogEntry[]): number {
  if (!entries.length) return 0;
  const first = Math.min(...entries.map((e) => e.time));
  const last = Math.max(...entries.map((e) => e.time + e.durationMs));
  return last - first;
}

export interface TaskTiming {
  upid: string;
  type: string;
  /** Simulator clock (ms) when the worker was forked and when it stopped. */
  startMs: number;
  endMs: number;
}

/** Records when every task the simulator forks starts and ends, to the millisecond. */
export class TaskRecorder {
  readonly tasks = new Map<string, TaskTiming>();

  constructor(sim: Sim) {
    const manager = sim.ext.cluster.tasks as {
      start: (...args: unknown[]) => string;
      get(upid: string): { type: string; done: Promise<void> } | undefined;
    };
    const original = manager.start.bind(manager);
    manager.start = (...args: unknown[]) => {
      const upid = original(...args);
      const task = manager.get(upid);
      const timing: TaskTiming = { upid, type: task?.type ?? "?", startMs: sim.now(), endMs: NaN };
      this.tasks.set(upid, timing);
      void task?.done.then(() => {
        timing.endMs = sim.now();
      });
      return upid;
    };
  }
}

export interface TaskNoticeStats {
  tasks: number;
  /** How long after the task ended the poll that saw `stopped` answered (ms). */
  lateMedianMs: number;
  lateP95Ms: number;
  lateMaxMs: number;
  /** Most status polls of one task sent within any 1-second window, mean and max over tasks. */
  pollRateMean: number;
  pollRateMax: number;
  pollsPerTaskMean: number;
  byType: Record<string, { tasks: number; lateMedianMs: number; lateMaxMs: number; pollsMean: number }>;
}

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * For each task that ended within `entries`' time span: the last status poll for its UPID is
 * the one that saw `stopped` (the client stops polling then); its answer time minus the task's
 * end is the notice delay.
 */
export function taskNotice(entries: RequestLogEntry[], recorder: TaskRecorder, since: number): TaskNoticeStats {
  const polls = new Map<string, RequestLogEntry[]>();
  for (const e of entries) {
    if (`${e.method} ${e.template}` !== TASK_POLL) continue;
    const m = /\/tasks\/([^/]+)\/status$/.exec(e.path);
    if (!m) continue;
    const upid = decodeURIComponent(m[1]);
    const list = polls.get(upid) ?? [];
    list.push(e);
    polls.set(upid, list);
  }
  const late: number[] = [];
  const rates: number[] = [];
  const counts: number[] = [];
  const byType: Record<string, { late: number[]; polls: number[] }> = {};
  for (const t of recorder.tasks.values()) {
    if (t.startMs < since || !Number.isFinite(t.endMs)) continue;
    const list = polls.get(t.upid);
    if (!list?.length) continue;
    const last = list.reduce((a, b) => (b.time > a.time ? b : a));
    const delay = Math.max(0, last.time + last.durationMs - t.endMs);
    late.push(delay);
    const times = list.map((e) => e.time).sort((a, b) => a - b);
    let most = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i] - times[j] >= 1000) j++;
      most = Math.max(most, i - j + 1);
    }
    rates.push(most);
    counts.push(list.length);
    const bt = (byType[t.type] ??= { late: [], polls: [] });
    bt.late.push(delay);
    bt.polls.push(list.length);
  }
  const sorted = [...late].sort((a, b) => a - b);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  return {
    tasks: late.length,
    lateMedianMs: quantile(sorted, 0.5),
    lateP95Ms: quantile(sorted, 0.95),
    lateMaxMs: sorted.length ? sorted[sorted.length - 1] : NaN,
    pollRateMean: mean(rates),
    pollRateMax: rates.length ? Math.max(...rates) : NaN,
    pollsPerTaskMean: mean(counts),
    byType: Object.fromEntries(
      Object.entries(byType).map(([type, v]) => {
        const s = [...v.late].sort((a, b) => a - b);
        return [type, { tasks: s.length, lateMedianMs: quantile(s, 0.5), lateMaxMs: s[s.length - 1], pollsMean: mean(v.polls) }];
      }),
    ),
  };
}

/**
 * Samples the peak resident memory (VmHWM) of the dynamic-provider processes
 * (`pulumi-resource-pulumi-nodejs` → `node .../cmd/dynamic-provider`) whose working directory
 * is the stack's workspace, so other programs' providers on the machine are not counted.
 */
export class ProviderMemorySampler {
  private timer: NodeJS.Timeout | undefined;
  private peakKiB = 0;
  private readonly pids = new Set<number>();

  constructor(private readonly workDir: string, private readonly intervalMs = 200) {}

  start(): void {
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  stop(): { peakMiB: number; processes: number } {
    if (this.timer) clearInterval(this.timer);
    this.sample();
    return { peakMiB: this.peakKiB / 1024, processes: this.pids.size };
  }

  private sample(): void {
    let dirs: string[];
    try {
      dirs = fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d));
    } catch {
      return;
    }
    const want = fs.realpathSync(this.workDir);
    for (const d of dirs) {
      const pid = Number(d);
      try {
        if (!this.pids.has(pid)) {
          const cmd = fs.readFileSync(`/proc/${d}/cmdline`, "utf8");
          if (!cmd.includes("dynamic-provider")) continue;
          if (fs.readlinkSync(`/proc/${d}/cwd`) !== want) continue;
          this.pids.add(pid);
        }
        const status = fs.readFileSync(`/proc/${d}/status`, "utf8");
        const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
        const rss = /VmRSS:\s+(\d+) kB/.exec(status);
        const kib = Math.max(Number(hwm?.[1] ?? 0), Number(rss?.[1] ?? 0));
        if (kib > this.peakKiB) this.peakKiB = kib;
      } catch {
        /* gone, or not ours */
      }
    }
  }
}
