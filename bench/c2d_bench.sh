#!/usr/bin/env bash
# Starts twinhubd (scripts/hub.sh: SQLite store, fresh data directory, free ports) and mosquitto (QoS 1
# reference: TLS with the hub's certificate, no persistence), and runs c2d_bench against both in one
# run: C2D throughput (SDK service_client, and a Proton sender with many unsettled deliveries ->
# hub -> MQTT device, completed by PUBACK) and latency at a fixed rate, each with the mosquitto
# figure and the ratio (docs/benchmarks.md, "Cloud-to-device messages"); then AMQP vs MQTT telemetry
# ingest from the same hub.
# Usage: bench/c2d_bench.sh [BUILD_DIR] [c2d_bench options...]
# Env: C2D_BENCH_SECONDS (10), C2D_BENCH_DEVICES (100), C2D_BENCH_SENDERS (64), C2D_BENCH_CLIENTS (4),
#      C2D_BENCH_RATE (1000), C2D_BENCH_PAYLOAD (64), C2D_BENCH_WINDOW (2000),
#      C2D_BENCH_TELEMETRY_DEVICES (8: AMQP vs MQTT telemetry ingest; 0 skips it), TWINHUB_THREADS (hub I/O threads).
set -euo pipefail
build="$(cd "${1:-build}" && pwd)"
shift || true
work="$(mktemp -d "${TMPDIR:-/tmp}/twinhub-c2d-bench.XXXXXX")"
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/hub.sh"
mpid=""
cleanup() {
  hub_stop
  if [ -n "$mpid" ]; then kill "$mpid" 2>/dev/null || true; wait "$mpid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
https_port=$(free_port)
mqtt_port=$(free_port)
HUB_AMQP_PORT=$(free_port)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
hub_start "$build/bin" "$work/hub" "$https_port" "$mqtt_port"

mport=$(free_port)
# mosquitto started as root drops to user mosquitto: let it read a copy of the hub's certificate.
cp "$work/hub/tls/server.pem" "$work/hub/tls/server.key" "$work/"
chmod a+rx "$work"; chmod a+r "$work/server.pem" "$work/server.key"
cat >"$work/mosquitto.conf" <<CONF
listener $mport 127.0.0.1
certfile $work/server.pem
keyfile $work/server.key
allow_anonymous true
persistence false
max_connections -1
max_inflight_messages 0
max_queued_messages 100000
CONF
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
mpid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$mport") 2>/dev/null && break; sleep 0.1; done
echo "mosquitto $(mosquitto -h 2>/dev/null | head -n1 | awk '{print $3}') on $mport; load average $(cut -d' ' -f1-3 /proc/loadavg)"

"$build/bin/c2d_bench" --connection-string "$HUB_CS" --ca-file "$work/hub/tls/ca.pem" \
  --https-port "$https_port" --mqtt-port "$mqtt_port" --amqp-port "$HUB_AMQP_PORT" --server-pid "$HUB_PID" \
  --mosquitto-port "$mport" --mosquitto-pid "$mpid" \
  --seconds "${C2D_BENCH_SECONDS:-10}" --devices "${C2D_BENCH_DEVICES:-100}" --senders "${C2D_BENCH_SENDERS:-64}" \
  --clients "${C2D_BENCH_CLIENTS:-4}" --rate "${C2D_BENCH_RATE:-1000}" --payload "${C2D_BENCH_PAYLOAD:-64}" \
  --window "${C2D_BENCH_WINDOW:-2000}" --telemetry-devices "${C2D_BENCH_TELEMETRY_DEVICES:-8}" "$@"
