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
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/hub.sh"
cleanup() { hub_stop; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
https_port=$(free_port)
mqtt_port=$(free_port)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
hub_start "$build/bin" "$work/hub" "$https_port" "$mqtt_port"
cs="$HUB_CS"
hub_pid="$HUB_PID"
"$build/bin/method_bench" --connection-string "$cs" --ca-file "$work/hub/tls/ca.pem" \
  --https-port "$https_port" --mqtt-port "$mqtt_port" --server-pid "$hub_pid" \
  --seconds "${METHOD_BENCH_SECONDS:-10}" --modules "${METHOD_BENCH_MODULES:-1000}" \
  --connections "${METHOD_BENCH_CONNECTIONS:-64}" --rate "${METHOD_BENCH_RATE:-1000}" "$@"
