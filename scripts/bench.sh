#!/usr/bin/env bash
# Runs the benchmark (release build) and writes docs/performance.json; about 10 minutes.
# Installs libgit2-dev and libsqlite3-dev first when missing. Run it on a quiet machine:
# no build or test run in parallel, and not right after one (docs/performance.md, Method).
# Extra arguments go to ratchet-bench (e.g. --shipped-only, --runs 21).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ratchet_install_deps
# The Swift runtime and Foundation linked statically: every `ratchet` process starts without
# resolving ~22,000 symbols across 15 Swift libraries (adr/0038; start-up 23.6 -> 14.4 ms CPU).
swift build -c release --static-swift-stdlib --product ratchet
# `ratchet mcp` is served by ratchet-mcp beside it (adr/0073: the only binary that links libcurl).
swift build -c release --static-swift-stdlib --product ratchet-mcp
# The thin `ratchet` of sandboxes and the init of a deploy's sandbox (adr/0042, adr/0077).
swift build -c release --product ratchet-tool
swift build -c release --static-swift-stdlib --product ratchet-bench
.build/release/ratchet-bench --output docs/performance.json --profile "$@"
