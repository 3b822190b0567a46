#!/usr/bin/env bash
# Starts twinhubd (SQLite store, fresh data directory) and runs jobs_bench against it.
# Usage: bench/jobs_bench.sh [BUILD_DIR] [jobs_bench options...]   e.g. --devices 100000
# Env: JOBS_BENCH_PORT (default 443).
set -euo pipefail
build="$(cd "${1:-build}" && pwd)"
shift || true
port="${JOBS_BENCH_PORT:-443}"
work="$(mktemp -d "${TMPDIR:-/tmp}/twinhub-jobs-bench.XXXXXX")"
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/hub.sh"
cleanup() { hub_stop; rm -rf "$work"; }
trap cleanup EXIT
hub_start "$build/bin" "$work/hub" "$port" 0
"$build/bin/jobs_bench" --connection-string "$HUB_CS" --ca-file "$work/hub/tls/ca.pem" --port "$port" \
  --server-pid "$HUB_PID" "$@"
