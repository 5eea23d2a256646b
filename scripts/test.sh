#!/usr/bin/env bash
# Runs Ratchet's whole test suite, installing libgit2-dev and libsqlite3-dev first when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ratchet_install_deps
swift build --build-tests
# The benchmark's smoke mode: proves it runs (debug build; its figures mean nothing here).
swift run --skip-build ratchet-bench --quick --runs 3
swift test --skip-build
