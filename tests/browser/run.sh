#!/usr/bin/env bash
# Browser tests of the node's web page: builds the aidmesh binary, installs the npm
# packages from the lockfile, and runs the tests in Debian's headless Chromium.
# Needs /usr/bin/chromium (Debian: apt-get install chromium). Screenshots go to
# tests/browser/output/.
set -euo pipefail
cd "$(dirname "$0")"
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "chromium not found; install Debian's chromium package" >&2; exit 1; }
cargo build --quiet --bin aidmesh --manifest-path ../../Cargo.toml
[ -d node_modules/playwright-core ] && [ -d node_modules/axe-core ] || npm ci --no-audit --no-fund
# The binary cargo just built, wherever its target dir is.
export AIDMESH_BIN="${AIDMESH_BIN:-$(realpath -m "${CARGO_TARGET_DIR:-../../target}")/debug/aidmesh}"
node --test --test-reporter=spec web.test.mjs
