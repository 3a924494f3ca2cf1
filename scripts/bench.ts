// `npm run bench [-- options]`: VmClone fleets through the real Pulumi engine against the PVE
// simulator with a documented latency model (BENCHMARKS.md; ideals in scripts/bench/model.ts).
// Scenarios (`--only a,b`; default sizes,linked,realtime,late):
//
// - sizes: full clones of a 10 GiB disk at the default time factor (0.05), per size: `pulumi up`
//   at the engine's default parallelism, a no-op preview (must make no API request), a no-op
//   refresh, destroy; then the same fleet at `--parallel 1` (the baseline);
// - linked: N linked clones at real time (`--linked N`, default 50; `--linked-time-factor`);
// - realtime: N full clones at time factor 1 (`--realtime N`, default 10), refresh and destroy;
// - late: N linked clones of a cloud image whose agent cloud-init installs (`--late-agents N`,
//   default 30; `--late-time-factor`, default 1), scripts/bench/late-agents.ts;
// - destroy: N linked clones at real time (`--destroy N`, default 10), `--parallel N`: up, no-op
//   refresh, destroy, `--repeat R` times (default 3) on fresh simulators: the destroy and refresh
//   figures in a fraction of the realtime scenario's time (the model's shutdown and destroy do
//   not depend on how the VM was cloned);
// - curves: wall time against maxConcurrentTasks and maxConcurrentRequests (scripts/bench/curves.ts;
//   `--curve-tasks 1,2,4,...`, `--curve-requests 2,4,8,...`, `--curve-linked N`, `--curve-full N`:
//   fleet sizes, 50 each by default, 0 skips one).
//
// Other options: --size N (repeatable or comma-separated; default 10,50,100), --time-factor F
// (sizes; default 0.05), --no-baseline, --max-tasks N / --max-requests N (the provider's bounds
// for every scenario but the curves), --json FILE (every figure), --engine-log (capture the
// engine's verbose log of every refresh and destroy and print their phases: engine against
// provider time; the logging costs CPU, so figures taken with it are traces, not results).

import * as fs from "node:fs";
import * as os from "node:os";
import { disposePulumiEnv } from "../test/e2e/harness";
import { curveWorkloads, printCurves, runCurves, type CurvePoint } from "./bench/curves";
import { runFleet, type FleetFigures } from "./bench/fleet-run";
import { PACKAGE_INSTALL_MS, say, type StackSettings } from "./bench/harness";
import { runLateAgents, type LateAgentsResult } from "./bench/late-agents";
import { MODEL, destroyIdealMs, fullIdealMs, linkedIdealMs } from "./bench/model";

const GiB = 1024 ** 3;
const SCENARIOS = ["sizes", "linked", "realtime", "late", "destroy", "curves"] as const;
type Scenario = (typeof SCENARIOS)[number];

interface Options {
  only: Set<Scenario>;
  sizes: number[];
  timeFactor: number;
  baseline: boolean;
  settings: StackSettings;
  linked: number;
  linkedTimeFactor: number;
  realtime: number;
  lateAgents: number;
  lateTimeFactor: number;
  curveTasks: number[];
  curveRequests: number[];
  curveLinked: number;
  curveFull: number;
  destroy: number;
  repeat: number;
  engineLog: boolean;
  json?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    only: new Set(["sizes", "linked", "realtime", "late"]),
    sizes: [],
    timeFactor: 0.05,
    baseline: true,
    settings: {},
    linked: 50,
    linkedTimeFactor: 1,
    realtime: 10,
    lateAgents: 30,
    lateTimeFactor: 1,
    curveTasks: [1, 2, 4, 8, 16, 64],
    curveRequests: [2, 4, 8, 16, 32],
    curveLinked: 50,
    curveFull: 50,
    destroy: 10,
    repeat: 3,
    engineLog: false,
  };
  // an empty list (`--curve-requests ""`) skips that curve
  const list = (v: string) => (v === "" ? [] : v.split(",").map(Number));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--only") {
      const names = next().split(",");
      for (const n of names) if (!SCENARIOS.includes(n as Scenario)) throw new Error(`--only takes ${SCENARIOS.join(", ")}, not ${n}`);
      o.only = new Set(names as Scenario[]);
    } else if (a === "--size") o.sizes.push(...list(next()));
    else if (a === "--time-factor") o.timeFactor = Number(next());
    else if (a === "--no-baseline") o.baseline = false;
    else if (a === "--max-tasks") o.settings.maxTasks = Number(next());
    else if (a === "--max-requests") o.settings.maxRequests = Number(next());
    else if (a === "--linked") o.linked = Number(next());
    else if (a === "--linked-time-factor") o.linkedTimeFactor = Number(next());
    else if (a === "--realtime") o.realtime = Number(next());
    else if (a === "--late-agents") o.lateAgents = Number(next());
    else if (a === "--late-time-factor") o.lateTimeFactor = Number(next());
    else if (a === "--curve-tasks") o.curveTasks = list(next());
    else if (a === "--curve-requests") o.curveRequests = list(next());
    else if (a === "--curve-linked") o.curveLinked = Number(next());
    else if (a === "--curve-full") o.curveFull = Number(next());
    else if (a === "--json") o.json = next();
    else if (a === "--destroy") o.destroy = Number(next());
    else if (a === "--repeat") o.repeat = Number(next());
    else if (a === "--engine-log") o.engineLog = true;
    else throw new Error(`unknown option ${a} (see the top of scripts/bench.ts)`);
  }
  if (!o.sizes.length) o.sizes = [10, 50, 100];
  for (const [name, v] of [["--size", o.sizes], ["--curve-tasks", o.curveTasks], ["--curve-requests", o.curveRequests]] as const) {
    if (v.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${name} takes positive integers`);
  }
  if (!(o.timeFactor > 0) || !(o.linkedTimeFactor > 0) || !(o.lateTimeFactor > 0)) throw new Error("time factors must be > 0");
  // a size of 0 skips that scenario
  if (!o.linked) o.only.delete("linked");
  if (!o.realtime) o.only.delete("realtime");
  if (!o.lateAgents) o.only.delete("late");
  if (!o.destroy) o.only.delete("destroy");
  return o;
}

interface SizeResult {
  size: number;
  fleet: FleetFigures;
  baseline?: FleetFigures;
}

/** Full clones at the default time factor: the engine's default parallelism, then `--parallel 1`. */
async function runSize(o: Options, size: number): Promise<SizeResult> {
  const base = { size, full: true, timeFactor: o.timeFactor, seed: 1000 + size, settings: o.settings, idealMs: fullIdealMs(size, o.timeFactor) };
  const fleet = await runFleet({ ...base, label: `${size} VMs`, preview: true, refresh: true, engineLog: o.engineLog });
  if (!o.baseline) return { size, fleet };
  const baseline = await runFleet({ ...base, label: `${size} VMs, --parallel 1 (baseline)`, parallel: 1 });
  return { size, fleet, baseline };
}

const fmt = (ms: number) => (ms / 1000).toFixed(1);

function sizesTable(results: SizeResult[], o: Options): string {
  const lines = [
    "| VMs | ideal s | up s (wall) | ratio wall | ratio API window | --parallel 1 s | ratio | non-poll req/VM | task polls/VM | agent polls/VM | task notice median/p95/max ms | agent notice median/p95/max ms | max polls/s/task | preview s / req | refresh s / req | destroy s | provider peak RSS MiB |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const { size, fleet: f, baseline: b } of results) {
    const u = f.up;
    const t = u.taskNotice;
    const a = u.agentNotice;
    lines.push(
      `| ${size} | ${fmt(f.idealMs)} | ${fmt(u.wallMs)} | ${u.ratioWall.toFixed(2)} | ${u.ratioApi.toFixed(2)} | ${b ? fmt(b.up.wallMs) : "-"} | ${b ? b.up.ratioWall.toFixed(2) : "-"} | ${u.otherPerVm.toFixed(2)} | ${u.taskPollsPerVm.toFixed(2)} | ${u.agentPollsPerVm.toFixed(2)} | ${t.lateMedianMs}/${t.lateP95Ms}/${t.lateMaxMs} | ${a.medianMs}/${a.p95Ms}/${a.maxMs} | ${t.pollRateMax.toFixed(2)} | ${fmt(f.preview!.wallMs)} / ${f.preview!.requests.total} | ${fmt(f.refresh!.wallMs)} / ${f.refresh!.requests.total} | ${f.destroy ? fmt(f.destroy.wallMs) : "-"} | ${u.providerPeakMiB?.toFixed(0) ?? "?"} |`,
    );
  }
  const last = results[results.length - 1].fleet;
  lines.push("", `time factor ${o.timeFactor}; requests per VM by endpoint (default parallelism, largest size):`);
  for (const [k, v] of Object.entries(last.up.requests.byEndpoint).sort((x, y) => y[1] - x[1])) lines.push(`  ${(v / last.size).toFixed(2).padStart(6)}  ${k}`);
  lines.push("refresh requests by endpoint (largest size):");
  for (const [k, v] of Object.entries(last.refresh!.requests.byEndpoint).sort((x, y) => y[1] - x[1])) lines.push(`  ${String(v).padStart(6)}  ${k}`);
  return lines.join("\n");
}

/** One line per scenario fleet: the figures the goals are stated in. */
function fleetLine(f: FleetFigures): string {
  const u = f.up;
  const d = f.destroy;
  const parts = [
    `${f.label} (${f.size} ${f.full ? "full" : "linked"}, time factor ${f.timeFactor}, --parallel ${f.parallel ?? "default"})`,
    `up ${fmt(u.wallMs)} s (ideal ${fmt(f.idealMs)} s: ${u.ratioWall.toFixed(2)}x wall, ${u.ratioApi.toFixed(2)}x API window)`,
    ...(u.cliMs !== undefined ? [`pulumi up ${fmt(u.cliMs)} s (${u.ratioCli!.toFixed(2)}x) + summary ${fmt(u.summaryMs!)} s`] : []),
    `${u.otherPerVm.toFixed(2)} non-poll req/VM, ${u.taskPollsPerVm.toFixed(2)} task polls/VM, ${u.agentPollsPerVm.toFixed(2)} agent polls/VM (${u.silentAgentCalls} silent)`,
    `task end noticed p95 ${u.taskNotice.lateP95Ms} ms (max ${u.taskNotice.lateMaxMs}), agent answer noticed p95 ${u.agentNotice.p95Ms} ms (max ${u.agentNotice.maxMs})`,
  ];
  if (f.refresh) parts.push(`refresh ${fmt(f.refresh.wallMs)} s, ${f.refresh.perVm.toFixed(2)} req/VM`);
  if (d) parts.push(`destroy ${fmt(d.wallMs)} s${d.cliMs !== undefined ? ` (pulumi destroy ${fmt(d.cliMs)} s + summary ${fmt(d.summaryMs!)} s)` : ""}${d.idealMs ? ` (ideal ${fmt(d.idealMs)} s: ${d.ratioWall!.toFixed(2)}x wall, ${d.ratioCli !== undefined ? `${d.ratioCli.toFixed(2)}x pulumi destroy, ` : ""}${d.ratioApi!.toFixed(2)}x API window)` : ""}, engine head ${fmt(d.headMs!)} s / tail ${fmt(d.tailMs!)} s, task end noticed p95 ${d.taskNotice.lateP95Ms} ms`);
  return parts.join("; ");
}

const load = () => os.loadavg().map((l) => l.toFixed(2)).join(" ");

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? "cpu"}, ${(os.totalmem() / GiB).toFixed(1)} GiB, Node ${process.version}, load ${load()}`;
  say(`pulumi-pve bench: ${[...o.only].join(", ")}${o.only.has("sizes") ? `; sizes ${o.sizes.join(", ")}, time factor ${o.timeFactor}${o.baseline ? ", with --parallel 1 baseline" : ""}` : ""}`);
  say(`machine: ${machine}`);
  const results: SizeResult[] = [];
  const fleets: Array<FleetFigures & { loadAfter: string }> = [];
  let late: LateAgentsResult | undefined;
  let curves: CurvePoint[] = [];
  let failed = false;
  const note = (f: FleetFigures) => fleets.push({ ...f, loadAfter: load() });
  try {
    if (o.only.has("sizes")) for (const size of o.sizes) results.push(await runSize(o, size));
    if (o.only.has("linked")) {
      // every VmClone holds an engine slot until its agent answers: --parallel of the fleet's size
      const n = o.linked;
      note(await runFleet({ label: "linked", size: n, full: false, timeFactor: o.linkedTimeFactor, seed: 3000 + n, parallel: n, settings: o.settings, idealMs: linkedIdealMs(n, o.linkedTimeFactor), destroyIdealMs: destroyIdealMs(n, o.linkedTimeFactor), refresh: true, engineLog: o.engineLog }));
    }
    if (o.only.has("realtime")) {
      const n = o.realtime;
      note(await runFleet({ label: "real time", size: n, full: true, timeFactor: 1, seed: 4000 + n, parallel: n, settings: o.settings, idealMs: fullIdealMs(n, 1), destroyIdealMs: destroyIdealMs(n, 1), preview: true, refresh: true, engineLog: o.engineLog }));
    }
    if (o.only.has("destroy")) {
      const n = o.destroy;
      for (let i = 0; i < o.repeat; i++) {
        note(await runFleet({ label: `destroy run ${i + 1}`, size: n, full: false, timeFactor: 1, seed: 5000 + n + i, parallel: n, settings: o.settings, idealMs: linkedIdealMs(n, 1), destroyIdealMs: destroyIdealMs(n, 1), refresh: true, engineLog: o.engineLog }));
      }
    }
    if (o.only.has("late")) {
      late = await runLateAgents(o.lateAgents, o.lateTimeFactor, o.settings);
      note(late.fleet);
    }
    if (o.only.has("curves")) curves = await runCurves(curveWorkloads(o.curveLinked, o.curveFull), o.curveTasks, o.curveRequests);
  } finally {
    await disposePulumiEnv();
  }
  if (results.length) say("\n" + sizesTable(results, o));
  if (fleets.length) say("");
  for (const f of fleets) say(`${fleetLine(f)} [load after: ${f.loadAfter}]`);
  if (late) {
    const f = late.figures;
    say(`late agents: config writes during polling: ${f.configWritesDuringPolling}, p95 ${f.configWriteP95Ms} ms, max ${f.configWriteMaxMs} ms (before polling: p95 ${f.configWriteP95MsBefore} ms); package install ${PACKAGE_INSTALL_MS / 1000} s after boot`);
  }
  if (curves.length) printCurves(curves);
  say(`\nload average at the end: ${load()}`);
  const previews = [...results.map((r) => r.fleet), ...fleets].filter((f) => f.preview);
  for (const f of previews) {
    const p = f.preview!;
    if (p.requests.total !== 0) {
      failed = true;
      say(`FAIL: the no-op preview of ${f.label} made ${p.requests.total} API requests (expected none): ${JSON.stringify(p.requests.byEndpoint)}`);
    }
    const changed = Object.entries(p.changes).filter(([k, v]) => k !== "same" && v);
    if (changed.length) {
      failed = true;
      say(`FAIL: the no-op preview of ${f.label} shows changes: ${JSON.stringify(p.changes)}`);
    }
  }
  for (const f of [...results.map((r) => r.fleet), ...fleets]) {
    const left = f.destroy?.leftBehind;
    if (left && (left.vms.length || left.volumes.length)) {
      failed = true;
      say(`FAIL: ${f.label}: the destroy left ${left.vms.length} VMs and ${left.volumes.length} volumes behind`);
    }
    if (f.up.addresses !== f.size) {
      failed = true;
      say(`FAIL: ${f.label}: ${f.up.addresses} of ${f.size} VMs reported an address`);
    }
  }
  if (o.json) fs.writeFileSync(o.json, JSON.stringify({ machine, loadAtEnd: load(), options: { ...o, only: [...o.only] }, model: MODEL, results, fleets, lateAgents: late, curves }, null, 2));
  if (failed) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
