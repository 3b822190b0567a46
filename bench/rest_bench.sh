#!/usr/bin/env bash
# Starts twinhubd (SQLite store, fresh data directory) and runs rest_bench against it.
# Usage: bench/rest_bench.sh [BUILD_DIR] [rest_bench options...]
# Env: REST_BENCH_PORT (default 443), REST_BENCH_SECONDS (default 10), REST_BENCH_CONNECTIONS (64).
set -euo pipefail
build="$(cd "${1:-build}" && pwd)"
shift || true
port="${REST_BENCH_PORT:-443}"
work="$(mktemp -d "${TMPDIR:-/tmp}/twinhub-rest-bench.XXXXXX")"
hub_pid=""
cleanup() {
  if [ -n "$hub_pid" ]; then kill -TERM "$hub_pid" 2>/dev/null || true; wait "$hub_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
TWINHUB_LOG_LEVEL=warn "$build/bin/twinhubd" --data-dir "$work/hub" --https-port "$port" --mqtt-port 0 \
  >"$work/stdout" 2>"$work/stderr" &
hub_pid=$!
cs=""
for _ in $(seq 300); do
  kill -0 "$hub_pid" 2>/dev/null || { cat "$work/stdout" "$work/stderr" >&2; exit 1; }
  cs="$(sed -n 's/^Connection string (iothubowner): //p' "$work/stdout" | head -n1)"
  if [ -n "$cs" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
[ -n "$cs" ] || { echo "rest_bench.sh: twinhubd printed no connection string" >&2; exit 1; }
"$build/bin/rest_bench" --connection-string "$cs" --ca-file "$work/hub/tls/ca.pem" --port "$port" --server-pid "$hub_pid" \
  --seconds "${REST_BENCH_SECONDS:-10}" --connections "${REST_BENCH_CONNECTIONS:-64}" "$@"
