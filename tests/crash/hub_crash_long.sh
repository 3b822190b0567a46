#!/usr/bin/env bash
# The long form of hub_crash_tests (issue 12): ITERATIONS (default 1000) kill -9 cycles of a real
# twinhubd under REST/MQTT/telemetry writers with the CLI and sqlite3 beside it. Prints the test's
# summary line (iterations, acknowledged versions and messages, lost) and its wall time; the figure
# goes in docs/benchmarks.md ("Durability").
#   bash tests/crash/hub_crash_long.sh [BUILD_DIR]      (default: build)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
iterations=${ITERATIONS:-1000}
cmake --build "$build" --target hub_crash_tests twinhubd twinhub >/dev/null
start=$(date +%s)
TWINHUB_HUB_CRASH_ITERATIONS=$iterations "$build/bin/hub_crash_tests" --gtest_brief=1
echo "hub_crash_long: $iterations iterations in $(( $(date +%s) - start )) s"
