/** Tests run from the TypeScript sources through ts-jest; `npm test` also builds dist/ first,
 *  because the end-to-end suites drive the compiled provider through the real Pulumi engine. */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { isolatedModules: true }] },
  // Programs under examples/ import the package by name; in tests that is this checkout's source.
  moduleNameMapper: { "^pulumi-pve$": "<rootDir>/provider/index.ts" },
  testTimeout: 60000,
  maxWorkers: 2,
};
