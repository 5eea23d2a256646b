#!/usr/bin/env bash
# Builds Ratchet and runs `ratchet quickstart` in a fresh folder, installing libgit2-dev and
# libsqlite3-dev first when missing. Usage: scripts/quickstart.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
ratchet_install_deps
swift build
dir="${1:-$(mktemp -d /tmp/ratchet-quickstart.XXXXXX)/workspace}"
exec .build/debug/ratchet quickstart "$dir"
