#!/usr/bin/env bash
# Provides the Pulumi CLI (v3.276.0, the release of the @pulumi/pulumi devDependency that the
# suite runs on) for CI, `npm test`, the demo and the end-to-end tests.
#
# Prints the directory that holds the `pulumi` binary on its LAST stdout line; everything else
# (progress, diagnostics) goes to stderr. Put that directory first on PATH.
#
# Order of preference:
#   1. `pulumi` already on PATH with version >= 3.276.0 (a normal installation);
#   2. a cached build in ${PULUMI_PVE_CACHE:-$HOME/.cache/pulumi-pve}/pulumi-v3.276.0/bin;
#   3. a build from source with Go (>= 1.26.6, what the CLI's go.mod asks for) through the Go
#      module proxy: 4 to 5 minutes on 2 cores, once per machine, then cached outside the
#      repository. It says so before it starts, then shows its progress on stderr (modules
#      downloaded, packages compiled out of the total, elapsed time).
#
# The cache directory also receives `pulumi-resource-pulumi-nodejs` (the dynamic-provider
# plugin launcher that ships inside the @pulumi/pulumi npm package), so that putting the one
# directory on PATH is enough for the engine to run this package's dynamic providers.
#
# About the Node.js language host (`pulumi-language-nodejs`): it lives in its own, untagged Go
# module (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3), which the module
# proxy reachable from our machines refuses ("403 This module version is not available", for
# every version, @latest included). So the cache directory receives pulumi-pve's own minimal
# Node.js language host (scripts/language-host/pulumi-language-nodejs, a copy that needs nothing
# from this checkout), so that `pulumi up` of a `runtime: nodejs` project works with the cached
# CLI. It is installed ONLY when no real `pulumi-language-nodejs` is in the cache or on PATH,
# and removed from the cache again as soon as a real one is on PATH. A normal Pulumi
# installation (case 1) has the real one and is left alone. See docs/dynamic-provider-notes.md.
#
# Environment:
#   PULUMI_PVE_CACHE        cache root (default: $HOME/.cache/pulumi-pve)
#   PULUMI_PVE_NO_PATH=1    ignore a `pulumi` found on PATH (force the cached/built CLI)
set -euo pipefail

readonly VERSION="3.276.0"
readonly TAG="v${VERSION}"
# The `go` directive of github.com/pulumi/pulumi/pkg/v3 at that tag.
readonly MIN_GO="1.26.6"
# What the build takes on the project's machines (2 cores, empty Go caches), for the messages.
readonly BUILD_ESTIMATE="4 to 5 minutes on 2 cores"

CACHE_ROOT="${PULUMI_PVE_CACHE:-${HOME}/.cache/pulumi-pve}"
CACHE_DIR="${CACHE_ROOT}/pulumi-${TAG}"
BIN_DIR="${CACHE_DIR}/bin"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "${SCRIPT_DIR}/.." && pwd)"

log() { printf '[ensure-pulumi] %s\n' "$*" >&2; }
die() { printf '[ensure-pulumi] ERROR: %s\n' "$*" >&2; exit 1; }

# The CLI this script provides is the release of the SDK that the suite runs on: package.json's
# devDependency on @pulumi/pulumi, pinned exactly (the package itself declares a peer range).
check_sdk_pairing() {
    local sdk
    sdk="$(node -p "const p = require('${REPO_DIR}/package.json'); (p.devDependencies || {})['@pulumi/pulumi'] || (p.dependencies || {})['@pulumi/pulumi'] || ''" 2>/dev/null || true)"
    [ -z "$sdk" ] || [ "$sdk" = "$VERSION" ] || die "package.json pins @pulumi/pulumi ${sdk}, but this script provides the CLI ${VERSION}.
Change both together: VERSION (and MIN_GO, the go directive of pkg/v3 at that tag) here, and the devDependency in package.json."
}

# version_ge A B: true when semantic version A >= B (both without a leading "v").
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

# Prints the version (without "v") reported by the pulumi binary given, or nothing.
pulumi_version_of() {
    local out
    out="$(PULUMI_SKIP_UPDATE_CHECK=1 "$1" version 2>/dev/null | tail -n1 || true)"
    out="${out#v}"
    case "$out" in [0-9]*.[0-9]*.[0-9]*) printf '%s' "$out" ;; esac
}

# The dynamic-provider launcher must be on PATH beside the CLI. It is a tiny shell script in the
# @pulumi/pulumi package that finds `@pulumi/pulumi/cmd/dynamic-provider` from its working
# directory (the program's directory), so a copy of it is independent of this checkout.
install_nodejs_plugin_scripts() {
    local dest="$1" src name
    for name in pulumi-resource-pulumi-nodejs pulumi-analyzer-policy pulumi-resource-pulumi-python; do
        for src in "${REPO_DIR}/node_modules/@pulumi/pulumi/${name}" \
                   "${REPO_DIR}/node_modules/@pulumi/policy/${name}"; do
            if [ -f "$src" ]; then
                cp "$src" "${dest}/${name}.tmp.$$" && chmod 0755 "${dest}/${name}.tmp.$$" \
                    && mv -f "${dest}/${name}.tmp.$$" "${dest}/${name}"
                break
            fi
        done
    done
    [ -x "${dest}/pulumi-resource-pulumi-nodejs" ] || \
        die "node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs not found: run 'npm ci' first"
}

# pulumi-pve's minimal language host: a plain Node.js script, recognisable by this marker.
readonly LANGUAGE_HOST_SHIM="${SCRIPT_DIR}/language-host/pulumi-language-nodejs"
readonly LANGUAGE_HOST_SHIM_MARKER="PULUMI_PVE_MINIMAL_LANGUAGE_HOST"

is_language_host_shim() { grep -q "${LANGUAGE_HOST_SHIM_MARKER}" "$1" 2>/dev/null; }

# The first real (not pulumi-pve's) pulumi-language-nodejs on PATH, or nothing.
real_language_host_on_path() {
    local candidate
    while IFS= read -r candidate; do
        [ -n "$candidate" ] && ! is_language_host_shim "$candidate" && { printf '%s' "$candidate"; return 0; }
    done < <(type -a -P pulumi-language-nodejs 2>/dev/null || true)
    return 0
}

# Gives the cached CLI a Node.js language host: a real one in the cache or on PATH if there is
# one, otherwise pulumi-pve's minimal one, copied beside `pulumi` (where the CLI looks for it).
ensure_language_host() {
    local dest="${BIN_DIR}/pulumi-language-nodejs" real
    if [ -x "$dest" ] && ! is_language_host_shim "$dest"; then
        log "using the real pulumi-language-nodejs in ${BIN_DIR}"
        return 0
    fi
    real="$(real_language_host_on_path)"
    if [ -n "$real" ]; then
        # The cache directory usually comes first on PATH: never let our copy shadow the real one.
        if [ -e "$dest" ]; then rm -f "$dest"; fi
        log "using the real pulumi-language-nodejs from PATH (${real})"
        return 0
    fi
    [ -f "${LANGUAGE_HOST_SHIM}" ] || die "${LANGUAGE_HOST_SHIM} is missing"
    command -v node >/dev/null 2>&1 || die "node is not on PATH (the language host runs on Node.js)"
    if ! cmp -s "${LANGUAGE_HOST_SHIM}" "$dest"; then
        cp "${LANGUAGE_HOST_SHIM}" "${dest}.tmp.$$" && chmod 0755 "${dest}.tmp.$$" && mv -f "${dest}.tmp.$$" "$dest"
    fi
    log "using pulumi-pve's minimal Node.js language host (${dest}, from scripts/language-host/);" \
        "a normal Pulumi installation has the real one"
}

cache_is_complete() {
    [ -f "${CACHE_DIR}/.complete" ] && [ -x "${BIN_DIR}/pulumi" ] &&
        [ "$(pulumi_version_of "${BIN_DIR}/pulumi")" = "${VERSION}" ]
}

# fmt_secs N: "4m05s".
fmt_secs() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# Shared awk helpers: the time elapsed since `start` (epoch seconds), as 4m05s. `srand()` returns
# the previous seed, so the second call gives the time of day that the first one seeded with.
readonly AWK_ELAPSED='function elapsed(  s) { srand(); s = srand() - start; return sprintf("%dm%02ds", s / 60, s % 60) }'

# Reads `go mod tidy`'s output (a "go: downloading MODULE VERSION" line per module fetched) and
# prints a line every 25 modules with the elapsed time since $1; other lines pass through.
download_progress() {
    awk -v start="$1" -v prefix="[ensure-pulumi] " "${AWK_ELAPSED}"'
        /^go: downloading / { n++; if (n % 25 == 0) { printf "%s  downloaded %d modules, %s\n", prefix, n, elapsed(); fflush() } next }
        /^go: finding / { next }
        { print; fflush() }
        END { printf "%s  %d modules downloaded (the rest were in the Go module cache), %s\n", prefix, n, elapsed() }' >&2
}

# Reads `go build -v` (a line per package compiled, the packages already in Go's build cache
# left out) and prints a line at every 5% of the $2 packages that `go list -deps` counted, with
# the elapsed time since $1.
compile_progress() {
    awk -v start="$1" -v total="$2" -v prefix="[ensure-pulumi] " "${AWK_ELAPSED}"'
        /^#/ || / / { next }   # compiler diagnostics, not package paths
        {
            n++
            pct = total > 0 ? int(100 * n / total) : 0
            if (pct > 100) pct = 100
            if (n == 1 || pct >= next_pct) {
                printf "%s  compiled %d of %d packages (%d%%), %s\n", prefix, n, total, pct, elapsed(); fflush()
                next_pct = pct - pct % 5 + 5
            }
        }
        END { printf "%s  compiled %d packages (the rest were in Go'"'"'s build cache), %s\n", prefix, n, elapsed() }' >&2
}

build_with_go() {
    local work start end gover total
    command -v go >/dev/null 2>&1 || return 1
    gover="$(go env GOVERSION 2>/dev/null)"; gover="${gover#go}"
    if ! version_ge "${gover%%[-+ ]*}" "${MIN_GO}" && [ -z "${GOTOOLCHAIN:-}" ]; then
        die "Go ${gover} is too old to build the Pulumi CLI ${TAG} (its go.mod needs go >= ${MIN_GO}).
Install a newer Go, or let Go fetch its toolchain: GOTOOLCHAIN=auto bash scripts/ensure-pulumi.sh"
    fi
    work="$(mktemp -d "${TMPDIR:-/tmp}/pulumi-cli-build.XXXXXX")"
    [ -n "${work}" ] && [ -d "${work}" ] || die "could not make a scratch directory for the build"
    BUILD_WORK_DIR="${work}"
    trap 'rm -rf "${BUILD_WORK_DIR:-}"' EXIT
    start=$(date +%s)
    log "The Pulumi CLI ${TAG} is neither on PATH nor cached: building it from source with"
    log "$(go version | awk '{print $3}'), ${BUILD_ESTIMATE}, once per machine (cached in ${CACHE_DIR})."
    log "To skip this, install Pulumi ${VERSION} or newer on PATH: https://www.pulumi.com/docs/install/"

    # A scratch module pinning pkg and sdk at the same tag, with the replace directive that
    # pkg/v3's own go.mod declares (besides its local ../sdk, which the sdk requirement covers).
    printf '%s\n' \
        "module pulumi-pve.local/pulumi-cli" "" "go ${MIN_GO}" "" "require (" \
        "	github.com/pulumi/pulumi/pkg/v3 ${TAG}" \
        "	github.com/pulumi/pulumi/sdk/v3 ${TAG}" ")" "" \
        "replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e" \
        >"${work}/go.mod"
    printf '%s\n' "//go:build tools" "" "package tools" "" 'import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"' \
        >"${work}/tools.go"

    # GOSUMDB=off: the checksum database (sum.golang.org) is not reachable from our machines (its
    # lookups answer 404 through the proxy), so go.sum is filled from the proxy's downloads
    # without the transparency-log check. GOFLAGS=-mod=mod lets `go mod tidy`/`go build` update
    # the scratch go.mod/go.sum.
    export GOSUMDB=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOWORK=off
    log "step 1 of 3: downloading the CLI's Go modules"
    if ! (cd "${work}" && go mod tidy 2>&1 | tee "${work}/tidy.log" | download_progress "${start}"; exit "${PIPESTATUS[0]}"); then
        tail -n 30 "${work}/tidy.log" >&2
        die "go mod tidy failed for the Pulumi CLI scratch module (log above)"
    fi

    local ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=${TAG}"
    total="$(cd "${work}" && go list -deps github.com/pulumi/pulumi/pkg/v3/cmd/pulumi 2>/dev/null | wc -l | tr -d ' ')"
    mkdir -p "${work}/bin"
    log "step 2 of 3: compiling ${total} packages (the Go standard library's included), the longest step"
    if ! (cd "${work}" && go build -v -trimpath -ldflags "${ldflags}" -o "${work}/bin/pulumi" \
            github.com/pulumi/pulumi/pkg/v3/cmd/pulumi 2>&1 | tee "${work}/build.log" | compile_progress "${start}" "${total}"; \
            exit "${PIPESTATUS[0]}"); then
        tail -n 30 "${work}/build.log" >&2
        die "go build of the Pulumi CLI failed (log above)"
    fi

    log "step 3 of 3: installing it into ${BIN_DIR}"
    mkdir -p "${CACHE_DIR}"
    rm -rf "${BIN_DIR}.new"
    mv "${work}/bin" "${BIN_DIR}.new"
    rm -rf "${BIN_DIR}"
    mv "${BIN_DIR}.new" "${BIN_DIR}"
    install_nodejs_plugin_scripts "${BIN_DIR}"
    end=$(date +%s)
    printf 'version=%s\nbuilt=%s\nseconds=%s\ngo=%s\n' "${TAG}" "$(date -u +%FT%TZ)" "$((end - start))" \
        "$(go version | awk '{print $3}')" >"${CACHE_DIR}/.complete"
    log "built the Pulumi CLI ${TAG} in $(fmt_secs $((end - start))): $(du -h "${BIN_DIR}/pulumi" | cut -f1) ${BIN_DIR}/pulumi"
}

main() {
    check_sdk_pairing
    # 1. A normal installation on PATH.
    if [ "${PULUMI_PVE_NO_PATH:-}" != "1" ] && command -v pulumi >/dev/null 2>&1; then
        local found ver
        found="$(command -v pulumi)"
        ver="$(pulumi_version_of "$found")"
        if [ -n "$ver" ] && version_ge "$ver" "$VERSION"; then
            log "using pulumi v${ver} from PATH (${found})"
            if [ "$(cd "$(dirname "$found")" && pwd -P)" = "$(cd "${BIN_DIR}" 2>/dev/null && pwd -P)" ]; then
                ensure_language_host   # our own cache directory, put on PATH
            elif [ ! -x "$(dirname "$found")/pulumi-language-nodejs" ] && [ -z "$(real_language_host_on_path)" ]; then
                log "warning: no pulumi-language-nodejs beside it or on PATH, so \`pulumi up\` of a Node.js" \
                    "project will fail; PULUMI_PVE_NO_PATH=1 uses the cached CLI with pulumi-pve's minimal host"
            fi
            printf '%s\n' "$(dirname "$found")"
            return 0
        fi
        log "ignoring pulumi on PATH (${found}, version '${ver:-unknown}' < ${VERSION})"
    fi

    # 2./3. The cache, built under a lock so that parallel callers build once.
    mkdir -p "${CACHE_ROOT}"
    exec 9>"${CACHE_ROOT}/.lock-pulumi-${TAG}"
    if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
        log "another process is providing the Pulumi CLI ${TAG} (a first build takes ${BUILD_ESTIMATE}): waiting for it"
        flock 9 || die "could not lock ${CACHE_ROOT}/.lock-pulumi-${TAG}"
    fi
    if cache_is_complete; then
        # Refresh the launcher scripts (cheap) in case the cache predates them.
        [ -x "${BIN_DIR}/pulumi-resource-pulumi-nodejs" ] || install_nodejs_plugin_scripts "${BIN_DIR}"
        log "using cached pulumi ${TAG} (${BIN_DIR})"
        ensure_language_host
        printf '%s\n' "${BIN_DIR}"
        return 0
    fi
    if ! command -v go >/dev/null 2>&1; then
        die "the Pulumi CLI >= ${VERSION} is needed and neither it nor Go (to build it) was found.
Install Pulumi: https://www.pulumi.com/docs/install/ (e.g. 'curl -fsSL https://get.pulumi.com | sh -s -- --version ${VERSION}'),
then put it on PATH, or install Go >= ${MIN_GO} and run this script again to build it from source."
    fi
    build_with_go
    cache_is_complete || die "the built CLI in ${BIN_DIR} does not report version ${VERSION}"
    ensure_language_host
    printf '%s\n' "${BIN_DIR}"
}

main "$@"
