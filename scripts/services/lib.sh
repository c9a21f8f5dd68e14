# Shared by scripts/services/{redis,postgres,s3}.sh: argument parsing, free ports, waiting, and
# the error messages. Sourced, not run. Every service listens on 127.0.0.1 only and keeps all of its
# state in one throwaway directory that `stop` removes.
set -euo pipefail

SERVICE_DIR=''
SERVICE_PORT=''
ENV_FILE=''

die() { echo "$SERVICE_NAME: $*" >&2; exit 1; }

# Exit status 3 means "the server is not installed" so that callers (the test helper) can tell a
# missing Debian package from a server that failed to start.
missing_package() { # missing_package BINARY PACKAGE...
  local binary=$1; shift
  echo "$SERVICE_NAME: '$binary' not found; install the Debian package(s): apt-get install $*" >&2
  exit 3
}

usage() {
  cat >&2 <<USAGE
usage: $0 start|stop|status [--dir DIR] [--port PORT] [--env-file FILE]
  --dir DIR        throwaway directory for the server's data, logs and pid files
                   (default \${EASEL_SERVICES_DIR:-/tmp/easel-services}/$SERVICE_NAME; stop removes it)
  --port PORT      port on 127.0.0.1 (default: a free one)
  --env-file FILE  also write the connection variables there (always written to DIR/env)
start prints the connection URL on stdout; starting a running server prints it again.
USAGE
  exit 2
}

parse_args() { # parse_args "$@" -> COMMAND, SERVICE_DIR, SERVICE_PORT, ENV_FILE
  [ $# -ge 1 ] || usage
  COMMAND=$1; shift
  case $COMMAND in start|stop|status) ;; *) usage ;; esac
  while [ $# -gt 0 ]; do
    case $1 in
      --dir) [ $# -ge 2 ] || usage; SERVICE_DIR=$2; shift 2 ;;
      --port) [ $# -ge 2 ] || usage; SERVICE_PORT=$2; shift 2 ;;
      --env-file) [ $# -ge 2 ] || usage; ENV_FILE=$2; shift 2 ;;
      *) usage ;;
    esac
  done
  SERVICE_DIR=${SERVICE_DIR:-${EASEL_SERVICES_DIR:-/tmp/easel-services}/$SERVICE_NAME}
  case $SERVICE_DIR in /*) ;; *) SERVICE_DIR=$PWD/$SERVICE_DIR ;; esac
  if [ -n "$SERVICE_PORT" ]; then
    [[ $SERVICE_PORT =~ ^[0-9]+$ ]] && [ "$SERVICE_PORT" -ge 1 ] && [ "$SERVICE_PORT" -le 65535 ] ||
      die "--port must be a number from 1 to 65535, got '$SERVICE_PORT'"
  fi
}

# A port nobody listens on now, from the kernel (bind to port 0). Node is already required by the
# project, so it is used rather than guessing ports and probing them.
free_port() {
  node -e 'const s=require("node:net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

wait_for() { # wait_for SECONDS CMD... : polls CMD every 0.1 s
  local seconds=$1; shift
  local end=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.1
  done
}

# Writes the connection variables (NAME=VALUE lines, shell-sourceable) to DIR/env and --env-file.
write_env() { # write_env LINE...
  printf '%s\n' "$@" >"$SERVICE_DIR/env"
  if [ -n "$ENV_FILE" ]; then printf '%s\n' "$@" >"$ENV_FILE"; fi
}

# Print the URL of an already-running server (idempotent start) from DIR/env.
print_recorded() { # print_recorded VARIABLE
  local line
  line=$(grep "^$1=" "$SERVICE_DIR/env") || die "$SERVICE_DIR/env has no $1"
  if [ -n "$ENV_FILE" ]; then cp "$SERVICE_DIR/env" "$ENV_FILE"; fi
  echo "${line#*=}"
}

# Shows the end of a log when a server fails to come up, then exits.
fail_with_log() { # fail_with_log MESSAGE LOGFILE
  echo "$SERVICE_NAME: $1" >&2
  if [ -f "$2" ]; then echo "--- last lines of $2:" >&2; tail -n 20 "$2" >&2; fi
  exit 1
}

# Processes named in pid files, killed with SIGKILL: the data is thrown away anyway.
kill_pidfiles() { # kill_pidfiles FILE...
  local f p pids=()
  for f in "$@"; do [ -f "$f" ] && pids+=("$(cat "$f")"); done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do # gone, or a zombie waiting for its parent to reap it
    while [ -e "/proc/$p" ] && [ "$(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null)" != Z ]; do sleep 0.05; done
  done
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The directory is removed by stop and by a fresh start, so only one this script made is ever
# removed: it carries a marker file, and an existing directory without one is refused.
MARKER=.easel-throwaway-service
fresh_dir() { # fresh_dir: empty SERVICE_DIR, marked as ours
  if [ -e "$SERVICE_DIR" ] && [ ! -e "$SERVICE_DIR/$MARKER" ] && [ -n "$(ls -A "$SERVICE_DIR" 2>/dev/null)" ]; then
    die "$SERVICE_DIR exists and was not made by this script; refusing to empty it (choose another --dir)"
  fi
  remove_dir
  mkdir -p "$SERVICE_DIR"
  touch "$SERVICE_DIR/$MARKER"
}
remove_dir() { if [ -e "$SERVICE_DIR/$MARKER" ]; then rm -rf "$SERVICE_DIR"; fi; }

# A server found answering on a given port would be mistaken for the one just started.
check_port_free() { # check_port_free PORT
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then die "port $1 on 127.0.0.1 is already in use"; fi
}
