#!/usr/bin/env bash
# The oldest end of the supported range, as CI proves it (`npm test` runs the whole suite on the
# newest end): the packaged-install end-to-end test (test/e2e/packaged-install.test.ts: `npm pack`,
# the tarball installed into a fresh project, `pulumi up`, a no-op preview, refresh and destroy
# through the CLI) on Node.js 22, with @pulumi/pulumi 3.248.0 in that project. The Pulumi CLI is
# the newest, as for users: the one scripts/ensure-pulumi.sh provides.
#
# Node.js 22 comes from the npm registry's `node` package, installed once into
# ${PULUMI_PVE_CACHE:-$HOME/.cache/pulumi-pve}/node-v22.23.3 and put first on PATH, so that the
# test, npm, the Pulumi program and the dynamic-provider process all run on it.
#
# Needs `npm ci` first (the test runs from this checkout with its devDependencies).
set -euo pipefail
cd "$(dirname "$0")/.."

readonly OLDEST_NODE="22.23.3"
readonly OLDEST_SDK="3.248.0"

log() { printf '[test-oldest] %s\n' "$*" >&2; }

node_dir="${PULUMI_PVE_CACHE:-${HOME}/.cache/pulumi-pve}/node-v${OLDEST_NODE}"
if [ ! -x "${node_dir}/node_modules/node/bin/node" ]; then
    log "installing Node.js ${OLDEST_NODE} (the npm registry's node package) into ${node_dir}"
    mkdir -p "${node_dir}"
    printf '{ "private": true, "dependencies": { "node": "%s" }, "allowScripts": { "node": true } }\n' "${OLDEST_NODE}" >"${node_dir}/package.json"
    (cd "${node_dir}" && npm install --no-audit --no-fund --no-package-lock >&2)
fi

pulumi_dir="$(bash scripts/ensure-pulumi.sh | tail -n 1)"
export PATH="${node_dir}/node_modules/.bin:${pulumi_dir}:${PATH}"
node scripts/toolchain.js --expect-node "${OLDEST_NODE%%.*}" --pulumi "${pulumi_dir}"
log "the user's project gets @pulumi/pulumi ${OLDEST_SDK}"

# jest's own entry point, so that it runs on the `node` first on PATH (npx would put this
# checkout's node_modules/.bin, and its Node.js 24, first).
PULUMI_PVE_SDK_VERSION="${OLDEST_SDK}" node node_modules/jest/bin/jest.js --ci test/e2e/packaged-install.test.ts
