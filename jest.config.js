/** Tests run from the TypeScript sources through ts-jest; `npm test` also builds dist/ first,
 *  because the end-to-end suites drive the compiled provider through the real Pulumi engine.
 *
 *  `npm test` needs no OpenSSH server: the suites against real OpenSSH (`*-openssh.test.ts`,
 *  one sshd per simulated node) run with `npm run test:openssh` (jest.openssh.config.js), which
 *  CI runs after installing openssh-server. */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  testPathIgnorePatterns: ["/node_modules/", "-openssh\\.test\\.ts$"],
  transform: { "^.+\\.ts$": ["ts-jest", { isolatedModules: true }] },
  moduleNameMapper: {
    // Programs under examples/ import the package by name; in tests that is this checkout's source.
    "^pulumi-pve$": "<rootDir>/provider/index.ts",
    // One SDK for the tests, the provider and the example programs, even when an example's own
    // `npm install` has put a copy of @pulumi/pulumi in examples/<name>/node_modules.
    "^@pulumi/pulumi$": "<rootDir>/node_modules/@pulumi/pulumi",
    "^@pulumi/pulumi/(.*)$": "<rootDir>/node_modules/@pulumi/pulumi/$1",
  },
  testTimeout: 60000,
  maxWorkers: 2,
};
