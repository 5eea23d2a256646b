#!/usr/bin/env bash
# Runs the benchmark (release build) and writes docs/performance.json; about 10 minutes.
# Installs libgit2-dev and libsqlite3-dev first when missing. Run it on a quiet machine:
# no build or test run in parallel, and not right after one (docs/performance.md, Method).
# Extra arguments go to ratchet-bench (e.g. --shipped-only, --runs 21).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ratchet_install_deps
swift build -c release --product ratchet-bench
.build/release/ratchet-bench --output docs/performance.json --profile "$@"
