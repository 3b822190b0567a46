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

if [ ! -d "$here/node_modules" ]; then
  (cd "$here" && { npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; })
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/twinhub-compat.XXXXXX")"
data="$work/hub"
hub_pid=""
cleanup() {
  if [ -n "$hub_pid" ] && kill -0 "$hub_pid" 2>/dev/null; then
    kill -TERM "$hub_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$hub_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$hub_pid" 2>/dev/null || true
  fi
  if [ "${TWINHUB_COMPAT_KEEP:-0}" = 1 ]; then echo "compat: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

TWINHUB_LOG_LEVEL="${TWINHUB_LOG_LEVEL:-warn}" "$bin/twinhubd" --data-dir "$data" --https-port 443 --mqtt-port 8883 \
  >"$work/stdout" 2>"$work/stderr" &
hub_pid=$!

# Wait for the first-start banner (connection string) and for port 443 to accept connections.
cs=""
for _ in $(seq 300); do
  if ! kill -0 "$hub_pid" 2>/dev/null; then
    echo "compat: twinhubd exited during start-up:" >&2
    cat "$work/stdout" "$work/stderr" >&2
    exit 1
  fi
  cs="$(sed -n 's/^Connection string (iothubowner): //p' "$work/stdout" | head -n1)"
  if [ -n "$cs" ] && (exec 3<>/dev/tcp/127.0.0.1/443) 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -z "$cs" ]; then
  cs="$("$bin/twinhub" hub connection-string show --data-dir "$data" 2>/dev/null || true)"
fi
if [ -z "$cs" ]; then
  echo "compat: no connection string from twinhubd" >&2
  cat "$work/stdout" "$work/stderr" >&2
  exit 1
fi

export TWINHUB_CONNECTION_STRING="$cs"
export TWINHUB_DATA_DIR="$data"
export TWINHUB_BIN_DIR="$bin"
export NODE_EXTRA_CA_CERTS="$data/tls/ca.pem"

if [ $# -eq 0 ]; then
  set -- "$here"/test/*.test.js
fi
status=0
node --test --test-concurrency=1 "$@" || status=$?
if [ $status -ne 0 ]; then
  echo "compat: twinhubd log (last 50 lines):" >&2
  tail -n 50 "$work/stderr" >&2
fi
exit $status
