// GET /nodes: the cluster's nodes, all online, shaped like fixtures/nodes.json.
import type { Sim } from "../sim";
import { clusterOf } from "../state/cluster";
import { createHash } from "crypto";
import { registerSsh } from "../ssh";

export function register(sim: Sim): void {
  const c = clusterOf(sim);
  registerSsh(sim, c);
  sim.route({
    method: "GET",
    path: "/nodes",
    params: {},
    permissions: { user: "all" },
    handler: (req) =>
      c.nodeNames().map((n) => {
        const r = c.nodeResource(n);
        const e: Record<string, unknown> = { node: n, status: "online", type: "node", id: `node/${n}`, level: "" };
        const fp = createHash("sha256").update(`${sim.options.seed}:${n}`).digest("hex").toUpperCase().match(/../g)!.join(":");
        e.ssl_fingerprint = fp;
        if (sim.access.has(req.auth, `/nodes/${n}`, "Sys.Audit")) {
          Object.assign(e, { cpu: r.cpu, maxcpu: r.maxcpu, mem: r.mem, maxmem: r.maxmem, disk: r.disk, maxdisk: r.maxdisk, uptime: r.uptime });
        }
        return e;
      }),
  });
}
