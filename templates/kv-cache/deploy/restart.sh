#!/bin/sh
# Deploys kv-cache from main's checkout. Ratchet runs this (service.yaml `deploy`) after each
# landing and revert, in a sandbox: the checkout read-only as the working directory,
# $DEPLOY_STATE writable and kept between deploys, the host's loopback when
# sandbox.deploy_network is host. Ratchet stops the previous instance first; this starts
# the new one in the background and succeeds once it listens. Protected path.
set -eu
log="$DEPLOY_STATE/server.log"
: >"$log"
PYTHONDONTWRITEBYTECODE=1 python3 -m kvcache.server --config config/cache.json >>"$log" 2>&1 &
pid=$!
tries=0
while [ "$tries" -lt 200 ]; do
  if grep -q '^listening on ' "$log"; then
    echo "kv-cache $(grep '^listening on ' "$log" | head -1 | cut -d' ' -f3) (pid $pid in the sandbox)"
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || { echo "kv-cache exited at start:" >&2; cat "$log" >&2; exit 1; }
  tries=$((tries + 1))
  sleep 0.05
done
echo "kv-cache did not listen within 10 s" >&2
exit 1
