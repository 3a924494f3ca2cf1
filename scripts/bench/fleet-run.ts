// One fleet scenario, start to end: a fresh simulator and template, `pulumi up` of N VmClones,
// optionally a no-op preview and refresh, and the destroy; every figure measured against the
// ideal the model allows (scripts/bench/model.ts).

import * as fs from "node:fs";
import type { RequestLogEntry, RunningSimulator } from "../../test/simulator";
import { removeStack } from "../../test/e2e/harness";
import { Bench, benchClient, benchSimulator, enginePhases, makeTemplate, saveEngineLog, say, type CliRun, type StackSettings } from "./harness";
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
  /** Capture the engine's verbose log of refresh and destroy and print their phases. */
  engineLog?: boolean;
}

export interface Quantiles {
  n: number;
  medianMs: number;
  p95Ms: number;
  maxMs: number;
}

export interface OpFigures {
  /** The Automation API call (`stack.destroy()`...): the CLI operation and the summary after it. */
  wallMs: number;
  /** The CLI operation alone (`pulumi destroy ...`, spawn to exit): what a CLI user waits for. */
  cliMs?: number;
  /** The Automation API's summary after the operation (`pulumi stack history ...`: Stack.info()). */
  summaryMs?: number;
  apiWindowMs: number;
  /** The engine's share of the CLI operation: from its spawn to the first request, and from the
   *  last answer to its exit (CLI, plugin and program start; checkpoint and exit). */
  headMs?: number;
  tailMs?: number;
  requests: RequestCounts;
  /** `--engine-log`: the phases of the operation, ms from the call (harness.ts enginePhases). */
  phases?: Record<string, number>;
}

/** The CLI process of the operation (the first one the call ran) and the rest (the summary). */
function cliShare(r: { wallMs: number; cli: CliRun[] }): { cliMs?: number; summaryMs?: number; start?: number; end?: number } {
  const op = r.cli[0];
  if (!op || !Number.isFinite(op.end)) return {};
  return { cliMs: op.end - op.start, summaryMs: r.cli.slice(1).reduce((a, c) => a + (c.end - c.start), 0), start: op.start, end: op.end };
}

/** Head and tail of an operation: the CLI operation's time outside its API window (the whole
 *  call's when the CLI process was not seen). */
function engineShare(r: { from: number; wallMs: number; entries: RequestLogEntry[]; cli: CliRun[] }): { cliMs?: number; summaryMs?: number; headMs: number; tailMs: number } {
  const c = cliShare(r);
  const from = c.start ?? r.from;
  const to = c.end ?? r.from + r.wallMs;
  const share = { ...(c.cliMs !== undefined ? { cliMs: c.cliMs, summaryMs: c.summaryMs } : {}) };
  if (!r.entries.length) return { ...share, headMs: to - from, tailMs: 0 };
  const first = Math.min(...r.entries.map((e) => e.time));
  const last = Math.max(...r.entries.map((e) => e.time + e.durationMs));
  return { ...share, headMs: first - from, tailMs: to - last };
}

/** The phases of a traced operation, with the requests' window and the CLI's exit, printed. */
function tracePhases(label: string, r: { from: number; entries: RequestLogEntry[]; cli: CliRun[]; engineLog?: string }, method: "Create" | "Delete" | "Read"): Record<string, number> | undefined {
  if (!r.engineLog) return undefined;
  const t0 = r.cli[0]?.start ?? r.from;
  const p = enginePhases(r.engineLog, t0, method);
  if (r.entries.length) {
    p.firstRequest = Math.min(...r.entries.map((e) => e.time)) - t0;
    p.lastAnswer = Math.max(...r.entries.map((e) => e.time + e.durationMs)) - t0;
  }
  if (r.cli[0]) p.cliExit = r.cli[0].end - t0;
  const file = saveEngineLog(label, r.engineLog);
  // the operation's requests beside it (ms from the CLI's spawn), for a look at one VM's path
  if (file) fs.writeFileSync(file.replace(/\.log$/, ".requests.tsv"), r.entries.map((e) => `${e.time - t0}\t${e.durationMs}\t${e.status}\t${e.method} ${decodeURIComponent(e.path)}`).join("\n") + "\n");
  say(`   ${label} phases (ms from the CLI's spawn): ${Object.entries(p).sort((a, b) => a[1] - b[1]).map(([k, v]) => `${k} ${v}`).join(", ")}${file ? `; log ${file}` : ""}`);
  return p;
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
    /** The CLI operation's time / the ideal. */
    ratioCli?: number;
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
    /** The template node's storage lock (`local-lvm@pve1`): held, and idle between the up's first
     *  hold and its last (real ms). */
    storageLock?: { heldMs: number; idleMs: number };
  };
  preview?: OpFigures & { changes: Record<string, number> };
  refresh?: OpFigures & { perVm: number; changes: Record<string, number> };
  destroy?: OpFigures & {
    idealMs?: number;
    ratioWall?: number;
    ratioCli?: number;
    ratioApi?: number;
    taskNotice: TaskNoticeStats;
    /** The last VM's path through the destroy, and the mean of each step over the VMs (ms). */
    lastPath?: DestroyPath;
    meanPath?: DestroyPath;
    /** What the destroy left on the cluster: VMs other than the template, volumes of no VM left. */
    leftBehind: { vms: number[]; volumes: string[] };
  };
}

/** VMs other than the template, and VM volumes other than the template's, on the cluster now. */
function leftOnCluster(s: RunningSimulator): { vms: number[]; volumes: string[] } {
  const c = s.sim.ext.cluster as {
    vms: Map<number, unknown>;
    nodes: string[];
    storages: Map<string, unknown>;
    storageKey(storage: string, node: string): string;
    volumesOf(storage: string, node: string): Array<{ volid: string; vmid?: number }>;
  };
  const volumes = new Set<string>();
  for (const storage of c.storages.keys()) {
    for (const node of c.nodes) {
      for (const v of c.volumesOf(storage, node)) if (v.vmid !== undefined && v.vmid !== TEMPLATE_VMID) volumes.add(`${v.volid} (${c.storageKey(storage, node)})`);
    }
  }
  return { vms: [...c.vms.keys()].filter((v) => v !== TEMPLATE_VMID), volumes: [...volumes].sort() };
}

/** How long the template node's storage lock was held since `from` (PVE ms), and idle between its
 *  first and last hold since then, in real ms. */
function lockUse(s: RunningSimulator, from: number, timeFactor: number): { heldMs: number; idleMs: number } | undefined {
  const locks = (s.sim.ext.cluster as { storageLocks: { held: Map<string, Array<[number, number]>> } }).storageLocks;
  const spans = (locks.held.get("local-lvm@pve1") ?? []).filter(([a]) => a >= from);
  if (!spans.length) return undefined;
  const heldMs = spans.reduce((t, [a, b]) => t + (b - a), 0);
  const span = Math.max(...spans.map(([, b]) => b)) - Math.min(...spans.map(([a]) => a));
  return { heldMs: heldMs * timeFactor, idleMs: Math.max(0, span - heldMs) * timeFactor };
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

/**
 * Where one destroy's time goes, VM by VM (ms): from the API window's start to the VM's first
 * own request (`GET .../status/current`; before it: the engine handing the VM's Delete to the
 * provider, the provider's start and its `GET /cluster/resources`), the request itself, to the
 * shutdown POST, its answer (pvedaemon's queue), the qmshutdown task (fork + guest shutdown),
 * the task's end noticed, the DELETE sent, answered, the qmdestroy task, its end noticed. The
 * model's ideal path: 10 (two GETs), 20 (POST), 3 050, 0, 0, 20, 550, 0.
 */
export type DestroyPath = Record<"toFirstOwn" | "ownGets" | "toShutdownPost" | "shutdownPost" | "shutdownTask" | "shutdownNoticed" | "toDelete" | "deletePost" | "destroyTask" | "destroyNoticed", number>;

function destroyPaths(entries: RequestLogEntry[], recorder: TaskRecorder, since: number): Map<number, DestroyPath & { end: number }> {
  const out = new Map<number, DestroyPath & { end: number }>();
  if (!entries.length) return out;
  const window0 = Math.min(...entries.map((e) => e.time));
  const answer = (e: RequestLogEntry) => e.time + e.durationMs;
  const lastPoll = (upid: string) => {
    const polls = entries.filter((e) => e.template === "/nodes/{node}/tasks/{upid}/status" && decodeURIComponent(e.path).includes(upid));
    return polls.length ? Math.max(...polls.map(answer)) : NaN;
  };
  const tasks = [...recorder.tasks.values()].filter((t) => t.startMs >= since);
  for (const del of entries.filter((e) => e.method === "DELETE" && e.template === "/nodes/{node}/qemu/{vmid}")) {
    const vmid = Number(del.params?.vmid);
    const own = entries.filter((e) => Number(e.params?.vmid) === vmid && e.template !== "/nodes/{node}/tasks/{upid}/status");
    const status = own.find((e) => e.template === "/nodes/{node}/qemu/{vmid}/status/current");
    const post = own.find((e) => e.template === "/nodes/{node}/qemu/{vmid}/status/shutdown");
    const shut = tasks.find((t) => t.type === "qmshutdown" && t.upid.includes(`:qmshutdown:${vmid}:`));
    const destroy = tasks.find((t) => t.type === "qmdestroy" && t.upid.includes(`:qmdestroy:${vmid}:`));
    if (!status || !post || !shut || !destroy) continue;
    const shutSeen = lastPoll(shut.upid);
    const destroySeen = lastPoll(destroy.upid);
    out.set(vmid, {
      toFirstOwn: status.time - window0,
      ownGets: answer(status) - status.time,
      toShutdownPost: post.time - answer(status),
      shutdownPost: answer(post) - post.time,
      shutdownTask: shut.endMs - answer(post),
      shutdownNoticed: shutSeen - shut.endMs,
      toDelete: del.time - shutSeen,
      deletePost: answer(del) - del.time,
      destroyTask: destroy.endMs - answer(del),
      destroyNoticed: destroySeen - destroy.endMs,
      end: destroySeen - window0,
    });
  }
  return out;
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
const TEMPLATE_VMID = 9000;

export async function runFleet(spec: FleetSpec): Promise<FleetFigures> {
  const s = await benchSimulator(spec.timeFactor, spec.size, spec.seed);
  const recorder = new TaskRecorder(s.sim);
  const settings = spec.settings ?? {};
  const bench = new Bench(s, settings);
  bench.engineLog = spec.engineLog === true;
  const n = spec.size;
  let ts: Awaited<ReturnType<Bench["stack"]>> | undefined;
  try {
    spec.lateAgents?.prepare(bench);
    await makeTemplate(benchClient(s), TEMPLATE_VMID, !!spec.lateAgents);
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
    const upLog: string[] = [];
    const lockFrom = s.sim.clock.elapsed();
    const up = await bench.measured(() => stack.up(bench.traced(spec.parallel, upLog)));
    const mem = sampler.stop();
    if (up.value.summary.result !== "succeeded") throw new Error(`pulumi up: ${up.value.summary.result}`);
    const created = up.value.summary.resourceChanges?.create ?? 0;
    if (created !== n + 1) throw new Error(`pulumi up created ${created} resources, expected ${n + 1}`);
    const addresses = (up.value.outputs.addresses.value as Array<string | undefined>).filter((a) => typeof a === "string" && a !== "").length;
    const cluster = s.sim.ext.cluster as { vms: Map<number, { agentReadyAt?: number }> };
    const readyAt = new Map<number, number>();
    for (const [vmid, vm] of cluster.vms) if (vmid !== TEMPLATE_VMID && vm.agentReadyAt !== undefined) readyAt.set(vmid, vm.agentReadyAt);
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
        ...(cliShare(up).cliMs !== undefined ? { ratioCli: cliShare(up).cliMs! / spec.idealMs } : {}),
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
        storageLock: lockUse(s, lockFrom, spec.timeFactor),
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
    const upPhases = tracePhases("up", { ...up, ...(bench.engineLog ? { engineLog: upLog.join("") } : {}) }, "Create");
    if (upPhases) fig.up.phases = upPhases;
    spec.inspectUp?.(up.entries);
    const u = fig.up;
    say(`   up ${ms(u.wallMs)} s wall (${u.ratioWall.toFixed(2)}x)${u.cliMs !== undefined ? `, pulumi up ${ms(u.cliMs)} s (${u.ratioCli!.toFixed(2)}x) + summary ${ms(u.summaryMs!)} s` : ""}, API window ${ms(u.apiWindowMs)} s (${u.ratioApi.toFixed(2)}x), ideal ${ms(spec.idealMs)} s; engine before the first request ${ms(u.headMs!)} s, after the last ${ms(u.tailMs!)} s; ${addresses}/${n} addresses`);
    say(`   per VM: ${u.otherPerVm.toFixed(2)} requests + ${u.taskPollsPerVm.toFixed(2)} task polls + ${u.agentPollsPerVm.toFixed(2)} agent polls (${u.silentAgentCalls} silent)`);
    say(`   task end noticed after median/p95/max ${u.taskNotice.lateMedianMs}/${u.taskNotice.lateP95Ms}/${u.taskNotice.lateMaxMs} ms; agent answer noticed after ${u.agentNotice.medianMs}/${u.agentNotice.p95Ms}/${u.agentNotice.maxMs} ms${u.channelIdleMs !== undefined ? `; storage channel idle ${ms(u.channelIdleMs)} s` : ""}${u.storageLock ? `; storage lock held ${ms(u.storageLock.heldMs)} s, idle ${ms(u.storageLock.idleMs)} s between its first and last hold` : ""}`);
    if (spec.preview) {
      const p = await bench.preview(stack);
      fig.preview = { wallMs: p.wallMs, apiWindowMs: apiWindowMs(p.entries), requests: countRequests(p.entries), changes: p.value.changeSummary as Record<string, number> };
      say(`   no-op preview ${ms(p.wallMs)} s, ${fig.preview.requests.total} requests, ${JSON.stringify(fig.preview.changes)}`);
    }
    if (spec.refresh) {
      const r = await bench.refresh(stack, spec.parallel);
      const rq = countRequests(r.entries);
      fig.refresh = { wallMs: r.wallMs, ...engineShare(r), apiWindowMs: apiWindowMs(r.entries), requests: rq, perVm: rq.total / n, changes: (r.value.summary.resourceChanges ?? {}) as Record<string, number> };
      const phases = tracePhases("refresh", r, "Read");
      if (phases) fig.refresh.phases = phases;
      say(`   no-op refresh ${ms(r.wallMs)} s (pulumi refresh ${ms(fig.refresh.cliMs ?? NaN)} s), ${rq.total} requests (${fig.refresh.perVm.toFixed(2)} per VM): ${Object.entries(rq.byEndpoint).map(([k, v]) => `${v} ${k}`).join(", ")}; ${JSON.stringify(fig.refresh.changes)}`);
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
      leftBehind: leftOnCluster(s),
      ...(spec.destroyIdealMs ? { idealMs: spec.destroyIdealMs, ratioWall: d.wallMs / spec.destroyIdealMs, ratioApi: dw / spec.destroyIdealMs } : {}),
    };
    const dd = fig.destroy;
    if (dd.idealMs && dd.cliMs !== undefined) dd.ratioCli = dd.cliMs / dd.idealMs;
    const phases = tracePhases("destroy", d, "Delete");
    if (phases) dd.phases = phases;
    say(
      `   destroy ${ms(dd.wallMs)} s wall${dd.cliMs !== undefined ? ` = pulumi destroy ${ms(dd.cliMs)} s + summary ${ms(dd.summaryMs!)} s` : ""}, API window ${ms(dw)} s` +
        `${dd.idealMs ? ` (ideal ${ms(dd.idealMs)} s: ${dd.ratioWall!.toFixed(2)}x wall, ${dd.ratioCli !== undefined ? `${dd.ratioCli.toFixed(2)}x pulumi destroy, ` : ""}${dd.ratioApi!.toFixed(2)}x API window)` : ""}` +
        `; engine before the first request ${ms(dd.headMs!)} s, after the last ${ms(dd.tailMs!)} s; ${dd.requests.total} requests: ${Object.entries(dd.requests.byEndpoint).map(([k, v]) => `${v} ${k}`).join(", ")}`,
    );
    const paths = destroyPaths(d.entries, recorder, d.from);
    if (paths.size) {
      const all = [...paths.values()];
      const last = all.reduce((a, b) => (b.end > a.end ? b : a));
      const { end: _end, ...lastPath } = last;
      const keys = Object.keys(lastPath) as Array<keyof DestroyPath>;
      dd.lastPath = lastPath;
      dd.meanPath = Object.fromEntries(keys.map((k) => [k, Math.round(all.reduce((a, p) => a + p[k], 0) / all.length)])) as DestroyPath;
      say(`   destroy path of the last VM (ms): ${keys.map((k) => `${k} ${Math.round(lastPath[k])}`).join(", ")}; mean over VMs: ${keys.map((k) => `${dd.meanPath![k]}`).join(" / ")}`);
    }
    if (d.early.length) say(`   requests that ended in the destroy but began before it (not counted in it): ${d.early.map((e) => `${e.method} ${e.template} at ${e.time - d.from} ms, ${e.durationMs} ms long, status ${e.status}`).join("; ")}`);
    const left = dd.leftBehind;
    say(`   left behind by the destroy: ${left.vms.length} VMs, ${left.volumes.length} volumes${left.volumes.length ? ` (${left.volumes.slice(0, 6).join(", ")}${left.volumes.length > 6 ? ", …" : ""})` : ""}`);
    const byType = dd.taskNotice.byType;
    say(`   destroy task ends noticed after (median / max ms): ${Object.entries(byType).map(([t, v]) => `${t} ${v.lateMedianMs} / ${v.lateMaxMs} (${v.pollsMean.toFixed(1)} polls)`).join(", ")}`);
    return fig;
  } finally {
    await removeStack(ts);
    await s.stop();
  }
}
