/**
 * The CloudInitSnippet lifecycle against real OpenSSH: the simulator serves the PVE API, one
 * chrooted sshd per simulated node (test/helpers/sshd.ts) receives the files. The simulator's
 * tree of each node is made a link to that node's chroot, so the simulator sees exactly what
 * sshd wrote (a VM start looks for its snippet there), and nothing else is shared.
 * Fails (never skips) when sshd is missing or the test does not run as root.
 */
import * as fs from "fs";
import * as path from "path";
import { startSshdCluster } from "../../../helpers/sshd";
import { clusterOf } from "../../../simulator/state/cluster";
import { defineSnippetLifecycleSuite } from "./lifecycle.suite";

jest.setTimeout(60_000);

defineSnippetLifecycleSuite(
  "real OpenSSH (one sshd per simulated node)",
  async (sim, authorizedKeys) => {
    const cluster = await startSshdCluster({ authorizedKeys, nodes: ["pve1", "pve2", "pve3"] });
    const simCluster = clusterOf(sim!.sim);
    for (const n of cluster.nodes) {
      // what the simulator made so far (its storages' directories) moves into the chroot
      const simTree = path.join(simCluster.rootDir, n.name);
      if (fs.existsSync(simTree)) fs.cpSync(simTree, n.rootDir, { recursive: true });
      fs.rmSync(simTree, { recursive: true, force: true });
      fs.symlinkSync(n.rootDir, simTree, "dir");
    }
    const byName = new Map(cluster.nodes.map((n) => [n.name, n]));
    return {
      nodes: cluster.nodes.map((n) => ({ name: n.name, host: n.host, port: n.port, hostKeyFingerprint: n.hostKeyFingerprint })),
      localPath: (node, abs) => path.join(byName.get(node)!.rootDir, abs),
      stop: () => cluster.stop(),
    };
  },
  { simulatorSftp: false },
);
