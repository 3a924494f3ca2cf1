/** Tests run from the TypeScript sources through ts-jest, in three tiers (jest projects):
 *
 *  - `unit`: test/unit — the client, codecs, checks and each resource's lifecycle against the
 *    in-process simulator; no root, no sshd, no Pulumi CLI. `npm run test:unit`, about a minute:
 *    it runs 4 workers on 2 cores, since its suites spend most of their time waiting on the
 *    simulator's (scaled) task times and the provider's polls, not on the CPU.
 *  - `simulator`: test/simulator/tests — the simulator's own fidelity to PVE.
 *  - `e2e`: test/e2e — the compiled provider through the real Pulumi engine (CLI), and the tests
 *    of its harness (e.g. the secret scan, secret-scan.test.ts).
 *
 *  `npm test` runs all three (and builds dist/ first, for the engine's provider process). It needs
 *  no OpenSSH server: the suites against real OpenSSH (`*-openssh.test.ts`, one sshd per
 *  simulated node) run with `npm run test:openssh` (jest.openssh.config.js), which CI runs after
 *  installing openssh-server. */
const common = require("./jest.common");

const tier = (displayName, root) => ({ ...common, displayName, roots: [`<rootDir>/${root}`] });

module.exports = {
  projects: [tier("unit", "test/unit"), tier("simulator", "test/simulator"), tier("e2e", "test/e2e")],
  testTimeout: 60000,
  maxWorkers: 2,
};
