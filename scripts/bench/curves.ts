// Wall time against the provider's scheduling bounds (`--only curves`): the same fleet with
// proxmox:maxConcurrentTasks, then proxmox:maxConcurrentRequests, set to each value in turn,
// so the defaults can be chosen from the curve rather than guessed.

import { runFleet, type FleetFigures } from "./fleet-run";
import { say } from "./harness";
import { fullIdealMs, linkedIdealMs } from "./model";

export interface CurvePoint {
  bound: "maxConcurrentTasks" | "maxConcurrentRequests";
  value: number;
  workload: string;
  fleet: FleetFigures;
}

export interface CurveWorkload {
  name: string;
  size: number;
  full: boolean;
  timeFactor: number;
}

/** The workloads the bounds matter for: linked clones at real time (workers and scheduling
 *  decide), and full clones at the default factor (the storage channel decides). */
export function curveWorkloads(linkedSize: number, fullSize: number): CurveWorkload[] {
  return [
    { name: `linked ${linkedSize}, time factor 1`, size: linkedSize, full: false, timeFactor: 1 },
    { name: `full ${fullSize}, time factor 0.05`, size: fullSize, full: true, timeFactor: 0.05 },
  ].filter((w) => w.size > 0);
}

export async function runCurves(workloads: CurveWorkload[], tasks: number[], requests: number[]): Promise<CurvePoint[]> {
  const points: CurvePoint[] = [];
  for (const w of workloads) {
    const ideal = w.full ? fullIdealMs(w.size, w.timeFactor) : linkedIdealMs(w.size, w.timeFactor);
    const runs: Array<[CurvePoint["bound"], number]> = [...tasks.map((v) => ["maxConcurrentTasks", v] as [CurvePoint["bound"], number]), ...requests.map((v) => ["maxConcurrentRequests", v] as [CurvePoint["bound"], number])];
    for (const [bound, value] of runs) {
      const fleet = await runFleet({
        label: `${w.name}, ${bound} ${value}`,
        size: w.size,
        full: w.full,
        timeFactor: w.timeFactor,
        seed: 7000 + w.size,
        parallel: w.size,
        settings: bound === "maxConcurrentTasks" ? { maxTasks: value } : { maxRequests: value },
        idealMs: ideal,
        destroy: false,
      });
      points.push({ bound, value, workload: w.name, fleet });
    }
  }
  return points;
}

export function curveTable(points: CurvePoint[]): string {
  const lines = ["| workload | bound | value | up s (wall) | ratio wall | API window s | ratio API | agent polls/VM | non-poll req/VM |", "|---|---|---|---|---|---|---|---|---|"];
  for (const p of points) {
    const u = p.fleet.up;
    lines.push(`| ${p.workload} | ${p.bound} | ${p.value} | ${(u.wallMs / 1000).toFixed(1)} | ${u.ratioWall.toFixed(2)} | ${(u.apiWindowMs / 1000).toFixed(1)} | ${u.ratioApi.toFixed(2)} | ${u.agentPollsPerVm.toFixed(2)} | ${u.otherPerVm.toFixed(2)} |`);
  }
  return lines.join("\n");
}

export function printCurves(points: CurvePoint[]): void {
  say("\nwall time against the bounds (each point a fresh simulator; --parallel = fleet size):");
  say(curveTable(points));
}
