# Sourced by scripts that need a running twinhubd (compat tests, benchmarks):
#   hub_start BIN_DIR DATA_DIR HTTPS_PORT MQTT_PORT   starts twinhubd with a fresh data directory,
#       waits for its first-start banner and for HTTPS_PORT to accept connections, and sets
#       HUB_PID and HUB_CS (the iothubowner connection string); stdout/stderr go to
#       DATA_DIR.stdout / DATA_DIR.stderr. Exits the calling script with 1 if the hub does not come up.
#   hub_stop    SIGTERM, wait up to 5 s, then SIGKILL.
# TWINHUB_STORE (a postgresql:// URL, e.g. from tests/pgtest's pg_cluster_run) reaches twinhubd
# through the environment: the hub then keeps its state in PostgreSQL, not DATA_DIR/twinhub.db.
# TWINHUB_LOG_LEVEL defaults to warn; HUB_AMQP_PORT (default 5671) is the AMQP port.
HUB_PID=""
HUB_CS=""

hub_start() {
  local bin="$1" data="$2" https_port="$3" mqtt_port="$4"
  TWINHUB_LOG_LEVEL="${TWINHUB_LOG_LEVEL:-warn}" "$bin/twinhubd" --data-dir "$data" --https-port "$https_port" \
    --mqtt-port "$mqtt_port" --amqp-port "${HUB_AMQP_PORT:-5671}" >"$data.stdout" 2>"$data.stderr" &
  HUB_PID=$!
  for _ in $(seq 300); do
    if ! kill -0 "$HUB_PID" 2>/dev/null; then
      echo "twinhubd exited during start-up:" >&2
      cat "$data.stdout" "$data.stderr" >&2
      HUB_PID=""
      exit 1
    fi
    HUB_CS="$(sed -n 's/^Connection string (iothubowner): //p' "$data.stdout" 2>/dev/null | head -n1 || true)"
    if [ -n "$HUB_CS" ] && (exec 3<>"/dev/tcp/127.0.0.1/$https_port") 2>/dev/null; then
      if [ -n "${TWINHUB_STORE:-}" ] && [ -e "$data/twinhub.db" ]; then
        echo "twinhubd was given TWINHUB_STORE but created $data/twinhub.db" >&2
        exit 1
      fi
      return 0
    fi
    sleep 0.1
  done
  echo "twinhubd did not come up within 30 s:" >&2
  cat "$data.stdout" "$data.stderr" >&2
  exit 1
}

hub_stop() {
  [ -n "$HUB_PID" ] || return 0
  if kill -0 "$HUB_PID" 2>/dev/null; then
    kill -TERM "$HUB_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$HUB_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$HUB_PID" 2>/dev/null || true
  fi
  wait "$HUB_PID" 2>/dev/null || true
  HUB_PID=""
}
