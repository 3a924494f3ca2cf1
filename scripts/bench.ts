// `npm run bench [-- --size 10 --size 50 ...]`: VmClone fleets through the real Pulumi engine
// against the PVE simulator with a documented latency model (BENCHMARKS.md). For each size:
// `pulumi up` at the engine's default parallelism, a no-op `pulumi preview` (must make no API
// request), a no-op `pulumi refresh`, `pulumi destroy`; then the same fleet at `--parallel 1`
// (the baseline) and its destroy. Prints a summary and, with `--json <file>`, every figure.
//
// Then the late-agents fleet (scripts/bench/late-agents.ts): VMs whose agent starts only after
// cloud-init installs it, while agent calls hold pvedaemon workers.
//
// Options: --size N (repeatable or comma-separated; default 10,50,100), --time-factor F
// (default 0.05), --no-baseline, --max-tasks N (proxmox:maxConcurrentTasks), --late-agents N
// (default 30; 0 skips), --late-time-factor F (default 1: real time, so guest-ping's 3 s and the
// provider's fixed poll intervals weigh what they weigh on a cluster), --json FILE.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { getClient, type PveClient } from "../provider/proxmox";
import { splitApiToken } from "../provider/config";
import { startSimulator, type RunningSimulator } from "../test/simulator";
import { createTestStack, disposePulumiEnv, REPO_ROOT, removeStack, type TestStack } from "../test/e2e/harness";
import {
  ProviderMemorySampler,
  TaskRecorder,
  apiEntries,
  apiWindowMs,
  countRequests,
  taskNotice,
  type RequestCounts,
  type TaskNoticeStats,
} from "./bench/measure";
import { IMAGE, PACKAGE_INSTALL_MS, USER_DATA, lateAgentFigures, prepareLateAgents, type LateAgentFigures } from "./bench/late-agents";

const GiB = 1024 ** 3;

/** The latency model (PVE milliseconds, before the time factor); see BENCHMARKS.md. */
/** The simulator's linked clone time per disk (latency.ts `linkedCloneMs` default). */
const LINKED_CLONE_MS = 1500;

export const MODEL = {
  forkMs: 50,
  cloneBaseMs: 500,
  storageBandwidth: 1 * GiB,
  diskBytes: 10 * GiB,
  startMs: 2000,
  bootToAgentMs: 10000,
};

/**
 * The fastest any tool could bring N VMs to "agent answers" under the model: every clone copies
 * the 10 GiB disk through the template storage's one channel (bandwidth shared by concurrent
 * copies, so the last copy ends no earlier than N·S/B after the first fork + clone setup), and
 * the last VM then still needs its start and boot.
 */
export function idealMs(n: number, timeFactor: number): number {
  const m = MODEL;
  const copy = (n * m.diskBytes * 1000) / m.storageBandwidth;
  return (m.forkMs + m.cloneBaseMs + copy + m.forkMs + m.startMs + m.bootToAgentMs) * timeFactor;
}

interface Options {
  sizes: number[];
  timeFactor: number;
  baseline: boolean;
  maxTasks?: number;
  lateAgents: number;
  lateTimeFactor: number;
  json?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { sizes: [], timeFactor: 0.05, baseline: true, lateAgents: 30, lateTimeFactor: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--size") o.sizes.push(...next().split(",").map(Number));
    else if (a === "--time-factor") o.timeFactor = Number(next());
    else if (a === "--no-baseline") o.baseline = false;
    else if (a === "--max-tasks") o.maxTasks = Number(next());
    else if (a === "--late-agents") o.lateAgents = Number(next());
    else if (a === "--late-time-factor") o.lateTimeFactor = Number(next());
    else if (a === "--json") o.json = next();
    else throw new Error(`unknown option ${a} (see the top of scripts/bench.ts)`);
  }
  if (!o.sizes.length) o.sizes = [10, 50, 100];
  if (o.sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error("--size takes positive integers");
  if (!(o.timeFactor > 0)) throw new Error("--time-factor must be > 0");
  return o;
}

function say(line = ""): void {
  process.stdout.write(line + "\n");
}

interface UpResult {
  wallMs: number;
  apiWindowMs: number;
  ratioWall: number;
  ratioApi: number;
  requests: RequestCounts;
  perVm: { other: number; taskPolls: number; agentPolls: number; byEndpoint: Record<string, number> };
  notice: TaskNoticeStats;
  providerPeakMiB?: number;
}

interface OpResult {
  wallMs: number;
  requests: RequestCounts;
  changes: Record<string, number>;
}

interface SizeResult {
  size: number;
  idealMs: number;
  up: UpResult;
  preview: OpResult;
  refresh: OpResult;
  destroyMs: number;
  baseline?: { wallMs: number; apiWindowMs: number; ratioWall: number; ratioApi: number; requests: RequestCounts; destroyMs: number };
}

async function makeTemplate(api: PveClient, vmid: number, fromImage = false): Promise<void> {
  await api.qemu.createAndWait("pve1", vmid, {
    name: `tpl${vmid}`,
    memory: 2048,
    cores: 2,
    scsihw: "virtio-scsi-pci",
    scsi0: fromImage ? `local-lvm:0,import-from=local:import/${IMAGE}` : `local-lvm:${MODEL.diskBytes / GiB}`,
    ide2: "local-lvm:cloudinit",
    boot: "order=scsi0",
    serial0: "socket",
    vga: "serial0",
    net0: "virtio,bridge=vmbr0",
    agent: "1",
  });
  await api.qemu.templateAndWait("pve1", vmid);
}

class Bench {
  constructor(
    readonly s: RunningSimulator,
    readonly recorder: TaskRecorder,
    readonly o: Options,
  ) {}

  async stack(name: string, size: number, extra: Record<string, { value: string }> = {}): Promise<TestStack> {
    const config: Record<string, { value: string; secret?: boolean }> = {
      "proxmox:endpoint": { value: this.s.url },
      "proxmox:apiToken": { value: this.s.rootToken, secret: true },
      "proxmox:caCert": { value: this.s.caCert },
      "bench:size": { value: String(size) },
      ...extra,
    };
    if (this.o.maxTasks) config["proxmox:maxConcurrentTasks"] = { value: String(this.o.maxTasks) };
    return createTestStack({
      programDir: path.join(REPO_ROOT, "dist", "scripts", "bench", "fleet"),
      stackName: name,
      projectName: "pve-bench",
      config,
    });
  }

  /** Runs `fn` and returns its wall time and the API requests it caused. */
  async measured<T>(fn: () => Promise<T>): Promise<{ value: T; wallMs: number; from: number; entries: ReturnType<typeof apiEntries> }> {
    const from = this.s.sim.requestLog.length;
    const since = this.s.sim.now();
    const t0 = Date.now();
    const value = await fn();
    const wallMs = Date.now() - t0;
    return { value, wallMs, from: since, entries: apiEntries(this.s.sim.requestLog.slice(from)) };
  }

  async up(ts: TestStack, size: number, parallel?: number): Promise<UpResult> {
    const sampler = new ProviderMemorySampler(ts.workDir);
    sampler.start();
    const r = await this.measured(() => ts.stack.up(parallel ? { parallel } : {}));
    const mem = sampler.stop();
    if (r.value.summary.result !== "succeeded") throw new Error(`pulumi up: ${r.value.summary.result}`);
    const created = r.value.summary.resourceChanges?.create ?? 0;
    if (created !== size + 1) throw new Error(`pulumi up created ${created} resources, expected ${size + 1}`);
    const requests = countRequests(r.entries);
    const ideal = idealMs(size, this.o.timeFactor);
    const window = apiWindowMs(r.entries);
    const perVm = {
      other: requests.other / size,
      taskPolls: requests.taskPolls / size,
      agentPolls: requests.agentPolls / size,
      byEndpoint: Object.fromEntries(Object.entries(requests.byEndpoint).map(([k, v]) => [k, v / size])),
    };
    return {
      wallMs: r.wallMs,
      apiWindowMs: window,
      ratioWall: r.wallMs / ideal,
      ratioApi: window / ideal,
      requests,
      perVm,
      notice: taskNotice(r.entries, this.recorder, r.from),
      providerPeakMiB: mem.processes ? mem.peakMiB : undefined,
    };
  }

  async preview(stack: Stack): Promise<OpResult> {
    const r = await this.measured(() => stack.preview());
    return { wallMs: r.wallMs, requests: countRequests(r.entries), changes: r.value.changeSummary as Record<string, number> };
  }

  async refresh(stack: Stack): Promise<OpResult> {
    const r = await this.measured(() => stack.refresh());
    return { wallMs: r.wallMs, requests: countRequests(r.entries), changes: (r.value.summary.resourceChanges ?? {}) as Record<string, number> };
  }

  async destroy(stack: Stack): Promise<number> {
    const r = await this.measured(() => stack.destroy());
    if (r.value.summary.result !== "succeeded") throw new Error(`pulumi destroy: ${r.value.summary.result}`);
    return r.wallMs;
  }
}

function benchSimulator(o: Options, size: number, seed: number): Promise<RunningSimulator> {
  return startSimulator({
    seed,
    timeFactor: o.timeFactor,
    cluster: {
      ssh: false,
      capacity: { "local-lvm": (size + 10) * MODEL.diskBytes + 100 * GiB },
      latency: {
        forkMs: MODEL.forkMs,
        cloneBaseMs: MODEL.cloneBaseMs,
        storageBandwidth: MODEL.storageBandwidth,
        startMs: MODEL.startMs,
        bootToAgentMs: MODEL.bootToAgentMs,
      },
      guest: { packageInstallMs: PACKAGE_INSTALL_MS },
    },
  });
}

interface LateAgentsResult {
  size: number;
  timeFactor: number;
  idealMs: number;
  wallMs: number;
  ratioWall: number;
  addresses: number;
  figures: LateAgentFigures;
}

/** The late-agents fleet: every guest answers only after its user-data installed the agent. */
async function runLateAgents(options: Options, size: number): Promise<LateAgentsResult> {
  const o = { ...options, timeFactor: options.lateTimeFactor };
  const s = await benchSimulator(o, size, 5000 + size);
  const token = splitApiToken(s.rootToken)!;
  const api = getClient({ endpoint: s.url, credentials: { kind: "token", ...token }, tls: { caCert: s.caCert } });
  const bench = new Bench(s, new TaskRecorder(s.sim), o);
  let ts: TestStack | undefined;
  try {
    prepareLateAgents(s, MODEL.diskBytes);
    await makeTemplate(api, 9000, true);
    // linked clones, as CI runner fleets are built: no copy to wait for, so every guest boots and
    // waits for its agent at about the same time, the hardest case for pvedaemon's workers
    ts = await bench.stack(`bench-late-${size}-${process.pid}`, size, { "bench:userData": { value: USER_DATA }, "bench:full": { value: "false" } });
    say(`\n== late agents, ${size} linked clones: pulumi up --parallel ${size} (the image ships no agent; user-data installs and starts it)`);
    const from = s.sim.requestLog.length;
    const t0 = Date.now();
    // Each VmClone holds an engine slot until its agent answers, and the engine runs 4 operations
    // per CPU by default (pulumi/pkg cmd/pulumi/operations/up.go defaultParallel: 8 here): a fleet
    // that waits a minute for its agents needs --parallel (or PULUMI_PARALLEL) of its size.
    const up = await ts.stack.up({ parallel: size });
    const wallMs = Date.now() - t0;
    if (up.summary.result !== "succeeded") throw new Error(`pulumi up: ${up.summary.result}`);
    const addresses = (up.outputs.addresses.value as Array<string | undefined>).filter((a) => typeof a === "string" && a !== "").length;
    if (addresses !== size) throw new Error(`${addresses} of ${size} VMs reported an address`);
    // per VM: fork, the linked clone, fork, start, boot, package install (PVE clones linked
    // clones of one template in parallel: the source takes a shared lock)
    const ideal = (MODEL.forkMs + LINKED_CLONE_MS + MODEL.forkMs + MODEL.startMs + MODEL.bootToAgentMs + PACKAGE_INSTALL_MS) * o.timeFactor;
    const figures = lateAgentFigures(s.sim.requestLog.slice(from), size);
    const pve = (ms: number) => `${ms} ms (${(ms / o.timeFactor / 1000).toFixed(1)} s of PVE time)`;
    say(`   ${(wallMs / 1000).toFixed(1)} s wall, ideal ${(ideal / 1000).toFixed(1)} s (ratio ${(wallMs / ideal).toFixed(2)}x); ${addresses}/${size} addresses`);
    say(`   ${figures.agentPollsPerVm.toFixed(2)} agent polls per VM, ${figures.silentAgentCalls} of them answered "not running" after guest-ping`);
    say(`   config writes while agents were polled: ${figures.configWritesDuringPolling}, p95 ${pve(figures.configWriteP95Ms)}, max ${pve(figures.configWriteMaxMs)}; before any poll: p95 ${pve(figures.configWriteP95MsBefore)}`);
    await bench.destroy(ts.stack);
    return { size, timeFactor: o.timeFactor, idealMs: ideal, wallMs, ratioWall: wallMs / ideal, addresses, figures };
  } finally {
    await removeStack(ts);
    await s.stop();
  }
}

async function runSize(o: Options, size: number): Promise<SizeResult> {
  const s = await benchSimulator(o, size, 1000 + size);
  const recorder = new TaskRecorder(s.sim);
  const token = splitApiToken(s.rootToken)!;
  const api = getClient({ endpoint: s.url, credentials: { kind: "token", ...token }, tls: { caCert: s.caCert } });
  const bench = new Bench(s, recorder, o);
  let ts: TestStack | undefined;
  let base: TestStack | undefined;
  try {
    await makeTemplate(api, 9000);
    ts = await bench.stack(`bench-${size}-${process.pid}`, size);
    say(`\n== ${size} VMs: pulumi up (default parallelism)`);
    const up = await bench.up(ts, size);
    say(`   ${(up.wallMs / 1000).toFixed(1)} s wall, ${(up.apiWindowMs / 1000).toFixed(1)} s first-to-last request, ideal ${(idealMs(size, o.timeFactor) / 1000).toFixed(1)} s`);
    say(`   ratio ${up.ratioWall.toFixed(2)}x (wall) / ${up.ratioApi.toFixed(2)}x (API window); per VM: ${up.perVm.other.toFixed(2)} requests + ${up.perVm.taskPolls.toFixed(2)} task polls + ${up.perVm.agentPolls.toFixed(2)} agent polls`);
    say(`   task end noticed: median ${up.notice.lateMedianMs} ms, p95 ${up.notice.lateP95Ms} ms, max ${up.notice.lateMaxMs} ms; ${up.notice.pollRateMax.toFixed(2)} polls in 1 s per task at most`);
    if (up.providerPeakMiB !== undefined) say(`   provider process peak RSS ${up.providerPeakMiB.toFixed(0)} MiB`);

    say(`== ${size} VMs: no-op pulumi preview`);
    const preview = await bench.preview(ts.stack);
    say(`   ${(preview.wallMs / 1000).toFixed(1)} s, ${preview.requests.total} API requests, ${JSON.stringify(preview.changes)}`);
    say(`== ${size} VMs: no-op pulumi refresh`);
    const refresh = await bench.refresh(ts.stack);
    say(`   ${(refresh.wallMs / 1000).toFixed(1)} s, ${refresh.requests.total} API requests (${(refresh.requests.total / size).toFixed(2)} per VM), ${JSON.stringify(refresh.changes)}`);
    say(`== ${size} VMs: pulumi destroy`);
    const destroyMs = await bench.destroy(ts.stack);
    say(`   ${(destroyMs / 1000).toFixed(1)} s`);

    const result: SizeResult = { size, idealMs: idealMs(size, o.timeFactor), up, preview, refresh, destroyMs };
    if (o.baseline) {
      base = await bench.stack(`bench-${size}-p1-${process.pid}`, size);
      say(`== ${size} VMs: pulumi up --parallel 1 (baseline)`);
      const b = await bench.up(base, size, 1);
      say(`   ${(b.wallMs / 1000).toFixed(1)} s wall, ratio ${b.ratioWall.toFixed(2)}x (wall) / ${b.ratioApi.toFixed(2)}x (API window)`);
      const bDestroy = await bench.destroy(base.stack);
      result.baseline = { wallMs: b.wallMs, apiWindowMs: b.apiWindowMs, ratioWall: b.ratioWall, ratioApi: b.ratioApi, requests: b.requests, destroyMs: bDestroy };
    }
    return result;
  } finally {
    await removeStack(ts);
    await removeStack(base);
    await s.stop();
  }
}

function fmt(ms: number): string {
  return (ms / 1000).toFixed(1);
}

function summary(results: SizeResult[], o: Options): string {
  const lines = [
    "| VMs | ideal s | up s (wall) | ratio wall | ratio API window | --parallel 1 s | ratio | non-poll req/VM | task polls/VM | agent polls/VM | task notice median/p95/max ms | max polls/s/task | preview s / req | refresh s / req | provider peak RSS MiB |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    const u = r.up;
    lines.push(
      `| ${r.size} | ${fmt(r.idealMs)} | ${fmt(u.wallMs)} | ${u.ratioWall.toFixed(2)} | ${u.ratioApi.toFixed(2)} | ${r.baseline ? fmt(r.baseline.wallMs) : "-"} | ${r.baseline ? r.baseline.ratioWall.toFixed(2) : "-"} | ${u.perVm.other.toFixed(2)} | ${u.perVm.taskPolls.toFixed(2)} | ${u.perVm.agentPolls.toFixed(2)} | ${u.notice.lateMedianMs}/${u.notice.lateP95Ms}/${u.notice.lateMaxMs} | ${u.notice.pollRateMax.toFixed(2)} | ${fmt(r.preview.wallMs)} / ${r.preview.requests.total} | ${fmt(r.refresh.wallMs)} / ${r.refresh.requests.total} | ${u.providerPeakMiB?.toFixed(0) ?? "?"} |`,
    );
  }
  lines.push("", `time factor ${o.timeFactor}; requests per VM by endpoint (default parallelism, largest size):`);
  const last = results[results.length - 1];
  for (const [k, v] of Object.entries(last.up.perVm.byEndpoint).sort((a, b) => b[1] - a[1])) lines.push(`  ${v.toFixed(2).padStart(6)}  ${k}`);
  lines.push("refresh requests by endpoint (largest size):");
  for (const [k, v] of Object.entries(last.refresh.requests.byEndpoint).sort((a, b) => b[1] - a[1])) lines.push(`  ${String(v).padStart(6)}  ${k}`);
  return lines.join("\n");
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? "cpu"}, ${(os.totalmem() / GiB).toFixed(1)} GiB, Node ${process.version}, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`;
  say(`pulumi-pve bench: sizes ${o.sizes.join(", ")}, time factor ${o.timeFactor}${o.baseline ? ", with --parallel 1 baseline" : ""}`);
  say(`machine: ${machine}`);
  const results: SizeResult[] = [];
  let late: LateAgentsResult | undefined;
  let failed = false;
  try {
    for (const size of o.sizes) results.push(await runSize(o, size));
    if (o.lateAgents > 0) late = await runLateAgents(o, o.lateAgents);
  } finally {
    await disposePulumiEnv();
  }
  say("\n" + summary(results, o));
  if (late) {
    const f = late.figures;
    say(`\nlate agents (time factor ${late.timeFactor}): ${late.size} linked clones, up ${fmt(late.wallMs)} s (ideal ${fmt(late.idealMs)} s, ${late.ratioWall.toFixed(2)}x), ${late.addresses} addresses, ${f.agentPollsPerVm.toFixed(2)} agent polls/VM (${f.silentAgentCalls} silent), config writes during polling: ${f.configWritesDuringPolling}, p95 ${f.configWriteP95Ms} ms, max ${f.configWriteMaxMs} ms (before polling: p95 ${f.configWriteP95MsBefore} ms)`);
  }
  say(`\nload average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  for (const r of results) {
    if (r.preview.requests.total !== 0) {
      failed = true;
      say(`FAIL: the no-op preview of ${r.size} VMs made ${r.preview.requests.total} API requests (expected none): ${JSON.stringify(r.preview.requests.byEndpoint)}`);
    }
    const changed = Object.entries(r.preview.changes).filter(([k, v]) => k !== "same" && v);
    if (changed.length) {
      failed = true;
      say(`FAIL: the no-op preview of ${r.size} VMs shows changes: ${JSON.stringify(r.preview.changes)}`);
    }
  }
  if (o.json) fs.writeFileSync(o.json, JSON.stringify({ machine, options: o, model: MODEL, results, lateAgents: late }, null, 2));
  if (failed) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
