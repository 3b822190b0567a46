#!/usr/bin/env bash
# Starts twinhubd (SQLite store, fresh data directory, free ports) and runs method_bench against it:
# 1,000 connected modules answering direct methods, round trips/s and p50/p99 latency.
# Usage: bench/method_bench.sh [BUILD_DIR] [method_bench options...]
# Env: METHOD_BENCH_SECONDS (10), METHOD_BENCH_MODULES (1000), METHOD_BENCH_CONNECTIONS (64),
#      METHOD_BENCH_RATE (1000), TWINHUB_THREADS (hub I/O threads; default one per core).
set -euo pipefail
build="$(cd "${1:-build}" && pwd)"
shift || true
work="$(mktemp -d "${TMPDIR:-/tmp}/twinhub-method-bench.XXXXXX")"
hub_pid=""
cleanup() {
  if [ -n "$hub_pid" ]; then kill -TERM "$hub_pid" 2>/dev/null || true; wait "$hub_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
https_port=$(free_port)
mqtt_port=$(free_port)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
TWINHUB_LOG_LEVEL=warn "$build/bin/twinhubd" --data-dir "$work/hub" --https-port "$https_port" --mqtt-port "$mqtt_port" \
  >"$work/stdout" 2>"$work/stderr" &
hub_pid=$!
cs=""
for _ in $(seq 300); do
  kill -0 "$hub_pid" 2>/dev/null || { cat "$work/stdout" "$work/stderr" >&2; exit 1; }
  cs="$(sed -n 's/^Connection string (iothubowner): //p' "$work/stdout" | head -n1)"
  if [ -n "$cs" ] && (exec 3<>"/dev/tcp/127.0.0.1/$https_port") 2>/dev/null; then break; fi
  sleep 0.1
done
[ -n "$cs" ] || { echo "method_bench.sh: twinhubd printed no connection string" >&2; exit 1; }
"$build/bin/method_bench" --connection-string "$cs" --ca-file "$work/hub/tls/ca.pem" \
  --https-port "$https_port" --mqtt-port "$mqtt_port" --server-pid "$hub_pid" \
  --seconds "${METHOD_BENCH_SECONDS:-10}" --modules "${METHOD_BENCH_MODULES:-1000}" \
  --connections "${METHOD_BENCH_CONNECTIONS:-64}" --rate "${METHOD_BENCH_RATE:-1000}" "$@"
