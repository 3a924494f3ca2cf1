// The late-agents scenario of `npm run bench`: a fleet cloned from a Debian cloud-image template
// (the image ships no qemu-guest-agent) whose user-data installs and starts the agent, so each
// guest answers only after boot plus the package install; until then every agent call holds one
// of the node's 3 pvedaemon workers for PVE's 3 s guest-ping. Measures the wall time, agent
// polls per VM, and how long the fleet's config writes (which need the same workers) took while
// agents were being polled.

import * as fs from "node:fs";
import * as path from "node:path";
import type { RequestLogEntry, RunningSimulator } from "../../test/simulator";
import { runFleet, type FleetFigures } from "./fleet-run";
import { IMAGE, PACKAGE_INSTALL_MS, say, type StackSettings } from "./harness";
import { AGENT_POLL, apiEntries, countRequests } from "./measure";
import { MODEL, linkedIdealMs } from "./model";

export const USER_DATA = "local:snippets/agent.yaml";

/**
 * Prepares the cluster as an admin would for this fleet (snippets enabled on `local`), puts the
 * cloud image in `local`'s import content with the given virtual size, and the user-data that
 * installs and starts the agent on the node.
 */
export function prepareLateAgents(s: RunningSimulator, diskBytes: number): void {
  const cluster = s.sim.ext.cluster;
  const local = cluster.storage("local");
  if (!local.content.includes("snippets")) local.content.push("snippets");
  for (const [dir, file, text] of [
    ["/var/lib/vz/import", IMAGE, "qcow2"],
    ["/var/lib/vz/snippets", "agent.yaml", "#cloud-config\npackages: [qemu-guest-agent]\nruncmd:\n  - [systemctl, start, qemu-guest-agent]\n"],
  ]) {
    const p = cluster.hostPath("pve1", path.posix.join(dir, file));
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text);
  }
  cluster.importSizes.set(`local:import/${IMAGE}@pve1`, diskBytes);
}

function percentile(values: number[], p: number): number {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export interface LateAgentFigures {
  agentPollsPerVm: number;
  /** Agent calls answered "QEMU guest agent is not running" (each held a worker for guest-ping). */
  silentAgentCalls: number;
  /** Config writes (PUT/POST .../config) made while agents were being polled. */
  configWritesDuringPolling: number;
  configWriteP95Ms: number;
  configWriteMaxMs: number;
  /** The same writes with no agent polling going on (before the first poll). */
  configWriteP95MsBefore: number;
}

const CONFIG_WRITE = /^(PUT|POST) \/nodes\/\{node\}\/qemu\/\{vmid\}\/config$/;

/** The figures from the `pulumi up` part of the request log. */
export function lateAgentFigures(log: RequestLogEntry[], size: number): LateAgentFigures {
  const entries = apiEntries(log);
  const counts = countRequests(entries);
  const polls = entries.filter((e) => `${e.method} ${e.template}` === AGENT_POLL);
  const first = Math.min(...polls.map((e) => e.time));
  const last = Math.max(...polls.map((e) => e.time));
  const writes = entries.filter((e) => CONFIG_WRITE.test(`${e.method} ${e.template}`));
  const during = writes.filter((e) => e.time >= first && e.time <= last).map((e) => e.durationMs);
  const before = writes.filter((e) => e.time < first).map((e) => e.durationMs);
  return {
    agentPollsPerVm: counts.agentPolls / size,
    silentAgentCalls: polls.filter((e) => e.status === 500).length,
    configWritesDuringPolling: during.length,
    configWriteP95Ms: percentile(during, 95),
    configWriteMaxMs: during.length ? Math.max(...during) : 0,
    configWriteP95MsBefore: percentile(before, 95),
  };
}

export interface LateAgentsResult {
  fleet: FleetFigures;
  figures: LateAgentFigures;
}

/**
 * N linked clones (as CI runner fleets are built: no copy to wait for, so every guest boots and
 * waits for its agent at about the same time, the hardest case for pvedaemon's workers) of the
 * cloud-image template, user-data installing the agent, `--parallel N`: each VmClone holds an
 * engine slot until its agent answers, and the engine runs 4 operations per CPU by default
 * (pulumi/pkg cmd/pulumi/operations/up.go defaultParallel: 8 here), so a fleet that waits a
 * minute for its agents needs --parallel (or PULUMI_PARALLEL) of its size.
 */
export async function runLateAgents(size: number, timeFactor: number, settings: StackSettings = {}): Promise<LateAgentsResult> {
  let figures: LateAgentFigures | undefined;
  const fleet = await runFleet({
    label: `late agents ${size}`,
    size,
    full: false,
    timeFactor,
    seed: 5000 + size,
    parallel: size,
    settings,
    idealMs: linkedIdealMs(size, timeFactor, PACKAGE_INSTALL_MS),
    lateAgents: { prepare: (b) => prepareLateAgents(b.s, MODEL.diskBytes), userData: USER_DATA },
    inspectUp: (entries) => {
      figures = lateAgentFigures(entries, size);
    },
  });
  const f = figures!;
  say(`   config writes while agents were polled: ${f.configWritesDuringPolling}, p95 ${f.configWriteP95Ms} ms, max ${f.configWriteMaxMs} ms; before any poll: p95 ${f.configWriteP95MsBefore} ms`);
  return { fleet, figures: f };
}
