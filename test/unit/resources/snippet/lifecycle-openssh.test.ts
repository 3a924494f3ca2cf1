/**
 * The CloudInitSnippet lifecycle against real OpenSSH: the simulator serves the PVE API, one
 * chrooted sshd per simulated node (test/helpers/sshd.ts) receives the files. VM starts are
 * checked in the simulator run only (the simulator cannot see the sshds' trees).
 * Fails (never skips) when sshd is missing or the test does not run as root.
 */
import * as path from "path";
import { startSshdCluster } from "../../../helpers/sshd";
import { defineSnippetLifecycleSuite } from "./lifecycle.suite";

jest.setTimeout(60_000);

defineSnippetLifecycleSuite(
  "real OpenSSH (one sshd per simulated node)",
  async (_sim, authorizedKeys) => {
    const cluster = await startSshdCluster({ authorizedKeys, nodes: ["pve1", "pve2", "pve3"] });
    const byName = new Map(cluster.nodes.map((n) => [n.name, n]));
    return {
      nodes: cluster.nodes.map((n) => ({ name: n.name, host: n.host, port: n.port, hostKeyFingerprint: n.hostKeyFingerprint })),
      localPath: (node, abs) => path.join(byName.get(node)!.rootDir, abs),
      stop: () => cluster.stop(),
    };
  },
  { simulatorSftp: false },
);
