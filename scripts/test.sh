#!/usr/bin/env bash
# Runs Ratchet's whole test suite, installing libgit2-dev and libsqlite3-dev first when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ratchet_install_deps
swift build --build-tests
# The benchmark's smoke mode: proves it runs (debug build; its figures mean nothing here).
swift run --skip-build ratchet-bench --quick --runs 3
# Everything but the hostile-agent suite, then that suite on its own, so that its result
# (root and, where possible, nobody) stands out in the log (docs/security.md).
swift test --skip-build --skip HostileAgentTests
echo "hostile-agent suite (docs/security.md):" >&2
swift test --skip-build --filter HostileAgentTests
