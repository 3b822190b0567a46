#!/usr/bin/env bash
# The telemetry path into and out of the built-in Event Hubs-compatible endpoint, each figure with a
# baseline measured in the same run (docs/benchmarks.md, "Telemetry: durable ingest, Event Hubs
# latency and read throughput"). Per run, against a fresh twinhubd (scripts/hub.sh: SQLite store, new
# temp data directory, free ports) and mosquitto (TLS with the hub's certificate, persistence false):
#   1. ingest: CLIENTS MQTT/TLS devices, one QoS 1 PUBLISH to devices/{id}/messages/events/ in flight
#      each, PUBACK only after the group commit (mqtt_loadgen --mode telemetry), vs mosquitto's
#      non-durable QoS 1 PUBLISH -> PUBACK round trips from the same load generator, clients and payload;
#   2. latency: RATE msgs/s (paced, LAT_DEVICES devices) MQTT publish -> AMQP partition receivers on the
#      Event Hubs-compatible endpoint, p50/p99/max (and publish -> PUBACK, the durable commit alone),
#      vs the same publishers -> mosquitto -> one QoS 1 MQTT subscriber;
#   3. read: READ_EVENTS events pre-filled into partition 0, read from earliest by one AMQP receiver
#      with link credit READ_CREDIT, vs reading the same events through the store directly (read-only,
#      beside the running hub, in the hub's page size).
# Usage: bench/eventhub_bench.sh [BUILD_DIR]    (takes /tmp/hubports.lock itself for the whole run;
#        set HUBPORTS_LOCKED=1 when the caller already holds it)
# Env: RUNS (3), CLIENTS (1000), PAYLOAD (64), SECONDS_PER_RUN (10), RATE (5000), LAT_DEVICES (100),
#      READ_EVENTS (500000), READ_CREDIT (5000), READ_CHECK_EVERY (1000: the first read decodes the
#      sequence number of every 1000th event only, so that the reader's own decoding is not what is
#      measured; a second read decodes and checks every event), PARTS (ingest,latency,read), TWINHUB_THREADS.
set -euo pipefail
build="$(cd "${1:-build}" && pwd)"
bin="$build/bin"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
runs=${RUNS:-3}
clients=${CLIENTS:-1000}
payload=${PAYLOAD:-64}
seconds=${SECONDS_PER_RUN:-10}
rate=${RATE:-5000}
lat_devices=${LAT_DEVICES:-100}
read_events=${READ_EVENTS:-500000}
read_credit=${READ_CREDIT:-5000}
read_check_every=${READ_CHECK_EVERY:-1000}
parts=${PARTS:-ingest,latency,read}
key=$(python3 -c 'import base64; print(base64.b64encode(b"k" * 32).decode())')

if [ -z "${HUBPORTS_LOCKED:-}" ]; then
  exec 9>/tmp/hubports.lock
  flock 9
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/twinhub-eventhub-bench.XXXXXX")"
. "$here/../scripts/hub.sh"
mpid=""
stop_mosquitto() {
  if [ -n "$mpid" ]; then kill "$mpid" 2>/dev/null || true; wait "$mpid" 2>/dev/null || true; fi
  mpid=""
}
cleanup() {
  hub_stop
  stop_mosquitto
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<" $2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "0" }'; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "eventhub_bench: $runs runs, $(nproc) cores, mosquitto $(mosquitto -h 2>/dev/null | head -n1 | awk '{print $3}'), commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')"

for run in $(seq "$runs"); do
  echo "== run $run/$runs $(date -u +%H:%M:%S), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  https_port=$(free_port)
  mqtt_port=$(free_port)
  HUB_AMQP_PORT=$(free_port)
  rm -rf "$work/hub"
  mkdir -p "$work/hub"
  hub_start "$bin" "$work/hub" "$https_port" "$mqtt_port"
  host=$(sed -n 's/.*HostName=\([^;]*\).*/\1/p' <<<"$HUB_CS")
  common=(--connection-string "$HUB_CS" --ca-file "$work/hub/tls/ca.pem" --https-port "$https_port" --mqtt-port "$mqtt_port"
          --amqp-port "$HUB_AMQP_PORT" --server-pid "$HUB_PID" --key "$key")

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

  if [[ $parts == *ingest* ]]; then
    "$bin/eventhub_bench" devices "${common[@]}" --prefix b --count "$clients"
    echo "-- disk fdatasync latency before the durable run (reference)"
    python3 "$here/fsync_probe.py" "$work" 5
    echo "-- ingest: twinhub, $clients devices, durable QoS 1 telemetry (PUBACK after the group commit), payload $payload B"
    tw=$("$bin/mqtt_loadgen" load --port "$mqtt_port" --clients "$clients" --mode telemetry --payload "$payload" --seconds "$seconds" \
      --hub-pid "$HUB_PID" --ca "$work/hub/tls/ca.pem" --host-name "$host" --key "$key")
    echo "$tw"
    echo "-- ingest: mosquitto, $clients clients, QoS 1 PUBLISH -> PUBACK (no persistence), payload $payload B"
    mq=$("$bin/mqtt_loadgen" load --port "$mport" --clients "$clients" --mode publish --payload "$payload" --seconds "$seconds" \
      --hub-pid "$mpid" --ca "$work/hub/tls/ca.pem") || { cat "$work/mosquitto.log" >&2; exit 1; }
    echo "$mq"
    echo "run $run ingest ratio twinhub_durable_telemetry/mosquitto_qos1 = $(field ops_per_s "$tw") / $(field ops_per_s "$mq") = $(ratio "$(field ops_per_s "$tw")" "$(field ops_per_s "$mq")")"
  fi

  if [[ $parts == *latency* ]]; then
    [[ $parts == *ingest* && $clients -ge $lat_devices ]] || "$bin/eventhub_bench" devices "${common[@]}" --prefix b --count "$lat_devices"
    echo "-- disk fdatasync latency before the latency run (reference: an event is readable after its commit)"
    python3 "$here/fsync_probe.py" "$work" 5
    echo "-- latency: $rate msgs/s from $lat_devices devices, MQTT publish -> Event Hubs receiver (twinhub) / MQTT subscriber (mosquitto)"
    "$bin/eventhub_bench" latency "${common[@]}" --devices "$lat_devices" --rate "$rate" --seconds "$seconds" --payload "$payload" \
      --mosquitto-port "$mport" --mosquitto-pid "$mpid"
  fi

  if [[ $parts == *read* ]]; then
    echo "-- read: $read_events events pre-filled into partition 0, read from earliest (credit $read_credit); store read as the baseline"
    rd=$("$bin/eventhub_bench" read "${common[@]}" --events "$read_events" --credit "$read_credit" --payload "$payload" \
      --check-every "$read_check_every")
    echo "$rd"
    echo "-- read again, the reader decoding every event's annotations (sequence number checked on each)"
    "$bin/eventhub_bench" read "${common[@]}" --events "$read_events" --credit "$read_credit" --prefill 0 --check-every 1
    sr=$("$bin/eventhub_bench" store-read --db "$work/hub/twinhub.db" --partition 0 --events "$read_events")
    echo "$sr"
    echo "run $run read ratio amqp/store = $(field events_per_s "$(tail -n1 <<<"$rd")") / $(field events_per_s "$sr") = $(ratio "$(field events_per_s "$(tail -n1 <<<"$rd")")" "$(field events_per_s "$sr")")"
  fi
  stop_mosquitto
  hub_stop
done
