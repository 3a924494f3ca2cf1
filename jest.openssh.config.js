/** `npm run test:openssh`: the snippet suites against real OpenSSH servers (`*-openssh.test.ts`),
 *  one `sshd` per simulated node. They need /usr/sbin/sshd (Debian: openssh-server) and root,
 *  and fail, never skip, without them (test/helpers/sshd.ts). CI's .ci/run installs
 *  openssh-server and runs them after `npm test`. */
const common = require("./jest.common");

module.exports = {
  projects: [{ ...common, displayName: "openssh", roots: ["<rootDir>/test"], testMatch: ["**/*-openssh.test.ts"], testPathIgnorePatterns: ["/node_modules/"] }],
  testTimeout: 60000,
  maxWorkers: 2,
};
