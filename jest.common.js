/** What every test tier shares (jest.config.js, jest.openssh.config.js). */
module.exports = {
  testEnvironment: "node",
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
    // The same node-forge, loaded so that its RSA signing is not 30x slower under jest (see there).
    "^node-forge$": "<rootDir>/test/unit/helpers/node-forge.js",
  },
};
