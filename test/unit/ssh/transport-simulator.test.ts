/**
 * The snippet-transport suite against the simulator's per-node SSH/SFTP servers
 * (test/simulator/ssh.ts): the same body as against real OpenSSH. The simulator's exec
 * knows no `sudo`, so the sudo path is covered by the real-OpenSSH run only; the simulator
 * has non-root users, so the "no write access" case is covered here only.
 */
import { defineTransportSuite } from "../../ssh/snippet-transport.suite";
import { PREPARED_LOCAL_CONTENT } from "../../simulator/state/cluster";
import { startSimulator } from "../../simulator";

defineTransportSuite(
  "the simulator's per-node SFTP",
  async (authorizedKeys) => {
    const sim = await startSimulator({
      seed: 11,
      // snippets enabled on `local` by the admin (a fresh install has none, nor its directory)
      cluster: { localContent: PREPARED_LOCAL_CONTENT, sshUsers: { root: { keys: authorizedKeys }, snippetbot: { keys: authorizedKeys } } },
    });
    const missing = sim.nodes.filter((n) => !n.sshPort || !n.hostKeyFingerprint);
    if (missing.length > 0) {
      await sim.stop();
      throw new Error(
        `the simulator started no SSH server for ${missing.map((n) => n.name).join(", ")} ` +
          `(startSimulator().nodes[].sshPort is 0): test/simulator/ssh.ts is not registered`,
      );
    }
    return {
      nodes: sim.nodes.map((n) => ({ name: n.name, host: "127.0.0.1", port: n.sshPort, hostKeyFingerprint: n.hostKeyFingerprint })),
      username: "root",
      snippetsDir: "/var/lib/vz/snippets",
      unprivileged: { username: "snippetbot" },
      stop: () => sim.stop(),
    };
  },
  { exec: false, unprivileged: true },
);
