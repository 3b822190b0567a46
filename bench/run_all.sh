#!/usr/bin/env bash
# Runs every benchmark against a build directory (default: build). `make bench` calls this.
# Results are recorded, with the command that produced them, in docs/benchmarks.md.
set -euo pipefail
build=${1:-build}
if [ -x "$build/bin/store_bench" ]; then
  echo "== store_bench"
  "$build/bin/store_bench" --seconds "${STORE_BENCH_SECONDS:-5}"
fi
if [ -x "$build/bin/store_bench" ] && [ -x "$build/bin/pg_cluster_run" ]; then
  echo "== store_bench: SQLite vs PostgreSQL (a throwaway cluster)"
  "$build/bin/pg_cluster_run" -- sh -c '"$0" --seconds "$1" --postgres "$TWINHUB_STORE"' \
    "$build/bin/store_bench" "${STORE_BENCH_SECONDS:-5}"
fi
if [ -x "$build/bin/rest_bench" ] && [ -x "$build/bin/twinhubd" ]; then
  echo "== rest_bench"
  REST_BENCH_SECONDS="${REST_BENCH_SECONDS:-5}" bash "$(dirname "$0")/rest_bench.sh" "$build"
fi
if [ -x "$build/bin/method_bench" ] && [ -x "$build/bin/twinhubd" ]; then
  echo "== method_bench"
  METHOD_BENCH_SECONDS="${METHOD_BENCH_SECONDS:-5}" bash "$(dirname "$0")/method_bench.sh" "$build"
fi
if [ -x "$build/bin/jobs_bench" ] && [ -x "$build/bin/twinhubd" ]; then
  echo "== jobs_bench"
  bash "$(dirname "$0")/jobs_bench.sh" "$build" --devices "${JOBS_BENCH_DEVICES:-100000}"
fi
if [ -x "$build/bin/c2d_bench" ] && [ -x "$build/bin/twinhubd" ] && command -v mosquitto >/dev/null; then
  echo "== c2d_bench"
  C2D_BENCH_SECONDS="${C2D_BENCH_SECONDS:-5}" bash "$(dirname "$0")/c2d_bench.sh" "$build"
fi
if [ -x "$build/bin/eventhub_bench" ] && [ -x "$build/bin/mqtt_loadgen" ] && [ -x "$build/bin/twinhubd" ] && command -v mosquitto >/dev/null; then
  echo "== eventhub_bench"
  RUNS="${EVENTHUB_BENCH_RUNS:-1}" SECONDS_PER_RUN="${EVENTHUB_BENCH_SECONDS:-5}" bash "$(dirname "$0")/eventhub_bench.sh" "$build"
fi
