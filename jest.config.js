/** Tests run from the TypeScript sources through ts-jest; `npm test` also builds dist/ first,
 *  because the end-to-end suites drive the compiled provider through the real Pulumi engine. */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { isolatedModules: true }] },
  testTimeout: 60000,
  maxWorkers: 2,
};
