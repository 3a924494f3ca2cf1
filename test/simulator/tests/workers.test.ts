// PVE serves its API with 3 pveproxy and 3 pvedaemon worker processes: a request holds a
// worker while it is processed, so the 4th concurrent write waits for a free one.
import { startSimulator, type RunningSimulator } from "../index";
import { call } from "./core-http";

function slowRoute(s: RunningSimulator, method: "GET" | "POST", path: string, track: { active: number; peak: number }): void {
  s.sim.route({
    method,
    path,
    params: {},
    permissions: { user: "all" },
    handler: async () => {
      track.active++;
      track.peak = Math.max(track.peak, track.active);
      await new Promise((r) => setTimeout(r, 40));
      track.active--;
      return null;
    },
  });
}

describe("API worker processes", () => {
  let s: RunningSimulator;
  afterEach(() => s?.stop());

  it("process at most 3 reads and 3 writes at once by default; the rest queue and succeed", async () => {
    s = await startSimulator({ seed: 5 });
    const reads = { active: 0, peak: 0 };
    const writes = { active: 0, peak: 0 };
    slowRoute(s, "GET", "/test/slow-read", reads);
    slowRoute(s, "POST", "/test/slow-write", writes);
    const token = s.rootToken;
    const results = await Promise.all([
      ...Array.from({ length: 8 }, () => call(s, "GET", "/test/slow-read", { token })),
      ...Array.from({ length: 8 }, () => call(s, "POST", "/test/slow-write", { token })),
    ]);
    expect(results.map((r) => r.status)).toEqual(Array(16).fill(200));
    expect(reads.peak).toBe(3);
    expect(writes.peak).toBe(3);
  });

  it("follow the apiWorkers option", async () => {
    s = await startSimulator({ seed: 5, apiWorkers: 1 });
    const writes = { active: 0, peak: 0 };
    slowRoute(s, "POST", "/test/slow-write", writes);
    await Promise.all(Array.from({ length: 4 }, () => call(s, "POST", "/test/slow-write", { token: s.rootToken })));
    expect(writes.peak).toBe(1);
  });
});
