// The fault profile of the reliability suites, shared by the lifecycle-level and the engine-level
// runs so both face the same faults: 5% of all API calls fail (half 500s, half connection resets
// before PVE acts), clone POSTs whose answer is lost after PVE carried them out, lock contention
// on VM config flocks, and 10% of tasks running slow.
import type { FaultConfig } from "../../simulator/faults";
import type { RequestLogEntry } from "../../simulator/sim";

export const CLONE_ROUTE = "/nodes/{node}/qemu/{vmid}/clone";

export const FLEET_FAULTS: FaultConfig = {
  rules: [
    // The clone happened, its UPID never arrived: the case a blind retry turns into a duplicate.
    { method: "POST", path: CLONE_ROUTE, lostResponseRate: 0.15 },
    { path: "*", errorRate: 0.025, resetRate: 0.025 },
  ],
  lockContention: 0.1,
  tasks: { slowFactor: 5, slowRate: 0.1 },
};

export interface FaultCounts {
  requests: number;
  error500: number;
  reset: number;
  lostResponse: number;
  slowTasks: number;
  lockContention: number;
}

/** Faults injected, by kind, from the simulator's request log and task-fault counters. */
export function countFaults(log: RequestLogEntry[], injected: { slowTasks: number; lockContention: number }): FaultCounts {
  return {
    requests: log.length,
    error500: log.filter((e) => e.fault === "error").length,
    reset: log.filter((e) => e.fault === "reset").length,
    lostResponse: log.filter((e) => e.fault === "lostResponse").length,
    slowTasks: injected.slowTasks,
    lockContention: injected.lockContention,
  };
}
