// startSimulator(): builds a Sim, registers the core and the cluster part, generates the
// TLS material and listens on 127.0.0.1 with a random port.

import type { AddressInfo } from "net";
import { registerCoreBackdoor } from "./backdoor";
import { generateCerts } from "./certs";
import { register as registerAccess } from "./endpoints/access";
import { register as registerCluster } from "./endpoints/cluster";
import { register as registerNodes } from "./endpoints/nodes";
import { register as registerQemu } from "./endpoints/qemu";
import { register as registerStorage } from "./endpoints/storage";
import { register as registerTasks } from "./endpoints/tasks";
import { register as registerPools } from "./endpoints/pools";
import { register as registerVersion } from "./endpoints/version";
import { ApiServer } from "./server";
import { Sim, SimOptions } from "./sim";

export { Sim } from "./sim";
export type { SimOptions, RequestLogEntry } from "./sim";

export interface SimNodeInfo {
  name: string;
  /** 0 when the cluster part has not started an SSH server for the node. */
  sshPort: number;
  hostKeyFingerprint: string;
}

export interface RunningSimulator {
  /** `https://127.0.0.1:<port>` (the API is under /api2/json). */
  url: string;
  /** PEM of the CA that signed the server certificate. */
  caCert: string;
  /** `root@pam!<id>=<uuid>`, privsep=0. */
  rootToken: string;
  /** Secret for the back door (`Authorization: SimAdmin <secret>`). */
  adminSecret: string;
  nodes: SimNodeInfo[];
  sim: Sim;
  stop(): Promise<void>;
}

/** Builds a Sim with every route registered, without starting any server. Used by
 *  startSimulator and by tests that inspect routes (conformance). */
export function buildSim(options: SimOptions = {}): Sim {
  const sim = new Sim(options);
  registerVersion(sim);
  registerAccess(sim);
  registerPools(sim);
  registerCoreBackdoor(sim);
  // The cluster part (nodes, storage, VMs, tasks, SSH); cluster first: it sets sim.cluster.
  registerCluster(sim);
  registerNodes(sim);
  registerQemu(sim);
  registerStorage(sim);
  registerTasks(sim);
  return sim;
}

export async function startSimulator(options: SimOptions = {}): Promise<RunningSimulator> {
  const sim = buildSim(options);
  const certs = generateCerts();
  const server = new ApiServer(sim).create(certs);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(sim.options.port, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  sim.ext.url = `https://127.0.0.1:${port}`;
  try {
    await sim.runStartHooks();
  } catch (e) {
    server.close();
    server.closeAllConnections();
    await sim.runStopHooks();
    throw e;
  }
  let stopped = false;
  return {
    url: `https://127.0.0.1:${port}`,
    caCert: certs.caCert,
    rootToken: sim.access.rootToken,
    adminSecret: sim.options.adminSecret,
    nodes: sim.nodeNames().map((name) => {
      const ssh = sim.nodeSsh.get(name);
      return { name, sshPort: ssh?.sshPort ?? 0, hostKeyFingerprint: ssh?.hostKeyFingerprint ?? "" };
    }),
    sim,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await sim.runStopHooks();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
