// node-forge as the tests load it (jest.common.js maps `node-forge` here): the same library,
// loaded while Node's `navigator` global is hidden.
//
// forge's big-integer code picks its multiply routine when it loads: with no `navigator` (Node.js
// before 21) the 28-bit `am3`, with one that is not a known browser's (Node.js 21 and newer) the
// 26-bit floating-point `am1`. Inside jest's module sandbox `am1` runs about 30 times slower than
// outside it: one RSA-2048 certificate signature takes 2 to 3 s instead of about 80 ms, and every
// in-process simulator (test/simulator/certs.ts) and every test HTTPS server
// (test/unit/helpers/https-server.ts) signs two or three. Both routines compute the same numbers;
// only the time differs. `navigator` is put back right after, so the code under test sees Node.js
// as it is.
"use strict";
const path = require("path");

const navigator = Object.getOwnPropertyDescriptor(globalThis, "navigator");
if (navigator) delete globalThis.navigator;
try {
  module.exports = require(path.join(__dirname, "..", "..", "..", "node_modules", "node-forge"));
} finally {
  if (navigator) Object.defineProperty(globalThis, "navigator", navigator);
}
