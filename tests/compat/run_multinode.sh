#!/usr/bin/env bash
# Two twinhubd nodes on one PostgreSQL (issue 18 item 2), driven by the official Node SDKs: node A
# on the SDKs' fixed ports (443 HTTPS, 8883 MQTT, 5671 AMQP), node B on free high ports, both with
# the store in $TWINHUB_STORE (tests/pgtest's pg_cluster_run sets it) and one hub identity (node B
# gets a copy of node A's tls/ and hub.json: the same CA, server certificate and host names). Devices reach node B
# through the connection string's GatewayHostName=localhost:PORT. Usage:
#   pg_cluster_run -- run_multinode.sh BIN_DIR TEST_FILES...
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$(cd "$1" && pwd)"
shift
: "${TWINHUB_STORE:?run under tests/pgtest pg_cluster_run}"

if [ ! -f "$here/node_modules/.package-lock.json" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  (cd "$here" && { npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; })
fi

# shellcheck source=../../scripts/hub.sh
. "$here/../../scripts/hub.sh"
work="$(mktemp -d "${TMPDIR:-/tmp}/twinhub-multinode.XXXXXX")"
data_a="$work/a"
data_b="$work/b"
pid_b=""
cleanup() {
  hub_stop
  if [ -n "$pid_b" ] && kill -0 "$pid_b" 2>/dev/null; then
    kill -TERM "$pid_b" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid_b" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid_b" 2>/dev/null || true
  fi
  if [ "${TWINHUB_COMPAT_KEEP:-0}" = 1 ]; then echo "multinode: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 20000))
    if port_free "$p"; then echo "$p"; return 0; fi
  done
  echo "no free port" >&2
  exit 1
}

hub_start "$bin" "$data_a" 443 8883
https_b="$(free_port)"; mqtt_b="$(free_port)"; amqp_b="$(free_port)"
mkdir -p "$data_b"
chmod 700 "$data_b"
cp -a "$data_a/tls" "$data_a/hub.json" "$data_b/"
TWINHUB_LOG_LEVEL="${TWINHUB_LOG_LEVEL:-warn}" "$bin/twinhubd" --data-dir "$data_b" --https-port "$https_b" \
  --mqtt-port "$mqtt_b" --amqp-port "$amqp_b" >"$data_b.stdout" 2>"$data_b.stderr" &
pid_b=$!
for i in $(seq 300); do
  kill -0 "$pid_b" 2>/dev/null || { echo "node B exited during start-up:" >&2; cat "$data_b.stdout" "$data_b.stderr" >&2; exit 1; }
  if ! port_free "$mqtt_b" && ! port_free "$https_b"; then break; fi
  [ "$i" = 300 ] && { echo "node B did not come up" >&2; cat "$data_b.stderr" >&2; exit 1; }
  sleep 0.1
done

export TWINHUB_CONNECTION_STRING="$HUB_CS"
export NODE_EXTRA_CA_CERTS="$data_a/tls/ca.pem"
export TWINHUB_NODE_A_PID="$HUB_PID"
export TWINHUB_NODE_B_PID="$pid_b"
export TWINHUB_NODE_B_MQTT="localhost:$mqtt_b"
export TWINHUB_NODE_B_HTTPS="localhost:$https_b"
export TWINHUB_NODE_B_AMQP="localhost:$amqp_b"
export TWINHUB_BIN_DIR="$bin"
export TWINHUB_DATA_DIR="$data_a"
status=0
node --test --test-concurrency=1 "$@" || status=$?
if [ $status -ne 0 ]; then
  echo "multinode: node A log (last 40 lines):" >&2
  tail -n 40 "$data_a.stderr" >&2
  echo "multinode: node B log (last 40 lines):" >&2
  tail -n 40 "$data_b.stderr" >&2
fi
exit $status
