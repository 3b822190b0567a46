#!/usr/bin/env bash
# MQTT head benchmark (docs/benchmarks.md, "MQTT head"): twinhub's durable reported-patch round
# trips vs mosquitto's non-durable QoS 1 publish round trips (same client count, payload, TLS on
# both, same load generator), desired-notification latency at a fixed rate, and the hub's memory
# with many idle TLS connections. Usage: bench/mqtt_bench.sh [BUILD_DIR]
# Env: CLIENTS (1000), PAYLOAD (64), SECONDS_PER_RUN (10), PAIRS (3), IDLE_CLIENTS (10000),
# DESIRED_RATE (1000).
set -euo pipefail
build=${1:-build}
bin="$build/bin"
clients=${CLIENTS:-1000}
payload=${PAYLOAD:-64}
seconds=${SECONDS_PER_RUN:-10}
idle=${IDLE_CLIENTS:-10000}
rate=${DESIRED_RATE:-1000}
work=$(mktemp -d "${TMPDIR:-/tmp}/twinhub-mqtt-bench.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_hub() {  # dir port clients [extra args]
  local dir=$1 port=$2 n=$3; shift 3
  "$bin/mqtt_loadgen" hub --dir "$dir" --port "$port" --clients "$n" "$@" >"$dir.out" 2>"$dir.err" &
  hub_pid=$!
  pids+=("$hub_pid")
  for _ in $(seq 1200); do grep -q '^ready' "$dir.out" 2>/dev/null && return 0; sleep 0.1; done
  echo "hub did not start" >&2; cat "$dir.err" >&2; exit 1
}
stop_hub() { kill "$hub_pid" 2>/dev/null || true; wait "$hub_pid" 2>/dev/null || true; }

# The disk's fdatasync latency right before each durable run (the reference for stalls: every
# acknowledgement behind a stalled fdatasync waits for it).
probe() { python3 "$(dirname "$0")/fsync_probe.py" "$work" 5; }

# Throughput: twinhub and mosquitto alternate PAIRS times (the same hub data directory and
# mosquitto config each time), so that both see the same phases of a noisy machine; each pair gives
# a ratio, and the median ratio is the result.
pairs=${PAIRS:-3}
rate() { sed -n 's/.* ops_per_s=\([0-9]*\).*/\1/p' <<<"$1"; }
ratios=()
for pair in $(seq "$pairs"); do
  echo "== pair $pair/$pairs: disk fdatasync latency before the twin run (reference)"
  probe
  echo "== pair $pair/$pairs: twinhub, $clients modules, durable reported-patch round trips over TLS, payload $payload B"
  port=$(free_port)
  start_hub "$work/hub1" "$port" "$clients"
  twin_line=$("$bin/mqtt_loadgen" load --port "$port" --clients "$clients" --mode twin --payload "$payload" --seconds "$seconds" \
    --hub-pid "$hub_pid" --ca "$work/hub1/ca.pem")
  echo "$twin_line"
  stop_hub

  echo "== pair $pair/$pairs: mosquitto $(mosquitto -h 2>/dev/null | head -n1 | awk '{print $3}'): $clients clients, QoS 1 publish round trips over TLS, payload $payload B, no persistence"
  mport=$(free_port)
  # mosquitto started as root drops to user mosquitto: let it read the certificate.
  chmod a+rx "$work" "$work/hub1"; chmod a+r "$work/hub1/server.pem" "$work/hub1/server.key"
  cat >"$work/mosquitto.conf" <<CONF
listener $mport 127.0.0.1
certfile $work/hub1/server.pem
keyfile $work/hub1/server.key
allow_anonymous true
persistence false
max_connections -1
max_inflight_messages 0
CONF
  mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
  mpid=$!
  pids+=("$mpid")
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$mport) 2>/dev/null && break; sleep 0.1; done
  mosq_line=$("$bin/mqtt_loadgen" load --port "$mport" --clients "$clients" --mode publish --payload "$payload" --seconds "$seconds" \
    --hub-pid "$mpid" --ca "$work/hub1/ca.pem") || { cat "$work/mosquitto.log" >&2; exit 1; }
  echo "$mosq_line"
  kill "$mpid"; wait "$mpid" 2>/dev/null || true
  r=$(awk -v t="$(rate "$twin_line")" -v m="$(rate "$mosq_line")" 'BEGIN { if (m > 0) printf "%.2f", t / m; else print "0" }')
  echo "pair $pair ratio twinhub_durable_patches/mosquitto_qos1 = $(rate "$twin_line") / $(rate "$mosq_line") = $r"
  ratios+=("$r")
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}')
echo "ratio twinhub_durable_patches/mosquitto_qos1: median of $pairs pairs = $median (pairs: ${ratios[*]})"

echo "== disk: fdatasync latency before the desired run (reference)"
probe
echo "== twinhub: desired-notification latency, $rate patches/s over $clients subscribed modules (commit -> device)"
port=$(free_port)
start_hub "$work/hub2" "$port" "$clients" --desired-rate "$rate" --desired-seconds "$seconds" --desired-delay 6
"$bin/mqtt_loadgen" load --port "$port" --clients "$clients" --mode desired --seconds $((seconds + 4)) --ca "$work/hub2/ca.pem"
stop_hub

echo "== twinhub: $idle idle TLS connections (hub resident memory)"
port=$(free_port)
start_hub "$work/hub3" "$port" "$idle"
echo "hub_rss_before_connections_mb=$(awk '/VmRSS/{printf "%.1f", $2/1024}' /proc/$hub_pid/status)"
"$bin/mqtt_loadgen" load --port "$port" --clients "$idle" --mode idle --seconds 5 --hub-pid "$hub_pid" --ca "$work/hub3/ca.pem"
stop_hub
