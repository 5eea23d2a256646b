#!/usr/bin/env bash
# Installs the system packages Ratchet needs when they are missing (Debian/Ubuntu).
# Sourced by scripts/test.sh and scripts/quickstart.sh; safe to run again.
set -euo pipefail

# Whether a static archive is in a multiarch library folder (/usr/lib/x86_64-linux-gnu/...).
ratchet_has_archive() {
  compgen -G "/usr/lib/*-linux-gnu/$1" >/dev/null
}

ratchet_missing_packages() {
  local missing=()
  pkg-config --exists libgit2 2>/dev/null || missing+=(libgit2-dev)
  # libgit2 is linked statically with what Debian builds it with (adr/0081): the archives come
  # with libgit2-dev's own dependencies; these checks name the package of each one missing.
  ratchet_has_archive libgit2.a || missing+=(libgit2-dev)
  ratchet_has_archive libmbedtls.a || missing+=(libmbedtls-dev)
  ratchet_has_archive libssh2.a || missing+=(libssh2-1-dev)
  ratchet_has_archive libcrypto.a || missing+=(libssl-dev)
  ratchet_has_archive libhttp_parser.a || missing+=(libhttp-parser-dev)
  ratchet_has_archive libpcre2-8.a || missing+=(libpcre2-dev)
  [ -e /usr/include/sqlite3.h ] || missing+=(libsqlite3-dev)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  command -v git >/dev/null 2>&1 || missing+=(git)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)
  command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
  command -v pgrep >/dev/null 2>&1 || missing+=(procps)
  command -v curl >/dev/null 2>&1 || missing+=(curl)         # https scrapes, queries and webhooks (adr/0073)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)   # the tests' throwaway https certificates
  [ -e /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -e /usr/include/curl/curl.h ] || missing+=(libcurl4-openssl-dev) # ratchet-mcp's static FoundationNetworking (bench.sh's --static-swift-stdlib) links -lcurl
  command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
  python3 -c 'import jsonschema' >/dev/null 2>&1 || missing+=(python3-jsonschema)   # validates ATIF exports in the tests
  command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)   # headless check of the summary's HTML
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus) # the real-Prometheus comparison (PrometheusComparisonTests)
  echo "${missing[@]:-}"
}

ratchet_install_deps() {
  local missing
  missing=$(ratchet_missing_packages)
  [ -z "$missing" ] && return 0
  echo "installing: $missing" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
  # Debian's python3-jsonschema serves /usr/bin/python3 only; a python3 of its own on PATH
  # (pyenv) gets it from PyPI.
  python3 -c 'import jsonschema' >/dev/null 2>&1 || python3 -m pip install -q jsonschema >/dev/null 2>&1 || true
}
