#!/usr/bin/env bash
# Starts twinhubd (SQLite store, fresh data directory) and runs rest_bench against it.
# Usage: bench/rest_bench.sh [BUILD_DIR] [rest_bench options...]
# Env: REST_BENCH_PORT (default 443), REST_BENCH_SECONDS (default 10), REST_BENCH_CONNECTIONS (64).
set -euo pipefail
build="$(cd "${1:-build}" && pwd)"
shift || true
port="${REST_BENCH_PORT:-443}"
work="$(mktemp -d "${TMPDIR:-/tmp}/twinhub-rest-bench.XXXXXX")"
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/hub.sh"
cleanup() { hub_stop; rm -rf "$work"; }
trap cleanup EXIT
hub_start "$build/bin" "$work/hub" "$port" 0
cs="$HUB_CS"
hub_pid="$HUB_PID"
"$build/bin/rest_bench" --connection-string "$cs" --ca-file "$work/hub/tls/ca.pem" --port "$port" --server-pid "$hub_pid" \
  --seconds "${REST_BENCH_SECONDS:-10}" --connections "${REST_BENCH_CONNECTIONS:-64}" "$@"
