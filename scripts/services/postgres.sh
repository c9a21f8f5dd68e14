#!/usr/bin/env bash
# A throwaway PostgreSQL server (Debian package postgresql) on 127.0.0.1, for tests and trials:
#   scripts/services/postgres.sh start [--dir DIR] [--port PORT] [--env-file FILE]  -> prints the URL
#   scripts/services/postgres.sh stop  [--dir DIR]
# Trust authentication, no durability (fsync off): never for data that matters.
SERVICE_NAME=postgres
. "$(dirname "$0")/lib.sh"
parse_args "$@"

# Debian installs the server binaries outside PATH, one directory per major version.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
DATA=$SERVICE_DIR/data
LOG=$SERVICE_DIR/postgres.log

# initdb and postgres refuse to run as root; as root, run them as the 'postgres' user that the
# Debian package creates, in a directory that user owns.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() { [ -f "$DATA/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

start() {
  [ -n "$PGBIN" ] && [ -x "$PGBIN/postgres" ] || missing_package postgres postgresql
  if running; then print_recorded DATABASE_URL; return; fi
  fresh_dir
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$SERVICE_DIR"
    runuser -u postgres -- test -w "$SERVICE_DIR" ||
      die "user 'postgres' cannot reach $SERVICE_DIR; choose a --dir whose parent directories it may enter"
  fi
  local port=${SERVICE_PORT:-$(free_port)}
  check_port_free "$port"
  as_owner "$PGBIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$SERVICE_DIR/initdb.log" 2>&1 ||
    fail_with_log "initdb failed" "$SERVICE_DIR/initdb.log"
  # The socket directory is the throwaway one, so nothing is written to /var/run/postgresql.
  as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
    -o "-p $port -k $SERVICE_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null 2>&1 || fail_with_log "the server did not start on 127.0.0.1:$port" "$LOG"
  wait_for 30 "$PGBIN/pg_isready" -h 127.0.0.1 -p "$port" -U postgres ||
    fail_with_log "the server does not accept connections on 127.0.0.1:$port" "$LOG"
  local url="postgres://postgres@127.0.0.1:$port/postgres"
  write_env "DATABASE_URL=$url"
  echo "$url"
}

stop() {
  if [ -n "$PGBIN" ] && [ -f "$DATA/postmaster.pid" ]; then
    as_owner "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  remove_dir
}

case $COMMAND in
  start) start ;;
  stop) stop ;;
  status) if [ -n "$PGBIN" ] && running; then print_recorded DATABASE_URL; else echo "$SERVICE_NAME: not running" >&2; exit 1; fi ;;
esac
