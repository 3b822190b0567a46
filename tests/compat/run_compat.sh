#!/usr/bin/env bash
# Runs the official Azure IoT Node SDKs against a real twinhubd: starts the hub with a fresh data
# directory on the SDKs' fixed ports (443 HTTPS/WSS, 8883 MQTT), trusts its CA through
# NODE_EXTRA_CA_CERTS, runs `node --test` over tests/compat/test/*.test.js (or the files given),
# and stops the hub. Usage: run_compat.sh BIN_DIR [test files...]
# Needs ports 443 and 8883 free (ctest serialises users of them with RESOURCE_LOCK hubports).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$(cd "${1:-$here/../../build/bin}" && pwd)"
shift || true

# Installs the pinned SDKs when node_modules is missing or older than package-lock.json (npm
# writes node_modules/.package-lock.json at each install), so a checkout that gained a package
# does not run against the old tree.
if [ ! -f "$here/node_modules/.package-lock.json" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  (cd "$here" && { npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; })
fi

# shellcheck source=../../scripts/hub.sh
. "$here/../../scripts/hub.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/twinhub-compat.XXXXXX")"
data="$work/hub"
cleanup() {
  hub_stop
  # A hub the tests restarted (tests/compat/lib/hub_process.js) is not this script's child.
  if [ -f "$work/restarted.pid" ]; then
    local pid
    pid="$(cat "$work/restarted.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  if [ "${TWINHUB_COMPAT_KEEP:-0}" = 1 ]; then echo "compat: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

hub_start "$bin" "$data" 443 8883
cs="$HUB_CS"

export TWINHUB_CONNECTION_STRING="$cs"
export TWINHUB_DATA_DIR="$data"
export TWINHUB_BIN_DIR="$bin"
export TWINHUB_HUB_PID="$HUB_PID"
export TWINHUB_HUB_PID_FILE="$work/restarted.pid"
export NODE_EXTRA_CA_CERTS="$data/tls/ca.pem"

if [ $# -eq 0 ]; then
  set -- "$here"/test/*.test.js
fi
status=0
node --test --test-concurrency=1 "$@" || status=$?
if [ $status -ne 0 ]; then
  echo "compat: twinhubd log (last 50 lines):" >&2
  tail -n 50 "$data.stderr" >&2
fi
exit $status
