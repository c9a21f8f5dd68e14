#!/usr/bin/env bash
# A throwaway Redis server (Debian package redis-server) on 127.0.0.1, for tests and trials:
#   scripts/services/redis.sh start [--dir DIR] [--port PORT] [--env-file FILE]  -> prints the URL
#   scripts/services/redis.sh stop  [--dir DIR]
# No persistence (no RDB snapshots, no AOF): everything is lost on stop.
SERVICE_NAME=redis
. "$(dirname "$0")/lib.sh"
parse_args "$@"

PIDFILE=$SERVICE_DIR/redis.pid
LOG=$SERVICE_DIR/redis.log

ping() { # ping PORT
  [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
}

start() {
  command -v redis-server >/dev/null || missing_package redis-server redis-server
  command -v redis-cli >/dev/null || missing_package redis-cli redis-tools
  if alive "$PIDFILE"; then print_recorded REDIS_URL; return; fi
  fresh_dir
  local port=${SERVICE_PORT:-$(free_port)}
  check_port_free "$port"
  # BullMQ needs keys never evicted (maxmemory-policy noeviction, Redis's default; set anyway).
  redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes --save '' --appendonly no \
    --maxmemory-policy noeviction --dir "$SERVICE_DIR" --logfile "$LOG" --pidfile "$PIDFILE" \
    --daemonize yes >/dev/null || fail_with_log "redis-server did not start" "$LOG"
  wait_for 20 ping "$port" || fail_with_log "the server does not answer PING on 127.0.0.1:$port" "$LOG"
  local url="redis://127.0.0.1:$port"
  write_env "REDIS_URL=$url"
  echo "$url"
}

stop() {
  kill_pidfiles "$PIDFILE"
  remove_dir
}

case $COMMAND in
  start) start ;;
  stop) stop ;;
  status) if alive "$PIDFILE"; then print_recorded REDIS_URL; else echo "$SERVICE_NAME: not running" >&2; exit 1; fi ;;
esac
