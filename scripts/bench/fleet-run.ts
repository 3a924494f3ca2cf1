// One fleet scenario, start to end: a fresh simulator and template, `pulumi up` of N VmClones,
// optionally a no-op preview and refresh, and the destroy; every figure measured against the
// ideal the model allows (scripts/bench/model.ts).

import type { RequestLogEntry } from "../../test/simulator";
import { removeStack } from "../../test/e2e/harness";
import { Bench, benchClient, benchSimulator, makeTemplate, say, type StackSettings } from "./harness";
import { MODEL } from "./model";
import { AGENT_POLL, ProviderMemorySampler, TaskRecorder, apiWindowMs, countRequests, taskNotice, type RequestCounts, type TaskNoticeStats } from "./measure";

export interface FleetSpec {
  label: string;
  size: number;
  /** Full clones (copy the disk) or linked clones. */
  full: boolean;
  timeFactor: number;
  seed: number;
  /** Engine `--parallel` for up, refresh and destroy (undefined: the engine's default, 4 per CPU). */
  parallel?: number;
  settings?: StackSettings;
  idealMs: number;
  destroyIdealMs?: number;
  preview?: boolean;
  refresh?: boolean;
  /** Measure the destroy (default true; without, the stack is dropped with the simulator). */
  destroy?: boolean;
  /** Template from the Debian cloud image and user-data that installs the agent (late agents). */
  lateAgents?: { prepare: (b: Bench) => void; userData: string };
  /** Called with the `up`'s request log before the destroy (scenario-specific figures). */
  inspectUp?: (entries: RequestLogEntry[]) => void;
}

export interface Quantiles {
  n: number;
  medianMs: number;
  p95Ms: number;
  maxMs: number;
}

export interface OpFigures {
  wallMs: number;
  apiWindowMs: number;
  /** The engine's share of the wall time: from the call to the first request, and from the last
   *  answer to the operation's end (CLI, plugin and program start; checkpoint and exit). */
  headMs?: number;
  tailMs?: number;
  requests: RequestCounts;
}

/** Head and tail of an operation: the wall time outside its API window. */
function engineShare(r: { from: number; wallMs: number; entries: RequestLogEntry[] }): { headMs: number; tailMs: number } {
  if (!r.entries.length) return { headMs: r.wallMs, tailMs: 0 };
  const first = Math.min(...r.entries.map((e) => e.time));
  const last = Math.max(...r.entries.map((e) => e.time + e.durationMs));
  return { headMs: first - r.from, tailMs: r.from + r.wallMs - last };
}

export interface FleetFigures {
  label: string;
  size: number;
  full: boolean;
  timeFactor: number;
  parallel?: number;
  settings: StackSettings;
  idealMs: number;
  up: OpFigures & {
    ratioWall: number;
    ratioApi: number;
    /** Per VM created: requests that are not polls, task polls, agent polls. */
    otherPerVm: number;
    taskPollsPerVm: number;
    agentPollsPerVm: number;
    /** Agent calls answered "not running" after guest-ping (each held a pvedaemon worker). */
    silentAgentCalls: number;
    taskNotice: TaskNoticeStats;
    /** How long after each guest's agent began to answer its first answer reached the provider. */
    agentNotice: Quantiles;
    addresses: number;
    /** Peak RSS of the dynamic-provider process during the up (MiB), when found. */
    providerPeakMiB?: number;
    /** Per VM (JSON only): its agent calls, ms relative to the moment its agent began to answer,
     *  negative ones before (and whether each was answered). */
    agentCalls?: Record<number, { readyMs: number; calls: Array<[number, boolean]> }>;
    /** Full clones: how long the template storage's channel copied nothing between the first
     *  copy's start and the last copy's end (clone tasks less their fork and setup). */
    channelIdleMs?: number;
  };
  preview?: OpFigures & { changes: Record<string, number> };
  refresh?: OpFigures & { perVm: number; changes: Record<string, number> };
  destroy?: OpFigures & { idealMs?: number; ratioWall?: number; ratioApi?: number; taskNotice: TaskNoticeStats };
}

/** Idle time of the copy channel: the span of the clone tasks' copy phases less their union. */
function channelIdle(recorder: TaskRecorder, since: number, setupMs: number): number | undefined {
  const spans = [...recorder.tasks.values()]
    .filter((t) => t.type === "qmclone" && t.startMs >= since && Number.isFinite(t.endMs))
    .map((t) => [t.startMs + setupMs, t.endMs] as [number, number])
    .sort((a, b) => a[0] - b[0]);
  if (!spans.length) return undefined;
  let busy = 0;
  let [from, to] = spans[0];
  for (const [a, b] of spans.slice(1)) {
    if (a > to) {
      busy += to - from;
      [from, to] = [a, b];
    } else to = Math.max(to, b);
  }
  busy += to - from;
  return Math.max(...spans.map((x) => x[1])) - spans[0][0] - busy;
}

function quantiles(values: number[]): Quantiles {
  const s = [...values].sort((a, b) => a - b);
  const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] : NaN);
  return { n: s.length, medianMs: q(0.5), p95Ms: q(0.95), maxMs: s.length ? s[s.length - 1] : NaN };
}

/** For each VM: its agent's first answer (the end of the first successful agent call) minus the
 *  moment the guest's agent began to answer (the simulator's `agentReadyAt`). */
function agentNotice(entries: RequestLogEntry[], readyAt: Map<number, number>): Quantiles {
  const late: number[] = [];
  for (const [vmid, ready] of readyAt) {
    const ok = entries.filter((e) => `${e.method} ${e.template}` === AGENT_POLL && e.status === 200 && Number(e.params?.vmid) === vmid);
    if (!ok.length) continue;
    const first = Math.min(...ok.map((e) => e.time + e.durationMs));
    late.push(Math.max(0, first - ready));
  }
  return quantiles(late);
}

const ms = (x: number) => (x / 1000).toFixed(1);

/** pvestatd's broadcast cycle in the simulator (PVE ms), and a little more. */
const STATS_CYCLE_MS = 10_500;

export async function runFleet(spec: FleetSpec): Promise<FleetFigures> {
  const s = await benchSimulator(spec.timeFactor, spec.size, spec.seed);
  const recorder = new TaskRecorder(s.sim);
  const settings = spec.settings ?? {};
  const bench = new Bench(s, settings);
  const n = spec.size;
  let ts: Awaited<ReturnType<Bench["stack"]>> | undefined;
  try {
    spec.lateAgents?.prepare(bench);
    await makeTemplate(benchClient(s), 9000, !!spec.lateAgents);
    // a user's template is older than pvestatd's 10 s cycle: /cluster/resources shows a VM made a
    // template since its last broadcast as a plain VM (test/simulator REALISM.md), so wait one cycle
    await s.sim.delay(STATS_CYCLE_MS);
    const extra: Record<string, { value: string }> = { "bench:full": { value: String(spec.full) } };
    if (spec.lateAgents) extra["bench:userData"] = { value: spec.lateAgents.userData };
    ts = await bench.stack(`bench-${spec.label.replace(/[^a-z0-9]+/gi, "-")}-${process.pid}`, n, extra);
    const bound = [settings.maxTasks ? `maxConcurrentTasks ${settings.maxTasks}` : "", settings.maxRequests ? `maxConcurrentRequests ${settings.maxRequests}` : ""].filter(Boolean).join(", ");
    say(`\n== ${spec.label}: ${n} ${spec.full ? "full" : "linked"} clones, time factor ${spec.timeFactor}, pulumi up ${spec.parallel ? `--parallel ${spec.parallel}` : "(default parallelism)"}${bound ? `, ${bound}` : ""}`);
    const stack = ts.stack;
    const sampler = new ProviderMemorySampler(ts.workDir);
    sampler.start();
    const up = await bench.measured(() => stack.up(spec.parallel ? { parallel: spec.parallel } : {}));
    const mem = sampler.stop();
    if (up.value.summary.result !== "succeeded") throw new Error(`pulumi up: ${up.value.summary.result}`);
    const created = up.value.summary.resourceChanges?.create ?? 0;
    if (created !== n + 1) throw new Error(`pulumi up created ${created} resources, expected ${n + 1}`);
    const addresses = (up.value.outputs.addresses.value as Array<string | undefined>).filter((a) => typeof a === "string" && a !== "").length;
    const cluster = s.sim.ext.cluster as { vms: Map<number, { agentReadyAt?: number }> };
    const readyAt = new Map<number, number>();
    for (const [vmid, vm] of cluster.vms) if (vmid !== 9000 && vm.agentReadyAt !== undefined) readyAt.set(vmid, vm.agentReadyAt);
    const reqs = countRequests(up.entries);
    const window = apiWindowMs(up.entries);
    const fig: FleetFigures = {
      label: spec.label,
      size: n,
      full: spec.full,
      timeFactor: spec.timeFactor,
      parallel: spec.parallel,
      settings,
      idealMs: spec.idealMs,
      up: {
        wallMs: up.wallMs,
        apiWindowMs: window,
        ...engineShare(up),
        requests: reqs,
        ratioWall: up.wallMs / spec.idealMs,
        ratioApi: window / spec.idealMs,
        otherPerVm: reqs.other / n,
        taskPollsPerVm: reqs.taskPolls / n,
        agentPollsPerVm: reqs.agentPolls / n,
        silentAgentCalls: up.entries.filter((e) => `${e.method} ${e.template}` === AGENT_POLL && e.status === 500).length,
        taskNotice: taskNotice(up.entries, recorder, up.from),
        agentNotice: agentNotice(up.entries, readyAt),
        addresses,
        providerPeakMiB: mem.processes ? mem.peakMiB : undefined,
        ...(spec.full ? { channelIdleMs: channelIdle(recorder, up.from, (MODEL.forkMs + MODEL.cloneBaseMs) * spec.timeFactor) } : {}),
      },
    };
    fig.up.agentCalls = Object.fromEntries(
      [...readyAt].map(([vmid, ready]) => [
        vmid,
        {
          readyMs: ready - up.from,
          calls: up.entries.filter((e) => `${e.method} ${e.template}` === AGENT_POLL && Number(e.params?.vmid) === vmid).map((e) => [e.time - ready, e.status === 200] as [number, boolean]),
        },
      ]),
    );
    spec.inspectUp?.(up.entries);
    const u = fig.up;
    say(`   up ${ms(u.wallMs)} s wall (${u.ratioWall.toFixed(2)}x), API window ${ms(u.apiWindowMs)} s (${u.ratioApi.toFixed(2)}x), ideal ${ms(spec.idealMs)} s; engine before the first request ${ms(u.headMs!)} s, after the last ${ms(u.tailMs!)} s; ${addresses}/${n} addresses`);
    say(`   per VM: ${u.otherPerVm.toFixed(2)} requests + ${u.taskPollsPerVm.toFixed(2)} task polls + ${u.agentPollsPerVm.toFixed(2)} agent polls (${u.silentAgentCalls} silent)`);
    say(`   task end noticed after median/p95/max ${u.taskNotice.lateMedianMs}/${u.taskNotice.lateP95Ms}/${u.taskNotice.lateMaxMs} ms; agent answer noticed after ${u.agentNotice.medianMs}/${u.agentNotice.p95Ms}/${u.agentNotice.maxMs} ms${u.channelIdleMs !== undefined ? `; storage channel idle ${ms(u.channelIdleMs)} s` : ""}`);
    if (spec.preview) {
      const p = await bench.preview(stack);
      fig.preview = { wallMs: p.wallMs, apiWindowMs: apiWindowMs(p.entries), requests: countRequests(p.entries), changes: p.value.changeSummary as Record<string, number> };
      say(`   no-op preview ${ms(p.wallMs)} s, ${fig.preview.requests.total} requests, ${JSON.stringify(fig.preview.changes)}`);
    }
    if (spec.refresh) {
      const r = await bench.refresh(stack, spec.parallel);
      const rq = countRequests(r.entries);
      fig.refresh = { wallMs: r.wallMs, apiWindowMs: apiWindowMs(r.entries), requests: rq, perVm: rq.total / n, changes: (r.value.summary.resourceChanges ?? {}) as Record<string, number> };
      say(`   no-op refresh ${ms(r.wallMs)} s, ${rq.total} requests (${fig.refresh.perVm.toFixed(2)} per VM), ${JSON.stringify(fig.refresh.changes)}`);
    }
    if (spec.destroy === false) return fig;
    const d = await bench.destroy(stack, spec.parallel);
    const dw = apiWindowMs(d.entries);
    fig.destroy = {
      wallMs: d.wallMs,
      apiWindowMs: dw,
      ...engineShare(d),
      requests: countRequests(d.entries),
      taskNotice: taskNotice(d.entries, recorder, d.from),
      ...(spec.destroyIdealMs ? { idealMs: spec.destroyIdealMs, ratioWall: d.wallMs / spec.destroyIdealMs, ratioApi: dw / spec.destroyIdealMs } : {}),
    };
    const dd = fig.destroy;
    say(`   destroy ${ms(dd.wallMs)} s wall, API window ${ms(dw)} s${dd.idealMs ? ` (ideal ${ms(dd.idealMs)} s: ${dd.ratioWall!.toFixed(2)}x wall, ${dd.ratioApi!.toFixed(2)}x API window)` : ""}; ${dd.requests.total} requests`);
    return fig;
  } finally {
    await removeStack(ts);
    await s.stop();
  }
}
