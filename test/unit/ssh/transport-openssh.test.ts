/**
 * The snippet-transport suite against real OpenSSH: one Debian sshd per simulated node on a
 * loopback port (chrooted, SFTP only), plus one unchrooted sshd that runs commands for the
 * sudo path. Fails (never skips) when sshd is not installed.
 */
import { defineTransportSuite } from "../../ssh/snippet-transport.suite";
import { NODE_SNIPPETS_DIR, startSshdCluster } from "../../helpers/sshd";

defineTransportSuite(
  "real OpenSSH (one sshd per node)",
  async (authorizedKeys) => {
    const cluster = await startSshdCluster({ authorizedKeys });
    let execCluster;
    try {
      execCluster = await startSshdCluster({ authorizedKeys, nodes: ["pve-exec"], exec: true });
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    const ex = execCluster;
    const [execNode] = ex.nodes;
    return {
      nodes: cluster.nodes,
      username: cluster.username,
      snippetsDir: NODE_SNIPPETS_DIR,
      exec: {
        node: execNode,
        snippetsDir: execNode.snippetsDir,
        sudoCalls: () => ex.sudoCalls(),
        setSudoDenied: (d) => ex.setSudoDenied(d),
      },
      stop: async () => {
        await Promise.all([cluster.stop(), ex.stop()]);
      },
    };
  },
  // No non-root login: the test would have to create a system user.
  { exec: true, unprivileged: false },
);
