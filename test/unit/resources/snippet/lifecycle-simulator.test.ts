/**
 * The CloudInitSnippet lifecycle against the simulator's per-node SFTP: files land in the
 * simulator's node trees, so a VM started through the simulator's API sees them (or not).
 */
import { clusterOf } from "../../../simulator/state/cluster";
import { defineSnippetLifecycleSuite } from "./lifecycle.suite";

jest.setTimeout(60_000);

defineSnippetLifecycleSuite(
  "the simulator's per-node SFTP",
  async (sim) => {
    const nodes = sim!.nodes.map((n) => ({ name: n.name, host: "127.0.0.1", port: n.sshPort, hostKeyFingerprint: n.hostKeyFingerprint }));
    if (nodes.some((n) => !n.port)) throw new Error("the simulator started no SSH servers");
    const cluster = clusterOf(sim!.sim);
    return { nodes, localPath: (node, abs) => cluster.hostPath(node, abs), stop: async () => undefined };
  },
  { simulatorSftp: true },
);
